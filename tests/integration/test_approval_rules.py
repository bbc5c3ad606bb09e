"""The approval's last line of defence and its aftermath, over moto and the Model Registry as SageMaker runs it:
BackupProduction's check that the approval an execution received is the one the approval path recorded, what the
Model Registry says once a promotion ends, and which promotions people see waiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Approval, Champion, PromotionState
from promotion.core.errors import ApprovalNotRecorded
from promotion.intake.approval import (
    approval_key,
    conclude_candidate,
    pending_approvals,
    verify_recorded_approval,
)
from promotion.intake.registry import METADATA_OUTCOME, METADATA_PRODUCTION
from tests.conftest import TABLE
from tests.fakes import Unattributed
from tests.integration.helpers import validated_state
from tests.integration.test_claims_and_approval import ALICE, MALLORY, decide_as
from tests.integration.test_decision_rules import ask as request


def ask(aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState) -> str:
    return str(request(aws, catalog, state)["model_package_arn"])


IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest"
REQUESTED = datetime(2026, 11, 20, 14, 10, tzinfo=UTC)
ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com"


@pytest.fixture
def approved(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> dict[str, Any]:
    """A promotion Alice approved through the approval path, and the approval its execution received."""
    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)
    assert decide_as(aws, catalog, registry_as, package, ALICE).accepted
    approval = Approval(
        decision="approve", decided_by="Alice Martin", identity=ALICE_ARN, model_package_arn=package, comment="ok"
    )
    return {"state": state.model_copy(update={"approval": approval}), "package": package}


def verify(aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState) -> None:
    verify_recorded_approval(aws["dynamodb"], aws["sagemaker"], TABLE, state, catalog)


def refusal(aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState) -> str:
    with pytest.raises(ApprovalNotRecorded) as raised:
        verify(aws, catalog, state)
    return str(raised.value)


def mismatch(state: PromotionState, problems: str) -> str:
    return (
        f"the approval of fraud-detection release {state.claim.release_id} from fraud-xgb-tuning-0042 does not "
        f"match what the approval path recorded: {problems}; production is not written"
    )


def test_the_recorded_approval_of_this_execution_passes(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    verify(aws, catalog, approved["state"])


@pytest.mark.parametrize("decision", ["reject", "expired", None])
def test_no_approval_in_the_execution_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any], decision: str | None
) -> None:
    state: PromotionState = approved["state"]
    assert state.approval is not None
    changed = None if decision is None else state.approval.model_copy(update={"decision": decision})
    named = "none" if decision is None else decision
    assert refusal(aws, catalog, state.model_copy(update={"approval": changed})) == (
        f"the execution reached BackupProduction with decision {named!r}, not an approval"
    )


def test_an_approval_nobody_recorded_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    state: PromotionState = approved["state"]
    aws["dynamodb"].delete_item(TableName=TABLE, Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"))
    assert refusal(aws, catalog, state) == (
        "no approval of fraud-detection from tuning job fraud-xgb-tuning-0042 is recorded; nothing is written"
    )
    unnamed = state.model_copy(
        update={"claim": state.claim.model_copy(update={"model": None, "tuning_job_name": None})}
    )
    assert refusal(aws, catalog, unnamed) == "no approval of ? from tuning job ? is recorded; nothing is written"


def test_a_forged_approval_is_refused_with_every_difference(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    state: PromotionState = approved["state"]
    assert state.approval is not None
    forged = state.model_copy(
        update={
            "claim": state.claim.model_copy(
                update={"execution_arn": "arn:aws:states:us-east-1:123456789012:execution:promotion:other"}
            ),
            "approval": state.approval.model_copy(update={"decided_by": "Mallory", "model_package_arn": "arn:pkg"}),
        }
    )
    recorded = approved["state"].claim.execution_arn
    assert refusal(aws, catalog, forged) == mismatch(
        state,
        f"it was recorded for execution {recorded}; the task output says 'Mallory' approved, the record says "
        f"'Alice Martin'; the task output names package arn:pkg, the record {approved['package']}",
    )


def test_an_approval_of_another_release_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    state: PromotionState = approved["state"]
    other = state.model_copy(update={"claim": state.claim.model_copy(update={"release_id": "20261120-999999-ffffff"})})
    assert refusal(aws, catalog, other) == (
        "the approval of fraud-detection release 20261120-999999-ffffff from fraud-xgb-tuning-0042 does not match "
        f"what the approval path recorded: it was recorded for release {state.claim.release_id}, not "
        "20261120-999999-ffffff; production is not written"
    )


def test_an_approval_still_pending_in_the_record_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"),
        UpdateExpression="SET #s = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": {"S": "PENDING"}},
    )
    assert refusal(aws, catalog, approved["state"]) == mismatch(
        approved["state"], "its recorded status is PENDING, not APPROVED"
    )


def test_a_package_rejected_after_the_approval_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    aws["sagemaker"].update_model_package(ModelPackageArn=approved["package"], ModelApprovalStatus="Rejected")
    assert refusal(aws, catalog, approved["state"]) == mismatch(
        approved["state"], f"the Model Registry says {approved['package']} is Rejected"
    )


@pytest.mark.parametrize("who", [MALLORY, None])
def test_a_package_last_changed_by_someone_else_is_refused(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    approved: dict[str, Any],
    registry_as: Callable[..., None],
    who: tuple[str, str] | None,
) -> None:
    """Someone re-approved the package after Alice: the Model Registry no longer says Alice approved it."""
    registry_as(who)
    aws["sagemaker"].update_model_package(ModelPackageArn=approved["package"], ModelApprovalStatus="Approved")
    registry_as(None)
    identity = (
        "arn:aws:sts::123456789012:assumed-role/DataScientists/mallory@example.com"
        if who
        else "arn:aws:iam::123456789012:root"
    )
    assert refusal(aws, catalog, approved["state"]) == mismatch(
        approved["state"], f"the Model Registry says {identity} last changed {approved['package']}"
    )


def test_a_package_reapproved_by_another_approver_is_refused(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    approved: dict[str, Any],
    registry_as: Callable[..., None],
) -> None:
    approvers = [one for one in catalog.approval.approvers if one.name != "Alice Martin"]
    assert approvers, "the catalog lists a second approver"
    other = approvers[0]
    role, session = other.identity.removeprefix("role/").split(" session ")
    registry_as((role, session))
    aws["sagemaker"].update_model_package(ModelPackageArn=approved["package"], ModelApprovalStatus="Approved")
    registry_as(None)
    assert "last changed" in refusal(aws, catalog, approved["state"])


def test_a_record_without_a_package_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"),
        UpdateExpression="REMOVE model_package_arn",
    )
    state: PromotionState = approved["state"]
    assert state.approval is not None
    unpackaged = state.model_copy(update={"approval": state.approval.model_copy(update={"model_package_arn": None})})
    assert refusal(aws, catalog, unpackaged) == mismatch(state, "no model package was registered for it")


def metadata(aws: dict[str, Any], package: str) -> dict[str, Any]:
    return dict(aws["sagemaker"].describe_model_package(ModelPackageName=package))


def conclude(aws: dict[str, Any], state: PromotionState, outcome: str, reason: str = "why") -> str | None:
    return conclude_candidate(aws["dynamodb"], aws["sagemaker"], TABLE, state, outcome, reason)


def test_an_undecided_candidate_is_rejected_with_why_and_stops_waiting(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)
    assert conclude(aws, state, "FAILED", "the approval window closed") == package
    described = metadata(aws, package)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "no approver decided: the approval window closed"
    assert described["CustomerMetadataProperties"][METADATA_OUTCOME] == "FAILED"
    assert METADATA_PRODUCTION not in described["CustomerMetadataProperties"]
    item = aws["dynamodb"].get_item(
        TableName=TABLE, Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"), ConsistentRead=True
    )["Item"]
    assert item["status"]["S"] == "EXPIRED"
    # A decision arriving now is no decision.
    assert not decide_as(aws, catalog, registry_as, package, ALICE).accepted


@pytest.mark.parametrize(("outcome", "production"), [("PROMOTED", "current"), ("ROLLED_BACK", "rolled-back")])
def test_a_decided_candidate_says_how_it_ended(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any], outcome: str, production: str
) -> None:
    assert conclude(aws, approved["state"], outcome) == approved["package"]
    properties = metadata(aws, approved["package"])["CustomerMetadataProperties"]
    assert (properties[METADATA_OUTCOME], properties[METADATA_PRODUCTION]) == (outcome, production)
    assert metadata(aws, approved["package"])["ModelApprovalStatus"] == "Approved"


def test_a_promotion_retires_the_champion_it_replaced(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    champion_package = aws["sagemaker"].create_model_package(
        ModelPackageGroupName="fraud-detection",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    state: PromotionState = approved["state"]
    assert state.validation is not None
    champion = Champion(release_id="20261001-000000-champ0", performance={}, model_package_arn=champion_package)
    with_champion = state.model_copy(update={"validation": state.validation.model_copy(update={"champion": champion})})
    conclude(aws, with_champion, "ROLLED_BACK")
    assert METADATA_PRODUCTION not in metadata(aws, champion_package).get("CustomerMetadataProperties", {})
    conclude(aws, with_champion, "PROMOTED")
    properties = metadata(aws, champion_package)["CustomerMetadataProperties"]
    assert (properties[METADATA_OUTCOME], properties[METADATA_PRODUCTION]) == (
        f"replaced by release {state.claim.release_id}",
        "retired",
    )


def test_only_this_executions_registered_candidate_is_concluded(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    state: PromotionState = approved["state"]
    before = metadata(aws, approved["package"]).get("CustomerMetadataProperties", {})
    other = state.model_copy(
        update={"claim": state.claim.model_copy(update={"execution_arn": "arn:aws:states:::execution:p:other"})}
    )
    assert conclude(aws, other, "PROMOTED") is None
    assert (
        conclude(aws, state.model_copy(update={"claim": state.claim.model_copy(update={"model": None})}), "X") is None
    )
    unnamed = state.model_copy(update={"claim": state.claim.model_copy(update={"tuning_job_name": None})})
    assert conclude(aws, unnamed, "PROMOTED") is None
    another_job = state.model_copy(update={"claim": state.claim.model_copy(update={"tuning_job_name": "other-job"})})
    assert conclude(aws, another_job, "PROMOTED") is None
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"),
        UpdateExpression="REMOVE model_package_arn",
    )
    assert conclude(aws, state, "PROMOTED") is None
    assert metadata(aws, approved["package"]).get("CustomerMetadataProperties", {}) == before


def test_people_see_the_promotions_still_waiting_within_their_window(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)
    assert state.validation is not None
    deadline = REQUESTED + timedelta(seconds=state.validation.approval_timeout_seconds)
    (waiting,) = pending_approvals(aws["dynamodb"], TABLE, "fraud-detection", now=deadline)
    assert waiting.__dict__ == {
        "model": "fraud-detection",
        "tuning_job_name": "fraud-xgb-tuning-0042",
        "release_id": state.claim.release_id,
        "execution_arn": state.claim.execution_arn,
        "requested_at": REQUESTED.isoformat(),
        "decision_deadline": deadline,
        "model_package_arn": package,
    }
    assert pending_approvals(aws["dynamodb"], TABLE, "fraud-detection", now=deadline + timedelta(seconds=1)) == []
    assert pending_approvals(aws["dynamodb"], TABLE, "churn", now=REQUESTED) == []
    assert len(pending_approvals(aws["dynamodb"], TABLE, "fraud-detection")) <= 1  # without a clock: now
    conclude(aws, state, "FAILED")
    assert pending_approvals(aws["dynamodb"], TABLE, "fraud-detection", now=REQUESTED) == []


def test_a_forged_approval_while_the_record_still_waits_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    """Someone with the task token answers AwaitApproval before any approver decided: the record has no decider."""
    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state)
    forged = Approval(decision="approve", decided_by="Alice Martin", identity=ALICE_ARN, model_package_arn=package)
    assert refusal(aws, catalog, state.model_copy(update={"approval": forged})) == mismatch(
        state,
        "its recorded status is PENDING, not APPROVED; the task output says 'Alice Martin' approved, the record says "
        f"None; the Model Registry says {package} is PendingManualApproval",
    )


def test_a_record_whose_identity_was_edited_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"),
        UpdateExpression="SET decided_by_identity = :other",
        ExpressionAttributeValues={":other": {"S": "arn:aws:sts::123456789012:assumed-role/DataScientists/eve"}},
    )
    assert refusal(aws, catalog, approved["state"]) == mismatch(
        approved["state"], f"the Model Registry says {ALICE_ARN} last changed {approved['package']}"
    )


def test_a_package_nobody_is_named_for_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    with pytest.raises(ApprovalNotRecorded) as raised:
        verify_recorded_approval(aws["dynamodb"], Unattributed(aws["sagemaker"]), TABLE, approved["state"], catalog)
    assert str(raised.value) == mismatch(
        approved["state"], f"the Model Registry says an unidentified principal last changed {approved['package']}"
    )


def test_a_promotion_without_a_validation_concludes_its_candidate_alone(
    aws: dict[str, Any], catalog: ModelCatalog, approved: dict[str, Any]
) -> None:
    state: PromotionState = approved["state"]
    assert conclude(aws, state.model_copy(update={"validation": None}), "PROMOTED") == approved["package"]
    properties = metadata(aws, approved["package"])["CustomerMetadataProperties"]
    assert properties[METADATA_PRODUCTION] == "current"


def test_every_waiting_promotion_is_listed_whatever_comes_before_it(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    """Two tuning jobs waiting, the first (in key order) already decided, and one recorded before packages were."""
    first = validated_state(aws, catalog, catalog_dir)
    ask(aws, catalog, first)
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key=approval_key("fraud-detection", "fraud-xgb-tuning-0042"),
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "APPROVED"}},
    )
    deadline = int((REQUESTED + timedelta(hours=72)).timestamp())
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            **approval_key("fraud-detection", "fraud-xgb-tuning-0043"),
            "status": {"S": "PENDING"},
            "task_token": {"S": "t"},
            "release_id": {"S": "r43"},
            "execution_arn": {"S": "arn:e43"},
            "requested_at": {"S": REQUESTED.isoformat()},
            "decision_deadline": {"N": str(deadline)},
        },
    )
    (waiting,) = pending_approvals(aws["dynamodb"], TABLE, "fraud-detection", now=REQUESTED)
    assert (waiting.tuning_job_name, waiting.release_id, waiting.model_package_arn) == (
        "fraud-xgb-tuning-0043",
        "r43",
        None,
    )
