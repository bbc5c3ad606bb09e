"""Rollback: put production back exactly as the release's backup recorded it.

One code path serves the state machine's Rollback state and an operator's rollback request. Parameters absent
before are deleted, parameters the release added are deleted, values and types come back, and the config object
gets its previous bytes (or is deleted if there was none). Running it twice is harmless: it only writes what
differs, then reads everything back to prove production equals the backup.
"""

from __future__ import annotations

from typing import Any

from promotion.backup import BackupRecord, check_against_catalog, load_backup
from promotion.catalog import ModelCatalog
from promotion.errors import BackupMissing, PromotionError
from promotion.models import Restored
from promotion.parameters import delete_parameter_if_present
from promotion.production import read_config, read_parameters
from promotion.retry import with_backoff


class RollbackVerificationError(PromotionError):
    """After restoring, production still differs from the backup."""


def _previous_config_bytes(s3: Any, bucket: str, record: BackupRecord) -> bytes | None:
    if not record.config.existed:
        return None
    if record.config.archived_key is None:
        raise BackupMissing(f"backup of release {record.release_id} says a config existed but archived none")
    return bytes(s3.get_object(Bucket=bucket, Key=record.config.archived_key)["Body"].read())


def restore_endpoint(sagemaker: Any, record: BackupRecord) -> str:
    """The endpoint back on the champion alone, first (traffic off the challenger at once), then its original config
    (which removes the challenger's variant)."""
    saved = record.endpoint
    if saved is None or sagemaker is None:
        return "none"
    endpoint = sagemaker.describe_endpoint(EndpointName=saved.name)
    weights = {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in endpoint.get("ProductionVariants", [])}
    if endpoint["EndpointConfigName"] != saved.config_name:
        # Traffic off the challenger at once (the saved weights on the champion, 0 elsewhere), then the original
        # config, which removes the challenger's variant.
        desired = [{"VariantName": name, "DesiredWeight": saved.weights.get(name, 0.0)} for name in weights]
        sagemaker.update_endpoint_weights_and_capacities(EndpointName=saved.name, DesiredWeightsAndCapacities=desired)
        sagemaker.update_endpoint(EndpointName=saved.name, EndpointConfigName=saved.config_name)
    elif weights != saved.weights:
        desired = [{"VariantName": name, "DesiredWeight": weight} for name, weight in saved.weights.items()]
        sagemaker.update_endpoint_weights_and_capacities(EndpointName=saved.name, DesiredWeightsAndCapacities=desired)
    else:
        return "unchanged"
    return f"endpoint {saved.name} back on {saved.config_name} ({', '.join(sorted(saved.weights))})"


def restore_backup(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, record: BackupRecord, sagemaker: Any = None
) -> Restored:
    """Endpoint first, then parameters and config, back to the backup record; then verify. A record that names
    anything but the catalog's own production is refused before anything is written."""
    check_against_catalog(record, catalog)
    endpoint_action = restore_endpoint(sagemaker, record)
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

    previous = _previous_config_bytes(s3, bucket, record)
    now = read_config(s3, bucket, record.config.key)
    action = "unchanged"
    if previous is None and now.body is not None:
        s3.delete_object(Bucket=bucket, Key=record.config.key)
        action = "deleted"
    elif previous is not None and now.body != previous:
        s3.put_object(Bucket=bucket, Key=record.config.key, Body=previous, ContentType="application/yaml")
        action = "restored"

    verify_restored(ssm, s3, bucket, catalog, record, previous)
    return Restored(
        restored=True,
        reason=f"production restored to the state before release {record.release_id}"
        + (f" (release {record.previous_release_id})" if record.previous_release_id else ""),
        release_id=record.release_id,
        parameters_restored=sorted(restored),
        parameters_deleted=sorted(deleted),
        config_action=action,
        endpoint_action=endpoint_action,
    )


def verify_restored(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, record: BackupRecord, previous: bytes | None
) -> None:
    current = read_parameters(ssm, catalog)
    expected = {path: saved for path, saved in record.parameters.items() if saved is not None}
    problems = [
        f"{path}: expected {saved.value!r}, found {current[path].value if path in current else 'nothing'!r}"
        for path, saved in expected.items()
        if path not in current or current[path].value != saved.value
    ]
    problems += [f"{path}: should be absent" for path in sorted(set(current) - set(expected))]
    if read_config(s3, bucket, record.config.key).body != previous:
        problems.append(f"config s3://{bucket}/{record.config.key} differs from the backup")
    if problems:
        raise RollbackVerificationError("production differs from the backup after rollback: " + "; ".join(problems))


def rollback_release(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, release_id: str, sagemaker: Any = None
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
    return restore_backup(ssm, s3, bucket, catalog, record, sagemaker)


def rollback_execution(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, state: Any, sagemaker: Any = None
) -> Restored:
    """The Rollback state: restore the execution's release and say which failure caused it."""
    from promotion.outcome import rollback_cause

    result = rollback_release(ssm, s3, bucket, catalog, state.claim.release_id, sagemaker)
    return result.model_copy(update={"error": rollback_cause(state)})
