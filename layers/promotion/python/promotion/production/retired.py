"""The rollback window: after a promotion, the previous champion's SageMaker model and endpoint config stay, so that
an operator's rollback (promotion.production.operator_rollback) puts the previous release back with one
UpdateEndpoint, on instances SageMaker provisions from a config that still exists. After the catalog's
`rollout.rollback_window_hours` (counted from the promotion's audit record), an hourly schedule deletes them.

Only what the product named is deleted (`promotion.contract.names`: a champion from before the product, with its
own names, is left alone), never the config the endpoint serves or a model one of its variants serves, and each
deletion tolerates what is already gone. A rollback asked after the window is refused before anything is written:
the previous release's config no longer exists.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import name_pattern
from promotion.contract.state import Outcome
from promotion.core.errors import BackupMissing, ConfigSchemaError, aws_error_message
from promotion.production.backup import load_backup
from promotion.production.config import parse_config
from promotion.production.read import describe_endpoint, read_config
from promotion.result.audit import read_audit_record


@dataclass(frozen=True)
class Retired:
    """What the cleanup did for one model: the previous champion's resources, deleted or kept, and why."""

    model: str
    reason: str
    release_id: str | None = None  # the live release, whose promotion retired the previous champion
    kept_until: datetime | None = None
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _ours(role: str, model: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, name_pattern(role, model))


def _gone(error: ClientError) -> bool:
    return "could not find" in aws_error_message(error).lower()


def endpoint_config_exists(sagemaker: Any, name: str) -> bool:
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as error:
        if _gone(error):
            return False
        raise
    return True


def clean_retired(
    catalog: ModelCatalog, *, s3: Any, sagemaker: Any, dynamodb: Any, bucket: str, table: str, now: datetime
) -> Retired:
    """Delete the previous champion's model and endpoint config of `catalog`'s model once the live release's rollback
    window has passed; otherwise say what is kept and until when."""
    model = catalog.id
    if catalog.rollout is None:
        return Retired(model, "no rollout settings: no endpoint, nothing retired")
    current = read_config(s3, bucket, catalog.config.key)
    try:
        release = parse_config(current.body).release_id if current.body is not None else None
    except ConfigSchemaError:
        release = None
    if release is None:
        return Retired(model, "no readable production config: nothing retired")
    audit = read_audit_record(dynamodb, table, model, release)
    if audit is None or audit.outcome != Outcome.PROMOTED.value:
        return Retired(
            model, f"release {release} has no PROMOTED audit record: its rollback window is unknown", release
        )
    kept_until = audit.recorded_at + timedelta(hours=catalog.rollout.rollback_window_hours)
    try:
        backup = load_backup(s3, bucket, model, release)
    except BackupMissing:
        return Retired(model, f"release {release} has no backup: nothing to tell what it retired", release)
    if backup.endpoint is None:
        return Retired(model, f"release {release} replaced no endpoint config", release)
    previous = backup.endpoint.config_name
    if now < kept_until:
        return Retired(model, f"{previous} kept for a rollback until {kept_until.isoformat()}", release, kept_until)
    endpoint = describe_endpoint(sagemaker, catalog.rollout.endpoint_name) or {}
    serving = endpoint.get("EndpointConfigName")
    if serving == previous:
        return Retired(model, f"the endpoint serves {previous} again: kept", release, kept_until, kept=[previous])
    try:
        described = sagemaker.describe_endpoint_config(EndpointConfigName=previous)
    except ClientError as error:
        if _gone(error):
            return Retired(model, f"{previous} is already gone", release, kept_until)
        raise
    served_models = _models_of(sagemaker, serving)
    deleted, kept = [], []
    if _ours("config", model, previous):
        _delete(sagemaker.delete_endpoint_config, EndpointConfigName=previous)
        deleted.append(previous)
    else:
        kept.append(previous)
    for variant in described.get("ProductionVariants") or []:
        name = variant["ModelName"]
        if name in served_models or not _ours("model", model, name):
            kept.append(name)
            continue
        _delete(sagemaker.delete_model, ModelName=name)
        deleted.append(name)
    why = f"rollback window of release {release} ended {kept_until.isoformat()}"
    if kept:
        why += f"; kept what the product did not name or the endpoint serves: {', '.join(kept)}"
    return Retired(model, why, release, kept_until, deleted, kept)


def _models_of(sagemaker: Any, config: str | None) -> set[str]:
    if not config:
        return set()
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config).get("ProductionVariants") or []
    return {variant["ModelName"] for variant in variants}


def _delete(delete: Any, **request: Any) -> None:
    try:
        delete(**request)
    except ClientError as error:
        if not _gone(error):
            raise
