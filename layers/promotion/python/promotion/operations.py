"""An operator's rollback request: put the model's previous release back, through the same restore as Rollback.

The release in production is the one its config names; its backup is exactly the previous release's state. A
request is carried out once, whatever its outcome (a redelivered or re-sent event changes nothing: operators send a
new request), holds the model's lock for the whole restore (no promotion can claim in between), and is refused
when a promotion of the model is in flight, when there is no previous release, or when the release it expected is no
longer the live one.

The operator rollback state machine runs it: `rollback_on_request` restores parameters and config and makes the
endpoint's first call; while the endpoint is changing (`pending`), the machine waits and `continue_rollback` makes
the next call, renewing the lock, until the endpoint serves the previous release. Only then is the audit record
written, the request marked done and the lock released. A transient AWS error is raised as is (the state machine
retries the step, the lock still held); any other failure records the outcome on the request and releases the lock.
A crashed step leaves the lock to its 15-minute lease, and the request RESTORING: a new request restores the same
release again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.audit import AuditRecord, read_audit_record, write_audit_record
from promotion.backup import BackupRecord, load_backup
from promotion.catalog import ModelCatalog
from promotion.claims import OPERATOR_HOLDER_PREFIX, ClaimStore, condition_held
from promotion.config import parse_config
from promotion.errors import BackupMissing, ConfigSchemaError, TransientAwsError
from promotion.events import RollbackRequested
from promotion.models import OperatorRollback, Restored
from promotion.production import read_config
from promotion.registry import record_outcome
from promotion.retry import is_transient
from promotion.rollback import restore_backup

RECEIVED, RESTORING, DONE = "RECEIVED", "RESTORING", "DONE"
REQUEST_RETENTION_SECONDS = 90 * 86400


def _refused(reason: str, model: str, release: str | None = None) -> OperatorRollback:
    return OperatorRollback(accepted=False, reason=reason, model=model, rolled_back_release=release)


def _request_key(model: str, request_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"ROLLBACK#{request_id}"}}


class _Requests:
    """The record of each rollback request (by its event id): received, restoring which release, done how."""

    def __init__(self, dynamodb: Any, table: str, model: str, request_id: str) -> None:
        self._dynamodb, self._table, self._key = dynamodb, table, _request_key(model, request_id)

    def begin(self, requested_by: str, moment: datetime) -> dict[str, Any] | None:
        """Record the request; the earlier record when this request was seen before (None: it is new)."""
        if condition_held(
            self._dynamodb.put_item,
            TableName=self._table,
            Item={
                **self._key,
                "status": {"S": RECEIVED},
                "requested_by": {"S": requested_by},
                "received_at": {"S": moment.isoformat()},
                "expires_at": {"N": str(int(moment.timestamp()) + REQUEST_RETENTION_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        ):
            return None
        item: dict[str, Any] = self._dynamodb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)[
            "Item"
        ]
        return item

    def restoring(self, release_id: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET #status = :restoring, release_id = :release",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":restoring": {"S": RESTORING}, ":release": {"S": release_id}},
        )

    def done(self, outcome: OperatorRollback) -> OperatorRollback:
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET #status = :done, accepted = :accepted, outcome = :outcome",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":done": {"S": DONE},
                ":accepted": {"BOOL": outcome.accepted},
                ":outcome": {"S": outcome.reason},
            },
        )
        return outcome


def rollback_on_request(
    request: RollbackRequested,
    catalogs: dict[str, ModelCatalog],
    *,
    ssm: Any,
    s3: Any,
    dynamodb: Any,
    bucket: str,
    table: str,
    store: ClaimStore,
    sagemaker: Any = None,
    now: datetime | None = None,
) -> OperatorRollback:
    """Restore the release before the current one, or refuse with the reason; each request at most once."""
    detail = request.detail
    model = detail.model
    catalog = catalogs.get(model)
    if catalog is None:
        return _refused(f"rollback requested for unknown model {model!r}", model)
    moment = now or datetime.now(UTC)
    requests = _Requests(dynamodb, table, model, request.id)
    seen = requests.begin(detail.requested_by, moment)
    if seen is not None and seen["status"]["S"] == DONE:
        return _refused(
            f"rollback request {request.id} was already handled ({seen.get('outcome', {}).get('S', 'done')}); "
            "a redelivered request changes nothing: send a new one",
            model,
        )
    interrupted = seen["release_id"]["S"] if seen is not None and "release_id" in seen else None
    # Each attempt holds the lock under its own name: a second delivery of the same request arriving while the first
    # restores finds the lock taken and backs off, instead of re-entering it.
    attempt = f"{request.id}/{uuid.uuid4().hex[:12]}"
    refusal = store.lock_for_operator(model, attempt)
    if refusal is not None:
        holder = (store.lock_holder(model) or {}).get("holder", "")
        if holder.startswith(f"{OPERATOR_HOLDER_PREFIX}{request.id}/"):
            return _refused(f"rollback request {request.id} is being handled by another delivery", model)
        return requests.done(
            _refused(f"a promotion of {model} is in flight ({refusal}); roll back after it ends", model)
        )
    try:
        outcome = _restore_previous(
            request, catalog, requests, interrupted, ssm, s3, dynamodb, bucket, table, sagemaker, moment
        )
    except BaseException:
        store.release_operator_lock(model, attempt)
        raise
    if outcome.pending:  # the lock stays held while the endpoint is restored (continue_rollback releases it)
        return outcome.model_copy(update={"attempt": attempt})
    return _conclude(requests, store, model, attempt, outcome)


def rollback_step(
    request: RollbackRequested,
    progress: OperatorRollback | None,
    catalogs: dict[str, ModelCatalog],
    **services: Any,
) -> OperatorRollback:
    """One step of the operator rollback state machine: the request's first (`progress` None) or the next."""
    if progress is None:
        return rollback_on_request(request, catalogs, **services)
    return continue_rollback(request, catalogs, progress, **services)


def continue_rollback(
    request: RollbackRequested,
    catalogs: dict[str, ModelCatalog],
    progress: OperatorRollback,
    *,
    ssm: Any,
    s3: Any,
    dynamodb: Any,
    bucket: str,
    table: str,
    store: ClaimStore,
    sagemaker: Any = None,
    now: datetime | None = None,
) -> OperatorRollback:
    """The endpoint's next step of an accepted rollback whose endpoint is still being restored (see the module
    docstring); the final outcome once it serves the previous release."""
    model, release_id, attempt = progress.model, progress.rolled_back_release, progress.attempt
    requests = _Requests(dynamodb, table, model, request.id)
    try:
        if not progress.pending or release_id is None or attempt is None or model not in catalogs:
            raise ValueError(f"rollback request {request.id}: nothing to continue ({progress.reason})")
        store.renew_operator_lock(model, attempt)
        record = load_backup(s3, bucket, model, release_id)
        restored = restore_backup(ssm, s3, bucket, catalogs[model], record, sagemaker, previous=progress.restored)
        if restored.endpoint_pending:
            return progress.model_copy(update={"restored": restored, "reason": _pending_reason(model, restored)})
        outcome = _finish(
            request,
            record,
            restored,
            progress.note,
            now or datetime.now(UTC),
            catalogs[model],
            sagemaker=sagemaker,
            s3=s3,
            bucket=bucket,
            dynamodb=dynamodb,
            table=table,
        )
    except Exception as error:
        if isinstance(error, TransientAwsError) or (isinstance(error, ClientError) and is_transient(error)):
            raise  # the state machine retries this step; the lock stays held
        failed = OperatorRollback(
            accepted=False,
            reason=f"the rollback of release {release_id} failed part way: {error}; the endpoint may still serve "
            "it, and the config names it until the endpoint is back: send a new rollback request to finish",
            model=model,
            rolled_back_release=release_id,
        )
        _conclude(requests, store, model, attempt, failed)
        raise
    return _conclude(requests, store, model, attempt, outcome)


def _conclude(
    requests: _Requests, store: ClaimStore, model: str, attempt: str | None, outcome: OperatorRollback
) -> OperatorRollback:
    """The request's outcome recorded, and this attempt's hold on the model's lock released (whatever the record
    write does)."""
    try:
        return requests.done(outcome)
    finally:
        if attempt is not None:
            store.release_operator_lock(model, attempt)


def _pending_reason(model: str, restored: Restored) -> str:
    return (
        f"restoring {model}: parameters are back to the state before release {restored.release_id}; the endpoint "
        f"is being restored ({restored.endpoint_action}), the config follows it"
    )


def _mark_packages(
    request: RollbackRequested,
    record: BackupRecord,
    catalog: ModelCatalog,
    *,
    sagemaker: Any,
    s3: Any,
    bucket: str,
    dynamodb: Any,
    table: str,
) -> str:
    """Both releases' Model Registry packages say what happened: the rolled-back one is `rolled-back`, the restored
    one `current` again. Releases from before the registry have no package; a registry failure is a note, not a
    failed rollback (production is already back)."""
    if sagemaker is None:
        return ""
    who = f"operator rollback by {request.detail.requested_by}: {request.detail.reason}"
    try:
        rolled_back = read_audit_record(dynamodb, table, record.model, record.release_id)
        if rolled_back is not None and rolled_back.model_package_arn:
            record_outcome(sagemaker, rolled_back.model_package_arn, who, production="rolled-back")
        current = read_config(s3, bucket, catalog.config.key)
        restored = parse_config(current.body).model_package_arn if current.body is not None else None
        if restored:
            record_outcome(
                sagemaker, restored, f"live again after the rollback of {record.release_id}", production="current"
            )
    except (ClientError, ConfigSchemaError) as error:
        return f"the Model Registry was not told: {error}"
    return ""


def _finish(
    request: RollbackRequested,
    record: BackupRecord,
    restored: Restored,
    note: str,
    moment: datetime,
    catalog: ModelCatalog,
    *,
    sagemaker: Any,
    s3: Any,
    bucket: str,
    dynamodb: Any,
    table: str,
) -> OperatorRollback:
    """Everything is back: the registry's view of both releases, the audit record of the rollback, the outcome."""
    detail, model = request.detail, record.model
    registry_note = _mark_packages(
        request, record, catalog, sagemaker=sagemaker, s3=s3, bucket=bucket, dynamodb=dynamodb, table=table
    )
    note = "; ".join(part for part in (note, registry_note) if part)
    write_audit_record(
        dynamodb,
        table,
        AuditRecord(
            model=model,
            release_id=f"{record.release_id}-rollback-{moment.strftime('%Y%m%dT%H%M%S')}",
            outcome="OPERATOR_ROLLBACK",
            reason=f"{detail.requested_by}: {detail.reason}; {restored.reason}" + (f" ({note})" if note else ""),
            recorded_at=moment,
            execution_arn=f"event:{request.id}",
            approved_by=detail.requested_by,
            previous_release_id=record.previous_release_id,
        ),
    )
    return OperatorRollback(
        accepted=True,
        reason=f"rolled {model} back from release {record.release_id} to {record.previous_release_id} at the "
        f"request of {detail.requested_by}: {detail.reason}",
        model=model,
        rolled_back_release=record.release_id,
        restored_release=record.previous_release_id,
        restored=restored,
    )


def _restore_previous(
    request: RollbackRequested,
    catalog: ModelCatalog,
    requests: _Requests,
    interrupted: str | None,
    ssm: Any,
    s3: Any,
    dynamodb: Any,
    bucket: str,
    table: str,
    sagemaker: Any,
    moment: datetime,
) -> OperatorRollback:
    """Under the model's lock: find the live release and restore its backup (the previous release)."""
    detail, model = request.detail, catalog.id
    current = read_config(s3, bucket, catalog.config.key)
    if current.body is None:
        return _refused(f"{model} has no production config: there is no release to roll back", model)
    try:
        live = parse_config(current.body).release_id
    except ConfigSchemaError as error:
        return _refused(f"the production config of {model} is unreadable ({error}); cannot tell the release", model)
    # A retry of this same request after an attempt began restoring (it failed or its audit write did): restore that
    # release's backup again (idempotent, and verified), never the one before it.
    release_id = interrupted if interrupted is not None else live
    if detail.expected_release_id is not None and detail.expected_release_id != release_id:
        return _refused(
            f"the request expected release {detail.expected_release_id} of {model} to be rolled back, but the live "
            f"release is {release_id}: production changed since; nothing restored",
            model,
        )
    try:
        record = load_backup(s3, bucket, model, release_id)
    except BackupMissing as error:
        return _refused(f"no backup of release {release_id}: {error}", model, release_id)
    if interrupted is not None and live not in (interrupted, record.previous_release_id):
        return _refused(
            f"production moved on to release {live} since an earlier attempt of this request began restoring "
            f"release {interrupted}; nothing restored",
            model,
            interrupted,
        )
    if not record.config.existed:
        return _refused(
            f"release {release_id} is the first release of {model}: there is no previous release to restore",
            model,
            release_id,
        )
    requests.restoring(release_id)
    restored = restore_backup(ssm, s3, bucket, catalog, record, sagemaker)
    note = f"an earlier attempt of this request had begun restoring release {interrupted}" if interrupted else ""
    if restored.endpoint_pending:
        return OperatorRollback(
            accepted=True,
            pending=True,
            reason=_pending_reason(model, restored),
            model=model,
            rolled_back_release=release_id,
            restored_release=record.previous_release_id,
            restored=restored,
            note=note,
        )
    return _finish(
        request,
        record,
        restored,
        note,
        moment,
        catalog,
        sagemaker=sagemaker,
        s3=s3,
        bucket=bucket,
        dynamodb=dynamodb,
        table=table,
    )
