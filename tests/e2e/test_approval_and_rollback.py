"""Approval decisions and operator rollbacks end to end: real decision events on the product bus, routed by the
rules CDK defined, checked by the approval Lambda, answered with SendTaskSuccess / SendTaskFailure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.faults import FaultInjector
from local.runtime import Decision, LocalRuntime
from local.sfn_bridge import TimeCompression
from promotion.approval import approval_key
from promotion.config import parse_config
from tests.conftest import load_event
from tests.e2e.conftest import event, runtime_with, world

JOB = "fraud-xgb-tuning-0042"


def decision_results(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.lambdas is not None
    return [
        call.result
        for call in runtime.lambdas.invocations
        if "approvaldecision" in call.function.replace("_", "").lower()
    ]


def wait_for_approval(runtime: LocalRuntime, arn: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while not runtime._approval_pending(arn):
        assert time.monotonic() < deadline, "the execution never reached AwaitApproval"
        time.sleep(0.01)


def test_approval_carries_who_and_why_into_the_config(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True, decision=Decision.approve("bob@example.com", "looks right"))
    assert result.outcome == "PROMOTED"
    assert result.production_after is not None
    assert result.production_after.config is not None
    config = parse_config(result.production_after.config)
    assert (config.approved_by, config.approval_comment) == ("bob@example.com", "looks right")
    assert config.approved_at is not None


def test_rejection_ends_rejected_with_the_comment_and_production_untouched(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True, decision=Decision.reject("alice@example.com", "recall dropped"))
    assert result.status == "FAILED"
    assert result.error == "REJECTED"
    assert result.cause is not None
    assert "recall dropped" in result.cause
    assert "alice@example.com" in result.cause
    assert result.production_after == result.production_before


def test_an_expired_approval_is_rejected_as_expired(synthesized: Path, tmp_path: Path) -> None:
    compression = TimeCompression(callback_timeout_max_s=1)
    with runtime_with(synthesized, tmp_path, world(), time_compression=compression) as runtime:
        result = runtime.run(event(), seed=True, decision=Decision.no_answer())
    assert result.error == "REJECTED"
    assert result.cause is not None
    assert "approval expired" in result.cause
    assert result.production_after == result.production_before


def test_decisions_that_do_not_count_are_refused_and_change_nothing(runtime: LocalRuntime) -> None:
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    # A decision for a promotion nobody is waiting for.
    runtime.send_decision("fraud-detection", "no-such-tuning-job", Decision.approve("alice@example.com"))
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    runtime.send_decision("fraud-detection", JOB, Decision.approve("mallory@example.com"))  # not an approver
    runtime._drain()
    assert runtime.production_snapshot("fraud-detection") == before
    runtime.send_decision("fraud-detection", JOB, Decision.approve("alice@example.com"))
    described = runtime.wait(arn)
    assert described["status"] == "SUCCEEDED"
    runtime.send_decision("fraud-detection", JOB, Decision.reject("bob@example.com"))  # a second decision
    runtime._drain()
    results = decision_results(runtime)
    assert [r["accepted"] for r in results] == [False, False, True, False]
    assert "no promotion of fraud-detection from tuning job no-such-tuning-job" in results[0]["reason"]
    assert "mallory@example.com is not an approver" in results[1]["reason"]
    assert "already decided (APPROVED by alice@example.com)" in results[3]["reason"]


def two_tuning_jobs() -> dict[str, Any]:
    """The shared world plus a second, better tuning job (fraud-xgb-tuning-0043) of the same model."""
    import copy

    the_world = world()
    tuning = copy.deepcopy(the_world["DescribeHyperParameterTuningJob"][JOB])
    tuning["HyperParameterTuningJobName"] = "fraud-xgb-tuning-0043"
    tuning["HyperParameterTuningJobArn"] = tuning["HyperParameterTuningJobArn"].replace("0042", "0043")
    best = "fraud-xgb-tuning-0043-003-0a1b2c3d"
    tuning["BestTrainingJob"].update(
        TrainingJobName=best,
        TuningJobName="fraud-xgb-tuning-0043",
        TrainingJobArn=tuning["BestTrainingJob"]["TrainingJobArn"].replace("fraud-xgb-tuning-0042-017-5a1c9e2f", best),
    )
    training = copy.deepcopy(the_world["DescribeTrainingJob"]["fraud-xgb-tuning-0042-017-5a1c9e2f"])
    training.update(
        TrainingJobName=best,
        TrainingJobArn=training["TrainingJobArn"].replace("fraud-xgb-tuning-0042-017-5a1c9e2f", best),
    )
    # The first tuning job's best model is modest (it beats the weak seeded champion); the second one's is the
    # well-tuned model, so the real comparison job finds it better than the first.
    first = the_world["DescribeTrainingJob"]["fraud-xgb-tuning-0042-017-5a1c9e2f"]["HyperParameters"]
    modest = {"max_depth": "3", "num_round": "50", "eta": "0.01", "subsample": "0.5", "min_child_weight": "10"}
    first.update(modest)
    the_world["DescribeHyperParameterTuningJob"][JOB]["BestTrainingJob"]["TunedHyperParameters"].update(modest)
    tuned = {"max_depth": "3", "num_round": "120", "eta": "0.1", "subsample": "0.85", "min_child_weight": "3"}
    training["HyperParameters"].update(tuned)
    tuning["BestTrainingJob"]["TunedHyperParameters"].update(tuned)  # the tuning job reports what its job ran with
    training["FinalMetricDataList"] = [
        {"MetricName": "validation:auc", "Value": 0.9801},
        {"MetricName": "validation:accuracy", "Value": 0.9502},
    ]
    the_world["DescribeHyperParameterTuningJob"]["fraud-xgb-tuning-0043"] = tuning
    the_world["DescribeTrainingJob"][best] = training
    return the_world


def test_operator_rollback_restores_the_first_promotion_after_two(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, two_tuning_jobs()) as runtime:
        operator_rollback_after_two_promotions(runtime)


def operator_rollback_after_two_promotions(runtime: LocalRuntime) -> None:
    refused_first = rollback_outcomes(runtime, request_rollback(runtime))
    assert refused_first[-1]["accepted"] is False
    first = runtime.run(event(), seed=False)
    assert first.outcome == "PROMOTED"
    after_first = runtime.production_snapshot("fraud-detection")
    no_previous = rollback_outcomes(runtime, request_rollback(runtime))[-1]
    assert no_previous["accepted"] is False
    assert "first release" in no_previous["reason"]
    second_event = event(
        HyperParameterTuningJobName="fraud-xgb-tuning-0043",
        HyperParameterTuningJobArn=event()["detail"]["HyperParameterTuningJobArn"].replace("0042", "0043"),
    )
    second_event["time"] = "2026-11-21T10:00:00Z"
    second = runtime.run(second_event)
    assert second.outcome == "PROMOTED", second.cause
    assert runtime.production_snapshot("fraud-detection").config != after_first.config
    done = rollback_outcomes(runtime, request_rollback(runtime))[-1]
    assert done["accepted"] is True, done["reason"]
    assert runtime.production_snapshot("fraud-detection") == after_first
    # EventBridge (or Lambda's async retry) delivers the same request again: it is carried out once.
    assert runtime.lambdas is not None
    delivered = next(
        call for call in reversed(runtime.lambdas.invocations) if "rollbackrequest" in call.function.lower()
    )
    again, error = runtime.lambdas.invoke(delivered.function, delivered.event)
    assert error is None and again["accepted"] is False
    assert "already handled" in again["reason"]
    assert runtime.production_snapshot("fraud-detection") == after_first


def request_rollback(runtime: LocalRuntime) -> LocalRuntime:
    """The shared rollback request, put on the bus by an operator; returns once its operator rollback execution (the
    rule starts one per request) has ended."""
    request = load_event("rollback-requested.json")
    operator = ("operator", request["detail"]["requested_by"])
    started = runtime.send_event(request, bus=runtime.product_bus, as_person=operator)
    assert len(started) == 1, started
    runtime.wait(started[0])
    return runtime


def rollback_outcomes(runtime: LocalRuntime, _: Any = None) -> list[dict[str, Any]]:
    assert runtime.lambdas is not None
    return [
        call.result
        for call in runtime.lambdas.invocations
        if "rollbackrequest" in call.function.replace("_", "").lower()
    ]


def test_reports_answer_what_who_which_gate_and_what_was_restored(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), fail_at=["TriggerPipeline"]) as runtime:
        rolled_back = runtime.run(event(), seed=True, decision=Decision.approve("bob@example.com", "go"))
    assert rolled_back.report is not None
    report = json.loads(Path(rolled_back.report["json"]).read_text())
    assert report["outcome"] == "ROLLED_BACK"
    assert report["candidate"]["hyperparameters"]["max_depth"] == 6  # what was promoted
    assert report["approval"]["decided_by"] == "bob@example.com"  # who approved
    assert "InjectedFault" in report["error"]["Error"]  # what failed
    assert report["rollback"]["restored"] is True  # what was restored
    assert report["rollback"]["config_action"] == "restored"
    assert set(report["rollback"]["parameters_restored"]) >= {"/fraud-detection/hyperparameters/max_depth"}
    html = Path(rolled_back.report["html"]).read_text()
    assert "ROLLED_BACK" in html
    assert "bob@example.com" in html

    the_world = world()
    training = the_world["DescribeTrainingJob"]["fraud-xgb-tuning-0042-017-5a1c9e2f"]
    training["FinalMetricDataList"] = [
        {"MetricName": "validation:auc", "Value": 0.9712},
        {"MetricName": "validation:accuracy", "Value": 0.85},
    ]
    with runtime_with(synthesized, tmp_path, the_world) as runtime:
        rejected = runtime.run(event(), seed=True)
    assert rejected.report is not None
    gate = {c["name"]: c for c in json.loads(Path(rejected.report["json"]).read_text())["checks"]}
    assert gate["accuracy_threshold"] == {
        "name": "accuracy_threshold",
        "passed": False,
        "value": 0.85,
        "threshold": 0.9,
        "detail": "",
    }


@pytest.mark.parametrize(
    "output",
    [
        {"decision": "reject", "decided_by": "mallory"},  # a rejection sent as a success: it used to promote
        {"decision": "approve", "decided_by": "alice@example.com", "comment": "no one asked alice"},
        {"hello": "world"},
    ],
    ids=["rejection-as-success", "approval-not-recorded", "not-a-decision"],
)
def test_a_task_output_that_is_not_the_recorded_approval_writes_nothing(
    synthesized: Path, tmp_path: Path, output: dict[str, Any]
) -> None:
    """Anyone who may call SendTaskSuccess with the token (it is in the table and the execution history) completes
    AwaitApproval; only the approval the approval path recorded for this execution lets anything be written."""
    injector = FaultInjector()  # records every production write the handlers attempt
    with runtime_with(synthesized, tmp_path, world(), faults=injector) as runtime:
        runtime.seed_champion("fraud-detection")
        before = runtime.production_snapshot("fraud-detection")
        (arn,) = runtime.send_event(event())
        wait_for_approval(runtime, arn)
        key = approval_key("fraud-detection", JOB)
        token = runtime.clients.dynamodb.get_item(TableName=runtime.table_name, Key=key)["Item"]["task_token"]["S"]
        runtime.clients.stepfunctions.send_task_success(taskToken=token, output=json.dumps(output))
        result = runtime.result(arn, runtime.wait(arn), model="fraud-detection", before=before, started=0.0)
    assert result.outcome in ("REJECTED", "ROLLED_BACK"), result.cause
    assert result.production_after == before
    assert injector.production_writes(succeeded_only=False) == []
    states = [state.name for state in result.states]
    if output.get("decision") == "approve":
        assert "ApprovalNotRecorded" in str(result.cause)
        assert "its recorded status is PENDING, not APPROVED" in str(result.cause)
    else:
        assert "ApprovalNotGranted" in states and "BackupProduction" not in states
