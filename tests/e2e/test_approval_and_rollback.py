"""Approval decisions and operator rollbacks end to end: approvers change the candidate's status in the Model
Registry as their IAM identity; SageMaker's state change event, routed by the rule CDK defined, reaches the decision
Lambda, which reads the package back and answers with SendTaskSuccess / SendTaskFailure or refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.errors import UsageError
from local.faults import FaultInjector
from local.runtime import Decision, LocalRuntime
from local.sfn_bridge import TimeCompression
from promotion.intake.approval import approval_key
from promotion.production.config import parse_config
from promotion.result.audit import list_audit_records
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
    runtime.wait_for_approval_request(arn)


ALICE_IDENTITY = "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com"
BOB_IDENTITY = "arn:aws:sts::123456789012:assumed-role/DataScientists/bob@example.com"


def package_of(runtime: LocalRuntime) -> dict[str, Any]:
    arn = runtime.pending_package("fraud-detection", JOB)
    described: dict[str, Any] = runtime.clients.sagemaker.describe_model_package(ModelPackageName=arn)
    return described


def test_an_approvers_approval_promotes_and_records_their_iam_identity(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True, decision=Decision.approve("Bob Chen", "looks right"))
    assert result.outcome == "PROMOTED"
    assert result.production_after is not None and result.production_after.config is not None
    config = parse_config(result.production_after.config)
    assert (config.approved_by, config.approval_comment) == ("Bob Chen", "looks right")
    assert config.approved_by_identity == BOB_IDENTITY
    assert config.approved_at is not None
    package = package_of(runtime)
    assert config.model_package_arn == package["ModelPackageArn"]
    # The Model Registry follows the promotion: approved, and the model's current release.
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["promotion:outcome"] == "PROMOTED"
    assert package["CustomerMetadataProperties"]["promotion:production"] == "current"
    assert result.report is not None
    report = json.loads(Path(result.report["json"]).read_text())
    assert (report["approval"]["decided_by"], report["approval"]["identity"]) == ("Bob Chen", BOB_IDENTITY)
    from promotion.result.audit import read_audit_record

    record = read_audit_record(runtime.clients.dynamodb, runtime.table_name, "fraud-detection", config.release_id)
    assert record is not None
    assert (record.approved_by, record.approved_by_identity) == ("Bob Chen", BOB_IDENTITY)


def test_rejection_ends_rejected_with_the_comment_and_production_untouched(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True, decision=Decision.reject("Alice Martin", "recall dropped"))
    assert result.status == "FAILED"
    assert result.error == "REJECTED"
    assert result.cause is not None
    assert "recall dropped" in result.cause
    assert "Alice Martin" in result.cause
    assert result.production_after == result.production_before
    package = package_of(runtime)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["CustomerMetadataProperties"]["promotion:outcome"] == "REJECTED"


def test_an_expired_approval_is_rejected_as_expired(synthesized: Path, tmp_path: Path) -> None:
    compression = TimeCompression(callback_timeout_max_s=1)
    with runtime_with(synthesized, tmp_path, world(), time_compression=compression) as runtime:
        result = runtime.run(event(), seed=True, decision=Decision.no_answer())
        package = package_of(runtime)
        runtime.drain()
        results = decision_results(runtime)
    assert result.error == "REJECTED"
    assert result.cause is not None
    assert "approval expired" in result.cause
    assert result.production_after == result.production_before
    # Nobody decided: the flow marks the candidate Rejected, saying why; that change is no decision.
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith("no approver decided: approval expired")
    assert [r["ignored"] for r in results] == [True]


def test_a_non_approver_with_the_grant_is_refused_and_the_package_waits_again(runtime: LocalRuntime) -> None:
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    # Same role and policy as the approvers, a session the catalog does not list.
    mallory = Decision(decision="approve", role="DataScientists", session="mallory@example.com")
    runtime.send_decision("fraud-detection", JOB, mallory)
    assert runtime.production_snapshot("fraud-detection") == before
    assert runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert package_of(runtime)["ModelApprovalStatus"] == "PendingManualApproval"
    runtime.send_decision("fraud-detection", JOB, Decision.approve("Alice Martin"))
    described = runtime.wait(arn)
    assert described["status"] == "SUCCEEDED"
    results = decision_results(runtime)
    assert [(r["accepted"], r["ignored"]) for r in results[:2]] == [(False, False), (True, False)]
    assert (
        "assumed-role/DataScientists/mallory@example.com is not an approver of fraud-detection" in results[0]["reason"]
    )
    assert "back to PendingManualApproval" in results[0]["reason"]
    config = parse_config(runtime.production_snapshot("fraud-detection").config or "")
    assert (config.approved_by, config.approved_by_identity) == ("Alice Martin", ALICE_IDENTITY)


def test_a_principal_without_the_grant_gets_access_denied(runtime: LocalRuntime) -> None:
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    intruder = Decision(decision="approve", role="Interns", session="eve", grant=False)
    with pytest.raises(ClientError) as refused:
        runtime.send_decision("fraud-detection", JOB, intruder)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "assumed-role/Interns/eve is not authorized to perform: sagemaker:UpdateModelPackage" in str(refused.value)
    assert package_of(runtime)["ModelApprovalStatus"] == "PendingManualApproval"
    assert runtime.production_snapshot("fraud-detection") == before
    assert decision_results(runtime) == []


def test_a_forged_bus_decision_changes_nothing(runtime: LocalRuntime) -> None:
    """The old way to approve (a decision event naming its own approver) reaches nothing, on any bus."""
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    forged = load_event("approval-approved.json")
    for bus in (runtime.product_bus, "default"):
        assert runtime.send_event(forged, bus=bus) == []
    runtime.drain()
    assert decision_results(runtime) == []
    assert runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert runtime.production_snapshot("fraud-detection") == before
    assert package_of(runtime)["ModelApprovalStatus"] == "PendingManualApproval"


def test_promote_approve_decides_as_the_callers_own_aws_identity(runtime: LocalRuntime) -> None:
    """`promote approve` is an UpdateModelPackage with the caller's credentials: who approved is who ran it."""
    from local.least_privilege import promote

    runtime.seed_champion("fraud-detection")
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    said = promote(
        runtime, "approver", "alice@example.com", "approve", "fraud-detection", "--comment", "ok", role="DataScientists"
    )
    assert "set to Approved as arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com" in said
    runtime.drain()
    assert runtime.wait(arn)["status"] == "SUCCEEDED"
    config = parse_config(runtime.production_snapshot("fraud-detection").config or "")
    assert (config.approved_by, config.approved_by_identity, config.approval_comment) == (
        "Alice Martin",
        ALICE_IDENTITY,
        "ok",
    )


def test_promote_rollback_asks_as_the_callers_own_aws_identity(runtime: LocalRuntime) -> None:
    """`promote rollback` rejects the named live release's package with the caller's credentials: the operator
    rollback state machine restores the previous release and records who ran it."""
    from local.least_privilege import promote

    promoted = runtime.run(event(), seed=True)
    assert promoted.outcome == "PROMOTED" and promoted.production_after is not None
    release = parse_config(promoted.production_after.config or "").release_id
    stepfunctions = runtime.clients.stepfunctions
    (machine,) = [
        m["stateMachineArn"]
        for m in stepfunctions.list_state_machines()["stateMachines"]
        if m["name"].endswith("-operator-rollback")
    ]

    def executions() -> set[str]:
        return {e["executionArn"] for e in stepfunctions.list_executions(stateMachineArn=machine)["executions"]}

    before = executions()
    said = promote(
        runtime,
        "operator",
        "omar@example.com",
        "rollback",
        "fraud-detection",
        "--release",
        release,
        "--reason",
        "FPR doubled",
        role="PlatformOnCall",
    )
    assert f"set to Rejected as {OMAR_IDENTITY}" in said
    runtime.drain()
    ended = [runtime.wait(arn) for arn in sorted(executions() - before)]
    outcomes = [json.loads(e["output"])["rollback"] for e in ended if e["status"] == "SUCCEEDED"]
    (accepted,) = [one for one in outcomes if one["accepted"]]
    assert (accepted["requested_by"], accepted["rolled_back_release"]) == ("Omar Haddad", release)
    assert runtime.production_snapshot("fraud-detection") == promoted.production_before


def test_decisions_after_the_first_are_ignored(runtime: LocalRuntime) -> None:
    runtime.seed_champion("fraud-detection")
    (arn,) = runtime.send_event(event())
    wait_for_approval(runtime, arn)
    runtime.send_decision("fraud-detection", JOB, Decision.approve("Alice Martin"))
    assert runtime.wait(arn)["status"] == "SUCCEEDED"
    runtime.send_decision("fraud-detection", JOB, Decision.reject("Bob Chen"))  # a second decision
    results = decision_results(runtime)
    assert results[0]["accepted"] is True
    late = [r for r in results[1:] if "already decided" in r["reason"]]
    assert late and "already decided (APPROVED by Alice Martin)" in late[0]["reason"]
    assert all(not r["accepted"] for r in results[1:])


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


OMAR_IDENTITY = "arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com"  # the catalog's operator


def operator_rollback_after_two_promotions(runtime: LocalRuntime) -> None:
    """Operators roll back by rejecting the live release's package in the Model Registry, as themselves: only a
    catalog operator's rejection of the live release restores the previous one, once."""
    with pytest.raises(UsageError, match="no live release"):
        runtime.request_rollback("fraud-detection", "nothing is live yet")
    first = runtime.run(event(), seed=False)
    assert first.outcome == "PROMOTED"
    after_first = runtime.production_snapshot("fraud-detection")
    first_package = parse_config(after_first.config or "").model_package_arn
    assert first_package is not None
    (no_previous,) = runtime.request_rollback("fraud-detection", "too early")
    assert no_previous["status"] == "FAILED" and "first release" in no_previous["cause"]
    assert package_status(runtime, first_package) == "Approved"  # production still serves it, so it says so
    second_event = event(
        HyperParameterTuningJobName="fraud-xgb-tuning-0043",
        HyperParameterTuningJobArn=event()["detail"]["HyperParameterTuningJobArn"].replace("0042", "0043"),
    )
    second_event["time"] = "2026-11-21T10:00:00Z"
    second = runtime.run(second_event)
    assert second.outcome == "PROMOTED", second.cause
    after_second = runtime.production_snapshot("fraud-detection")
    assert after_second.config != after_first.config
    second_package = runtime.pending_package("fraud-detection", "fraud-xgb-tuning-0043")
    # Someone with the operators' policy who is not a catalog operator: refused, the release stays live, Approved.
    (refused,) = runtime.request_rollback(
        "fraud-detection", "not mine to ask", role="PlatformOnCall", session="mallory@example.com"
    )
    assert refused["status"] == "FAILED"
    assert (
        "assumed-role/PlatformOnCall/mallory@example.com is not one of fraud-detection's operators"
        in (refused["cause"])
    )
    assert runtime.production_snapshot("fraud-detection") == after_second
    assert package_status(runtime, second_package) == "Approved"
    # Someone without the grant cannot even ask: SageMaker refuses the change.
    with pytest.raises(ClientError) as denied:
        runtime.request_rollback("fraud-detection", "no grant", role="Contractors", session="eve", grant=False)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # The catalog's operator: the previous release is back, and everything says who asked, as AWS proved it.
    (done,) = runtime.request_rollback("fraud-detection", "FPR doubled")
    assert done["status"] == "SUCCEEDED", done
    outcome = json.loads(done["output"])["rollback"]
    assert (outcome["requested_by"], outcome["requested_by_identity"]) == ("Omar Haddad", OMAR_IDENTITY)
    assert runtime.production_snapshot("fraud-detection") == after_first
    sagemaker = runtime.clients.sagemaker
    first_meta = sagemaker.describe_model_package(ModelPackageName=first_package)["CustomerMetadataProperties"]
    second_meta = sagemaker.describe_model_package(ModelPackageName=second_package)["CustomerMetadataProperties"]
    assert first_meta["promotion:production"] == "current"
    assert second_meta["promotion:production"] == "rolled-back"
    assert second_meta["promotion:outcome"] == "operator rollback by Omar Haddad: FPR doubled"
    assert package_status(runtime, second_package) == "Rejected"
    (audit,) = [
        one
        for one in list_audit_records(runtime.clients.dynamodb, runtime.table_name, "fraud-detection")
        if one.outcome == "OPERATOR_ROLLBACK"
    ]
    assert (audit.approved_by, audit.approved_by_identity) == ("Omar Haddad", OMAR_IDENTITY)
    assert (audit.model_package_arn, audit.execution_arn) == (second_package, done["executionArn"])
    # EventBridge delivers the same request again (a new execution for the same event): carried out once.
    assert runtime.lambdas is not None
    (function,) = {call.function for call in runtime.lambdas.invocations if "rollbackrequest" in call.function.lower()}
    redelivered = {"event": json.loads(done["input"]), "execution": done["executionArn"] + "-again"}
    again, error = runtime.lambdas.invoke(function, redelivered)
    assert error is None and again["accepted"] is False and not again["ignored"]
    assert "already handled" in again["reason"]
    # The operator rejects the (no longer live) package again: not a rollback request any more.
    (stale,) = runtime.request_rollback("fraud-detection", "again", release=audit.release_id.split("-rollback-")[0])
    assert stale["status"] == "SUCCEEDED" and json.loads(stale["output"])["rollback"]["ignored"] is True
    assert runtime.production_snapshot("fraud-detection") == after_first


def package_status(runtime: LocalRuntime, arn: str) -> str:
    return str(runtime.clients.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])


def test_reports_answer_what_who_which_gate_and_what_was_restored(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), fail_at=["TriggerPipeline"]) as runtime:
        rolled_back = runtime.run(event(), seed=True, decision=Decision.approve("Bob Chen", "go"))
    assert rolled_back.report is not None
    report = json.loads(Path(rolled_back.report["json"]).read_text())
    assert report["outcome"] == "ROLLED_BACK"
    assert report["candidate"]["hyperparameters"]["max_depth"] == 6  # what was promoted
    assert report["approval"]["decided_by"] == "Bob Chen"  # who approved
    assert "InjectedFault" in report["error"]["Error"]  # what failed
    assert report["rollback"]["restored"] is True  # what was restored
    assert report["rollback"]["config_action"] == "restored"
    assert set(report["rollback"]["parameters_restored"]) >= {"/fraud-detection/hyperparameters/max_depth"}
    html = Path(rolled_back.report["html"]).read_text()
    assert "ROLLED_BACK" in html
    assert "Bob Chen" in html

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
        {"decision": "approve", "decided_by": "Alice Martin", "comment": "no one asked alice"},
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


def test_a_secure_string_under_the_prefix_ends_the_promotion_by_name_and_keeps_the_secret(
    runtime: LocalRuntime,
) -> None:
    """BackupProduction refuses a SecureString it could only back up encrypted (the state machine's Catch runs
    Rollback, which has nothing to restore): the execution says which parameter, and production keeps it."""
    runtime.seed_champion("fraud-detection")
    secret = "/fraud-detection/hyperparameters/api_token"
    runtime.clients.ssm.put_parameter(Name=secret, Value="s3cr3t-value", Type="SecureString")
    before = runtime.production_snapshot("fraud-detection")
    result = runtime.run(event(), decision=Decision.approve("Bob Chen", "looks right"))
    assert result.outcome == "ROLLED_BACK", result.output
    assert result.output["error"]["Error"] == "UnrestorableParameter"
    reason = result.output["result"]["reason"]
    refusal = f"UnrestorableParameter: {secret} under /fraud-detection/hyperparameters is a SecureString"
    assert reason.startswith(refusal)
    assert "nothing to restore: production writes require that backup, so none happened" in reason
    assert "BackupProduction" in [state.name for state in result.states]
    assert "WriteParameters" not in [state.name for state in result.states]
    assert runtime.production_snapshot("fraud-detection") == before
    kept = runtime.clients.ssm.get_parameter(Name=secret, WithDecryption=True)["Parameter"]
    assert (kept["Value"], kept["Type"]) == ("s3cr3t-value", "SecureString")
