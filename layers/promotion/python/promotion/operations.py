"""An operator's rollback request: put the model's previous release back, through the same restore as Rollback.

The release in production is the one its config names; its backup is exactly the previous release's state. A
request is carried out once, whatever its outcome (a redelivered or re-sent event changes nothing: operators send a
new request), holds the model's lock for the whole restore (no promotion can claim in between), and is refused
when a promotion of the model is in flight, when there is no previous release, or when the release it expected is no
longer the live one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from promotion.audit import AuditRecord, write_audit_record
from promotion.backup import load_backup
from promotion.catalog import ModelCatalog
from promotion.claims import OPERATOR_HOLDER_PREFIX, ClaimStore, condition_held
from promotion.config import parse_config
from promotion.errors import BackupMissing, ConfigSchemaError
from promotion.events import RollbackRequested
from promotion.production import read_config
from promotion.rollback import restore_backup

RECEIVED, RESTORING, DONE = "RECEIVED", "RESTORING", "DONE"
REQUEST_RETENTION_SECONDS = 90 * 86400


@dataclass(frozen=True)
class OperatorRollback:
    accepted: bool
    reason: str
    model: str
    rolled_back_release: str | None = None
    restored_release: str | None = None


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
        return OperatorRollback(False, f"rollback requested for unknown model {model!r}", model)
    moment = now or datetime.now(UTC)
    requests = _Requests(dynamodb, table, model, request.id)
    seen = requests.begin(detail.requested_by, moment)
    if seen is not None and seen["status"]["S"] == DONE:
        return OperatorRollback(
            False,
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
            return OperatorRollback(False, f"rollback request {request.id} is being handled by another delivery", model)
        return requests.done(
            OperatorRollback(False, f"a promotion of {model} is in flight ({refusal}); roll back after it ends", model)
        )
    try:
        return requests.done(
            _restore_previous(
                request, catalog, requests, interrupted, ssm, s3, dynamodb, bucket, table, sagemaker, moment
            )
        )
    finally:
        store.release_operator_lock(model, attempt)


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
        return OperatorRollback(False, f"{model} has no production config: there is no release to roll back", model)
    try:
        live = parse_config(current.body).release_id
    except ConfigSchemaError as error:
        return OperatorRollback(
            False, f"the production config of {model} is unreadable ({error}); cannot tell the release", model
        )
    # A retry of this same request after an attempt began restoring (it failed or its audit write did): restore that
    # release's backup again (idempotent, and verified), never the one before it.
    release_id = interrupted if interrupted is not None else live
    if detail.expected_release_id is not None and detail.expected_release_id != release_id:
        return OperatorRollback(
            False,
            f"the request expected release {detail.expected_release_id} of {model} to be rolled back, but the live "
            f"release is {release_id}: production changed since; nothing restored",
            model,
        )
    try:
        record = load_backup(s3, bucket, model, release_id)
    except BackupMissing as error:
        return OperatorRollback(False, f"no backup of release {release_id}: {error}", model, release_id)
    if interrupted is not None and live not in (interrupted, record.previous_release_id):
        return OperatorRollback(
            False,
            f"production moved on to release {live} since an earlier attempt of this request began restoring "
            f"release {interrupted}; nothing restored",
            model,
            interrupted,
        )
    if not record.config.existed:
        return OperatorRollback(
            False,
            f"release {release_id} is the first release of {model}: there is no previous release to restore",
            model,
            release_id,
        )
    requests.restoring(release_id)
    restored = restore_backup(ssm, s3, bucket, catalog, record, sagemaker)
    restored_reason = restored.reason
    if restored.endpoint_pending:
        # Not yet waited for here (a Lambda must not sleep): the endpoint takes the backed-up config in minutes.
        restored_reason += (
            f"; endpoint restore started ({restored.endpoint_action}), not yet confirmed: check the endpoint serves "
            "the previous release before relying on it"
        )
    if interrupted is not None:
        restored_reason += f" (an earlier attempt of this request had begun restoring release {interrupted})"
    write_audit_record(
        dynamodb,
        table,
        AuditRecord(
            model=model,
            release_id=f"{release_id}-rollback-{moment.strftime('%Y%m%dT%H%M%S')}",
            outcome="OPERATOR_ROLLBACK",
            reason=f"{detail.requested_by}: {detail.reason}; {restored_reason}",
            recorded_at=moment,
            execution_arn=f"event:{request.id}",
            approved_by=detail.requested_by,
            previous_release_id=record.previous_release_id,
        ),
    )
    return OperatorRollback(
        True,
        f"rolled {model} back from release {release_id} to {record.previous_release_id} at the request of "
        f"{detail.requested_by}: {detail.reason}",
        model,
        release_id,
        record.previous_release_id,
    )
