"""Claims, the per-model lock, approval decisions and the operator rollback over moto DynamoDB and S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import ModelPackageStateChange
from promotion.contract.state import ClaimStatus, PromotionState
from promotion.intake.approval import DecisionOutcome, decide, request_approval
from tests.conftest import TABLE, load_event
from tests.fakes import RecordingStepFunctions
from tests.integration.helpers import (
    claimed_state,
    finish_promotion,
    operator_rollback,
    promote_another_release,
    promote_until_config,
    reject_live_release,
    snapshot,
    validated_state,
)

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:promotion:{name}"


def job(n: int) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/job-{n}"


def claim(store: ClaimStore, n: int, execution: str, minutes: int = 0, settle: bool = False) -> ClaimStatus:
    return store.claim(
        model="fraud-detection",
        tuning_job_arn=job(n),
        release_id=f"r{n}",
        execution_arn=arn(execution),
        event_time=T0 + timedelta(minutes=minutes),
        lease_seconds=3600,
        settle=settle,
    ).status


def test_a_duplicate_event_is_refused_while_the_first_proceeds(aws: dict[str, Any]) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    assert claim(store, 1, "first") == ClaimStatus.CLAIMED
    assert claim(store, 1, "second") == ClaimStatus.DUPLICATE
    assert claim(store, 1, "first") == ClaimStatus.CLAIMED  # a retried ClaimPromotion of the same execution
    store.finish(model="fraud-detection", tuning_job_arn=job(1), execution_arn=arn("first"), outcome="PROMOTED")
    assert claim(store, 1, "third") == ClaimStatus.DUPLICATE


def test_one_promotion_per_model_at_a_time_in_tuning_job_order(aws: dict[str, Any]) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    assert claim(store, 2, "later", minutes=5) == ClaimStatus.CLAIMED
    assert claim(store, 3, "latest", minutes=9) == ClaimStatus.WAIT
    assert claim(store, 1, "earliest", minutes=1) == ClaimStatus.WAIT  # lock held by "later"
    assert store.finish(model="fraud-detection", tuning_job_arn=job(2), execution_arn=arn("later"), outcome="PROMOTED")
    assert claim(store, 3, "latest", minutes=9) == ClaimStatus.WAIT  # the older job 1 goes first
    assert claim(store, 1, "earliest", minutes=1) == ClaimStatus.CLAIMED
    store.finish(model="fraud-detection", tuning_job_arn=job(1), execution_arn=arn("earliest"), outcome="PROMOTED")
    assert claim(store, 3, "latest", minutes=9) == ClaimStatus.CLAIMED


def test_a_dead_holder_does_not_block_the_model(aws: dict[str, Any]) -> None:
    alive = {arn("crashed"): True}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda a: alive.get(a, True))
    assert claim(store, 1, "crashed") == ClaimStatus.CLAIMED
    assert claim(store, 2, "next", minutes=1) == ClaimStatus.WAIT
    alive[arn("crashed")] = False  # the execution was stopped without releasing its lock
    assert claim(store, 2, "next", minutes=1) == ClaimStatus.CLAIMED


def test_an_older_job_claimed_within_the_settle_window_goes_first(aws: dict[str, Any]) -> None:
    """Events arrive out of order: the newer job's first look only writes its claim, the older one's event comes
    moments later, and at the next looks the older job takes the lock."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    assert claim(store, 2, "newer", minutes=5, settle=True) == ClaimStatus.WAIT
    assert claim(store, 1, "older", minutes=1, settle=True) == ClaimStatus.WAIT
    assert claim(store, 2, "newer", minutes=5) == ClaimStatus.WAIT  # an older job is pending
    assert claim(store, 1, "older", minutes=1) == ClaimStatus.CLAIMED


def test_an_abandoned_claim_is_taken_over_but_a_finished_one_is_not(aws: dict[str, Any]) -> None:
    """A redelivered event may promote a tuning job whose first execution died before finishing it; a tuning job
    that was decided (promoted, rejected or failed) stays a duplicate forever."""
    alive = {arn("crashed"): True}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda a: alive.get(a, True))
    assert claim(store, 1, "crashed", settle=True) == ClaimStatus.WAIT
    assert claim(store, 1, "redelivered") == ClaimStatus.DUPLICATE  # the owner still runs
    alive[arn("crashed")] = False
    assert claim(store, 1, "redelivered", settle=True) == ClaimStatus.WAIT
    assert claim(store, 1, "crashed") == ClaimStatus.DUPLICATE  # the claim is no longer the dead one's
    taken = store.claim(
        model="fraud-detection",
        tuning_job_arn=job(1),
        release_id="r1",
        execution_arn=arn("redelivered"),
        event_time=T0,
        lease_seconds=3600,
    )
    # Its own release id: the dead execution's backup and SageMaker job names are not reused.
    assert (taken.status, taken.release_id) == (ClaimStatus.CLAIMED, "r1-t1")
    store.finish(model="fraud-detection", tuning_job_arn=job(1), execution_arn=arn("redelivered"), outcome="FAILED")
    alive[arn("redelivered")] = False
    assert claim(store, 1, "third") == ClaimStatus.DUPLICATE


def test_a_running_holder_keeps_the_lock_past_its_lease(aws: dict[str, Any]) -> None:
    """A slow promotion is not robbed of its lock when its lease runs out (two promotions of one model would write
    production at once); it is taken over only once its execution has ended."""
    now = [1_000_000.0]
    alive = {arn("slow"): True}
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda a: alive.get(a, True), clock=lambda: now[0])
    assert claim(store, 1, "slow") == ClaimStatus.CLAIMED
    assert claim(store, 2, "next", minutes=1) == ClaimStatus.WAIT
    now[0] += 3601  # past the lease
    assert claim(store, 2, "next", minutes=1) == ClaimStatus.WAIT
    assert store.lock_holder("fraud-detection") == {"holder": arn("slow"), "release_id": "r1"}
    alive[arn("slow")] = False
    assert claim(store, 2, "next", minutes=1) == ClaimStatus.CLAIMED
    lock = aws["dynamodb"].get_item(
        TableName=TABLE, Key={"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": "LOCK"}}, ConsistentRead=True
    )["Item"]
    assert "expires_at" not in lock  # no TTL: DynamoDB never deletes a live promotion's lock


ALICE = ("DataScientists", "alice@example.com")  # a catalog approver (models/fraud-detection.yaml)
MALLORY = ("DataScientists", "mallory@example.com")  # same role, a session the catalog does not list
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest"


def ask_for_approval(aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState) -> dict[str, Any]:
    """AwaitApproval's request for `state` (the same task token and moment each time, as a retried invocation)."""
    return request_approval(
        state,
        "token-1",
        catalog,
        dynamodb=aws["dynamodb"],
        events=aws["events"],
        sns=None,
        sagemaker=aws["sagemaker"],
        serving_image=IMAGE,
        table=TABLE,
        event_bus_name="default",
        topic_arn=None,
        now=datetime(2026, 11, 20, 14, 10, tzinfo=UTC),
    )


@pytest.fixture
def pending(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> dict[str, Any]:
    state = validated_state(aws, catalog, catalog_dir)
    notice = ask_for_approval(aws, catalog, state)
    return {"state": state, "notice": notice, "package": notice["model_package_arn"]}


def change_of(package_arn: str, status: str = "Approved", group: str = "fraud-detection") -> ModelPackageStateChange:
    event = load_event("model-package-approved.json")
    event["resources"] = [package_arn]
    event["detail"].update(ModelPackageArn=package_arn, ModelApprovalStatus=status, ModelPackageGroupName=group)
    return ModelPackageStateChange.model_validate(event)


def decide_as(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    act: Callable[[tuple[str, str] | None], None],
    package_arn: str,
    identity: tuple[str, str] | None,
    status: str = "Approved",
    sfn: RecordingStepFunctions | None = None,
    now: datetime = datetime(2026, 11, 20, 15, tzinfo=UTC),
) -> DecisionOutcome:
    """`identity` changes the package's status in the registry; the decision function then handles the event."""
    act(identity)
    aws["sagemaker"].update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=status, ApprovalDescription="AUC up 1.1 points"
    )
    act(None)
    return decide(
        change_of(package_arn, status),
        {catalog.id: catalog},
        dynamodb=aws["dynamodb"],
        stepfunctions=sfn or RecordingStepFunctions(),
        sagemaker=aws["sagemaker"],
        table=TABLE,
        now=now,
    )


def test_the_candidate_is_registered_pending_with_its_and_the_champions_metrics(
    aws: dict[str, Any], pending: dict[str, Any]
) -> None:
    described = aws["sagemaker"].describe_model_package(ModelPackageName=pending["package"])
    assert described["ModelPackageGroupName"] == "fraud-detection"
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = described["CustomerMetadataProperties"]
    assert metadata["candidate:validation:auc"] == "0.9712"
    assert metadata["promotion:release-id"] == pending["state"].claim.release_id
    assert any(key.startswith("champion:") for key in metadata)
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGE and container["ModelDataUrl"].endswith("model.tar.gz")


def test_a_retried_await_approval_registers_one_package(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any]
) -> None:
    again = ask_for_approval(aws, catalog, pending["state"])
    assert again["model_package_arn"] == pending["package"]
    listed = aws["sagemaker"].list_model_packages(ModelPackageGroupName="fraud-detection")["ModelPackageSummaryList"]
    assert len(listed) == 1


def test_the_notice_says_what_waits_and_how_to_decide(pending: dict[str, Any]) -> None:
    notice = pending["notice"]
    assert notice["hyperparameters"]["max_depth"] == 6
    assert notice["metrics"]["validation:auc"] == 0.9712
    assert notice["commands"]["approve"].startswith("python -m promote approve fraud-detection")
    assert pending["package"] in notice["commands"]["aws_cli"]
    assert "Alice Martin (role/DataScientists session alice@example.com)" in notice["approvers"]


def test_an_approver_decision_is_forwarded_once_with_the_identity_aws_recorded(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    first = decide_as(aws, catalog, registry_as, pending["package"], ALICE, sfn=sfn)
    assert first.accepted, first.reason
    assert sfn.calls[0][0] == "success"
    output = json.loads(sfn.calls[0][1]["output"])
    assert output["decided_by"] == "Alice Martin"
    assert output["identity"] == "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com"
    assert output["model_package_arn"] == pending["package"]
    # SageMaker may deliver a change twice, and a later change is no second decision.
    second = decide_as(aws, catalog, registry_as, pending["package"], ALICE, "Rejected", sfn=sfn)
    assert not second.accepted and second.ignored
    assert "already decided (APPROVED by Alice Martin)" in second.reason
    assert len(sfn.calls) == 1


@pytest.mark.parametrize(
    ("identity", "fragment"),
    [
        (MALLORY, "assumed-role/DataScientists/mallory@example.com is not an approver of fraud-detection"),
        (("Engineers", "alice@example.com"), "assumed-role/Engineers/alice@example.com is not an approver"),
        (None, "arn:aws:iam::123456789012:root is not an approver"),
    ],
)
def test_a_decision_by_anyone_else_is_refused_and_the_package_waits_again(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    pending: dict[str, Any],
    registry_as: Callable[..., None],
    identity: tuple[str, str] | None,
    fragment: str,
) -> None:
    sfn = RecordingStepFunctions()
    outcome = decide_as(aws, catalog, registry_as, pending["package"], identity, sfn=sfn)
    assert not outcome.accepted and not outcome.ignored
    assert fragment in outcome.reason
    assert sfn.calls == []
    described = aws["sagemaker"].describe_model_package(ModelPackageName=pending["package"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert "refused: not an approver" in described["ApprovalDescription"]
    # The genuine approver still decides afterwards.
    assert decide_as(aws, catalog, registry_as, pending["package"], ALICE, sfn=sfn).accepted


def test_a_change_of_a_package_no_promotion_registered_is_no_decision(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    other = aws["sagemaker"].create_model_package(
        ModelPackageGroupName="fraud-detection",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]
    sfn = RecordingStepFunctions()
    outcome = decide_as(aws, catalog, registry_as, other, ALICE, sfn=sfn)
    assert outcome.ignored and "no promotion of fraud-detection registered" in outcome.reason
    assert sfn.calls == []


def test_a_late_decision_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    late = datetime(2026, 11, 23, 15, tzinfo=UTC)  # more than 72 h after the request
    outcome = decide_as(aws, catalog, registry_as, pending["package"], ALICE, sfn=sfn, now=late)
    assert not outcome.accepted
    assert "expired" in outcome.reason
    assert sfn.calls == []


def test_a_rejection_carries_who_and_why(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    outcome = decide_as(aws, catalog, registry_as, pending["package"], ALICE, "Rejected", sfn=sfn)
    assert outcome.accepted
    kind, call = sfn.calls[0]
    assert kind == "failure"
    assert call["error"] == "PromotionRejected"
    cause = json.loads(call["cause"])
    assert cause["decided_by"] == "Alice Martin"
    assert cause["identity"].endswith("assumed-role/DataScientists/alice@example.com")


def test_operator_rollback_restores_the_previous_release(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    first = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    finish_promotion(store, catalog, first)
    refused = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as))
    assert not refused.accepted
    assert "first release" in refused.reason
    after_first = snapshot(aws, catalog)
    # A second promotion (another tuning job) on top of the first.
    promote_another_release(
        aws, catalog, catalog_dir, store, first, suffix="b", time="2026-11-21T10:00:00Z", execution="exec-2"
    )
    assert snapshot(aws, catalog)["config"] != after_first["config"]
    done = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as))
    assert done.accepted, done.reason
    assert done.restored_release == first.claim.release_id
    assert snapshot(aws, catalog) == after_first


def test_a_stopped_execution_holding_the_lock_does_not_block_the_operator_rollback(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    """The guide says: after a stopped execution, roll back first. Its lock (lease of a day or more) must not refuse
    that rollback as 'a promotion in flight'."""
    running = ClaimStore(aws["dynamodb"], TABLE)
    first = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    finish_promotion(running, catalog, first)
    promote_another_release(
        aws, catalog, catalog_dir, running, first, suffix="b", time="2026-11-21T10:00:00Z", execution="exec-2"
    )
    event = load_event("tuning-job-completed.json")
    event["detail"]["HyperParameterTuningJobArn"] += "c"
    event["detail"]["HyperParameterTuningJobName"] += "c"
    claimed_state(aws, catalog_dir, event, execution="exec-3")  # holds the model's lock, then is stopped
    store = ClaimStore(aws["dynamodb"], TABLE, is_execution_running=lambda _arn: False)
    assert store.lock_holder(catalog.id) is None
    answer = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as))
    assert answer.accepted, answer.reason


class DecidedMeanwhile:
    """moto's DynamoDB, except that another decision invocation runs to its end just before this one's first
    write: both read the promotion as pending, as two invocations for one change (SageMaker may deliver it twice)
    do when they run at once."""

    def __init__(self, dynamodb: Any, meanwhile: Callable[[], DecisionOutcome]) -> None:
        self._dynamodb = dynamodb
        self._meanwhile: Callable[[], DecisionOutcome] | None = meanwhile
        self.other: DecisionOutcome | None = None

    def update_item(self, **request: Any) -> Any:
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            self.other = meanwhile()
        return self._dynamodb.update_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_two_decisions_racing_answer_the_execution_once(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    registry_as(ALICE)
    aws["sagemaker"].update_model_package(ModelPackageArn=pending["package"], ModelApprovalStatus="Approved")
    registry_as(None)
    change = change_of(pending["package"])

    def invocation(dynamodb: Any) -> DecisionOutcome:
        return decide(
            change,
            {catalog.id: catalog},
            dynamodb=dynamodb,
            stepfunctions=sfn,
            sagemaker=aws["sagemaker"],
            table=TABLE,
            now=datetime(2026, 11, 20, 15, tzinfo=UTC),
        )

    racing = DecidedMeanwhile(aws["dynamodb"], lambda: invocation(aws["dynamodb"]))
    late = invocation(racing)
    assert racing.other is not None and racing.other.accepted, racing.other
    assert not late.accepted and late.ignored
    assert "was decided concurrently; decision ignored" in late.reason
    assert [call[0] for call in sfn.calls] == ["success"]
