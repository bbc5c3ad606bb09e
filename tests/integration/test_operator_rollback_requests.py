"""Operator rollback requests are carried out at most once, under the model's lock, and only for the release the
operator saw live (issue 19: the same request delivered four times walked production back R4 -> R1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promotion.catalog import ModelCatalog
from promotion.claims import ClaimStore
from promotion.models import ClaimStatus
from tests.conftest import TABLE, load_event
from tests.integration.helpers import (
    claimed_state,
    finish_promotion,
    operator_rollback,
    promote_another_release,
    promote_until_config,
    rollback_request,
    snapshot,
    validated_state,
)

EXEC_1 = "arn:aws:states:us-east-1:123456789012:execution:promotion:exec-1"


def three_releases(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, store: ClaimStore) -> list[Any]:
    """Releases R1, R2, R3 promoted one after the other; the snapshots after each."""
    first = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    finish_promotion(store, catalog, first)
    after = [snapshot(aws, catalog)]
    for index in (1, 2):
        promote_another_release(
            aws,
            catalog,
            catalog_dir,
            store,
            first,
            suffix=f"r{index}",
            time=f"2026-11-2{index + 1}T10:00:00Z",
            execution=f"exec-{index + 1}",
        )
        after.append(snapshot(aws, catalog))
    return after


def test_the_same_request_delivered_twice_restores_once(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    r1, r2, _ = three_releases(aws, catalog, catalog_dir, store)
    asked = rollback_request()
    first = operator_rollback(aws, catalog, store, asked)
    assert first.accepted, first.reason
    assert snapshot(aws, catalog) == r2
    for _ in range(3):  # EventBridge redelivery, Lambda's async retries, an operator re-sending a dead letter
        again = operator_rollback(aws, catalog, store, asked)
        assert not again.accepted
        assert "already handled" in again.reason
    assert snapshot(aws, catalog) == r2  # not walked back to R1
    assert store.lock_holder(catalog.id) is None
    assert snapshot(aws, catalog) != r1


def test_a_request_for_a_release_that_is_no_longer_live_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    stale = operator_rollback(aws, catalog, store, rollback_request(expected_release_id="20261101-000000-000000"))
    assert not stale.accepted
    assert "expected release 20261101-000000-000000" in stale.reason
    assert snapshot(aws, catalog) == r3


def test_a_promotion_cannot_claim_while_an_operator_rollback_holds_the_lock(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    asked = rollback_request()
    assert store.lock_for_operator(catalog.id, asked.id) is None
    event = load_event("tuning-job-completed.json")
    event["detail"]["HyperParameterTuningJobArn"] += "late"
    event["detail"]["HyperParameterTuningJobName"] += "late"
    waiting = claimed_state(aws, catalog_dir, event, execution="exec-late")
    assert waiting.claim.status == ClaimStatus.WAIT
    assert "operator-rollback:" in waiting.claim.reason
    store.release_operator_lock(catalog.id, asked.id)
    assert store.lock_holder(catalog.id) is None


def test_an_operator_rollback_is_refused_while_a_promotion_holds_the_lock_and_counts_as_handled(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    validated_state(aws, catalog, catalog_dir)  # exec-1 holds the model's lock and runs
    asked = rollback_request()
    refused = operator_rollback(aws, catalog, store, asked)
    assert not refused.accepted and "in flight" in refused.reason
    # Replayed after the promotion ended, it must not roll back the release that promotion put live.
    store.finish(model=catalog.id, tuning_job_arn=None, execution_arn=EXEC_1, outcome="PROMOTED")
    assert "already handled" in operator_rollback(aws, catalog, store, asked).reason


def test_a_retry_after_the_restore_finishes_the_request_without_stepping_back_again(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda retries an asynchronous invocation whose audit write failed: the restore already happened."""
    from promotion import operations

    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, _ = three_releases(aws, catalog, catalog_dir, store)
    asked = rollback_request()
    real_audit = operations.write_audit_record

    def failing_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(operations, "write_audit_record", failing_audit)
    with pytest.raises(RuntimeError, match="audit write failed"):
        operator_rollback(aws, catalog, store, asked)
    assert snapshot(aws, catalog) == r2
    assert store.lock_holder(catalog.id) is None  # released even though the request failed
    monkeypatch.setattr(operations, "write_audit_record", real_audit)
    retried = operator_rollback(aws, catalog, store, asked)
    assert retried.accepted, retried.reason
    assert retried.restored_release == r2_release(aws, catalog)
    assert snapshot(aws, catalog) == r2  # still R2: the retry did not restore R1


def test_a_second_delivery_while_the_first_restores_backs_off(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = rollback_request()
    # The first delivery recorded the request and holds the lock (it is restoring).
    assert store.lock_for_operator(catalog.id, f"{asked.id}/first") is None
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": f"ROLLBACK#{asked.id}"}, "status": {"S": "RECEIVED"}},
    )
    second = operator_rollback(aws, catalog, store, asked)
    assert not second.accepted and "being handled by another delivery" in second.reason
    assert snapshot(aws, catalog) == r3
    record = aws["dynamodb"].get_item(
        TableName=TABLE, Key={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": f"ROLLBACK#{asked.id}"}}
    )["Item"]
    assert record["status"]["S"] == "RECEIVED"  # not marked done by the delivery that backed off


def r2_release(aws: dict[str, Any], catalog: ModelCatalog) -> str:
    import yaml

    return str(yaml.safe_load(snapshot(aws, catalog)["config"])["release_id"])
