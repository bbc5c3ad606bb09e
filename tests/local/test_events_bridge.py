"""Rule routing: the pattern CDK synthesized decides; state machine and Lambda targets are delivered locally."""

from __future__ import annotations

import json

from local.events_bridge import as_delivered, target_input
from local.runtime import LocalRuntime
from tests.local.conftest import decision_event, start_event


def test_a_matching_event_starts_one_execution_with_the_targets_input(runtime: LocalRuntime) -> None:
    executions = runtime.send_event(start_event(path="nowhere", extra=1))
    assert len(executions) == 1
    described = runtime.wait(executions[0])
    assert json.loads(described["input"]) == {"path": "nowhere", "extra": 1}  # the rule's InputPath $.detail


def test_a_non_matching_event_starts_nothing(runtime: LocalRuntime) -> None:
    assert runtime.send_event(start_event(no_path="x")) == []  # detail.path must exist
    assert runtime.send_event({**start_event(path="echo"), "source": "other.source"}) == []
    assert runtime.send_event(start_event(path="echo"), bus=runtime.product_bus) == []  # the rule is on default
    sfn = runtime.clients.stepfunctions
    assert sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"] == []


def test_a_disabled_rule_delivers_nothing(runtime: LocalRuntime) -> None:
    runtime.clients.events.disable_rule(Name="startrule")
    assert runtime.send_event(start_event(path="echo")) == []


def test_a_lambda_target_is_invoked_asynchronously_and_its_errors_do_not_reach_the_sender(
    runtime: LocalRuntime,
) -> None:
    assert runtime.lambdas is not None
    runtime.send_event(decision_event("unknown-request", "approve", "alice"), bus=runtime.product_bus)
    runtime.lambdas.drain()
    invocation = runtime.lambdas.invocations[-1]
    assert invocation.function == "decidefunction"
    assert invocation.event["detail"] == {"request": "unknown-request", "decision": "approve", "by": "alice"}
    assert invocation.event["source"] == "mini.decisions" and "ingestion-time" not in invocation.event
    assert invocation.error is not None and invocation.error["errorType"] == "KeyError"


def test_targets_get_constant_input_or_the_transformers_output() -> None:
    event = {"id": "1", "source": "s", "detail-type": "d", "time": 1763647541, "detail": {"a": 1}, "ingestion-time": 0}
    assert target_input({"Input": '{"fixed": true}'}, event) == {"fixed": True}
    assert target_input({"InputPath": "$.detail.a"}, event) == 1
    transformer = {
        "InputPathsMap": {"a": "$.detail.a", "src": "$.source"},
        "InputTemplate": '{"value": <a>, "from": "<src>"}',
    }
    assert target_input({"InputTransformer": transformer}, event) == {"value": 1, "from": "s"}
    assert target_input({}, event) == as_delivered(event)


def test_delivered_events_carry_iso_time_and_no_moto_bookkeeping() -> None:
    delivered = as_delivered({"time": 1763647541, "ingestion-time": 5, "detail": {}})
    assert delivered == {"time": "2025-11-20T14:05:41Z", "detail": {}}
