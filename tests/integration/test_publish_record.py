"""What PublishResult writes and says, field by field: decision.json, report.html with the comparison's plots, the
audit record, the EventBridge event, the SNS notice and its own output, for a promotion and for an execution that
never had a release."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import (
    Approval,
    Champion,
    Claim,
    ClaimStatus,
    Comparison,
    Outcome,
    Pipeline,
    PromotionState,
    Result,
)
from promotion.result.audit import read_audit_record
from promotion.result.publish import comparison_plots, html_key
from tests.conftest import CONFIG_BUCKET, TABLE
from tests.integration.helpers import promote_until_config, publish_on, subscribed_queue, validated_state
from tests.integration.test_decision_rules import RecordingEvents

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n-roc-curve-bytes"
DECIDED = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)


def promoted(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path) -> PromotionState:
    approval = Approval(
        decision="approve",
        decided_by="Alice Martin",
        identity="arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com",
        comment="ship it",
        decided_at=DECIDED,
    )
    state = validated_state(aws, catalog, catalog_dir).model_copy(update={"approval": approval})
    assert state.validation is not None
    champion = Champion(release_id="20261001-000000-champ0", objective_value=0.95, performance={"validation:auc": 0.95})
    validation = state.validation.model_copy(update={"champion": champion, "warnings": ["low accuracy: none"]})
    state = promote_until_config(aws, catalog, state.model_copy(update={"validation": validation}))
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="comparisons/roc.png", Body=PNG)
    comparison = Comparison(
        status="Completed",
        decision="PASS",
        reason="AUC +0.012",
        plots={"roc": f"s3://{CONFIG_BUCKET}/comparisons/roc.png"},
    )
    pipeline = Pipeline(
        training_job_name="train-1",
        training_job_arn="arn:train-1",
        status="Completed",
        metrics={"validation:auc": 0.97},
        model_data_url="s3://models/train-1/output/model.tar.gz",
    )
    return state.model_copy(update={"comparison": comparison, "pipeline": pipeline})


def publish(aws: dict[str, Any], state: PromotionState, events: Any, topic: str | None) -> Result:
    if not aws["events"].list_event_buses(NamePrefix="promotions")["EventBuses"]:
        aws["events"].create_event_bus(Name="promotions")
    return publish_on(
        aws,
        state,
        events=events,
        sns=aws["sns"],
        event_bus_name="promotions",
        topic_arn=topic,
        now=NOW,
        failed_state="DeployChallenger",
        cost={"usd": 1.25},
    )


def test_a_promotion_is_recorded_reported_and_announced_in_full(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = promoted(aws, catalog, catalog_dir)
    assert state.validation is not None and state.validation.candidate is not None and state.backup is not None
    events = RecordingEvents(aws["events"])
    topic, received = subscribed_queue(aws, "results")
    result = publish(aws, state, events, topic)
    claim, candidate = state.claim, state.validation.candidate
    key = f"reports/fraud-detection/{claim.release_id}/decision.json"
    reason = (
        f"release {claim.release_id} of fraud-detection promoted from fraud-xgb-tuning-0042; training job train-1 "
        "completed; comparison PASS: AUC +0.012"
    )
    assert result == Result(
        outcome=Outcome.PROMOTED, reason=reason, model="fraud-detection", release_id=claim.release_id,
        report_key=key, lock_released=True,
    )  # fmt: skip

    stored = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=key)
    body = stored["Body"].read()
    assert stored["ContentType"] == "application/json"
    assert body.startswith(b'{\n  "model": "fraud-detection",\n')  # indented for people reading it in the console
    assert json.loads(body) == {
        "model": "fraud-detection",
        "release_id": claim.release_id,
        "execution_name": claim.execution_name,
        "tuning_job": {"name": claim.tuning_job_name, "arn": claim.tuning_job_arn, "started_by": {}},
        "outcome": "PROMOTED",
        "reason": reason,
        "decided_at": NOW.isoformat(),
        "candidate": candidate.model_dump(mode="json"),
        "champion": {
            "release_id": "20261001-000000-champ0",
            "objective_value": 0.95,
            "performance": {"validation:auc": 0.95},
            "model_package_arn": None,
        },
        "checks": [check.model_dump(mode="json") for check in state.validation.checks],
        "warnings": ["low accuracy: none"],
        "approval": state.approval.model_dump(mode="json") if state.approval else None,
        "data_quality": None,  # these integration steps run no data-quality job
        "backup": state.backup.model_dump(mode="json"),
        "parameters": state.parameters.model_dump(mode="json") if state.parameters else None,
        "config": state.config.model_dump(mode="json") if state.config else None,
        "pipeline": state.pipeline.model_dump(mode="json") if state.pipeline else None,
        "comparison": state.comparison.model_dump(mode="json") if state.comparison else None,
        "rollout": None,
        "error": None,
        "failed_state": "DeployChallenger",
        "rollback": None,
        "rollback_error": None,
        "cost": {"usd": 1.25},
        "operator_interventions": [],
    }

    page = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=html_key(key))
    html = page["Body"].read().decode()
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert base64.b64encode(PNG).decode() in html and reason in html

    record = read_audit_record(aws["dynamodb"], TABLE, "fraud-detection", str(claim.release_id))
    assert record is not None
    assert record.model_dump() == {
        "model": "fraud-detection",
        "release_id": claim.release_id,
        "outcome": "PROMOTED",
        "reason": reason,
        "recorded_at": NOW,
        "execution_arn": claim.execution_arn,
        "tuning_job_name": claim.tuning_job_name,
        "tuning_job_arn": claim.tuning_job_arn,
        "training_job_name": candidate.training_job_name,
        "approved_by": "Alice Martin",
        "approved_by_identity": "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com",
        "approved_at": DECIDED,
        "approval_comment": "ship it",
        "model_package_arn": state.approval.model_package_arn if state.approval else None,
        "hyperparameters": candidate.hyperparameters,
        "metrics": candidate.metrics,
        "previous_release_id": None,
        "report_key": key,
        "production_model_url": "s3://models/train-1/output/model.tar.gz",
        "interventions": [],
        "trigger": {},
    }

    detail = {
        "model": "fraud-detection",
        "release_id": claim.release_id,
        "tuning_job_name": claim.tuning_job_name,
        "execution_name": claim.execution_name,
        "outcome": "PROMOTED",
        "reason": reason,
        "report": f"s3://{CONFIG_BUCKET}/{key}",
    }
    assert events.entries == [
        {
            "Source": "promotion.results",
            "DetailType": "Promotion Succeeded",
            "Detail": json.dumps(detail),
            "EventBusName": "promotions",
            "Resources": [claim.execution_arn],
        }
    ]
    (message,) = received()
    assert message["Subject"] == f"[PROMOTED] fraud-detection {claim.release_id}"
    assert message["Message"] == json.dumps(detail, indent=2)
    assert ClaimStore(aws["dynamodb"], TABLE).lock_holder("fraud-detection") is None


def test_an_execution_without_a_release_is_announced_without_a_report(aws: dict[str, Any]) -> None:
    claim = Claim(
        status=ClaimStatus.REJECTED,
        reason="tuning job has no 'promotion:model' tag naming the model",
        execution_name="exec-9",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:exec-9",
        tuning_job_name="untagged",
    )
    events = RecordingEvents(aws["events"])
    topic, received = subscribed_queue(aws, "results")
    result = publish(aws, PromotionState(claim=claim), events, topic)
    assert result == Result(outcome=Outcome.REJECTED, reason=claim.reason)
    assert aws["s3"].list_objects_v2(Bucket=CONFIG_BUCKET).get("KeyCount") == 0
    (entry,) = events.entries
    assert (entry["DetailType"], json.loads(entry["Detail"])["report"]) == ("Promotion Rejected", None)
    (message,) = received()
    assert message["Subject"] == "[REJECTED] unknown model"


def test_a_model_without_a_release_id_writes_no_report_but_releases_its_lock(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    no_release = state.model_copy(update={"claim": state.claim.model_copy(update={"release_id": None})})
    result = publish(aws, no_release, aws["events"], None)
    assert (result.report_key, result.release_id) == (None, None)
    assert aws["s3"].list_objects_v2(Bucket=CONFIG_BUCKET).get("KeyCount") == 0


def test_the_html_report_sits_beside_decision_json() -> None:
    assert html_key("reports/m/r1/decision.json") == "reports/m/r1/report.html"
    assert html_key("decision.json") == "decision.json/report.html"


def test_the_comparisons_plots_are_read_from_wherever_the_job_wrote_them(aws: dict[str, Any]) -> None:
    aws["s3"].create_bucket(Bucket="comparison-output")
    aws["s3"].put_object(Bucket="comparison-output", Key="runs/r1/plots/roc.png", Body=PNG)
    aws["s3"].put_object(Bucket="comparison-output", Key="runs/r1/plots/pr.png", Body=b"pr")
    comparison = Comparison(
        status="Completed",
        plots={
            "roc": "s3://comparison-output/runs/r1/plots/roc.png",
            "pr": "s3://comparison-output/runs/r1/plots/pr.png",
        },
    )
    state = PromotionState(
        claim=Claim(status=ClaimStatus.CLAIMED, execution_name="e", execution_arn="arn:e"), comparison=comparison
    )
    assert comparison_plots(aws["s3"], state) == {"roc": PNG, "pr": b"pr"}
    assert comparison_plots(aws["s3"], state.model_copy(update={"comparison": None})) == {}


def test_a_registry_that_cannot_be_told_is_reported_and_the_lock_still_released(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Any
) -> None:
    from tests.integration.test_decision_rules import ask
    from tests.integration.test_operator_rollback_rules import RegistryDown

    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)["model_package_arn"]
    failed = state.model_copy(update={"error": {"Error": "States.Timeout", "Cause": "approval window"}})
    result = publish_on(aws, failed, sagemaker=RegistryDown(aws["sagemaker"]), now=NOW)
    assert (result.outcome, result.model_package_arn, result.registry_error, result.lock_released) == (
        Outcome.FAILED,
        None,
        "ThrottlingException: Rate exceeded",
        True,
    )
    told = publish_on(aws, failed, sagemaker=aws["sagemaker"], now=NOW)
    assert (told.model_package_arn, told.registry_error) == (package, None)


def test_the_report_of_an_execution_that_never_validated_has_empty_checks_and_warnings() -> None:
    from promotion.result.publish import decision_report

    claim = Claim(status=ClaimStatus.CLAIMED, execution_name="e", execution_arn="arn:e", model="m", release_id="r")
    report = decision_report(PromotionState(claim=claim), Outcome.FAILED, "why", NOW)
    assert {key: report[key] for key in ("candidate", "champion", "checks", "warnings", "cost")} == {
        "candidate": None,
        "champion": None,
        "checks": [],
        "warnings": [],
        "cost": None,
    }
    assert list(report)[-6:] == [
        "error",
        "failed_state",
        "rollback",
        "rollback_error",
        "cost",
        "operator_interventions",
    ]
    assert report["operator_interventions"] == []


def test_a_rejected_candidate_is_recorded_without_an_approver_and_announced_with_a_subject_sns_accepts(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    long_release = "r" * 120
    rejected = state.model_copy(
        update={
            "approval": Approval(decision="reject", decided_by="Bob Chen", comment="too risky"),
            "claim": state.claim.model_copy(update={"release_id": long_release}),
        }
    )
    topic, received = subscribed_queue(aws, "results")
    publish_on(aws, rejected, sns=aws["sns"], topic_arn=topic)
    record = read_audit_record(aws["dynamodb"], TABLE, "fraud-detection", long_release)
    assert record is not None
    assert (record.outcome, record.approved_by, record.approval_comment, record.model_package_arn) == (
        "REJECTED",
        None,
        "",
        None,
    )
    assert record.recorded_at.tzinfo is not None  # without a clock: now, in UTC
    (message,) = received()
    assert message["Subject"] == f"[REJECTED] fraud-detection {long_release}"[:100]
    detail = json.loads(message["Message"])
    assert message["Message"] == json.dumps(detail, indent=2)


def test_an_execution_that_failed_before_validation_is_reported_without_a_candidate(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    failed = state.model_copy(
        update={"validation": None, "approval": None, "error": {"Error": "TransientAwsError", "Cause": "x"}}
    )
    result = publish(aws, failed, aws["events"], None)
    record = read_audit_record(aws["dynamodb"], TABLE, "fraud-detection", str(state.claim.release_id))
    assert record is not None and result.report_key is not None
    assert (record.training_job_name, record.hyperparameters, record.metrics) == (None, {}, {})
    report = json.loads(aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=result.report_key)["Body"].read())
    assert (report["candidate"], report["checks"], report["error"]) == (None, [], failed.error)


def test_a_candidate_nobody_decided_on_is_rejected_in_the_registry_with_the_executions_reason(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Any
) -> None:
    from tests.integration.test_decision_rules import ask

    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)["model_package_arn"]
    expired = state.model_copy(update={"approval": Approval(decision="expired")})
    result = publish_on(aws, expired, sagemaker=aws["sagemaker"], now=NOW)
    described = aws["sagemaker"].describe_model_package(ModelPackageName=package)
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Rejected",
        f"no approver decided: {result.reason}",
    )
