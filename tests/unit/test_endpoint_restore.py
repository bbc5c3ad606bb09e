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

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # boto3 parameter names
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
        self.calls.append(("UpdateEndpoint", EndpointConfigName))
        self._begin(("config", EndpointConfigName))

    def update_endpoint_weights_and_capacities(self, EndpointName: str, DesiredWeightsAndCapacities: list) -> None:
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
