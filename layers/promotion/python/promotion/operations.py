"""An operator's rollback request: put the model's previous release back, through the same restore as Rollback.

The release in production is the one its config names; its backup is exactly the previous release's state. The
request is refused when a promotion of the model is in flight or when there is no previous release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from promotion.audit import AuditRecord, write_audit_record
from promotion.backup import load_backup
from promotion.catalog import ModelCatalog
from promotion.claims import ClaimStore
from promotion.config import parse_config
from promotion.errors import BackupMissing, ConfigSchemaError
from promotion.events import RollbackRequested
from promotion.production import read_config
from promotion.rollback import restore_backup


@dataclass(frozen=True)
class OperatorRollback:
    accepted: bool
    reason: str
    model: str
    rolled_back_release: str | None = None
    restored_release: str | None = None


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
    """Restore the release before the current one, or refuse with the reason."""
    detail = request.detail
    model = detail.model
    catalog = catalogs.get(model)
    if catalog is None:
        return OperatorRollback(False, f"rollback requested for unknown model {model!r}", model)
    holder = store.lock_holder(model)
    if holder is not None:
        return OperatorRollback(
            False,
            f"a promotion of {model} is in flight (execution {holder['holder']}, release {holder['release_id']}); "
            "roll back after it ends",
            model,
        )
    current = read_config(s3, bucket, catalog.config.key)
    if current.body is None:
        return OperatorRollback(False, f"{model} has no production config: there is no release to roll back", model)
    try:
        release_id = parse_config(current.body).release_id
    except ConfigSchemaError as error:
        return OperatorRollback(
            False, f"the production config of {model} is unreadable ({error}); cannot tell the release", model
        )
    try:
        record = load_backup(s3, bucket, model, release_id)
    except BackupMissing as error:
        return OperatorRollback(False, f"no backup of release {release_id}: {error}", model, release_id)
    if not record.config.existed:
        return OperatorRollback(
            False,
            f"release {release_id} is the first release of {model}: there is no previous release to restore",
            model,
            release_id,
        )
    restored = restore_backup(ssm, s3, bucket, catalog, record, sagemaker)
    moment = now or datetime.now(UTC)
    write_audit_record(
        dynamodb,
        table,
        AuditRecord(
            model=model,
            release_id=f"{release_id}-rollback-{moment.strftime('%Y%m%dT%H%M%S')}",
            outcome="OPERATOR_ROLLBACK",
            reason=f"{detail.requested_by}: {detail.reason}; {restored.reason}",
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
