"""Operator rollback requests are what AWS proves: a catalog operator's rejection of the live release's package in
the Model Registry. Each is carried out at most once, under the model's lock, and only for the release that is live
(issue 19: the same request delivered four times walked production back R4 -> R1; `requested_by` was free text)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import ClaimStatus
from promotion.production.config import parse_config
from promotion.result.audit import list_audit_records
from tests.conftest import TABLE, load_event
from tests.integration.helpers import (
    OPERATOR,
    OPERATOR_ROLLBACK_EXECUTION,
    claimed_state,
    finish_promotion,
    operator_rollback,
    promote_another_release,
    promote_until_config,
    put_request_record,
    reject_live_release,
    request_record,
    snapshot,
    state_change,
    validated_state,
)

Act = Callable[[tuple[str, str] | None], None]
ALICE = ("DataScientists", "alice@example.com")  # an approver, with the grant, but not an operator


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


def package_of(snap: dict[str, Any]) -> str:
    arn = parse_config(snap["config"]).model_package_arn
    assert arn is not None
    return arn


def package_status(aws: dict[str, Any], arn: str) -> tuple[str, str]:
    described = aws["sagemaker"].describe_model_package(ModelPackageName=arn)
    return described["ModelApprovalStatus"], described.get("ApprovalDescription", "")


def test_an_operators_rejection_of_the_live_release_restores_the_previous_one_and_records_who(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, r3 = three_releases(aws, catalog, catalog_dir, store)
    done = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as, reason="FPR x2"))
    assert done.accepted, done.reason
    assert snapshot(aws, catalog) == r2
    identity = f"arn:aws:sts::123456789012:assumed-role/{OPERATOR[0]}/{OPERATOR[1]}"
    assert (done.requested_by, done.requested_by_identity, done.request_reason) == ("Omar Haddad", identity, "FPR x2")
    (record,) = [one for one in list_audit_records(aws["dynamodb"], TABLE, catalog.id) if one.outcome != "PROMOTED"]
    assert record.outcome == "OPERATOR_ROLLBACK"
    assert (record.approved_by, record.approved_by_identity) == ("Omar Haddad", identity)
    assert record.model_package_arn == package_of(r3)
    assert record.execution_arn == OPERATOR_ROLLBACK_EXECUTION
    assert package_status(aws, package_of(r3))[0] == "Rejected"
    assert package_status(aws, package_of(r2))[0] == "Approved"


def test_the_same_request_delivered_twice_restores_once(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    r1, r2, _ = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
    first = operator_rollback(aws, catalog, store, asked)
    assert first.accepted, first.reason
    assert snapshot(aws, catalog) == r2
    for _ in range(3):  # EventBridge redelivery, the state machine's retry, a re-driven dead letter
        again = operator_rollback(aws, catalog, store, asked)
        assert not again.accepted and not again.ignored
        assert "already handled" in again.reason
    assert snapshot(aws, catalog) == r2  # not walked back to R1
    assert store.lock_holder(catalog.id) is None
    assert snapshot(aws, catalog) != r1


def test_a_rejection_of_a_package_that_is_not_the_live_releases_is_ignored(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    """A candidate's rejection, an old release's or a package changed after its release was rolled back: no
    rollback, and nothing about it is refused or written."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    r1, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    registry_as(OPERATOR)
    aws["sagemaker"].update_model_package(ModelPackageArn=package_of(r1), ModelApprovalStatus="Rejected")
    registry_as(None)
    old = operator_rollback(aws, catalog, store, state_change(aws, package_of(r1)))
    assert old.ignored and not old.accepted
    assert "is not the package of fraud-detection's live release" in old.reason
    assert snapshot(aws, catalog) == r3
    assert package_status(aws, package_of(r1))[0] == "Rejected"  # left as the operator set it


def test_a_rejection_by_an_approver_who_is_not_an_operator_is_refused_and_the_release_stays_approved(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    refused = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as, by=ALICE))
    assert not refused.accepted and not refused.ignored
    assert "assumed-role/DataScientists/alice@example.com is not one of fraud-detection's operators" in refused.reason
    assert snapshot(aws, catalog) == r3
    status, description = package_status(aws, package_of(r3))
    assert status == "Approved" and description.startswith("rollback refused: ")
    assert store.lock_holder(catalog.id) is None


def test_a_promotion_cannot_claim_while_an_operator_rollback_holds_the_lock(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    assert store.lock_for_operator(catalog.id, "request-1") is None
    event = load_event("tuning-job-completed.json")
    event["detail"]["HyperParameterTuningJobArn"] += "late"
    event["detail"]["HyperParameterTuningJobName"] += "late"
    waiting = claimed_state(aws, catalog_dir, event, execution="exec-late")
    assert waiting.claim.status == ClaimStatus.WAIT
    assert "operator-rollback:" in waiting.claim.reason
    store.release_operator_lock(catalog.id, "request-1")
    assert store.lock_holder(catalog.id) is None


def test_an_operator_rollback_is_refused_while_a_promotion_holds_the_lock_and_counts_as_handled(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    event = load_event("tuning-job-completed.json")
    event["detail"]["HyperParameterTuningJobArn"] += "r4"
    event["detail"]["HyperParameterTuningJobName"] += "r4"
    running = claimed_state(aws, catalog_dir, event, execution="exec-4")  # holds the model's lock and runs
    assert running.claim.status == ClaimStatus.CLAIMED, running.claim.reason
    asked = reject_live_release(aws, catalog, registry_as)
    refused = operator_rollback(aws, catalog, store, asked)
    assert not refused.accepted and "in flight" in refused.reason
    assert snapshot(aws, catalog) == r3
    assert package_status(aws, package_of(r3))[0] == "Approved"  # production still serves it
    # Replayed after the promotion ended, it must not roll back the release that promotion put live.
    store.finish(model=catalog.id, tuning_job_arn=None, execution_arn=running.claim.execution_arn, outcome="PROMOTED")
    assert "already handled" in operator_rollback(aws, catalog, store, asked).reason


def test_a_retry_after_the_restore_finishes_the_request_without_stepping_back_again(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The step is retried after its audit write failed: the restore already happened (and the packages say so),
    so the retry finishes the same request instead of ignoring it or restoring R1."""
    from promotion.production import operator_rollback as operations

    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, _ = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
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
    assert retried.restored_release == parse_config(r2["config"]).release_id
    assert retried.requested_by == "Omar Haddad"
    assert snapshot(aws, catalog) == r2  # still R2: the retry did not restore R1


def test_a_second_delivery_while_the_first_restores_backs_off(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
    # The first delivery recorded the request and holds the lock (it is restoring).
    assert store.lock_for_operator(catalog.id, f"{asked.id}/first") is None
    put_request_record(aws, catalog, asked.id, status="RECEIVED")
    second = operator_rollback(aws, catalog, store, asked)
    assert not second.accepted and "being handled by another delivery" in second.reason
    assert snapshot(aws, catalog) == r3
    record = request_record(aws, catalog, asked.id)
    assert record["status"]["S"] == "RECEIVED"  # not marked done by the delivery that backed off
