"""AwaitApproval's request and the decision function, field by field: what is stored, announced and answered, and
the exact outcome of every path a Model Registry change can take."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Champion, PromotionState
from promotion.intake.approval import DecisionOutcome, approval_commands, approval_key, decide, request_approval
from tests.conftest import TABLE
from tests.fakes import RecordingStepFunctions, Unattributed
from tests.integration.helpers import subscribed_queue, validated_state
from tests.integration.test_claims_and_approval import ALICE, MALLORY, DecidedMeanwhile, change_of

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest"
REQUESTED = datetime(2026, 11, 20, 14, 10, tzinfo=UTC)
JOB = "fraud-xgb-tuning-0042"
ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com"
MALLORY_ARN = "arn:aws:sts::123456789012:assumed-role/DataScientists/mallory@example.com"
APPROVERS = "role/DataScientists session alice@example.com, role/DataScientists session bob@example.com"


class RecordingEvents:
    """moto's EventBridge, keeping what was put (moto delivers events only to targets)."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> Any:  # boto3's parameter name
        self.entries.extend(Entries)
        return self._events.put_events(Entries=Entries)


def ask(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    state: PromotionState,
    *,
    events: Any = None,
    sns: Any = None,
    topic: str | None = None,
    now: datetime | None = REQUESTED,
    token: str = "token-1",
) -> dict[str, Any]:
    return request_approval(
        state,  # type: ignore[arg-type]
        token,
        catalog,
        dynamodb=aws["dynamodb"],
        events=events or aws["events"],
        sns=sns,
        sagemaker=aws["sagemaker"],
        serving_image=IMAGE,
        table=TABLE,
        event_bus_name="default",
        topic_arn=topic,
        now=now,
    )


def stored(aws: dict[str, Any]) -> dict[str, Any]:
    return dict(
        aws["dynamodb"].get_item(TableName=TABLE, Key=approval_key("fraud-detection", JOB), ConsistentRead=True)["Item"]
    )


def test_the_request_stores_announces_and_notifies_exactly_what_waits(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    assert state.validation is not None and state.validation.candidate is not None
    events = RecordingEvents(aws["events"])
    topic, received = subscribed_queue(aws)
    notice = ask(aws, catalog, state, events=events, sns=aws["sns"], topic=topic)
    package = notice["model_package_arn"]
    deadline = REQUESTED + timedelta(hours=72)
    assert notice == {
        "model": "fraud-detection",
        "release_id": state.claim.release_id,
        "tuning_job_name": JOB,
        "execution_name": state.claim.execution_name,
        "hyperparameters": state.validation.candidate.hyperparameters,
        "metrics": state.validation.candidate.metrics,
        "champion": {"release_id": None, "metrics": {}},
        "warnings": [],
        "approvers": [
            "Alice Martin (role/DataScientists session alice@example.com)",
            "Bob Chen (role/DataScientists session bob@example.com)",
        ],
        "model_package_arn": package,
        "model_package_group": "fraud-detection",
        "decide_by": deadline.isoformat(),
        "commands": approval_commands("fraud-detection", package),
    }
    assert stored(aws) == {
        **approval_key("fraud-detection", JOB),
        "status": {"S": "PENDING"},
        "task_token": {"S": "token-1"},
        "release_id": {"S": state.claim.release_id},
        "execution_arn": {"S": state.claim.execution_arn},
        "requested_at": {"S": REQUESTED.isoformat()},
        "decision_deadline": {"N": str(int(deadline.timestamp()))},
        "expires_at": {"N": str(int(deadline.timestamp()) + 90 * 86400)},
        "model_package_arn": {"S": package},
    }
    assert events.entries == [
        {
            "Source": "promotion.results",
            "DetailType": "Promotion Approval Requested",
            "Detail": json.dumps(notice),
            "EventBusName": "default",
        }
    ]
    (message,) = received()
    assert message["Subject"] == f"Approval needed: fraud-detection {state.claim.release_id}"
    assert message["Message"] == json.dumps(notice, indent=2)  # an e-mail people read


def test_the_commands_name_the_model_and_the_package() -> None:
    assert approval_commands("churn", "arn:pkg") == {
        "approve": 'python -m promote approve churn --comment "why it is fine"',
        "reject": 'python -m promote reject churn --comment "why not"',
        "aws_cli": "aws sagemaker update-model-package --model-package-arn arn:pkg --model-approval-status Approved "
        '--approval-description "why it is fine"',
    }


def test_the_notice_shows_the_champion_and_a_subject_sns_accepts(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    assert state.validation is not None
    champion = Champion(release_id="20261001-000000-champ0", performance={"validation:auc": 0.95})
    long_release = "r" * 120
    state = state.model_copy(
        update={
            "validation": state.validation.model_copy(update={"champion": champion, "warnings": ["low accuracy"]}),
            "claim": state.claim.model_copy(update={"release_id": long_release}),
        }
    )
    topic, received = subscribed_queue(aws)
    notice = ask(aws, catalog, state, sns=aws["sns"], topic=topic)
    assert notice["champion"] == {"release_id": "20261001-000000-champ0", "metrics": {"validation:auc": 0.95}}
    assert notice["warnings"] == ["low accuracy"]
    (message,) = received()
    assert message["Subject"] == f"Approval needed: fraud-detection {long_release}"[:100]
    assert len(message["Subject"]) == 100


def test_without_a_topic_nobody_is_mailed_and_without_a_clock_the_request_is_dated_now_in_utc(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    _, received = subscribed_queue(aws)
    before = datetime.now(UTC)
    ask(aws, catalog, state, sns=aws["sns"], topic=None, now=None)
    assert received() == []
    requested = datetime.fromisoformat(stored(aws)["requested_at"]["S"])
    assert requested.tzinfo is not None and before <= requested <= datetime.now(UTC)


def test_a_second_execution_cannot_take_over_a_pending_request(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    ask(aws, catalog, state)
    ask(aws, catalog, state, token="token-2")  # the same execution's retry: allowed, the newest token kept
    assert stored(aws)["task_token"] == {"S": "token-2"}
    other = state.model_copy(
        update={"claim": state.claim.model_copy(update={"execution_arn": "arn:aws:states:::execution:p:other"})}
    )
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ask(aws, catalog, other, token="token-3")
    assert stored(aws)["task_token"] == {"S": "token-2"}


@pytest.fixture
def pending(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> dict[str, Any]:
    state = validated_state(aws, catalog, catalog_dir)
    return {"state": state, "package": ask(aws, catalog, state)["model_package_arn"]}


def change(
    aws: dict[str, Any],
    act: Callable[..., None],
    package: str,
    identity: tuple[str, str] | None,
    status: str = "Approved",
    comment: str = "AUC up 1.1 points",
) -> None:
    act(identity)
    aws["sagemaker"].update_model_package(
        ModelPackageArn=package, ModelApprovalStatus=status, ApprovalDescription=comment
    )
    act(None)


def run_decide(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    package: str,
    *,
    status: str = "Approved",
    sfn: Any = None,
    now: datetime | None = None,
    dynamodb: Any = None,
) -> DecisionOutcome:
    return decide(
        change_of(package, status),
        {catalog.id: catalog},
        dynamodb=dynamodb or aws["dynamodb"],
        stepfunctions=sfn or RecordingStepFunctions(),
        sagemaker=aws["sagemaker"],
        table=TABLE,
        now=now or REQUESTED + timedelta(hours=1),
    )


def test_an_approval_is_answered_with_who_when_and_why_and_recorded(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    change(aws, registry_as, pending["package"], ALICE)
    decided_at = REQUESTED + timedelta(hours=1)
    outcome = run_decide(aws, catalog, pending["package"], sfn=sfn)
    assert outcome == DecisionOutcome(
        True,
        f"promotion of fraud-detection from {JOB} approved by Alice Martin ({ALICE_ARN})",
        "fraud-detection",
        JOB,
        ALICE_ARN,
    )
    ((kind, call),) = sfn.calls
    assert (kind, call["taskToken"]) == ("success", "token-1")
    assert json.loads(call["output"]) == {
        "decision": "approve",
        "decided_by": "Alice Martin",
        "identity": ALICE_ARN,
        "model_package_arn": pending["package"],
        "comment": "AUC up 1.1 points",
        "decided_at": decided_at.isoformat().replace("+00:00", "Z"),
    }
    item = stored(aws)
    assert {key: item[key]["S"] for key in ("status", "decided_by", "decided_by_identity", "decided_at")} == {
        "status": "APPROVED",
        "decided_by": "Alice Martin",
        "decided_by_identity": ALICE_ARN,
        "decided_at": decided_at.isoformat(),
    }
    assert item["decision_comment"] == {"S": "AUC up 1.1 points"}


def test_a_rejection_fails_the_task_with_who_and_why_and_is_recorded(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    change(aws, registry_as, pending["package"], ALICE, "Rejected", "FPR too high")
    outcome = run_decide(aws, catalog, pending["package"], status="Rejected", sfn=sfn)
    assert outcome == DecisionOutcome(
        True,
        f"promotion of fraud-detection from {JOB} rejected by Alice Martin ({ALICE_ARN})",
        "fraud-detection",
        JOB,
        ALICE_ARN,
    )
    ((kind, call),) = sfn.calls
    assert (kind, call["taskToken"], call["error"]) == ("failure", "token-1", "PromotionRejected")
    assert json.loads(call["cause"]) == {
        "errorMessage": "rejected by Alice Martin: FPR too high",
        "decided_by": "Alice Martin",
        "identity": ALICE_ARN,
        "model_package_arn": pending["package"],
        "comment": "FPR too high",
        "decided_at": (REQUESTED + timedelta(hours=1)).isoformat(),
    }
    assert stored(aws)["status"] == {"S": "REJECTED"}


def test_a_package_of_no_catalog_model_or_not_decided_is_ignored(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any]
) -> None:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="churn")
    foreign = aws["sagemaker"].create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    assert run_decide(aws, catalog, foreign) == DecisionOutcome(
        False, "model package group 'churn' is no catalog model's", ignored=True
    )
    assert run_decide(aws, catalog, pending["package"], status="PendingManualApproval") == DecisionOutcome(
        False, f"{pending['package']} is PendingManualApproval: nothing decided", "fraud-detection", ignored=True
    )


def test_a_package_no_promotion_registered_is_no_decision(
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
    change(aws, registry_as, other, ALICE)
    assert run_decide(aws, catalog, other) == DecisionOutcome(
        False,
        f"no promotion of fraud-detection registered {other}; its status change is not a decision",
        "fraud-detection",
        identity=ALICE_ARN,
        ignored=True,
    )


def test_a_second_decision_is_ignored_naming_the_first(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    change(aws, registry_as, pending["package"], ALICE)
    run_decide(aws, catalog, pending["package"])
    change(aws, registry_as, pending["package"], ALICE, "Rejected")
    assert run_decide(aws, catalog, pending["package"], status="Rejected") == DecisionOutcome(
        False,
        f"the promotion of fraud-detection from {JOB} was already decided (APPROVED by Alice Martin); ignored",
        "fraud-detection",
        JOB,
        ALICE_ARN,
        True,
    )
    aws["dynamodb"].update_item(
        TableName=TABLE, Key=approval_key("fraud-detection", JOB), UpdateExpression="REMOVE decided_by"
    )
    assert "(APPROVED by ?)" in run_decide(aws, catalog, pending["package"], status="Rejected").reason


def test_the_approval_window_includes_its_last_second(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    change(aws, registry_as, pending["package"], ALICE)
    deadline = REQUESTED + timedelta(hours=72)
    late = run_decide(aws, catalog, pending["package"], now=deadline + timedelta(seconds=1))
    assert late == DecisionOutcome(
        False,
        f"the approval window of fraud-detection from {JOB} has expired; decision ignored",
        "fraud-detection",
        JOB,
        ALICE_ARN,
    )
    assert run_decide(aws, catalog, pending["package"], now=deadline).accepted


def test_someone_else_is_refused_with_the_catalogs_approvers_and_the_package_waits_again(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    sfn = RecordingStepFunctions()
    change(aws, registry_as, pending["package"], MALLORY)
    assert run_decide(aws, catalog, pending["package"], sfn=sfn) == DecisionOutcome(
        False,
        f"{MALLORY_ARN} is not an approver of fraud-detection (approvers: {APPROVERS}); {pending['package']} is back "
        "to PendingManualApproval",
        "fraud-detection",
        JOB,
        MALLORY_ARN,
    )
    described = aws["sagemaker"].describe_model_package(ModelPackageName=pending["package"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ApprovalDescription"] == f"Approved by {MALLORY_ARN} refused: not an approver of fraud-detection"
    assert sfn.calls == [] and stored(aws)["status"] == {"S": "PENDING"}


def test_a_change_nobody_is_named_for_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    change(aws, registry_as, pending["package"], ALICE)
    outcome = decide(
        change_of(pending["package"]),
        {catalog.id: catalog},
        dynamodb=aws["dynamodb"],
        stepfunctions=RecordingStepFunctions(),
        sagemaker=Unattributed(aws["sagemaker"]),
        table=TABLE,
        now=REQUESTED,
    )
    assert outcome.reason == (
        f"an unidentified principal is not an approver of fraud-detection (approvers: {APPROVERS}); "
        f"{pending['package']} is back to PendingManualApproval"
    )


def test_a_decision_made_meanwhile_wins_and_this_one_is_ignored(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    change(aws, registry_as, pending["package"], ALICE)
    racing = DecidedMeanwhile(aws["dynamodb"], lambda: run_decide(aws, catalog, pending["package"]))
    assert run_decide(aws, catalog, pending["package"], dynamodb=racing) == DecisionOutcome(
        False,
        f"the promotion of fraud-detection from {JOB} was decided concurrently; decision ignored",
        "fraud-detection",
        JOB,
        ALICE_ARN,
        True,
    )


def test_a_task_no_longer_waiting_is_recorded_expired_and_other_refusals_are_raised(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    change(aws, registry_as, pending["package"], ALICE)
    gone = run_decide(aws, catalog, pending["package"], sfn=RecordingStepFunctions(expired={"token-1"}))
    assert gone == DecisionOutcome(
        False,
        f"the promotion of fraud-detection from {JOB} is no longer waiting (TaskTimedOut); decision ignored",
        "fraud-detection",
        JOB,
        ALICE_ARN,
    )
    assert stored(aws)["status"] == {"S": "EXPIRED"}


def test_a_throttled_answer_is_raised_for_the_retry(
    aws: dict[str, Any], catalog: ModelCatalog, pending: dict[str, Any], registry_as: Callable[..., None]
) -> None:
    class Throttled(RecordingStepFunctions):
        def send_task_success(self, **request: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskSuccess")

    change(aws, registry_as, pending["package"], ALICE)
    with pytest.raises(ClientError, match="ThrottlingException"):
        run_decide(aws, catalog, pending["package"], sfn=Throttled())
    assert stored(aws)["status"] == {"S": "APPROVED"}  # decided; the retried invocation finds it already decided


def test_a_decision_without_a_clock_is_dated_now_in_utc(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    package = ask(aws, catalog, state, now=None)["model_package_arn"]
    change(aws, registry_as, package, ALICE)
    sfn = RecordingStepFunctions()
    before = datetime.now(UTC)
    outcome = decide(
        change_of(package),
        {catalog.id: catalog},
        dynamodb=aws["dynamodb"],
        stepfunctions=sfn,
        sagemaker=aws["sagemaker"],
        table=TABLE,
    )
    assert outcome.accepted
    decided = datetime.fromisoformat(json.loads(sfn.calls[0][1]["output"])["decided_at"].replace("Z", "+00:00"))
    assert decided.tzinfo is not None and before <= decided <= datetime.now(UTC)


def test_a_package_never_updated_is_attributed_to_its_creator(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> None:
    state = validated_state(aws, catalog, catalog_dir)
    registry_as(ALICE)
    package = ask(aws, catalog, state)["model_package_arn"]
    aws["sagemaker"].update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    registry_as(None)
    outcome = decide(
        change_of(package),
        {catalog.id: catalog},
        dynamodb=aws["dynamodb"],
        stepfunctions=RecordingStepFunctions(),
        sagemaker=Unattributed(aws["sagemaker"], dropped=("LastModifiedBy",)),
        table=TABLE,
        now=REQUESTED,
    )
    assert (outcome.accepted, outcome.identity) == (True, ALICE_ARN)
