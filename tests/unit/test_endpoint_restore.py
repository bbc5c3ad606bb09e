"""Rollback's endpoint restore, one step per run (promotion.production.restore.restore_endpoint_step), against a fake
endpoint
that does exactly what each call asks or, when told, what a failed SageMaker update does: every branch converges or
raises, never loops, and never sends weights for a variant the endpoint does not have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.contract.state import Restored
from promotion.production.backup import BackedUpConfig, BackedUpEndpoint, BackupRecord
from promotion.production.restore import DRAIN, WEIGHTS, RollbackVerificationError, restore_endpoint_step
from promotion.rollout.steps import MAX_ENDPOINT_POLLS

NAME = "fraud-detection-prod"
ORIGINAL, ROLLOUT, FINAL = "config-original", "config-rollout", "config-final"
CHAMPION, CHALLENGER = "champion", "challenger"


class FakeEndpoint:
    """DescribeEndpoint / UpdateEndpoint / UpdateEndpointWeightsAndCapacities of one endpoint. A change leaves it
    Updating until `finish()`; `fail_next` makes the next change fail (InService on what it had, FailureReason)."""

    def __init__(self, config: str, weights: dict[str, float], configs: dict[str, dict[str, float]]) -> None:
        self.config, self.weights, self.configs = config, dict(weights), configs
        self.status, self.pending, self.fail_next, self.busy = "InService", None, False, False
        self.calls: list[tuple[str, Any]] = []
        self.failure: str | None = None

    @staticmethod
    def _check_name(operation: str, name: str) -> None:
        if name != NAME:  # SageMaker's answer for an endpoint it does not have
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": f'Could not find endpoint "{name}".'}},
                operation,
            )

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # boto3 parameter names
        self._check_name("DescribeEndpoint", EndpointName)
        answer = {
            "EndpointName": EndpointName,
            "EndpointConfigName": self.config,
            "EndpointStatus": self.status,
            "ProductionVariants": [{"VariantName": v, "CurrentWeight": w} for v, w in self.weights.items()],
        }
        if self.failure:
            answer["FailureReason"] = self.failure
        return answer

    def _begin(self, change: Any) -> None:
        if self.busy or self.status != "InService":
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": f'Cannot update in-progress endpoint "{NAME}".'}},
                "UpdateEndpoint",
            )
        self.status, self.pending = "Updating", change

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str) -> None:
        self._check_name("UpdateEndpoint", EndpointName)
        self.calls.append(("UpdateEndpoint", EndpointConfigName))
        self._begin(("config", EndpointConfigName))

    def update_endpoint_weights_and_capacities(self, EndpointName: str, DesiredWeightsAndCapacities: list) -> None:
        self._check_name("UpdateEndpointWeightsAndCapacities", EndpointName)
        desired = {d["VariantName"]: d["DesiredWeight"] for d in DesiredWeightsAndCapacities}
        assert set(desired) <= set(self.weights), f"weights for variants the endpoint lacks: {desired}"
        self.calls.append(("UpdateEndpointWeightsAndCapacities", desired))
        self._begin(("weights", desired))

    def finish(self) -> None:
        kind, value = self.pending
        self.status, self.pending = "InService", None
        if self.fail_next:
            self.fail_next, self.failure = False, "the update failed"
            return
        self.failure = None
        if kind == "config":
            self.config, self.weights = value, dict(self.configs[value])
        else:
            self.weights.update(value)


def record() -> BackupRecord:
    return BackupRecord(
        model="fraud-detection",
        release_id="r2",
        taken_at=datetime(2026, 12, 1, tzinfo=UTC),
        prefix="/fraud-detection/hyperparameters",
        parameters={},
        config=BackedUpConfig(key="production-model-config.yaml", existed=False),
        endpoint=BackedUpEndpoint(name=NAME, config_name=ORIGINAL, weights={CHAMPION: 1.0}),
    )


CONFIGS = {ORIGINAL: {CHAMPION: 1.0}, ROLLOUT: {CHAMPION: 1.0, CHALLENGER: 0.0}, FINAL: {CHALLENGER: 1.0}}


def progress(step: Any) -> Restored:
    """What Rollback's output carries into its next run."""
    return Restored(
        restored=False,
        reason="",
        endpoint_pending=step.pending,
        endpoint_requested=step.requested,
        endpoint_polls=step.polls,
        endpoint_action=step.action,
    )


def run_to_the_end(endpoint: FakeEndpoint, limit: int = 20) -> list[str]:
    """Rollback's loop: a step, then (the wait) SageMaker finishes what it was asked, until done."""
    actions, previous = [], None
    for _ in range(limit):
        step = restore_endpoint_step(endpoint, record(), previous)
        actions.append(step.action)
        if not step.pending:
            return actions
        if endpoint.pending is not None:
            endpoint.finish()
        previous = progress(step)
    raise AssertionError(f"no end after {limit} steps: {actions}")


def test_mid_rollout_traffic_comes_off_the_challenger_first_then_the_original_config() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    run_to_the_end(endpoint)
    assert endpoint.calls == [
        ("UpdateEndpointWeightsAndCapacities", {CHAMPION: 1.0, CHALLENGER: 0.0}),
        ("UpdateEndpoint", ORIGINAL),
    ]
    assert (endpoint.config, endpoint.weights) == (ORIGINAL, {CHAMPION: 1.0})


def test_after_promote_challenger_the_original_config_comes_back_without_a_weight_call() -> None:
    endpoint = FakeEndpoint(FINAL, {CHALLENGER: 1.0}, CONFIGS)
    run_to_the_end(endpoint)
    assert endpoint.calls == [("UpdateEndpoint", ORIGINAL)]  # no weights for the champion, which is gone


def test_an_endpoint_still_changing_is_waited_for_before_anything_is_sent() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 1.0, CHALLENGER: 0.0}, CONFIGS)
    endpoint.status, endpoint.pending = "Updating", ("weights", {CHAMPION: 0.9, CHALLENGER: 0.1})
    first = restore_endpoint_step(endpoint, record(), None)
    assert first.pending and endpoint.calls == [] and "Updating" in first.action


def test_a_failed_update_back_is_reported_not_retried_forever() -> None:
    endpoint = FakeEndpoint(FINAL, {CHALLENGER: 1.0}, CONFIGS)
    step = restore_endpoint_step(endpoint, record(), None)
    endpoint.fail_next = True
    endpoint.finish()
    with pytest.raises(RollbackVerificationError, match="failed: it still serves config-final"):
        restore_endpoint_step(endpoint, record(), progress(step))


def test_weights_that_did_not_take_are_reported() -> None:
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 0.4}, CONFIGS)
    step = restore_endpoint_step(endpoint, record(), None)
    assert step.requested == WEIGHTS
    endpoint.fail_next = True
    endpoint.finish()
    with pytest.raises(RollbackVerificationError, match="not the backed-up"):
        restore_endpoint_step(endpoint, record(), progress(step))


def test_a_change_refused_as_in_progress_is_made_again_after_the_wait() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    endpoint.busy = True  # someone else's change began between the look and the call
    refused = restore_endpoint_step(endpoint, record(), None)
    assert refused.pending and refused.requested is None and "refused" in refused.action
    endpoint.busy = False
    again = restore_endpoint_step(endpoint, record(), progress(refused))
    assert again.requested == DRAIN


def test_an_endpoint_that_never_finishes_changing_ends_the_loop() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 1.0, CHALLENGER: 0.0}, CONFIGS)
    endpoint.status = "Updating"
    step = restore_endpoint_step(endpoint, record(), None)
    stuck = progress(step).model_copy(update={"endpoint_polls": MAX_ENDPOINT_POLLS})
    with pytest.raises(RollbackVerificationError, match="still Updating"):
        restore_endpoint_step(endpoint, record(), stuck)


def test_an_endpoint_already_as_backed_up_is_left_alone() -> None:
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 1.0}, CONFIGS)
    assert run_to_the_end(endpoint) == ["unchanged"]
    assert endpoint.calls == []


def test_each_step_says_what_it_did_and_the_last_says_where_the_endpoint_is() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    assert run_to_the_end(endpoint) == [
        f"endpoint {NAME}: traffic back on {CHAMPION}",
        f"endpoint {NAME}: back to config {ORIGINAL}",
        f"endpoint {NAME} back on {ORIGINAL} ({CHAMPION})",
    ]
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 0.4}, CONFIGS)
    assert run_to_the_end(endpoint) == [
        f"endpoint {NAME}: weights back to {{'{CHAMPION}': 1.0}}",
        f"endpoint {NAME} back on {ORIGINAL} ({CHAMPION})",
    ]


def test_a_drain_names_every_champion_variant_still_on_the_endpoint() -> None:
    configs = {**CONFIGS, "two": {"a": 0.5, "b": 0.5}, "three": {"a": 0.2, "b": 0.2, CHALLENGER: 0.6}}
    endpoint = FakeEndpoint("three", {"a": 0.2, "b": 0.2, CHALLENGER: 0.6}, configs)
    saved = record().model_copy(
        update={"endpoint": BackedUpEndpoint(name=NAME, config_name="two", weights={"a": 0.5, "b": 0.5})}
    )
    step = restore_endpoint_step(endpoint, saved, None)
    assert step.action == f"endpoint {NAME}: traffic back on a, b"
    assert endpoint.calls == [("UpdateEndpointWeightsAndCapacities", {"a": 0.5, "b": 0.5, CHALLENGER: 0.0})]
    previous = None
    while step.pending:
        endpoint.finish()
        previous = progress(step)
        step = restore_endpoint_step(endpoint, saved, previous)
    assert step.action == f"endpoint {NAME} back on two (a, b)"


def test_a_challenger_already_without_traffic_is_not_drained_first() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 1.0, CHALLENGER: 0.0}, CONFIGS)
    run_to_the_end(endpoint)
    assert endpoint.calls == [("UpdateEndpoint", ORIGINAL)]


def test_every_call_resets_the_poll_count_and_every_wait_counts_one_more() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    waited = Restored(restored=False, reason="", endpoint_pending=True, endpoint_requested=None, endpoint_polls=3)
    drained = restore_endpoint_step(endpoint, record(), waited)
    assert (drained.pending, drained.requested, drained.polls) == (True, DRAIN, 0)
    updating = restore_endpoint_step(endpoint, record(), progress(drained))
    assert (updating.pending, updating.requested, updating.polls) == (True, DRAIN, 1)
    assert updating.action == f"endpoint {NAME} is Updating; waiting to restore it"
    endpoint.finish()
    back = restore_endpoint_step(endpoint, record(), progress(updating))
    assert (back.requested, back.polls) == (f"UpdateEndpoint:{ORIGINAL}", 0)
    endpoint.finish()
    weights = FakeEndpoint(ORIGINAL, {CHAMPION: 0.4}, CONFIGS)
    assert restore_endpoint_step(weights, record(), waited).polls == 0


def test_a_finished_step_is_not_pending_and_a_step_without_a_previous_run_starts_at_zero_polls() -> None:
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 1.0}, CONFIGS)
    done = restore_endpoint_step(endpoint, record(), None)
    assert (done.pending, done.action, done.requested, done.polls) == (False, "unchanged", None, 0)
    endpoint.status = "Updating"
    waiting = restore_endpoint_step(endpoint, record(), None)
    assert (waiting.pending, waiting.requested, waiting.polls) == (True, None, 0)
    not_pending = Restored(restored=False, reason="", endpoint_pending=False, endpoint_polls=9)
    assert restore_endpoint_step(endpoint, record(), not_pending).polls == 0


def test_an_endpoint_as_backed_up_after_a_wait_is_reported_back_not_unchanged() -> None:
    """The previous run waited (another change was under way, no call made); the endpoint is now as backed up."""
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 1.0}, CONFIGS)
    waited = Restored(restored=False, reason="", endpoint_pending=True, endpoint_requested=None, endpoint_polls=1)
    step = restore_endpoint_step(endpoint, record(), waited)
    assert (step.pending, step.action) == (False, f"endpoint {NAME} back on {ORIGINAL} ({CHAMPION})")


def test_waiting_ends_exactly_after_the_last_allowed_poll() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 1.0, CHALLENGER: 0.0}, CONFIGS)
    endpoint.status = "Updating"
    last = Restored(restored=False, reason="", endpoint_pending=True, endpoint_polls=MAX_ENDPOINT_POLLS - 1)
    assert restore_endpoint_step(endpoint, record(), last).polls == MAX_ENDPOINT_POLLS
    over = last.model_copy(update={"endpoint_polls": MAX_ENDPOINT_POLLS})
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), over)
    assert str(raised.value) == f"endpoint {NAME} still Updating after {MAX_ENDPOINT_POLLS + 1} polls"


def test_a_refusal_is_waited_for_with_what_was_last_asked_until_the_last_allowed_poll() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    endpoint.busy = True
    last = Restored(
        restored=False,
        reason="",
        endpoint_pending=True,
        endpoint_requested=DRAIN,
        endpoint_polls=MAX_ENDPOINT_POLLS - 1,
    )
    refused = restore_endpoint_step(endpoint, record(), last)
    assert (refused.pending, refused.requested, refused.polls) == (True, DRAIN, MAX_ENDPOINT_POLLS)
    assert refused.action == (
        "SageMaker refused the change (An error occurred (ValidationException) when calling the UpdateEndpoint "
        f'operation: Cannot update in-progress endpoint "{NAME}".); trying again after the wait'
    )
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), progress(refused))
    assert str(raised.value).startswith(
        f"endpoint {NAME} still refuses changes: An error occurred (ValidationException)"
    )


def test_a_refusal_other_than_in_progress_is_raised_as_is() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    saved = record().model_copy(update={"endpoint": BackedUpEndpoint(name="gone", config_name=ORIGINAL, weights={})})
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, saved, None)
    assert str(raised.value) == f"endpoint gone no longer exists; the backup says it served {ORIGINAL}"

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateEndpoint")

    endpoint.update_endpoint_weights_and_capacities = deny  # type: ignore[method-assign]
    with pytest.raises(ClientError, match="AccessDenied"):
        restore_endpoint_step(endpoint, record(), None)


def test_an_endpoint_in_a_failed_state_is_left_to_a_person_with_sagemakers_reason() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    endpoint.status, endpoint.failure = "Failed", "capacity error"
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), None)
    assert str(raised.value) == f"endpoint {NAME} is Failed (capacity error); restore it by hand"
    endpoint.failure = None
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), None)
    assert str(raised.value) == f"endpoint {NAME} is Failed (no FailureReason given); restore it by hand"


def test_the_failure_messages_name_the_endpoint_config_weights_and_reason() -> None:
    endpoint = FakeEndpoint(FINAL, {CHALLENGER: 1.0}, CONFIGS)
    step = restore_endpoint_step(endpoint, record(), None)
    endpoint.fail_next = True
    endpoint.finish()
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), progress(step))
    assert str(raised.value) == (
        f"UpdateEndpoint of {NAME} back to {ORIGINAL} failed: it still serves {FINAL} (the update failed)"
    )
    endpoint = FakeEndpoint(ORIGINAL, {CHAMPION: 0.4}, CONFIGS)
    step = restore_endpoint_step(endpoint, record(), None)
    endpoint.fail_next = True
    endpoint.finish()
    with pytest.raises(RollbackVerificationError) as raised:
        restore_endpoint_step(endpoint, record(), progress(step))
    assert str(raised.value) == (
        f"endpoint {NAME} serves {ORIGINAL} with weights {{'{CHAMPION}': 0.4}}, not the backed-up "
        f"{{'{CHAMPION}': 1.0}} (the update failed)"
    )


def test_without_an_endpoint_in_the_backup_or_a_client_nothing_is_asked() -> None:
    endpoint = FakeEndpoint(ROLLOUT, {CHAMPION: 0.5, CHALLENGER: 0.5}, CONFIGS)
    step = restore_endpoint_step(endpoint, record().model_copy(update={"endpoint": None}), None)
    assert (step.pending, step.action) == (False, "none")
    assert restore_endpoint_step(None, record(), None).action == "none"
    assert endpoint.calls == []
