"""Settings from the Lambda environment, read through one model, lazily (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, Json

from promotion.contract.job_image import Images

DEFAULT_CATALOG_DIR = "/opt/catalog"  # where the catalog layer's files are in a Lambda


class Settings(BaseModel):
    """Environment of every promotion Lambda: set by the CDK stack, copied from the template by the local runtime."""

    model_config = ConfigDict(frozen=True)

    config_bucket: str = Field(alias="CONFIG_BUCKET")
    table_name: str = Field(alias="PROMOTION_TABLE")
    catalog_dir: Path = Field(alias="CATALOG_DIR", default=Path(DEFAULT_CATALOG_DIR))
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", default="default")
    notification_topic_arn: str | None = Field(alias="NOTIFICATION_TOPIC_ARN", default=None)
    # {model id: the execution role of that model's pipeline jobs}, JSON (one role per model: stacks/training.py)
    training_role_arns: Json[dict[str, str]] | None = Field(alias="TRAINING_ROLE_ARNS", default=None)
    # {model id: the execution role of that model's tuning jobs}, JSON (drift's retraining launches them with it)
    tuning_role_arns: Json[dict[str, str]] | None = Field(alias="TUNING_ROLE_ARNS", default=None)
    # The project's job image (jobs/Dockerfile) as `cdk deploy` pushed it, in this region's ECR.
    job_image_uri: str | None = Field(alias="JOB_IMAGE_URI", default=None)
    region: str = Field(alias="AWS_REGION", default="us-east-1")  # set by the Lambda runtime
    # The stack's MLflow tracking server for promotion records (`cdk deploy -c mlflowTrackingUri=...`); a
    # catalog's tracking.mlflow_uri wins over it.
    mlflow_tracking_uri: str | None = Field(alias="MLFLOW_TRACKING_URI", default=None)

    def training_role_for(self, model: str | None) -> str:
        """The pipeline role of `model`'s jobs; a clear error when the stack gives it none."""
        role = (self.training_role_arns or {}).get(model or "")
        if role is None:
            known = ", ".join(sorted(self.training_role_arns or {})) or "none"
            raise ValueError(f"TRAINING_ROLE_ARNS names no role for model {model!r} (it names: {known})")
        return role

    def tuning_role_for(self, model: str) -> str:
        """The tuning role of `model`; a clear error when the stack gives it none."""
        role = (self.tuning_role_arns or {}).get(model)
        if role is None:
            known = ", ".join(sorted(self.tuning_role_arns or {})) or "none"
            raise ValueError(f"TUNING_ROLE_ARNS names no role for model {model!r} (it names: {known})")
        return role

    def images(self) -> Images:
        return Images(project_image_uri=self.job_image_uri, region=self.region)


def function_environment(**values: str) -> dict[str, str]:
    """The Lambda environment that sets these Settings fields, under the variable names Settings reads: the stack
    writes the environment through this, so the two cannot spell a name differently."""
    fields = Settings.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"Settings has no field {', '.join(unknown)}")
    return {str(fields[name].alias): value for name, value in values.items()}


def settings() -> Settings:
    """Current settings; not cached, as the local runtime runs several functions (own environments) in one process."""
    environment = dict(os.environ)
    if "AWS_REGION" not in environment and "AWS_DEFAULT_REGION" in environment:
        environment["AWS_REGION"] = environment["AWS_DEFAULT_REGION"]
    return Settings.model_validate(environment)
