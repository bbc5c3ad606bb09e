"""Compressed waits, retries and callback timeouts; callbacks answered through the product bus."""

from __future__ import annotations

import json
import time
from pathlib import Path

from local import sfn_bridge
from local.runtime import LocalRuntime
from local.sfn_bridge import TimeCompression
from local.timeline import states_from_history
from tests.local.conftest import decision_event, run_path, start_event, wait_until


def test_time_compression_arithmetic() -> None:
    compression = TimeCompression(wait_factor=0.5, retry_factor=0.25, callback_timeout_factor=0.001)
    assert compression.wait(10) == 5 and compression.retry(8) == 2
    assert compression.callback_timeout(259_200) == 260  # 72 h -> 4 min 20 s, rounded up to whole seconds
    assert TimeCompression(callback_timeout_max_s=2).callback_timeout(3600) == 2
    assert TimeCompression(callback_timeout_factor=0).callback_timeout(3600) == 1  # never zero
    assert TimeCompression().callback_timeout(3600) == 3600  # not compressed unless asked


def test_an_hour_long_wait_passes_at_once_by_default(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    described = run_path(runtime, path="wait")
    assert described["status"] == "SUCCEEDED" and time.monotonic() - started < 5
    types = [event["type"] for event in runtime.history(described["executionArn"])]
    assert "WaitStateEntered" in types and "WaitStateExited" in types


def test_a_wait_sleeps_seconds_times_the_factor(mini_root: Path) -> None:
    with LocalRuntime(mini_root, time_compression=TimeCompression(wait_factor=0.0003)) as runtime:
        described = run_path(runtime, path="wait")  # 3600 s * 0.0003 = 1.08 s
        states = states_from_history(runtime.history(described["executionArn"]), described["status"])
        wait = next(state for state in states if state.name == "LongWait")
        assert wait.duration_ms is not None and 900 <= wait.duration_ms < 5000


def test_retries_run_with_compressed_intervals(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    described = run_path(runtime, path="flaky")  # Retry: 30 s then 60 s on AWS
    assert described["status"] == "SUCCEEDED" and time.monotonic() - started < 5
    assert json.loads(described["output"])["flaky"] == {"attempts": 3}
    history = runtime.history(described["executionArn"])
    assert [event["type"] for event in history].count("LambdaFunctionScheduled") == 3


def _token_execution(runtime: LocalRuntime, request: str, timeout_seconds: int = 3600) -> str:
    (arn,) = runtime.send_event(start_event(path="token", request=request, timeout_seconds=timeout_seconds))
    wait_until(lambda: any(event["type"] == "TaskSubmitted" for event in runtime.history(arn)))
    return arn


def test_wait_for_task_token_is_answered_by_a_decision_on_the_product_bus(runtime: LocalRuntime) -> None:
    arn = _token_execution(runtime, "r1")
    assert runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING"
    runtime.send_event(decision_event("r1", "approve", "alice"), bus=runtime.product_bus)
    described = runtime.wait(arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["decision"] == {"decided_by": "alice"}


def test_send_task_failure_keeps_its_cause(runtime: LocalRuntime) -> None:
    arn = _token_execution(runtime, "r2")
    runtime.send_event(decision_event("r2", "reject", "bob"), bus=runtime.product_bus)
    described = runtime.wait(arn)
    assert json.loads(described["output"])["error"] == {"Error": "Rejected", "Cause": "bob"}


def test_a_callback_timeout_can_be_compressed_into_an_expiry(mini_root: Path) -> None:
    with LocalRuntime(mini_root, time_compression=TimeCompression(callback_timeout_max_s=1)) as runtime:
        started = time.monotonic()
        described = run_path(runtime, path="token", request="r3", timeout_seconds=3600)
        assert 0.9 <= time.monotonic() - started < 5
        assert json.loads(described["output"])["decision"] == {"expired": True}
        states = states_from_history(runtime.history(described["executionArn"]), described["status"])
        assert [(state.name, state.status) for state in states][1:3] == [
            ("AwaitToken", "TIMED_OUT"),
            ("Expired", "SUCCEEDED"),
        ]


def test_callback_timeouts_are_not_compressed_by_default(runtime: LocalRuntime) -> None:
    arn = _token_execution(runtime, "r4", timeout_seconds=2)
    time.sleep(1.0)
    assert runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING"
    runtime.send_event(decision_event("r4", "approve", "carol"), bus=runtime.product_bus)
    assert runtime.wait(arn)["status"] == "SUCCEEDED"


def test_stopping_an_execution_that_waits_for_its_token_aborts_it_at_once(runtime: LocalRuntime) -> None:
    arn = _token_execution(runtime, "r5")
    started = time.monotonic()
    described = runtime.wait(arn, timeout_s=0.2)  # nobody answers: the runtime stops it
    assert time.monotonic() - started < 3
    assert (described["status"], described["error"]) == ("ABORTED", "LocalTimeout")
    assert runtime.history(arn)[-1]["type"] == "ExecutionAborted"


def test_the_hooks_are_inactive_once_the_runtime_stops(mini_root: Path) -> None:
    runtime = LocalRuntime(mini_root).start()
    assert sfn_bridge.HOOKS.current is not None
    runtime.stop()
    assert sfn_bridge.HOOKS.current is None
