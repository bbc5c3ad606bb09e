"""An operator's rollback request: put the model's previous release back, through the same restore as Rollback.

An operator asks by setting the live release's model package to Rejected in the Model Registry (Studio, the AWS
CLI or `promote rollback`); SageMaker's state change event starts the operator rollback state machine. As with an
approval, the request is read back from SageMaker (`DescribeModelPackage`) and only AWS's record of who changed the
package counts: its `LastModifiedBy.IamIdentity.Arn` must be one of the catalog's `operators`. The package must be
the one the live config names, so a request always names the release it means (a rejected candidate, an old
release, or a package of a release that is no longer live is not a rollback request and is ignored).

The release in production is the one its config names; its backup is exactly the previous release's state. A
request (one state change event) is carried out once, whatever its outcome (a redelivered event changes nothing:
operators reject the package again), holds the model's lock for the whole restore (no promotion can claim in
between), and is refused when it is not an operator's, when a promotion of the model is in flight, or when there is
no previous release. A refused request returns the package to Approved (production still serves it), saying why.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.claim.store import OPERATOR_HOLDER_PREFIX, ClaimStore, condition_held
from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import ModelPackageStateChange
from promotion.contract.state import OperatorRollback, Restored
from promotion.core.errors import BackupMissing, ConfigSchemaError, TransientAwsError
from promotion.core.retry import is_transient
from promotion.intake.registry import REJECTED_STATUS, PackageState, describe_package, keep_live, record_outcome
from promotion.production.backup import BackupRecord, load_backup
from promotion.production.config import parse_config
from promotion.production.read import read_config
from promotion.production.restore import restore_backup
from promotion.production.retired import endpoint_config_exists
from promotion.result.audit import AuditRecord, write_audit_record

RECEIVED, RESTORING, DONE = "RECEIVED", "RESTORING", "DONE"
REQUEST_RETENTION_SECONDS = 90 * 86400


@dataclass(frozen=True)
class RollbackRequest:
    """A rollback request as AWS proved it: the live release's package, set to Rejected by a catalog operator."""

    id: str  # the state change event's id: one request, however often EventBridge delivers it
    model: str
    package_arn: str
    requested_by: str  # the operator's name in the catalog
    identity: str  # LastModifiedBy.IamIdentity.Arn, the principal SageMaker authenticated
    reason: str  # the package's ApprovalDescription
    execution: str  # the operator rollback execution that carries it out

    def outcome(self, **fields: Any) -> OperatorRollback:
        """An outcome of this request, saying whose it was."""
        return OperatorRollback(
            model=self.model,
            request_id=self.id,
            requested_by=self.requested_by,
            requested_by_identity=self.identity,
            model_package_arn=self.package_arn,
            request_reason=self.reason,
            **fields,
        )


def _ignored(reason: str, model: str = "unknown") -> OperatorRollback:
    return OperatorRollback(accepted=False, ignored=True, reason=reason, model=model)


def _refused(request: RollbackRequest, reason: str, release: str | None = None) -> OperatorRollback:
    return request.outcome(accepted=False, reason=reason, rolled_back_release=release)


def _refused_live(
    request: RollbackRequest, sagemaker: Any, reason: str, release: str | None = None
) -> OperatorRollback:
    """A refusal that leaves production as it was: the package of the release it still serves says Approved again,
    with the reason (a failure to say so is added to the reason; the refusal stands)."""
    return _refused(request, _kept_live(sagemaker, request.package_arn, reason), release)


def _kept_live(sagemaker: Any, package_arn: str, reason: str) -> str:
    """The package says Approved again with the refusal's reason; the reason, saying so if that failed."""
    try:
        keep_live(sagemaker, package_arn, f"rollback refused: {reason}")
    except ClientError as error:
        return f"{reason} (its package still says Rejected: {error})"
    return reason


def _live_release(s3: Any, bucket: str, catalog: ModelCatalog) -> tuple[str, str | None] | None:
    """(release id, model package ARN) of the release the model's config names; None without a readable config."""
    current = read_config(s3, bucket, catalog.config.key)
    if current.body is None:
        return None
    try:
        config = parse_config(current.body)
    except ConfigSchemaError:
        return None
    return config.release_id, config.model_package_arn


def read_request(
    change: ModelPackageStateChange,
    catalogs: dict[str, ModelCatalog],
    *,
    sagemaker: Any,
    s3: Any,
    bucket: str,
    dynamodb: Any,
    table: str,
    execution: str,
) -> RollbackRequest | OperatorRollback:
    """The rollback request a package's state change is, as SageMaker records it now; otherwise the outcome: ignored
    (not the live release's package, or no longer Rejected) or refused (not a catalog operator's change). A request
    seen before (a redelivered event) is the one recorded then: the package and production may have changed since,
    by this very request."""
    package: PackageState = describe_package(sagemaker, change.detail.ModelPackageArn)
    catalog = next((one for one in catalogs.values() if one.model_package_group == package.group), None)
    if catalog is None:
        return _ignored(f"model package group {package.group!r} is no catalog model's")
    model = catalog.id
    seen = _Requests(dynamodb, table, model, change.id).read()
    if seen is not None and seen.get("model_package_arn", {}).get("S") == package.arn:
        return RollbackRequest(
            id=change.id,
            model=model,
            package_arn=package.arn,
            requested_by=seen["requested_by"]["S"],
            identity=seen.get("requested_by_identity", {}).get("S", ""),
            reason=seen.get("reason", {}).get("S", ""),
            execution=execution,
        )
    if package.status != REJECTED_STATUS:
        return _ignored(f"{package.arn} is {package.status} now: no rollback is asked", model)
    live = _live_release(s3, bucket, catalog)
    if live is None or live[1] != package.arn:
        where = f"release {live[0]}'s is {live[1] or 'none'}" if live is not None else "no readable config"
        return _ignored(
            f"{package.arn} is not the package of {model}'s live release ({where}): its rejection is no rollback "
            "request",
            model,
        )
    operator = catalog.operator(package.identity or "", package.account)
    if operator is None:
        who = package.identity or "an identity SageMaker did not record"
        reason = _kept_live(sagemaker, package.arn, f"{who} is not one of {model}'s operators; nothing restored")
        return OperatorRollback(
            accepted=False,
            reason=reason,
            model=model,
            request_id=change.id,
            requested_by_identity=package.identity,
            model_package_arn=package.arn,
            rolled_back_release=live[0],
        )
    return RollbackRequest(
        id=change.id,
        model=model,
        package_arn=package.arn,
        requested_by=operator.name,
        identity=package.identity or "",
        reason=package.comment or "(no reason given)",
        execution=execution,
    )


def _request_key(model: str, request_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"ROLLBACK#{request_id}"}}


class _Requests:
    """The record of each rollback request (by its event id): who asked and why, received, restoring which
    release, done how."""

    def __init__(self, dynamodb: Any, table: str, model: str, request_id: str) -> None:
        self._dynamodb, self._table, self._key = dynamodb, table, _request_key(model, request_id)

    def begin(self, request: RollbackRequest, moment: datetime) -> dict[str, Any] | None:
        """Record the request (who asked, as AWS proved it, and why); the earlier record when this request was seen
        before (None: it is new)."""
        if condition_held(
            self._dynamodb.put_item,
            TableName=self._table,
            Item={
                **self._key,
                "status": {"S": RECEIVED},
                "requested_by": {"S": request.requested_by},
                "requested_by_identity": {"S": request.identity},
                "reason": {"S": request.reason},
                "model_package_arn": {"S": request.package_arn},
                "received_at": {"S": moment.isoformat()},
                "expires_at": {"N": str(int(moment.timestamp()) + REQUEST_RETENTION_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        ):
            return None
        return self.read()

    def read(self) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._dynamodb.get_item(
            TableName=self._table, Key=self._key, ConsistentRead=True
        ).get("Item")
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
    change: ModelPackageStateChange,
    catalogs: dict[str, ModelCatalog],
    *,
    ssm: Any,
    s3: Any,
    dynamodb: Any,
    bucket: str,
    table: str,
    store: ClaimStore,
    sagemaker: Any,
    execution: str,
    now: datetime | None = None,
) -> OperatorRollback:
    """Restore the release before the current one, or refuse with the reason; each request at most once."""
    request = read_request(
        change,
        catalogs,
        sagemaker=sagemaker,
        s3=s3,
        bucket=bucket,
        dynamodb=dynamodb,
        table=table,
        execution=execution,
    )
    if isinstance(request, OperatorRollback):
        return request
    model = request.model
    moment = now or datetime.now(UTC)
    requests = _Requests(dynamodb, table, model, request.id)
    seen = requests.begin(request, moment)
    if seen is not None and seen["status"]["S"] == DONE:
        return _refused(
            request,
            f"rollback request {request.id} was already handled ({seen.get('outcome', {}).get('S', 'done')}); "
            "a redelivered request changes nothing: reject the live release's package again",
        )
    interrupted = seen["release_id"]["S"] if seen is not None and "release_id" in seen else None
    # Each attempt holds the lock under its own name: a second delivery of the same request arriving while the first
    # restores finds the lock taken and backs off, instead of re-entering it.
    attempt = f"{request.id}/{uuid.uuid4().hex[:12]}"
    refusal = store.lock_for_operator(model, attempt)
    if refusal is not None:
        current = store.lock_holder(model)
        if current is not None and current["holder"].startswith(f"{OPERATOR_HOLDER_PREFIX}{request.id}/"):
            return _refused(request, f"rollback request {request.id} is being handled by another delivery")
        return requests.done(
            _refused_live(
                request, sagemaker, f"a promotion of {model} is in flight ({refusal}); roll back after it ends"
            )
        )
    try:
        outcome = _restore_previous(
            request, catalogs[model], requests, interrupted, ssm, s3, dynamodb, bucket, table, sagemaker, moment
        )
    except BaseException:
        store.release_operator_lock(model, attempt)
        raise
    if outcome.pending:  # the lock stays held while the endpoint is restored (continue_rollback releases it)
        return outcome.model_copy(update={"attempt": attempt})
    return _conclude(requests, store, model, attempt, outcome)


def rollback_step(
    change: ModelPackageStateChange,
    progress: OperatorRollback | None,
    catalogs: dict[str, ModelCatalog],
    **services: Any,
) -> OperatorRollback:
    """One step of the operator rollback state machine: the request's first (`progress` None) or the next."""
    if progress is None:
        return rollback_on_request(change, catalogs, **services)
    return continue_rollback(catalogs, progress, **services)


def _request_of(progress: OperatorRollback, execution: str) -> RollbackRequest:
    """The request an accepted, pending rollback carries on."""
    if not (progress.request_id and progress.requested_by and progress.model_package_arn):
        raise ValueError(f"operator rollback of {progress.model}: the progress names no request ({progress.reason})")
    return RollbackRequest(
        id=progress.request_id,
        model=progress.model,
        package_arn=progress.model_package_arn,
        requested_by=progress.requested_by,
        identity=progress.requested_by_identity or "",
        reason=progress.request_reason,
        execution=execution,
    )


def continue_rollback(
    catalogs: dict[str, ModelCatalog],
    progress: OperatorRollback,
    *,
    ssm: Any,
    s3: Any,
    dynamodb: Any,
    bucket: str,
    table: str,
    store: ClaimStore,
    sagemaker: Any,
    execution: str,
    now: datetime | None = None,
) -> OperatorRollback:
    """The endpoint's next step of an accepted rollback whose endpoint is still being restored (see the module
    docstring); the final outcome once it serves the previous release."""
    model, release_id, attempt = progress.model, progress.rolled_back_release, progress.attempt
    request = _request_of(progress, execution)
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
        failed = request.outcome(
            accepted=False,
            reason=f"the rollback of release {release_id} failed part way: {error}; the endpoint may still serve "
            "it, and the config names it until the endpoint is back: reject its package again to finish",
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
    request: RollbackRequest,
    record: BackupRecord,
    catalog: ModelCatalog,
    *,
    sagemaker: Any,
    s3: Any,
    bucket: str,
) -> str:
    """Both releases' Model Registry packages say what happened: the rolled-back one (already Rejected by the
    operator) is `rolled-back`, the restored one `current` again. Releases from before the registry have no
    package; a registry failure is a note, not a failed rollback (production is already back)."""
    who = f"operator rollback by {request.requested_by}: {request.reason}"
    try:
        record_outcome(sagemaker, request.package_arn, who, production="rolled-back")
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
    request: RollbackRequest,
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
    model = record.model
    registry_note = _mark_packages(request, record, catalog, sagemaker=sagemaker, s3=s3, bucket=bucket)
    note = "; ".join(part for part in (note, registry_note) if part)
    write_audit_record(
        dynamodb,
        table,
        AuditRecord(
            model=model,
            release_id=f"{record.release_id}-rollback-{moment.strftime('%Y%m%dT%H%M%S')}",
            outcome="OPERATOR_ROLLBACK",
            reason=f"{request.requested_by}: {request.reason}; {restored.reason}" + (f" ({note})" if note else ""),
            recorded_at=moment,
            execution_arn=request.execution,
            approved_by=request.requested_by,
            approved_by_identity=request.identity,
            model_package_arn=request.package_arn,
            previous_release_id=record.previous_release_id,
        ),
    )
    return request.outcome(
        accepted=True,
        reason=f"rolled {model} back from release {record.release_id} to {record.previous_release_id} at the "
        f"request of {request.requested_by} ({request.identity}): {request.reason}",
        rolled_back_release=record.release_id,
        restored_release=record.previous_release_id,
        restored=restored,
    )


def _restore_previous(
    request: RollbackRequest,
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
    """Under the model's lock: check that the requested release is still the live one, and restore its backup (the
    previous release)."""
    model = catalog.id
    live = _live_release(s3, bucket, catalog)
    if live is None:
        return _refused(request, f"the production config of {model} is missing or unreadable; nothing restored")
    live_release, live_package = live
    # A retry of this same request after an attempt began restoring (it failed or its audit write did): restore that
    # release's backup again (idempotent, and verified), never the one before it.
    release_id = interrupted if interrupted is not None else live_release
    if interrupted is None and live_package != request.package_arn:
        return _refused(
            request,
            f"the request rejected {request.package_arn}, but {model}'s live release is now {live_release} "
            f"({live_package or 'no package'}): production changed since; nothing restored",
        )
    try:
        record = load_backup(s3, bucket, model, release_id)
    except BackupMissing as error:
        return _refused_live(request, sagemaker, f"no backup of release {release_id}: {error}", release_id)
    if interrupted is not None and live_release not in (interrupted, record.previous_release_id):
        return _refused(
            request,
            f"production moved on to release {live_release} since an earlier attempt of this request began "
            f"restoring release {interrupted}; nothing restored",
            interrupted,
        )
    if not record.config.existed:
        return _refused_live(
            request,
            sagemaker,
            f"release {release_id} is the first release of {model}: there is no previous release to restore",
            release_id,
        )
    if record.endpoint is not None and not endpoint_config_exists(sagemaker, record.endpoint.config_name):
        window = catalog.rollout.rollback_window_hours if catalog.rollout is not None else None
        return _refused_live(
            request,
            sagemaker,
            f"the endpoint config of the release before {release_id} ({record.endpoint.config_name}) was deleted "
            f"after the {window:g}-hour rollback window (rollout.rollback_window_hours): nothing restored; promote "
            "that release's tuning job again to bring it back",
            release_id,
        )
    requests.restoring(release_id)
    restored = restore_backup(ssm, s3, bucket, catalog, record, sagemaker)
    note = f"an earlier attempt of this request had begun restoring release {interrupted}" if interrupted else ""
    if restored.endpoint_pending:
        return request.outcome(
            accepted=True,
            pending=True,
            reason=_pending_reason(model, restored),
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
