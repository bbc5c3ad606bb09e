"""The outcome of an execution, derived from its document: one place decides PROMOTED / REJECTED / ROLLED_BACK /
FAILED and the one-sentence reason an operator reads first."""

from __future__ import annotations

import json
from typing import Any

from promotion.contract.state import ClaimStatus, Outcome, PromotionState, RolloutAction
from promotion.core.errors import REJECTION_ERROR


def describe_error(error: dict[str, Any] | None) -> str:
    """`Error: message` from a Step Functions Catch result (`{"Error", "Cause"}`, Cause possibly Lambda's JSON)."""
    if not error:
        return "unknown error"
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause")
    message = cause
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            message = parsed.get("errorMessage") or parsed.get("comment") or cause
    return f"{name}: {message}" if message else name


def rollback_cause(state: PromotionState) -> str:
    """Why Rollback ran: the failure Step Functions caught, or the comparison that did not prove the challenger."""
    if state.error is not None:
        return describe_error(state.error)
    rollout = state.rollout
    if rollout is not None and rollout.action == RolloutAction.ROLLBACK:
        return f"rollout gate: {rollout.reason}"
    comparison = state.comparison
    if comparison is not None and comparison.decision in ("FAIL", "INCONCLUSIVE"):
        return f"challenger not proven better than the champion ({comparison.decision}): {comparison.reason}"
    return "rollback without a recorded cause"


def decide_outcome(state: PromotionState) -> tuple[Outcome, str]:
    """Outcome and reason of the execution so far (PublishResult records this)."""
    claim = state.claim
    if claim.status == ClaimStatus.REJECTED:
        return Outcome.REJECTED, claim.reason
    if claim.status == ClaimStatus.DUPLICATE:
        return Outcome.DUPLICATE, claim.reason
    rollback_error = state.rollback_error
    if rollback_error:
        return Outcome.FAILED, (
            f"{describe_error(state.error)}; ROLLBACK FAILED ({describe_error(rollback_error)}): "
            "production may differ from its backup, restore it with the operator rollback"
        )
    if state.rollback is not None:
        return Outcome.ROLLED_BACK, f"{rollback_cause(state)}; {state.rollback.reason}"
    if state.error is not None:
        if state.error.get("Error") == REJECTION_ERROR:
            return Outcome.REJECTED, f"rejected by the approver: {describe_error(state.error)}"
        return Outcome.FAILED, f"{describe_error(state.error)}; production was not modified"
    if state.validation is not None and state.validation.verdict == "REJECTED":
        return Outcome.REJECTED, "candidate rejected: " + "; ".join(state.validation.reasons)
    if state.approval is not None and state.approval.decision == "expired":
        hours = (state.validation.approval_timeout_seconds / 3600) if state.validation else 0
        return Outcome.REJECTED, f"approval expired: no decision within {hours:g} h; production untouched"
    if state.approval is not None and state.approval.decision == "reject":
        if state.approval.decided_by is None:
            return Outcome.REJECTED, f"not approved: {state.approval.comment}"
        return Outcome.REJECTED, f"rejected by {state.approval.decided_by}: {state.approval.comment}"
    if state.pipeline is not None and state.pipeline.status == "Completed":
        comparison = state.comparison
        judged = f"; comparison {comparison.decision}: {comparison.reason}" if comparison is not None else ""
        rollout = state.rollout
        if rollout is not None:
            judged += f"; rollout: {rollout.reason}"
        return Outcome.PROMOTED, (
            f"release {claim.release_id} of {claim.model} promoted from {claim.tuning_job_name}; "
            f"training job {state.pipeline.training_job_name} completed{judged}"
        )
    return Outcome.FAILED, "execution ended before the promotion completed"
