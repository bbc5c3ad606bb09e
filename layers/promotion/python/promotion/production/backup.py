"""BackupProduction: a snapshot of production taken once per release, before anything is written.

The backup record (`archive/<model>/<release-id>/backup.json`) lists every parameter under the model's prefix with
its value and type, and every schema parameter that was absent (restore deletes those); the config's exact bytes
are archived beside it. The record is written last and never overwritten, so a retried step cannot capture a
half-promoted production as "before".
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key, previous_config_key
from promotion.contract.state import Backup
from promotion.core.errors import (
    BackupMissing,
    BackupTampered,
    ConfigSchemaError,
    PromotionError,
    UnrestorableParameter,
    aws_error_code,
)
from promotion.production.config import parse_config
from promotion.production.read import read_config, read_endpoint, read_parameters

SECURE_STRING = "SecureString"


class BackedUpParameter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str
    type: str


class BackedUpConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    existed: bool
    version_id: str | None = None
    sha256: str | None = None
    archived_key: str | None = None


class BackedUpEndpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    config_name: str
    weights: dict[str, float]


class BackupRecord(BaseModel):
    """What production looked like before a release; `parameters[path] is None` means the parameter was absent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    release_id: str
    taken_at: datetime
    prefix: str
    parameters: dict[str, BackedUpParameter | None]
    config: BackedUpConfig
    endpoint: BackedUpEndpoint | None = None
    previous_release_id: str | None = None


def _previous_release_id(body: bytes) -> str | None:
    try:
        return parse_config(body).release_id
    except ConfigSchemaError:
        return None


def load_backup(s3: Any, bucket: str, model: str, release_id: str) -> BackupRecord:
    """The backup record of a release, or BackupMissing."""
    key = backup_key(model, release_id)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if aws_error_code(error) == "NoSuchKey":  # GetObject names it (HeadObject would answer a bare 404)
            raise BackupMissing(
                f"no backup at s3://{bucket}/{key} for release {release_id} of model {model}"
            ) from error
        raise
    record = BackupRecord.model_validate_json(body)
    if (record.model, record.release_id) != (model, release_id):
        raise BackupTampered(
            f"the backup at s3://{bucket}/{key} is of model {record.model} release {record.release_id}, "
            f"not {model} release {release_id}; nothing restored"
        )
    return record


def check_against_catalog(record: BackupRecord, catalog: ModelCatalog) -> None:
    """A restore writes what the record names: each name must be the model's own production (its Parameter Store
    prefix, its config key and archive, its endpoint), or the restore would write someone else's."""
    problems = []
    prefix = catalog.parameter_store.prefix
    if record.model != catalog.id:
        problems.append(f"it is a backup of {record.model}")
    if record.prefix != prefix:
        problems.append(f"its prefix {record.prefix} is not {prefix}")
    outside = sorted(path for path in record.parameters if not path.startswith(prefix + "/"))
    if outside:
        problems.append(f"parameters outside {prefix}/: {', '.join(outside)}")
    if record.config.key != catalog.config.key:
        problems.append(f"its config key {record.config.key} is not {catalog.config.key}")
    archived = previous_config_key(catalog.id, record.release_id)
    if record.config.archived_key is not None and record.config.archived_key != archived:
        problems.append(f"its archived config {record.config.archived_key} is not {archived}")
    if record.endpoint is not None:
        expected = catalog.rollout.endpoint_name if catalog.rollout is not None else None
        if record.endpoint.name != expected:
            problems.append(f"its endpoint {record.endpoint.name} is not the catalog's ({expected or 'none'})")
    if problems:
        raise BackupTampered(
            f"the backup of {catalog.id} release {record.release_id} does not match the catalog: "
            f"{'; '.join(problems)}; nothing restored"
        )


def summarize(record: BackupRecord, key: str) -> Backup:
    return Backup(
        release_id=record.release_id,
        backup_key=key,
        parameters_present=sum(1 for value in record.parameters.values() if value is not None),
        parameters_absent=sorted(path for path, value in record.parameters.items() if value is None),
        config_existed=record.config.existed,
        config_version_id=record.config.version_id,
        previous_release_id=record.previous_release_id,
    )


def backup_production(
    ssm: Any, s3: Any, bucket: str, catalog: ModelCatalog, release_id: str, clock: Any = None, sagemaker: Any = None
) -> Backup:
    """Snapshot the model's parameters and config under the release id (idempotent: an existing record wins)."""
    model = catalog.id
    key = backup_key(model, release_id)
    try:
        return summarize(load_backup(s3, bucket, model, release_id), key)
    except BackupMissing:
        pass
    stored = read_parameters(ssm, catalog)
    secure = sorted(path for path, parameter in stored.items() if parameter.type == SECURE_STRING)
    if secure:  # before anything is written: the promotion stops here and production keeps every parameter
        raise UnrestorableParameter(
            f"{', '.join(secure)} under {catalog.parameter_store.prefix} is a SecureString: a backup reads it "
            "encrypted and could not put it back, and the promotion replaces everything under the prefix. Move it "
            "out of the model's prefix (the product keeps only String and StringList hyperparameters there)"
        )
    parameters: dict[str, BackedUpParameter | None] = {
        path: BackedUpParameter(value=parameter.value, type=parameter.type) for path, parameter in stored.items()
    }
    for name in catalog.hyperparameters:
        parameters.setdefault(catalog.parameter_path(name), None)
    current = read_config(s3, bucket, catalog.config.key)
    config = BackedUpConfig(key=catalog.config.key, existed=current.body is not None)
    previous_release = None
    if current.body is not None:
        archived = previous_config_key(model, release_id)
        s3.put_object(Bucket=bucket, Key=archived, Body=current.body, ContentType="application/yaml")
        config = BackedUpConfig(
            key=catalog.config.key,
            existed=True,
            version_id=current.version_id,
            sha256=hashlib.sha256(current.body).hexdigest(),
            archived_key=archived,
        )
        previous_release = _previous_release_id(current.body)
    endpoint = read_endpoint(sagemaker, catalog)
    record = BackupRecord(
        model=model,
        release_id=release_id,
        taken_at=(clock() if clock else datetime.now(UTC)),
        prefix=catalog.parameter_store.prefix,
        parameters=dict(sorted(parameters.items())),
        config=config,
        endpoint=BackedUpEndpoint(name=endpoint.name, config_name=endpoint.config_name, weights=endpoint.weights)
        if endpoint
        else None,
        previous_release_id=previous_release,
    )
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record.model_dump(mode="json"), indent=2).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as error:
        if aws_error_code(error) != "PreconditionFailed":
            raise
        # A concurrent attempt of this same step wrote the record first: that one is the truth.
        return summarize(load_backup(s3, bucket, model, release_id), key)
    stored_again = load_backup(s3, bucket, model, release_id)
    if stored_again != record:
        raise PromotionError(f"backup at s3://{bucket}/{key} does not read back as written")
    return summarize(record, key)
