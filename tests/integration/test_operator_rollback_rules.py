"""Every outcome of an operator's rollback request, to the letter: what the operator is told, what the request's
record and the audit trail keep, and what the Model Registry says afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key
from promotion.contract.state import OperatorRollback
from promotion.intake.registry import METADATA_OUTCOME, METADATA_PRODUCTION
from promotion.production.config import parse_config
from promotion.result.audit import list_audit_records
from tests.conftest import CONFIG_BUCKET, TABLE
from tests.fakes import Unattributed
from tests.integration.helpers import (
    OPERATOR,
    OPERATOR_ROLLBACK_EXECUTION,
    operator_rollback,
    promote_until_config,
    put_request_record,
    reject_live_release,
    request_record,
    snapshot,
    state_change,
    validated_state,
)
from tests.integration.test_operator_rollback_requests import Act, package_of, package_status, three_releases

OMAR_ARN = f"arn:aws:sts::123456789012:assumed-role/{OPERATOR[0]}/{OPERATOR[1]}"
ALICE = ("DataScientists", "alice@example.com")
ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com"


def release_of(snap: dict[str, Any]) -> str:
    return parse_config(snap["config"]).release_id


def test_an_accepted_request_says_who_asked_what_came_back_and_marks_both_packages(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    r1, r2, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    done = operator_rollback(aws, catalog, store, asked)
    assert done.model_dump(exclude={"restored"}) == OperatorRollback(
        accepted=True,
        reason=f"rolled fraud-detection back from release {release_of(r3)} to {release_of(r2)} at the request of "
        f"Omar Haddad ({OMAR_ARN}): FPR x2",
        model="fraud-detection",
        request_id=asked.id,
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        model_package_arn=package_of(r3),
        request_reason="FPR x2",
        rolled_back_release=release_of(r3),
        restored_release=release_of(r2),
    ).model_dump(exclude={"restored"})
    assert done.restored is not None and done.restored.restored
    record = request_record(aws, catalog, asked.id)
    assert {key: record[key] for key in ("status", "accepted", "outcome", "requested_by", "reason", "release_id")} == {
        "status": {"S": "DONE"},
        "accepted": {"BOOL": True},
        "outcome": {"S": done.reason},
        "requested_by": {"S": "Omar Haddad"},
        "reason": {"S": "FPR x2"},
        "release_id": {"S": release_of(r3)},
    }
    assert record["requested_by_identity"] == {"S": OMAR_ARN}
    assert record["model_package_arn"] == {"S": package_of(r3)}
    received = datetime.fromisoformat(record["received_at"]["S"])
    assert received.tzinfo is not None  # without a clock: now, in UTC
    assert int(record["expires_at"]["N"]) == int(received.timestamp()) + 90 * 86400  # kept 90 days, then TTL
    (audit,) = [one for one in list_audit_records(aws["dynamodb"], TABLE, catalog.id) if one.outcome != "PROMOTED"]
    assert audit.release_id.startswith(f"{release_of(r3)}-rollback-")
    assert audit.reason == f"Omar Haddad: FPR x2; {done.restored.reason}"
    assert (audit.previous_release_id, audit.approved_by_identity, audit.execution_arn) == (
        release_of(r2),
        OMAR_ARN,
        OPERATOR_ROLLBACK_EXECUTION,
    )
    rolled_back = aws["sagemaker"].describe_model_package(ModelPackageName=package_of(r3))
    assert rolled_back["CustomerMetadataProperties"][METADATA_PRODUCTION] == "rolled-back"
    assert rolled_back["CustomerMetadataProperties"][METADATA_OUTCOME] == "operator rollback by Omar Haddad: FPR x2"
    live_again = aws["sagemaker"].describe_model_package(ModelPackageName=package_of(r2))
    assert live_again["CustomerMetadataProperties"][METADATA_PRODUCTION] == "current"
    assert live_again["CustomerMetadataProperties"][METADATA_OUTCOME] == (
        f"live again after the rollback of {release_of(r3)}"
    )
    assert snapshot(aws, catalog) == r2 != r1


def test_a_request_without_a_reason_says_so(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    done = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as, reason=""))
    assert done.request_reason == "(no reason given)"


def test_a_redelivered_request_is_answered_from_its_record(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    done = operator_rollback(aws, catalog, store, asked)
    again = operator_rollback(aws, catalog, store, asked)
    assert again == OperatorRollback(
        accepted=False,
        reason=f"rollback request {asked.id} was already handled ({done.reason}); a redelivered request changes "
        "nothing: reject the live release's package again",
        model="fraud-detection",
        request_id=asked.id,
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        model_package_arn=package_of(r3),
        request_reason="FPR x2",
    )


def test_a_package_no_longer_rejected_or_not_live_is_no_request(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    r1, r2, r3 = three_releases(aws, catalog, catalog_dir, store)
    approved_again = operator_rollback(aws, catalog, store, state_change(aws, package_of(r3)))
    assert approved_again == OperatorRollback(
        accepted=False,
        ignored=True,
        model="fraud-detection",
        reason=f"{package_of(r3)} is Approved now: no rollback is asked",
    )
    registry_as(OPERATOR)
    aws["sagemaker"].update_model_package(ModelPackageArn=package_of(r1), ModelApprovalStatus="Rejected")
    registry_as(None)
    old = operator_rollback(aws, catalog, store, state_change(aws, package_of(r1)))
    assert old == OperatorRollback(
        accepted=False,
        ignored=True,
        model="fraud-detection",
        reason=f"{package_of(r1)} is not the package of fraud-detection's live release (release {release_of(r3)}'s "
        f"is {package_of(r3)}): its rejection is no rollback request",
    )
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key)
    gone = operator_rollback(aws, catalog, store, state_change(aws, package_of(r1)))
    assert gone.reason == (
        f"{package_of(r1)} is not the package of fraud-detection's live release (no readable config): its rejection "
        "is no rollback request"
    )
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=b"model: [unclosed")
    assert "(no readable config)" in operator_rollback(aws, catalog, store, state_change(aws, package_of(r1))).reason
    assert r2 is not None


def test_a_live_release_without_a_package_is_named_so(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    """A release promoted before the Model Registry was used: its config names no package."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    config = parse_config(r3["config"])
    without = config.model_copy(update={"model_package_arn": None})
    from promotion.production.config import render_config

    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=render_config(without).encode())
    registry_as(OPERATOR)
    aws["sagemaker"].update_model_package(ModelPackageArn=package_of(r3), ModelApprovalStatus="Rejected")
    registry_as(None)
    outcome = operator_rollback(aws, catalog, store, state_change(aws, package_of(r3)))
    assert f"(release {config.release_id}'s is none)" in outcome.reason


def test_a_rejection_by_someone_else_is_refused_and_the_release_stays_approved(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, by=ALICE)
    refused = operator_rollback(aws, catalog, store, asked)
    reason = f"{ALICE_ARN} is not one of fraud-detection's operators; nothing restored"
    assert refused == OperatorRollback(
        accepted=False,
        reason=reason,
        model="fraud-detection",
        request_id=asked.id,
        requested_by_identity=ALICE_ARN,
        model_package_arn=package_of(r3),
        rolled_back_release=release_of(r3),
    )
    assert package_status(aws, package_of(r3)) == ("Approved", f"rollback refused: {reason}")


class RegistryDown:
    """moto's SageMaker, except that UpdateModelPackage is refused (throttled for good)."""

    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def update_model_package(self, **request: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateModelPackage")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sagemaker, name)


def test_a_refusal_the_registry_could_not_record_says_so(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, by=ALICE)
    down = {**aws, "sagemaker": RegistryDown(aws["sagemaker"])}
    refused = operator_rollback(down, catalog, store, asked)
    assert refused.reason == (
        f"{ALICE_ARN} is not one of fraud-detection's operators; nothing restored (its package still says Rejected: "
        "An error occurred (ThrottlingException) when calling the UpdateModelPackage operation: Rate exceeded)"
    )
    assert package_status(aws, package_of(r3))[0] == "Rejected"


def test_a_rollback_the_registry_could_not_record_is_done_with_a_note(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, _ = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    done = operator_rollback({**aws, "sagemaker": RegistryDown(aws["sagemaker"])}, catalog, store, asked)
    assert done.accepted and snapshot(aws, catalog) == r2
    (audit,) = [one for one in list_audit_records(aws["dynamodb"], TABLE, catalog.id) if one.outcome != "PROMOTED"]
    assert done.restored is not None
    assert audit.reason == (
        f"Omar Haddad: FPR x2; {done.restored.reason} (the Model Registry was not told: An error occurred "
        "(ThrottlingException) when calling the UpdateModelPackage operation: Rate exceeded)"
    )


def test_a_request_while_a_promotion_runs_is_refused_and_recorded_done(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    assert store.lock_for_operator(catalog.id, "someone") is None  # stands in for any holder that is alive
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": "LOCK"}},
        UpdateExpression="SET holder = :h, release_id = :r",
        ExpressionAttributeValues={":h": {"S": "arn:running"}, ":r": {"S": "r4"}},
    )
    asked = reject_live_release(aws, catalog, registry_as)
    refused = operator_rollback(aws, catalog, store, asked)
    reason = (
        "a promotion of fraud-detection is in flight (model fraud-detection is locked by execution arn:running "
        "(release r4); waiting for it to finish); roll back after it ends"
    )
    assert (refused.accepted, refused.reason, refused.rolled_back_release) == (False, reason, None)
    record = request_record(aws, catalog, asked.id)
    assert (record["status"], record["accepted"], record["outcome"]) == (
        {"S": "DONE"},
        {"BOOL": False},
        {"S": reason},
    )
    assert package_status(aws, package_of(r3)) == ("Approved", f"rollback refused: {reason}")


def test_without_the_releases_backup_or_a_previous_release_nothing_is_restored(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    first = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    store.finish(model=catalog.id, tuning_job_arn=None, execution_arn=first.claim.execution_arn, outcome="PROMOTED")
    release = str(first.claim.release_id)
    asked = reject_live_release(aws, catalog, registry_as)
    refused = operator_rollback(aws, catalog, store, asked)
    reason = f"release {release} is the first release of fraud-detection: there is no previous release to restore"
    assert (refused.accepted, refused.reason, refused.rolled_back_release) == (False, reason, release)
    assert store.lock_holder(catalog.id) is None
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=backup_key(catalog.id, release))
    again = reject_live_release(aws, catalog, registry_as)
    missing = operator_rollback(aws, catalog, store, again)
    assert missing.reason == (
        f"no backup of release {release}: no backup at s3://{CONFIG_BUCKET}/{backup_key(catalog.id, release)} for "
        f"release {release} of model fraud-detection"
    )
    assert missing.rolled_back_release == release


def test_an_interrupted_request_does_not_restore_over_a_newer_release(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    """An earlier attempt of this request began restoring R2's backup (the record says RESTORING R2), and production
    has since moved on to R3: restoring R2's backup now would undo R3."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    put_request_record(
        aws,
        catalog,
        asked.id,
        status="RESTORING",
        release_id=release_of(r2),
        requested_by="Omar Haddad",
        model_package_arn=package_of(r3),
    )
    refused = operator_rollback(aws, catalog, store, asked)
    assert (refused.accepted, refused.rolled_back_release) == (False, release_of(r2))
    assert refused.reason == (
        f"production moved on to release {release_of(r3)} since an earlier attempt of this request began restoring "
        f"release {release_of(r2)}; nothing restored"
    )
    assert (refused.requested_by, refused.requested_by_identity, refused.request_reason) == ("Omar Haddad", "", "")
    assert snapshot(aws, catalog) == r3


def test_an_interrupted_request_whose_config_vanished_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
    put_request_record(
        aws,
        catalog,
        asked.id,
        status="RESTORING",
        release_id=release_of(r3),
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        reason="why",
        model_package_arn=package_of(r3),
    )
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key)
    refused = operator_rollback(aws, catalog, store, asked)
    assert refused.reason == "the production config of fraud-detection is missing or unreadable; nothing restored"
    assert (refused.requested_by_identity, refused.request_reason) == (OMAR_ARN, "why")


def test_a_crash_while_restoring_releases_the_lock_and_is_raised(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promotion.production import operator_rollback as operations

    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("restore crashed")

    monkeypatch.setattr(operations, "restore_backup", crash)
    with pytest.raises(RuntimeError, match="restore crashed"):
        operator_rollback(aws, catalog, store, asked)
    assert store.lock_holder(catalog.id) is None
    assert request_record(aws, catalog, asked.id)["status"] == {"S": "RESTORING"}


def test_a_redelivered_request_after_production_moved_on_restores_nothing(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    """The first delivery recorded the request and died before restoring; a newer release went live meanwhile."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    _, _, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    put_request_record(
        aws,
        catalog,
        asked.id,
        status="RECEIVED",
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        reason="FPR x2",
        model_package_arn=package_of(r3),
    )
    newer = parse_config(r3["config"]).model_copy(update={"release_id": "r4", "model_package_arn": None})
    from promotion.production.config import render_config

    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=render_config(newer).encode())
    refused = operator_rollback(aws, catalog, store, asked)
    assert refused == OperatorRollback(
        accepted=False,
        reason=f"the request rejected {package_of(r3)}, but fraud-detection's live release is now r4 (no package): "
        "production changed since; nothing restored",
        model="fraud-detection",
        request_id=asked.id,
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        model_package_arn=package_of(r3),
        request_reason="FPR x2",
    )


def test_a_retried_request_that_had_begun_restoring_finishes_and_says_so(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    from promotion.production.operator_rollback import rollback_on_request

    store = ClaimStore(aws["dynamodb"], TABLE)
    _, r2, r3 = three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    put_request_record(
        aws,
        catalog,
        asked.id,
        status="RESTORING",
        release_id=release_of(r3),
        requested_by="Omar Haddad",
        requested_by_identity=OMAR_ARN,
        reason="FPR x2",
        model_package_arn=package_of(r3),
    )
    moment = datetime(2026, 11, 24, 9, 30, 5, tzinfo=UTC)
    done = rollback_on_request(
        asked,
        {catalog.id: catalog},
        ssm=aws["ssm"],
        s3=aws["s3"],
        dynamodb=aws["dynamodb"],
        bucket=CONFIG_BUCKET,
        table=TABLE,
        store=store,
        sagemaker=RegistryDown(aws["sagemaker"]),
        execution=OPERATOR_ROLLBACK_EXECUTION,
        now=moment,
    )
    assert (done.accepted, done.restored_release) == (True, release_of(r2))
    assert snapshot(aws, catalog) == r2
    (audit,) = [one for one in list_audit_records(aws["dynamodb"], TABLE, catalog.id) if one.outcome != "PROMOTED"]
    assert audit.release_id == f"{release_of(r3)}-rollback-20261124T093005"
    assert done.restored is not None
    assert audit.reason == (
        f"Omar Haddad: FPR x2; {done.restored.reason} (an earlier attempt of this request had begun restoring "
        f"release {release_of(r3)}; the Model Registry was not told: An error occurred (ThrottlingException) when "
        "calling the UpdateModelPackage operation: Rate exceeded)"
    )
    assert audit.recorded_at == moment


def test_a_request_is_recorded_as_received_with_who_and_why_before_anything_else(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    from promotion.production.operator_rollback import RollbackRequest, _Requests

    request = RollbackRequest(
        id="evt-1",
        model=catalog.id,
        package_arn="arn:pkg",
        requested_by="Omar Haddad",
        identity=OMAR_ARN,
        reason="FPR x2",
        execution="arn:exec",
    )
    moment = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    requests = _Requests(aws["dynamodb"], TABLE, catalog.id, "evt-1")
    assert requests.begin(request, moment) is None
    item = request_record(aws, catalog, "evt-1")
    assert item == {
        "pk": {"S": f"MODEL#{catalog.id}"},
        "sk": {"S": "ROLLBACK#evt-1"},
        "status": {"S": "RECEIVED"},
        "requested_by": {"S": "Omar Haddad"},
        "requested_by_identity": {"S": OMAR_ARN},
        "reason": {"S": "FPR x2"},
        "model_package_arn": {"S": "arn:pkg"},
        "received_at": {"S": moment.isoformat()},
        "expires_at": {"N": str(int(moment.timestamp()) + 90 * 86400)},
    }
    assert requests.begin(request, moment) == item  # seen before: the first record answers


def test_a_request_recorded_done_without_an_outcome_is_answered_as_done(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
    put_request_record(aws, catalog, asked.id, status="DONE")
    assert operator_rollback(aws, catalog, store, asked).reason.startswith(
        f"rollback request {asked.id} was already handled (done); "
    )


def test_a_lock_released_between_the_refusal_and_the_look_is_a_promotion_in_flight(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    monkeypatch.setattr(store, "lock_for_operator", lambda model, attempt: "model fraud-detection is locked")
    monkeypatch.setattr(store, "lock_holder", lambda model: None)
    refused = operator_rollback(aws, catalog, store, reject_live_release(aws, catalog, registry_as))
    assert refused.reason == (
        "a promotion of fraud-detection is in flight (model fraud-detection is locked); roll back after it ends"
    )


def test_a_rejection_sagemaker_attributes_to_nobody_is_refused(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Act
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    three_releases(aws, catalog, catalog_dir, store)
    asked = reject_live_release(aws, catalog, registry_as)
    refused = operator_rollback({**aws, "sagemaker": Unattributed(aws["sagemaker"])}, catalog, store, asked)
    assert refused.reason == (
        "an identity SageMaker did not record is not one of fraud-detection's operators; nothing restored"
    )
    assert refused.requested_by_identity is None
