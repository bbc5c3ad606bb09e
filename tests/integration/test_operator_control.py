"""Operator controls over moto: who may ask, when a request is refused (and why), how the control record moves, and
AwaitOperator's races with requests that come in as it begins to hold. The happy paths through the state machine
are in tests/e2e/test_operator_controls.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import endpoint_config_name, shadow_endpoint_config_name
from promotion.contract.state import OperatorDecision, Rollout, RolloutAction
from promotion.rollout.control import (
    MAX_PAUSES,
    ControlOutcome,
    ControlRecord,
    candidate_packages,
    control_key,
    handle_request,
    hold_rollout,
    log_entries,
    pending_request,
)
from tests.conftest import TABLE
from tests.integration.helpers import OPERATOR, register_release, state_change

RELEASE = "20261201-100000-abc123"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ALICE = ("DataScientists", "alice@example.com")  # an approver, not an operator


class RecordingStepFunctions:
    """SendTaskSuccess as the tests need to see it: what was sent, or the error Step Functions answers for a task
    that no longer waits."""

    def __init__(self, gone: str | None = None) -> None:
        self.sent: list[dict[str, str]] = []
        self.gone = gone

    def send_task_success(self, **request: str) -> dict[str, Any]:
        if self.gone:
            raise ClientError({"Error": {"Code": self.gone, "Message": "Task Timed Out"}}, "SendTaskSuccess")
        self.sent.append(request)
        return {}


def rolling_out(aws: dict[str, Any], catalog: ModelCatalog, release: str = RELEASE, *, shadow: bool = False) -> str:
    """The release's promotion holds the model's lock and its endpoint serves the release's A/B config (or its
    shadow stage's); the release's candidate package (Approved)."""
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"MODEL#{catalog.id}"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "arn:x"},
            "release_id": {"S": release},
        },
    )
    assert catalog.rollout is not None
    sagemaker = aws["sagemaker"]
    sagemaker.create_model(
        ModelName="challenger", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", PrimaryContainer={"Image": "i"}
    )
    config = (shadow_endpoint_config_name if shadow else endpoint_config_name)(catalog.id, release)
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "challenger", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sagemaker.create_endpoint(EndpointName=catalog.rollout.endpoint_name, EndpointConfigName=config)
    return register_release(aws, catalog, release)


Ask = Callable[..., ControlOutcome]


@pytest.fixture
def ask(aws: dict[str, Any], catalog: ModelCatalog, registry_as: Callable[[tuple[str, str] | None], None]) -> Ask:
    """`ask(package, "Pause", by=OPERATOR, now=NOW, stepfunctions=...)`: the lifecycle request as the person sets it,
    then the operator control function's handling of SageMaker's event."""

    def act(
        package_arn: str,
        status: str,
        reason: str = "why",
        *,
        by: tuple[str, str] = OPERATOR,
        now: datetime = NOW,
        stepfunctions: RecordingStepFunctions | None = None,
    ) -> ControlOutcome:
        registry_as(by)
        aws["sagemaker"].update_model_package(
            ModelPackageArn=package_arn,
            ModelLifeCycle={"Stage": "Rollout", "StageStatus": status, "StageDescription": reason},
        )
        registry_as(None)
        return handle_request(
            state_change(aws, package_arn),
            {catalog.id: catalog},
            dynamodb=aws["dynamodb"],
            stepfunctions=stepfunctions or RecordingStepFunctions(),
            sagemaker=aws["sagemaker"],
            table=TABLE,
            now=now,
        )

    return act


def record(aws: dict[str, Any], catalog: ModelCatalog) -> dict[str, Any]:
    return dict(
        aws["dynamodb"].get_item(TableName=TABLE, Key=control_key(catalog.id, RELEASE), ConsistentRead=True).get("Item")
        or {}
    )


def lifecycle(aws: dict[str, Any], package_arn: str) -> dict[str, str]:
    return dict(aws["sagemaker"].describe_model_package(ModelPackageName=package_arn)["ModelLifeCycle"])


def hold(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    kind: str = "paused",
    stepfunctions: RecordingStepFunctions | None = None,
) -> dict[str, Any]:
    rollout = Rollout(action=RolloutAction.HOLD, hold=kind, hold_seconds=3600, reason="held", endpoint_name="e")
    return hold_rollout(
        aws["dynamodb"], stepfunctions or RecordingStepFunctions(), TABLE, catalog.id, RELEASE, rollout, "token-1", NOW
    )


def test_a_pause_is_recorded_for_the_next_look_and_answered_on_the_package(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    outcome = ask(package, "Pause", "fraud spike")
    assert (outcome.accepted, outcome.request, outcome.by) == (True, "pause", "Omar Haddad")
    pending = pending_request(record(aws, catalog))
    assert pending is not None and (pending.action.value, pending.by, pending.reason) == (
        "Pause",
        "Omar Haddad",
        "fraud spike",
    )
    assert pending.identity == "arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com"
    assert lifecycle(aws, package) == {
        "Stage": "Rollout",
        "StageStatus": "PauseAccepted",
        "StageDescription": outcome.reason,
    }
    # The answer is no request: SageMaker's event for it is ignored (the rule does not even deliver it).
    again = handle_request(
        state_change(aws, package),
        {catalog.id: catalog},
        dynamodb=aws["dynamodb"],
        stepfunctions=RecordingStepFunctions(),
        sagemaker=aws["sagemaker"],
        table=TABLE,
        now=NOW,
    )
    assert again.ignored and "PauseAccepted" in again.reason
    assert [entry["outcome"] for entry in log_entries(record(aws, catalog))] == ["accepted"]


def test_someone_who_is_not_an_operator_is_refused_and_the_refusal_is_on_record(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    outcome = ask(package, "Abort", "I think it is bad", by=ALICE)
    assert not outcome.accepted
    assert "assumed-role/DataScientists/alice@example.com is not an operator of fraud-detection" in outcome.reason
    assert pending_request(record(aws, catalog)) is None
    (entry,) = log_entries(record(aws, catalog))
    assert (entry["request"], entry["outcome"], entry["by"]) == ("abort", "refused", "")
    assert lifecycle(aws, package)["StageStatus"] == "AbortRefused"


def test_nothing_running_or_not_rolling_out_is_refused(aws: dict[str, Any], catalog: ModelCatalog, ask: Ask) -> None:
    package = rolling_out(aws, catalog)
    aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": "LOCK"}})
    outcome = ask(package, "Pause")
    assert not outcome.accepted
    assert outcome.reason == f"no promotion of fraud-detection is running release {RELEASE}: nothing to control"
    # The lock held, but the endpoint not (yet, or no longer) on the release's A/B config: approval, training,
    # or the promotion's last step.
    rolling_out_again = "20261201-110000-def456"
    other = rolling_out(aws, catalog, rolling_out_again)
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"MODEL#{catalog.id}"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "arn:x"},
            "release_id": {"S": RELEASE},
        },
    )
    assert other
    refused = ask(package, "Pause")
    assert not refused.accepted and f"release {RELEASE} is not in its A/B rollout" in refused.reason


def test_requests_the_state_does_not_allow_are_refused(aws: dict[str, Any], catalog: ModelCatalog, ask: Ask) -> None:
    package = rolling_out(aws, catalog)
    resumed = ask(package, "Resume")
    assert not resumed.accepted and resumed.reason == f"release {RELEASE} is not paused or held: nothing to resume"
    assert ask(package, "Abort").accepted
    second = ask(package, "Pause")
    assert not second.accepted
    assert second.reason.startswith(f"release {RELEASE} already has a pending request: abort by Omar Haddad (arn:")
    promote_now = ask(package, "PromoteNow")
    assert not promote_now.accepted and "already has a pending request: abort" in promote_now.reason
    assert pending_request(record(aws, catalog)).action.value == "Abort"  # type: ignore[union-attr]


def test_an_abort_or_promote_now_replaces_a_pause_not_taken_up_and_a_resume_cancels_it(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    cancelled = ask(package, "Resume", "never mind")
    assert cancelled.accepted and "cancelled before it took effect" in cancelled.reason
    assert pending_request(record(aws, catalog)) is None
    assert ask(package, "Pause").accepted
    assert ask(package, "PromoteNow", "ship").accepted
    assert pending_request(record(aws, catalog)).action.value == "PromoteNow"  # type: ignore[union-attr]


def test_pauses_are_limited_per_promotion(aws: dict[str, Any], catalog: ModelCatalog, ask: Ask) -> None:
    package = rolling_out(aws, catalog)
    for _ in range(MAX_PAUSES):
        assert ask(package, "Pause").accepted
        assert ask(package, "Resume").accepted
    refused = ask(package, "Pause")
    assert not refused.accepted and f"paused {MAX_PAUSES} times already" in refused.reason


def test_a_held_rollout_is_answered_once_with_the_operators_decision(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    assert hold(aws, catalog)["held"] is True
    item = record(aws, catalog)
    assert (item["task_token"]["S"], item["held_for"]["S"], "pending_request" in item) == ("token-1", "paused", False)
    assert not ask(package, "Pause").accepted  # already held
    stepfunctions = RecordingStepFunctions()
    answered = ask(package, "PromoteNow", "fixes the incident", stepfunctions=stepfunctions)
    assert answered.accepted and "(paused)" in answered.reason
    (sent,) = stepfunctions.sent
    decision = OperatorDecision.model_validate_json(sent["output"])
    assert sent["taskToken"] == "token-1"
    assert (decision.decision, decision.by, decision.reason) == ("promote-now", "Omar Haddad", "fixes the incident")
    assert "task_token" not in record(aws, catalog)
    # Answered: a second answer finds nothing held.
    late = ask(package, "Abort")
    assert late.accepted and "next look" in late.reason  # it becomes a request for the rollout's next look


def test_an_expired_hold_refuses_answers_and_a_timed_out_task_says_so(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    hold(aws, catalog, kind="inconclusive")
    expired = ask(package, "Resume", now=NOW + timedelta(hours=2))
    assert not expired.accepted and "expired at 2026-12-01T13:00:00+00:00: too late to resume" in expired.reason
    # Within the window, but Step Functions already timed the task out (its clock is the one that counts).
    gone = ask(package, "Resume", stepfunctions=RecordingStepFunctions(gone="TaskTimedOut"))
    assert not gone.accepted and "no longer waits (TaskTimedOut)" in gone.reason


def test_a_request_that_comes_in_as_the_rollout_holds_is_answered_by_the_hold_itself(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    assert ask(package, "Abort", "stop now").accepted  # after EvaluateStage saw the pause, before AwaitOperator
    stepfunctions = RecordingStepFunctions()
    held = hold(aws, catalog, stepfunctions=stepfunctions)
    assert held["held"] is False and "abort by Omar Haddad" in held["reason"]
    (sent,) = stepfunctions.sent
    assert OperatorDecision.model_validate_json(sent["output"]).decision == "abort"
    assert "pending_request" not in record(aws, catalog) and "task_token" not in record(aws, catalog)


def test_a_pause_cancelled_as_the_rollout_holds_resumes_it_at_once(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    assert ask(package, "Resume", "false alarm").accepted  # cancelled before the hold began
    stepfunctions = RecordingStepFunctions()
    held = hold(aws, catalog, stepfunctions=stepfunctions)
    assert held == {"held": False, "reason": "the pause was cancelled before the rollout stopped"}
    decision = OperatorDecision.model_validate_json(stepfunctions.sent[0]["output"])
    assert (decision.decision, decision.by) == ("resume", "Omar Haddad")


def test_an_inconclusive_hold_keeps_a_pause_that_came_in_meanwhile_as_held(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    assert hold(aws, catalog, kind="inconclusive")["held"] is True
    item = record(aws, catalog)
    assert item["held_for"]["S"] == "inconclusive" and "pending_request" not in item


def test_the_cli_finds_the_running_release_and_its_candidate(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    package = rolling_out(aws, catalog)
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"MODEL#{catalog.id}"},
            "sk": {"S": "APPROVAL#job-1"},
            "release_id": {"S": RELEASE},
            "model_package_arn": {"S": package},
            "task_token": {"S": "secret"},
        },
    )
    assert candidate_packages(aws["dynamodb"], TABLE, catalog.id) == (RELEASE, {RELEASE: package})
    aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": "LOCK"}})
    assert candidate_packages(aws["dynamodb"], TABLE, catalog.id) == (None, {RELEASE: package})


def test_the_log_is_bounded(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    store = ControlRecord(aws["dynamodb"], TABLE, catalog.id, RELEASE)
    entry = {"request": "pause", "reason": "x" * 5000}
    results = [store.log(entry, NOW) for _ in range(101)]
    assert results == [True] * 100 + [False]
    assert len(store.entries()) == 100 and len(store.entries()[0]["reason"]) == 1024


def test_after_a_hold_expired_the_rollout_still_takes_requests_but_not_a_resume(
    aws: dict[str, Any], catalog: ModelCatalog, ask: Ask
) -> None:
    """on_hold_expiry continue: the rollout goes on, so an abort is recorded for its next look; only a resume of
    the expired hold is too late."""
    package = rolling_out(aws, catalog)
    hold(aws, catalog, kind="inconclusive")
    later = NOW + timedelta(hours=2)
    resumed = ask(package, "Resume", now=later)
    assert not resumed.accepted and "too late to resume" in resumed.reason
    aborted = ask(package, "Abort", now=later)
    assert aborted.accepted and "next look" in aborted.reason


def test_a_retried_hold_keeps_holding_with_its_new_token(aws: dict[str, Any], catalog: ModelCatalog, ask: Ask) -> None:
    package = rolling_out(aws, catalog)
    assert ask(package, "Pause").accepted
    assert hold(aws, catalog)["held"] is True
    stepfunctions = RecordingStepFunctions()
    rollout = Rollout(action=RolloutAction.HOLD, hold="paused", hold_seconds=3600, reason="held", endpoint_name="e")
    again = hold_rollout(aws["dynamodb"], stepfunctions, TABLE, catalog.id, RELEASE, rollout, "token-2", NOW)
    assert again["held"] is True and stepfunctions.sent == []  # not taken for a cancelled pause
    assert record(aws, catalog)["task_token"]["S"] == "token-2"


def test_a_rollout_in_its_shadow_stage_takes_requests(aws: dict[str, Any], catalog: ModelCatalog, ask: Ask) -> None:
    package = rolling_out(aws, catalog, shadow=True)
    assert ask(package, "Abort", "the shadow's answers look wrong").accepted
