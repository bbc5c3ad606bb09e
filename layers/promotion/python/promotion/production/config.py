"""The production config file (`production-model-config.yaml`): its schema, its YAML form and its write.

The file is what serving and retraining read, so it is validated before it is written and read back after.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

import yaml
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promotion.contract.catalog import MODEL_ID_PATTERN, ModelCatalog
from promotion.contract.hyperparameters import HyperparameterValue, validate_hyperparameters
from promotion.contract.names import backup_key, promoted_config_key
from promotion.contract.state import ClaimedState, ConfigWritten, PromotionState
from promotion.core.errors import BackupMissing, ConfigSchemaError, aws_error_code


class ConfigSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tuning_job_arn: str
    training_job_name: str
    model_data_url: str | None = None


class ProductionConfig(BaseModel):
    """Schema of production-model-config.yaml (field order is the file's order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[str, Field(pattern=MODEL_ID_PATTERN)]
    release_id: Annotated[str, Field(min_length=1)]
    algorithm: Annotated[str, Field(min_length=1)]
    hyperparameters: Annotated[dict[str, HyperparameterValue], Field(min_length=1)]
    performance: Annotated[dict[str, float], Field(min_length=1)]
    tested_date: datetime
    approved_by: str | None
    approved_by_identity: str | None = None  # the IAM identity AWS recorded for the approval
    approved_at: datetime | None = None
    approval_comment: str = ""
    model_package_arn: str | None = None  # the release's package in the SageMaker Model Registry
    source: ConfigSource
    previous_release_id: str | None


def render_config(config: ProductionConfig) -> str:
    """Deterministic YAML (fixed field order, block style) so identical configs are identical bytes."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, default_flow_style=False, allow_unicode=True)


def parse_config(text: str | bytes) -> ProductionConfig:
    """Parse and schema-check a config document; ConfigSchemaError says which fields are wrong."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigSchemaError(f"production config is not valid YAML: {error}") from error
    try:
        return ProductionConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigSchemaError(f"production config does not match the schema: {problems}") from error


def build_config(state: PromotionState, catalog: ModelCatalog) -> ProductionConfig:
    """The config of the release in `state`, checked against the catalog's hyperparameter schema."""
    claim, validation, backup = state.claim, state.validation, state.backup
    if validation is None or validation.candidate is None or claim.model is None or claim.release_id is None:
        raise ConfigSchemaError("cannot build the production config: the execution has no validated candidate")
    candidate = validation.candidate
    # The candidate was validated already; validating again guards the config against a tampered state document.
    hyperparameters: dict[str, Any] = validate_hyperparameters(candidate.hyperparameters, catalog.hyperparameters)
    approval = state.approval
    try:
        return ProductionConfig(
            model=claim.model,
            release_id=claim.release_id,
            algorithm=catalog.algorithm,
            hyperparameters=hyperparameters,
            performance=dict(sorted(candidate.metrics.items())),
            tested_date=claim.event_time or datetime.now().astimezone(),
            approved_by=approval.decided_by if approval and approval.decision == "approve" else None,
            approved_by_identity=approval.identity if approval and approval.decision == "approve" else None,
            approved_at=approval.decided_at if approval and approval.decision == "approve" else None,
            approval_comment=approval.comment if approval and approval.decision == "approve" else "",
            model_package_arn=approval.model_package_arn if approval and approval.decision == "approve" else None,
            source=ConfigSource(
                tuning_job_arn=candidate.tuning_job_arn,
                training_job_name=candidate.training_job_name,
                model_data_url=candidate.model_data_url,
            ),
            previous_release_id=backup.previous_release_id if backup else None,
        )
    except ValidationError as error:
        raise ConfigSchemaError(f"production config does not match the schema: {error}") from error


def require_backup(s3: Any, bucket: str, model: str, release_id: str) -> None:
    """Refuse to touch production unless the release's backup is on record (so it can always be restored)."""
    key = backup_key(model, release_id)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if aws_error_code(error) == "404":  # HeadObject has no body: S3's answer is the bare status
            raise BackupMissing(
                f"no backup at s3://{bucket}/{key} for release {release_id}; refusing to write production"
            ) from error
        raise


def write_config(s3: Any, bucket: str, catalog: ModelCatalog, state: ClaimedState) -> ConfigWritten:
    """Validate, write and archive the release's config; the previous one was archived by BackupProduction."""
    require_backup(s3, bucket, state.claim.model, state.claim.release_id)
    config = build_config(state, catalog)
    body = render_config(config).encode()
    if parse_config(body) != config:
        raise ConfigSchemaError("rendered production config does not parse back to the same document")
    archive_key = promoted_config_key(config.model, config.release_id)
    s3.put_object(Bucket=bucket, Key=archive_key, Body=body, ContentType="application/yaml")
    response = s3.put_object(Bucket=bucket, Key=catalog.config.key, Body=body, ContentType="application/yaml")
    return ConfigWritten(
        bucket=bucket,
        key=catalog.config.key,
        version_id=response.get("VersionId"),
        sha256=hashlib.sha256(body).hexdigest(),
        archive_key=archive_key,
    )
