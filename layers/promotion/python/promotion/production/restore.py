"""Rollback: put production back exactly as the release's backup recorded it.

One code path serves the state machine's Rollback state and an operator's rollback request. Parameters absent
before are deleted, parameters the release added are deleted, values and types come back, and the config object
gets its previous bytes (or is deleted if there was none). Running it twice is harmless: it only writes what
differs, then reads everything back to prove production equals the backup.

Parameters come back first: they take effect at once. The endpoint comes back next, one SageMaker call per run,
because SageMaker refuses any change while the endpoint is Updating: each run either waits (the endpoint is still
changing), makes the next call (traffic off the challenger, the backed-up config, the backed-up weights), or
confirms that the endpoint serves exactly the backed-up config and weights. The caller runs it again after a wait
while `endpoint_pending` is true (the state machine's WaitForRollbackEndpoint loop). The config object comes back
last, once the endpoint is confirmed: it names the release in production, so a rollback cut short (the endpoint
could not be restored) leaves it naming the release being rolled back, and the operator rollback that finishes the
job targets that release's backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Restored
from promotion.core.errors import BackupMissing, PromotionError, is_endpoint_busy
from promotion.core.retry import with_backoff
from promotion.production.backup import BackupRecord, check_against_catalog, load_backup
from promotion.production.parameters import delete_parameter_if_present
from promotion.production.read import describe_endpoint, read_config, read_parameters, served_weights
from promotion.rollout.steps import IN_PROGRESS, MAX_ENDPOINT_POLLS, same_weights

DRAIN, WEIGHTS = "UpdateEndpointWeightsAndCapacities:drain", "UpdateEndpointWeightsAndCapacities:restore"
# At most: a wait for a change already under way, traffic off the challenger, the backed-up config, its weights.
RESTORE_STEPS = 4


class RollbackVerificationError(PromotionError):
    """After restoring, production still differs from the backup."""


def _previous_config_bytes(s3: Any, bucket: str, record: BackupRecord) -> bytes | None:
    if not record.config.existed:
        return None
    if record.config.archived_key is None:
        raise BackupMissing(f"backup of release {record.release_id} says a config existed but archived none")
    return bytes(s3.get_object(Bucket=bucket, Key=record.config.archived_key)["Body"].read())


@dataclass(frozen=True)
class EndpointStep:
    """One run's progress on the endpoint: still `pending` (after `requested`, or waiting on SageMaker), or done."""

    pending: bool
    action: str
    requested: str | None = None
    polls: int = 0


def restore_endpoint_step(sagemaker: Any, record: BackupRecord, previous: Restored | None = None) -> EndpointStep:
    """The next step toward the backed-up endpoint (see the module docstring); raises RollbackVerificationError
    when SageMaker did not do what the previous step asked, or the endpoint can no longer be restored. A call
    SageMaker refuses because another change began in between is waited for and made again."""
    try:
        return _endpoint_step(sagemaker, record, previous)
    except ClientError as error:
        if not is_endpoint_busy(error) or record.endpoint is None:
            raise
        last, polls = _carried_over(previous)
        if polls > MAX_ENDPOINT_POLLS:
            name = record.endpoint.name
            raise RollbackVerificationError(f"endpoint {name} still refuses changes: {error}") from error
        return EndpointStep(True, f"SageMaker refused the change ({error}); trying again after the wait", last, polls)


def _carried_over(previous: Restored | None) -> tuple[str | None, int]:
    """From this rollback's last run, while its endpoint is pending: the call it made, and this run's poll count."""
    if previous is None or not previous.endpoint_pending:
        return None, 0
    return previous.endpoint_requested, previous.endpoint_polls + 1


def _endpoint_step(sagemaker: Any, record: BackupRecord, previous: Restored | None) -> EndpointStep:
    saved = record.endpoint
    if saved is None or sagemaker is None:
        return EndpointStep(pending=False, action="none")
    last, polls = _carried_over(previous)
    endpoint = describe_endpoint(sagemaker, saved.name)
    if endpoint is None:
        raise RollbackVerificationError(
            f"endpoint {saved.name} no longer exists; the backup says it served {saved.config_name}"
        )
    status = endpoint["EndpointStatus"]
    if status in IN_PROGRESS:
        if polls > MAX_ENDPOINT_POLLS:
            raise RollbackVerificationError(f"endpoint {saved.name} still {status} after {polls} polls")
        return EndpointStep(True, f"endpoint {saved.name} is {status}; waiting to restore it", last, polls)
    failure = endpoint.get("FailureReason") or "no FailureReason given"
    if status != "InService":
        raise RollbackVerificationError(f"endpoint {saved.name} is {status} ({failure}); restore it by hand")
    config, weights = endpoint["EndpointConfigName"], served_weights(endpoint)
    if config != saved.config_name:
        if last == f"UpdateEndpoint:{saved.config_name}":
            raise RollbackVerificationError(
                f"UpdateEndpoint of {saved.name} back to {saved.config_name} failed: it still serves {config} "
                f"({failure})"
            )
        champions = {name: weight for name, weight in saved.weights.items() if name in weights}
        challengers_live = any(weight > 0 for name, weight in weights.items() if name not in saved.weights)
        if last != DRAIN and challengers_live and sum(champions.values()) > 0:
            # Traffic off the challenger first: new weights apply in seconds, a config change takes minutes.
            desired = [{"VariantName": name, "DesiredWeight": saved.weights.get(name, 0.0)} for name in weights]
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=saved.name, DesiredWeightsAndCapacities=desired
            )
            return EndpointStep(True, f"endpoint {saved.name}: traffic back on {', '.join(champions)}", DRAIN, 0)
        sagemaker.update_endpoint(EndpointName=saved.name, EndpointConfigName=saved.config_name)
        requested = f"UpdateEndpoint:{saved.config_name}"
        return EndpointStep(True, f"endpoint {saved.name}: back to config {saved.config_name}", requested, 0)
    if not same_weights(weights, saved.weights):
        if set(weights) != set(saved.weights) or last == WEIGHTS:
            raise RollbackVerificationError(
                f"endpoint {saved.name} serves {config} with weights {weights}, not the backed-up {saved.weights} "
                f"({failure})"
            )
        desired = [{"VariantName": name, "DesiredWeight": weight} for name, weight in saved.weights.items()]
        sagemaker.update_endpoint_weights_and_capacities(EndpointName=saved.name, DesiredWeightsAndCapacities=desired)
        return EndpointStep(True, f"endpoint {saved.name}: weights back to {saved.weights}", WEIGHTS, 0)
    if last is None and previous is None:
        return EndpointStep(pending=False, action="unchanged")
    return EndpointStep(
        pending=False, action=f"endpoint {saved.name} back on {saved.config_name} ({', '.join(sorted(saved.weights))})"
    )


def restore_backup(
    ssm: Any,
    s3: Any,
    bucket: str,
    catalog: ModelCatalog,
    record: BackupRecord,
    sagemaker: Any = None,
    previous: Restored | None = None,
) -> Restored:
    """Parameters back to the backup record, then the endpoint's next step (`previous`: this rollback's last run,
    while its endpoint is pending), then, once the endpoint is confirmed, the config; everything verified. A record
    that names anything but the catalog's own production is refused before anything is written."""
    check_against_catalog(record, catalog)
    current = read_parameters(ssm, catalog)
    restored: list[str] = []
    deleted: list[str] = []
    for path, saved in record.parameters.items():
        if saved is None:
            if path in current:
                with_backoff(lambda path=path: delete_parameter_if_present(ssm, path))  # type: ignore[misc]
                deleted.append(path)
        elif path not in current or current[path].value != saved.value or current[path].type != saved.type:
            with_backoff(
                lambda path=path, saved=saved: ssm.put_parameter(  # type: ignore[misc]
                    Name=path, Value=saved.value, Type=saved.type, Overwrite=True
                )
            )
            restored.append(path)
    for path in sorted(set(current) - set(record.parameters)):
        with_backoff(lambda path=path: delete_parameter_if_present(ssm, path))  # type: ignore[misc]
        deleted.append(path)

    verify_parameters(ssm, catalog, record)
    if previous is not None and previous.endpoint_pending:  # a later run of the same rollback: keep what it did
        restored = sorted(set(restored) | set(previous.parameters_restored))
        deleted = sorted(set(deleted) | set(previous.parameters_deleted))
    endpoint = restore_endpoint_step(sagemaker, record, previous)
    if endpoint.pending:  # the config waits for the endpoint (see the module docstring)
        return Restored(
            restored=False,
            reason=f"parameters restored; the endpoint is being restored; the config follows ({endpoint.action})",
            release_id=record.release_id,
            parameters_restored=sorted(restored),
            parameters_deleted=sorted(deleted),
            config_action="pending",
            endpoint_action=endpoint.action,
            endpoint_pending=True,
            endpoint_requested=endpoint.requested,
            endpoint_polls=endpoint.polls,
        )
    previous_config = _previous_config_bytes(s3, bucket, record)
    now = read_config(s3, bucket, record.config.key)
    action = "unchanged"
    if previous_config is None and now.body is not None:
        s3.delete_object(Bucket=bucket, Key=record.config.key)
        action = "deleted"
    elif previous_config is not None and now.body != previous_config:
        s3.put_object(Bucket=bucket, Key=record.config.key, Body=previous_config, ContentType="application/yaml")
        action = "restored"

    verify_restored(ssm, s3, bucket, catalog, record, previous_config)
    return Restored(
        restored=True,
        reason=f"production restored to the state before release {record.release_id}"
        + (f" (release {record.previous_release_id})" if record.previous_release_id else ""),
        release_id=record.release_id,
        parameters_restored=sorted(restored),
        parameters_deleted=sorted(deleted),
        config_action=action,
        endpoint_action=endpoint.action,  # done: no call pending, nothing requested, no polls
    )


def verify_parameters(ssm: Any, catalog: ModelCatalog, record: BackupRecord) -> None:
    """The model's parameters equal the backup's (values and types, and nothing more)."""
    problems = _parameter_problems(ssm, catalog, record)
    if problems:
        raise RollbackVerificationError("parameters differ from the backup after rollback: " + "; ".join(problems))


def _parameter_problems(ssm: Any, catalog: ModelCatalog, record: BackupRecord) -> list[str]:
    current = read_parameters(ssm, catalog)
    expected = {path: saved for path, saved in record.parameters.items() if saved is not None}
    problems = [
        f"{path}: expected {saved.value!r} ({saved.type}), found "
        + (f"{current[path].value!r} ({current[path].type})" if path in current else "nothing")
        for path, saved in expected.items()
        if path not in current or (current[path].value, current[path].type) != (saved.value, saved.type)
    ]
    problems += [f"{path}: should be absent" for path in sorted(set(current) - set(expected))]
    return problems


def verify_restored(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, record: BackupRecord, previous: bytes | None
) -> None:
    problems = _parameter_problems(ssm, catalog, record)
    if read_config(s3, bucket, record.config.key).body != previous:
        problems.append(f"config s3://{bucket}/{record.config.key} differs from the backup")
    if problems:
        raise RollbackVerificationError("production differs from the backup after rollback: " + "; ".join(problems))


def rollback_release(
    ssm: Any,
    s3: Any,
    bucket: str,
    catalog: ModelCatalog,
    release_id: str,
    sagemaker: Any = None,
    previous: Restored | None = None,
) -> Restored:
    """Restore the state before `release_id`; when there is no backup, the release never wrote production."""
    try:
        record = load_backup(s3, bucket, catalog.id, release_id)
    except BackupMissing as error:
        return Restored(
            restored=False,
            reason=f"{error}; nothing to restore: production writes require that backup, so none happened",
            release_id=release_id,
        )
    return restore_backup(ssm, s3, bucket, catalog, record, sagemaker, previous)


def rollback_execution(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, state: Any, sagemaker: Any = None
) -> Restored:
    """The Rollback state (each run of its wait loop): restore the execution's release and say which failure
    caused it."""
    from promotion.result.outcome import rollback_cause

    previous = state.rollback if state.rollback is not None and state.rollback.endpoint_pending else None
    result = rollback_release(ssm, s3, bucket, catalog, state.claim.release_id, sagemaker, previous)
    return result.model_copy(update={"error": rollback_cause(state)})
