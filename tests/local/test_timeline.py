"""Folding an execution history into one record per state visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.timeline import states_from_history

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _history(*steps: tuple[str, str | None]) -> list[dict[str, Any]]:
    events = []
    for index, (event_type, name) in enumerate(steps):
        event: dict[str, Any] = {"type": event_type, "timestamp": T0 + timedelta(milliseconds=10 * index)}
        if event_type.endswith("StateEntered"):
            event["stateEnteredEventDetails"] = {"name": name}
        elif event_type.endswith("StateExited"):
            event["stateExitedEventDetails"] = {"name": name}
        events.append(event)
    return events


def test_a_retried_failure_that_then_succeeds_is_succeeded() -> None:
    history = _history(
        ("TaskStateEntered", "Write"),
        ("LambdaFunctionScheduled", None),
        ("LambdaFunctionFailed", None),
        ("LambdaFunctionScheduled", None),
        ("LambdaFunctionSucceeded", None),
        ("TaskStateExited", "Write"),
    )
    (state,) = states_from_history(history, "SUCCEEDED")
    assert (state.name, state.type, state.status, state.duration_ms) == ("Write", "Task", "SUCCEEDED", 50)


def test_a_caught_failure_stays_failed_and_the_flow_goes_on() -> None:
    history = _history(
        ("TaskStateEntered", "Backup"),
        ("TaskFailed", None),
        ("TaskStateExited", "Backup"),
        ("TaskStateEntered", "Rollback"),
        ("TaskStateExited", "Rollback"),
        ("FailStateEntered", "NotPromoted"),
        ("ExecutionFailed", None),
    )
    states = states_from_history(history, "FAILED")
    assert [(s.name, s.status) for s in states] == [
        ("Backup", "FAILED"),
        ("Rollback", "SUCCEEDED"),
        ("NotPromoted", "FAILED"),
    ]


def test_timeouts_and_stopped_executions() -> None:
    timed_out = states_from_history(_history(("TaskStateEntered", "Await"), ("TaskTimedOut", None)), "FAILED")
    assert timed_out[0].status == "TIMED_OUT"
    aborted = states_from_history(
        _history(
            ("TaskStateEntered", "Await"),
        ),
        "ABORTED",
    )
    assert aborted[0].status == "ABORTED" and aborted[0].exited is None
    stopped = _history(("TaskStateEntered", "Await"), ("TaskTimedOut", None), ("ExecutionAborted", None))
    assert states_from_history(stopped, "ABORTED")[0].status == "ABORTED"
    running = states_from_history(
        _history(
            ("TaskStateEntered", "Await"),
        ),
        "RUNNING",
    )
    assert running[0].status == "RUNNING"
