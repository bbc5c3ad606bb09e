"""The one sentence an operator reads first: the outcome PublishResult records and why, for every way an execution
can end, and how a caught failure is named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from promotion.contract.state import (
    Approval,
    Claim,
    ClaimStatus,
    Comparison,
    Outcome,
    Pipeline,
    PromotionState,
    Restored,
    Rollout,
    RolloutAction,
    Validation,
)
from promotion.result.outcome import decide_outcome, describe_error, rollback_cause

CLAIM = Claim(
    status=ClaimStatus.CLAIMED,
    execution_name="exec-1",
    execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:exec-1",
    model="fraud-detection",
    release_id="20261120-140541-abcdef",
    tuning_job_name="fraud-xgb-tuning-0042",
    event_time=datetime(2026, 11, 20, 14, 5, 41, tzinfo=UTC),
)
STATE = PromotionState(claim=CLAIM)
PIPELINE = Pipeline(training_job_name="train-1", training_job_arn="arn:train-1", status="Completed")
COMPARISON = Comparison(status="Completed", decision="PASS", reason="AUC +0.012, CI [0.004, 0.020]")


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (None, "unknown error"),
        ({}, "unknown error"),
        ({"Error": "States.Timeout"}, "States.Timeout"),
        ({"Cause": "no name"}, "Error: no name"),
        ({"Error": "PipelineFailed", "Cause": "training job failed"}, "PipelineFailed: training job failed"),
        ({"Error": "X", "Cause": '{"errorMessage": "from Lambda", "comment": "c"}'}, "X: from Lambda"),
        ({"Error": "PromotionRejected", "Cause": '{"comment": "not now"}'}, "PromotionRejected: not now"),
        ({"Error": "X", "Cause": '{"errorType": "only"}'}, 'X: {"errorType": "only"}'),
        ({"Error": "X", "Cause": '["a list"]'}, 'X: ["a list"]'),
        ({"Error": "X", "Cause": ""}, "X"),
        ({"Error": "X", "Cause": {"already": "parsed"}}, "X: {'already': 'parsed'}"),
    ],
)
def test_a_caught_failure_is_named_with_its_message(error: dict[str, Any] | None, said: str) -> None:
    assert describe_error(error) == said


def test_why_rollback_ran() -> None:
    assert rollback_cause(STATE.model_copy(update={"error": {"Error": "E", "Cause": "c"}})) == "E: c"
    gate = Rollout(action=RolloutAction.ROLLBACK, reason="5xx ratio 2.1 over 1.5")
    assert rollback_cause(STATE.model_copy(update={"rollout": gate})) == "rollout gate: 5xx ratio 2.1 over 1.5"
    going = Rollout(action=RolloutAction.BAKE, reason="baking")
    assert rollback_cause(STATE.model_copy(update={"rollout": going})) == "rollback without a recorded cause"
    for decision in ("FAIL", "INCONCLUSIVE"):
        compared = COMPARISON.model_copy(update={"decision": decision, "reason": "CI includes 0"})
        assert rollback_cause(STATE.model_copy(update={"comparison": compared})) == (
            f"challenger not proven better than the champion ({decision}): CI includes 0"
        )
    assert rollback_cause(STATE.model_copy(update={"comparison": COMPARISON})) == "rollback without a recorded cause"
    assert rollback_cause(STATE) == "rollback without a recorded cause"


def outcome_of(**sections: Any) -> tuple[Outcome, str]:
    return decide_outcome(STATE.model_copy(update=sections))


def test_an_unclaimed_event_ends_as_its_claim_says() -> None:
    rejected = CLAIM.model_copy(update={"status": ClaimStatus.REJECTED, "reason": "no tag"})
    duplicate = CLAIM.model_copy(update={"status": ClaimStatus.DUPLICATE, "reason": "already claimed"})
    assert outcome_of(claim=rejected) == (Outcome.REJECTED, "no tag")
    assert outcome_of(claim=duplicate) == (Outcome.DUPLICATE, "already claimed")


def test_a_failed_rollback_is_a_failure_that_says_production_may_differ() -> None:
    assert outcome_of(
        error={"Error": "PipelineFailed", "Cause": "t"},
        rollback_error={"Error": "RollbackVerificationError", "Cause": "parameters differ"},
        rollback=Restored(restored=True, reason="restored"),
    ) == (
        Outcome.FAILED,
        "PipelineFailed: t; ROLLBACK FAILED (RollbackVerificationError: parameters differ): production may differ "
        "from its backup, restore it with the operator rollback",
    )


def test_a_rollback_says_why_and_what_it_restored() -> None:
    assert outcome_of(
        error={"Error": "PipelineFailed", "Cause": "t"}, rollback=Restored(restored=True, reason="back to r1")
    ) == (Outcome.ROLLED_BACK, "PipelineFailed: t; back to r1")


def test_a_failure_before_production_was_touched() -> None:
    assert outcome_of(error={"Error": "BackupMissing", "Cause": "no backup"}) == (
        Outcome.FAILED,
        "BackupMissing: no backup; production was not modified",
    )
    assert outcome_of(error={"Error": "PromotionRejected", "Cause": '{"errorMessage": "rejected by Bob: no"}'}) == (
        Outcome.REJECTED,
        "rejected by the approver: PromotionRejected: rejected by Bob: no",
    )


def test_a_rejected_candidate_lists_every_reason() -> None:
    validation = Validation(verdict="REJECTED", reasons=["accuracy low", "schema"], approval_timeout_seconds=3600)
    assert outcome_of(validation=validation) == (Outcome.REJECTED, "candidate rejected: accuracy low; schema")


def test_an_approval_that_did_not_come() -> None:
    validation = Validation(verdict="PASSED", approval_timeout_seconds=72 * 3600)
    assert outcome_of(validation=validation, approval=Approval(decision="expired")) == (
        Outcome.REJECTED,
        "approval expired: no decision within 72 h; production untouched",
    )
    assert outcome_of(validation=Validation(verdict="PASSED", approval_timeout_seconds=5400), approval=Approval(
        decision="expired"
    )) == (Outcome.REJECTED, "approval expired: no decision within 1.5 h; production untouched")  # fmt: skip
    assert outcome_of(approval=Approval(decision="expired")) == (
        Outcome.REJECTED,
        "approval expired: no decision within 0 h; production untouched",
    )
    assert outcome_of(approval=Approval(decision="reject", comment="too risky")) == (
        Outcome.REJECTED,
        "not approved: too risky",
    )
    assert outcome_of(approval=Approval(decision="reject", decided_by="Bob Chen", comment="FPR")) == (
        Outcome.REJECTED,
        "rejected by Bob Chen: FPR",
    )


def test_a_promotion_says_what_was_promoted_and_how_it_was_judged() -> None:
    head = (
        "release 20261120-140541-abcdef of fraud-detection promoted from fraud-xgb-tuning-0042; training job train-1 "
        "completed"
    )
    assert outcome_of(pipeline=PIPELINE) == (Outcome.PROMOTED, head)
    assert outcome_of(pipeline=PIPELINE, comparison=COMPARISON) == (
        Outcome.PROMOTED,
        f"{head}; comparison PASS: AUC +0.012, CI [0.004, 0.020]",
    )
    rollout = Rollout(action=RolloutAction.DONE, reason="100 % after 4 stages")
    assert outcome_of(pipeline=PIPELINE, comparison=COMPARISON, rollout=rollout) == (
        Outcome.PROMOTED,
        f"{head}; comparison PASS: AUC +0.012, CI [0.004, 0.020]; rollout: 100 % after 4 stages",
    )
    assert outcome_of(pipeline=PIPELINE, rollout=rollout) == (
        Outcome.PROMOTED,
        f"{head}; rollout: 100 % after 4 stages",
    )


def test_an_execution_that_stopped_part_way_failed() -> None:
    assert outcome_of() == (Outcome.FAILED, "execution ended before the promotion completed")
    running = PIPELINE.model_copy(update={"status": "InProgress"})
    assert outcome_of(pipeline=running) == (Outcome.FAILED, "execution ended before the promotion completed")
    assert outcome_of(approval=Approval(decision="approve")) == (
        Outcome.FAILED,
        "execution ended before the promotion completed",
    )
