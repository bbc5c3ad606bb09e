"""PublishResult over moto: whatever the outcome, the model's lock is gone and the claim is done with that outcome,
and only once the decision report and the audit record are written. A PublishResult whose audit write fails for
good leaves the claim open and the lock held, so its retry (or the operator) finishes it; none is marked done with
no record of what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.claim.store import DONE, ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Outcome, Pipeline, PromotionState, Restored, Validation
from promotion.core.errors import REJECTION_ERROR
from promotion.result.audit import read_audit_record
from tests.conftest import TABLE
from tests.integration.helpers import publish_on, validated_state


class AuditRefusingDynamoDB:
    """moto's DynamoDB, except that PutItem of an audit record (`RELEASE#...`) is refused as IAM refuses it."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self.refused = 0

    def put_item(self, **request: Any) -> Any:
        if request["Item"]["sk"]["S"].startswith("RELEASE#"):
            self.refused += 1
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: dynamodb:PutItem"}}, "PutItem"
            )
        return self._dynamodb.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def _publish(aws: dict[str, Any], state: PromotionState, dynamodb: Any | None = None) -> Any:
    return publish_on(aws, state, dynamodb=dynamodb or aws["dynamodb"])


def _claim_item(aws: dict[str, Any], state: PromotionState) -> dict[str, Any]:
    item: dict[str, Any] = aws["dynamodb"].get_item(
        TableName=TABLE,
        Key={"pk": {"S": f"MODEL#{state.claim.model}"}, "sk": {"S": f"CLAIM#{state.claim.tuning_job_arn}"}},
        ConsistentRead=True,
    )["Item"]
    return item


def _ending(state: PromotionState, outcome: str) -> PromotionState:
    """The document PublishResult receives on each path to one outcome."""
    if outcome == "PROMOTED":
        return state.model_copy(
            update={"pipeline": Pipeline(training_job_name="t-1", training_job_arn="arn:t-1", status="Completed")}
        )
    if outcome == "REJECTED":
        return state.model_copy(update={"error": {"Error": REJECTION_ERROR, "Cause": '{"comment": "not now"}'}})
    if outcome == "ROLLED_BACK":
        return state.model_copy(
            update={
                "error": {"Error": "PipelineFailed", "Cause": "training job failed"},
                "rollback": Restored(restored=True, reason="production restored"),
            }
        )
    if outcome == "FAILED":
        return state.model_copy(
            update={
                "error": {"Error": "PipelineFailed", "Cause": "training job failed"},
                "rollback_error": {"Error": "RollbackVerificationError", "Cause": "parameters differ"},
            }
        )
    validation = Validation(verdict="REJECTED", reasons=["accuracy 0.7 is below 0.9"])
    return state.model_copy(update={"validation": validation, "approval": None})


@pytest.mark.parametrize("outcome", ["PROMOTED", "REJECTED", "ROLLED_BACK", "FAILED", "CANDIDATE_REJECTED"])
def test_every_outcome_ends_with_the_claim_done_and_the_lock_gone(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, outcome: str
) -> None:
    state = _ending(validated_state(aws, catalog, catalog_dir), outcome)
    store = ClaimStore(aws["dynamodb"], TABLE)
    assert store.lock_holder(catalog.id) is not None  # the claim took the model's lock
    expected = Outcome.REJECTED if outcome == "CANDIDATE_REJECTED" else Outcome(outcome)
    result = _publish(aws, state)
    assert result.outcome == expected
    assert result.lock_released
    assert store.lock_holder(catalog.id) is None
    claim = _claim_item(aws, state)
    assert (claim["status"]["S"], claim["outcome"]["S"]) == (DONE, expected.value)
    assert state.claim.release_id is not None
    audit = read_audit_record(aws["dynamodb"], TABLE, catalog.id, state.claim.release_id)
    assert audit is not None
    assert audit.outcome == expected.value


def test_an_audit_write_that_fails_for_good_leaves_the_claim_open_and_the_lock_held(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = _ending(validated_state(aws, catalog, catalog_dir), "PROMOTED")
    store = ClaimStore(aws["dynamodb"], TABLE)
    holder = store.lock_holder(catalog.id)
    refusing = AuditRefusingDynamoDB(aws["dynamodb"])
    with pytest.raises(ClientError, match="AccessDeniedException"):
        _publish(aws, state, dynamodb=refusing)
    assert refusing.refused == 1
    assert store.lock_holder(catalog.id) == holder
    assert _claim_item(aws, state)["status"]["S"] != DONE
    assert state.claim.release_id is not None
    assert read_audit_record(aws["dynamodb"], TABLE, catalog.id, state.claim.release_id) is None
    # The state machine's retry of PublishResult, once the write is allowed again, finishes what it began.
    result = _publish(aws, state)
    assert result.lock_released
    assert store.lock_holder(catalog.id) is None
    assert _claim_item(aws, state)["status"]["S"] == DONE
    assert read_audit_record(aws["dynamodb"], TABLE, catalog.id, state.claim.release_id) is not None


def test_an_audit_record_is_written_once_per_release_and_rewritten_only_by_its_execution(aws: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    from promotion.core.errors import AuditRecordExists
    from promotion.result.audit import AuditRecord, write_audit_record

    record = AuditRecord(
        model="fraud-detection",
        release_id="r1",
        outcome="PROMOTED",
        reason="why",
        recorded_at=datetime(2026, 11, 21, 8, tzinfo=UTC),
        execution_arn="arn:exec-1",
    )
    write_audit_record(aws["dynamodb"], TABLE, record)
    write_audit_record(aws["dynamodb"], TABLE, record.model_copy(update={"reason": "retried"}))  # its own retry
    item = aws["dynamodb"].get_item(
        TableName=TABLE, Key={"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": "RELEASE#r1"}}, ConsistentRead=True
    )["Item"]
    assert {key: item[key] for key in ("outcome", "recorded_at", "execution_arn")} == {
        "outcome": {"S": "PROMOTED"},
        "recorded_at": {"S": "2026-11-21T08:00:00+00:00"},
        "execution_arn": {"S": "arn:exec-1"},
    }
    with pytest.raises(AuditRecordExists) as raised:
        write_audit_record(aws["dynamodb"], TABLE, record.model_copy(update={"execution_arn": "arn:exec-2"}))
    assert str(raised.value) == (
        "the audit record of fraud-detection release r1 was written by another execution; arn:exec-2 does not "
        "overwrite it"
    )
    assert read_audit_record(aws["dynamodb"], TABLE, "fraud-detection", "r1") == record.model_copy(
        update={"reason": "retried"}
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        write_audit_record(AuditRefusingDynamoDB(aws["dynamodb"]), TABLE, record)
