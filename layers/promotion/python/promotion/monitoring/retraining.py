"""Drift's answer: a new tuning job for the model, built from its catalog as the data scientists' launcher
(promotion_toolkit.launcher, with the sagemaker SDK) builds one with its defaults, here with boto3 alone (a Lambda
never imports the SDK). Its completion reaches the TuningJobCompleted rule like any other tagged tuning job, so the
next promotion starts by itself.

Rate limits, per model, kept in the promotion table (`RETRAIN#<model>`):

* at most one open retraining: while the last one's tuning job is InProgress or Stopping, drift starts none;
* at most one per `monitoring.retraining.min_interval_hours`, counted from the last one's start.

Two drift verdicts arriving together cannot both start one: the record is replaced on the condition that it still
names the retraining both read, and the job's name comes from the drift check's window, so a retried delivery of the
same verdict finds (and adopts) its own job rather than starting a second.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel

from promotion.claim.store import condition_held
from promotion.contract.catalog import HyperparameterSpec, ModelCatalog
from promotion.contract.events import DRIFT_TRIGGER_TAG, MODEL_TAG
from promotion.contract.job_image import MAX_TUNING_METRIC_DEFINITIONS, metric_definitions
from promotion.contract.names import TUNING_PREFIX, tuning_job_name
from promotion.core.errors import PromotionError, aws_error_code
from promotion.jobs.training import training_channels
from promotion.monitoring.drift import DriftVerdict

OPEN_STATUSES = ("InProgress", "Stopping")
TRIGGER_TAG = DRIFT_TRIGGER_TAG
DRIFT_TRIGGER = "drift"
# Tags that tell operators why the tuning job started (the promotion that follows shows them too).
DRIFT_CHECK_TAG = "promotion:drift-check"
DRIFT_FEATURE_TAG = "promotion:drift-feature"
DRIFT_PSI_TAG = "promotion:drift-psi"
DRIFT_RELEASE_TAG = "promotion:drift-release"
RECORD_SK = "LATEST"


class RetrainingError(PromotionError):
    """The catalog cannot be turned into a tuning job (a hyperparameter without a range to search)."""


class Retraining(BaseModel):
    """What drift asked for: STARTED (its tuning job), or NOT_STARTED and why (a rate limit)."""

    model: str
    status: Literal["STARTED", "NOT_STARTED"]
    reason: str
    tuning_job_name: str | None = None
    previous_tuning_job: str | None = None


def _text(value: str | int | float | bool) -> str:
    """A hyperparameter as SageMaker passes it (booleans lower-case, as the launcher writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _single_value(spec: HyperparameterSpec) -> str | int | float | bool | None:
    if spec.choices:
        unique = list(dict.fromkeys(spec.choices))
        return unique[0] if len(unique) == 1 else None
    if spec.type == "int" and spec.min is not None and spec.max is not None and math.ceil(spec.min) == spec.max:
        return int(spec.max)
    if spec.type == "float" and spec.min is not None and spec.min == spec.max:
        return float(spec.min)
    return None


def search_space(catalog: ModelCatalog) -> tuple[dict[str, list[dict[str, str]]], dict[str, str]]:
    """(ParameterRanges, StaticHyperParameters) as the launcher's defaults make them: every numeric hyperparameter
    with a range is tuned (Auto scaling); a categorical one is fixed to its first choice (it changes what is
    logged, not the model, so the launcher tunes it only when asked), a boolean to false, a single value to it."""
    integers: list[dict[str, str]] = []
    continuous: list[dict[str, str]] = []
    static: dict[str, str] = {}
    for name, spec in catalog.hyperparameters.items():
        single = _single_value(spec)
        if single is not None:
            static[name] = _text(single)
        elif spec.choices:
            static[name] = _text(spec.choices[0])
        elif spec.type == "bool":
            static[name] = "false"
        elif spec.type in ("int", "float"):
            if spec.min is None or spec.max is None:
                raise RetrainingError(f"{name}: the catalog gives no min/max, so a retraining cannot tune it")
            if spec.type == "int":
                integers.append(
                    {
                        "Name": name,
                        "MinValue": str(math.ceil(spec.min)),
                        "MaxValue": str(math.floor(spec.max)),
                        "ScalingType": "Auto",
                    }
                )
            else:
                continuous.append(
                    {"Name": name, "MinValue": str(spec.min), "MaxValue": str(spec.max), "ScalingType": "Auto"}
                )
    ranges = {
        key: value
        for key, value in (("IntegerParameterRanges", integers), ("ContinuousParameterRanges", continuous))
        if value
    }
    if not ranges:
        raise RetrainingError(f"model {catalog.id}: no hyperparameter has a range to search")
    return ranges, static


def tuning_output_path(catalog: ModelCatalog) -> str:
    """``s3://<the catalog's models bucket>/tuning/``: trial models beside, never inside, production's prefix."""
    bucket = catalog.training.output_path.removeprefix("s3://").split("/", 1)[0]
    return f"s3://{bucket}/{TUNING_PREFIX}"


def tuning_job_request(
    catalog: ModelCatalog, *, name: str, role_arn: str, image_uri: str, tags: dict[str, str]
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob for the catalog's model, as the launcher sends it with its defaults."""
    settings = catalog.monitoring.retraining if catalog.monitoring is not None else None
    if settings is None:
        raise RetrainingError(f"model {catalog.id}'s catalog asks for no retraining")
    ranges, static = search_space(catalog)
    training = catalog.training
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": settings.strategy,
            "ResourceLimits": {
                "MaxParallelTrainingJobs": settings.max_parallel_jobs,
                "MaxNumberOfTrainingJobs": settings.max_jobs,
            },
            "HyperParameterTuningJobObjective": {
                "Type": catalog.objective.type,
                "MetricName": catalog.objective.metric,
            },
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingInputMode": "File",
                "TrainingImage": image_uri,
                "MetricDefinitions": metric_definitions(catalog, (), limit=MAX_TUNING_METRIC_DEFINITIONS),
            },
            "RoleArn": role_arn,
            "OutputDataConfig": {"S3OutputPath": tuning_output_path(catalog), "CompressionType": "GZIP"},
            "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
            "StaticHyperParameters": static,
            "InputDataConfig": training_channels(catalog),
            "ResourceConfig": {
                "InstanceType": training.instance_type,
                "InstanceCount": training.instance_count,
                "VolumeSizeInGB": training.volume_gb,
            },
        },
        "Tags": [{"Key": MODEL_TAG, "Value": catalog.id}]
        + [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
    }


def drift_tags(verdict: DriftVerdict) -> dict[str, str]:
    """Why the tuning job started, on the job itself (tag values: at most 256 characters)."""
    tags = {TRIGGER_TAG: DRIFT_TRIGGER, DRIFT_CHECK_TAG: verdict.processing_job_name}
    if verdict.release_id:
        tags[DRIFT_RELEASE_TAG] = verdict.release_id
    worst = verdict.worst
    if worst is not None:
        tags[DRIFT_FEATURE_TAG] = worst[0][:256]
        tags[DRIFT_PSI_TAG] = f"{worst[1]:.4f}"
    return tags


def record_key(model: str) -> dict[str, Any]:
    return {"pk": {"S": f"RETRAIN#{model}"}, "sk": {"S": RECORD_SK}}


def _open_status(sagemaker: Any, name: str) -> str | None:
    """The last retraining's status, None when SageMaker does not know it (its creation failed)."""
    try:
        return str(
            sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
                "HyperParameterTuningJobStatus"
            ]
        )
    except ClientError as error:
        if aws_error_code(error) in ("ResourceNotFound", "ValidationException"):
            return None
        raise


def start_retraining(
    sagemaker: Any,
    dynamodb: Any,
    catalog: ModelCatalog,
    verdict: DriftVerdict,
    *,
    table: str,
    role_arn: str,
    image_uri: str,
    now: datetime,
) -> Retraining:
    """Start the model's retraining for a DRIFT verdict, within the rate limits."""
    settings = catalog.monitoring.retraining if catalog.monitoring is not None else None
    if settings is None:
        return Retraining(model=catalog.id, status="NOT_STARTED", reason="the catalog asks for no retraining")
    stamp = verdict.window_end or now
    name = tuning_job_name(catalog.id, stamp)
    item = dynamodb.get_item(TableName=table, Key=record_key(catalog.id), ConsistentRead=True).get("Item")
    previous = item["tuning_job_name"]["S"] if item else None
    if previous is not None and previous != name:
        started = datetime.fromtimestamp(int(item["started_at"]["N"]), UTC)
        status = _open_status(sagemaker, previous)
        if status in OPEN_STATUSES:
            return Retraining(
                model=catalog.id,
                status="NOT_STARTED",
                reason=f"retraining {previous} (started {started:%Y-%m-%d %H:%M} UTC) is still {status}: at most "
                "one open retraining per model",
                previous_tuning_job=previous,
            )
        allowed = started + timedelta(hours=settings.min_interval_hours)
        if now < allowed:
            return Retraining(
                model=catalog.id,
                status="NOT_STARTED",
                reason=f"retraining {previous} started {started:%Y-%m-%d %H:%M} UTC; the next may start after "
                f"{allowed:%Y-%m-%d %H:%M} UTC (min_interval_hours {settings.min_interval_hours:g})",
                previous_tuning_job=previous,
            )
    request = tuning_job_request(catalog, name=name, role_arn=role_arn, image_uri=image_uri, tags=drift_tags(verdict))
    record = {
        **record_key(catalog.id),
        "tuning_job_name": {"S": name},
        "started_at": {"N": str(int(now.timestamp()))},
        "drift_check": {"S": verdict.processing_job_name},
        "reason": {"S": verdict.reason[:2000]},
    }
    condition = (
        ("attribute_not_exists(pk)", {})
        if previous is None
        else ("tuning_job_name = :previous", {":previous": {"S": previous}})
    )
    if previous != name and not condition_held(
        dynamodb.put_item,
        TableName=table,
        Item=record,
        ConditionExpression=condition[0],
        **({"ExpressionAttributeValues": condition[1]} if condition[1] else {}),
    ):
        return Retraining(
            model=catalog.id,
            status="NOT_STARTED",
            reason="another drift verdict started this model's retraining at the same moment",
            previous_tuning_job=previous,
        )
    try:
        sagemaker.create_hyper_parameter_tuning_job(**request)
    except ClientError as error:
        taken = aws_error_code(error) == "ResourceInUse" or "already exists" in str(error).lower()
        if not taken or not _is_own_job(sagemaker, name, role_arn):
            if previous != name:  # give the slot back: no job of this retraining holds it
                _restore(dynamodb, table, catalog.id, name, item)
            if taken:
                raise RetrainingError(
                    f"tuning job {name} already exists and is not this model's retraining (another model's of the "
                    "same name prefix, or someone's own): it is not adopted"
                ) from error
            raise
    return Retraining(
        model=catalog.id,
        status="STARTED",
        reason=f"tuning job {name} started: {verdict.reason}",
        tuning_job_name=name,
        previous_tuning_job=previous,
    )


def _is_own_job(sagemaker: Any, name: str, role_arn: str) -> bool:
    """A retried verdict adopts the job it started: one with this name that runs with this model's tuning role."""
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    return bool((described.get("TrainingJobDefinition") or {}).get("RoleArn") == role_arn)


def started_by_drift(dynamodb: Any, table: str, model: str, tuning_job_name: str) -> bool:
    """Whether drift's retraining of `model` started this tuning job (its record names it): the claim checks a
    tuning job's `promotion:trigger=drift` tag against it, since anyone who may tag a tuning job may write the tag."""
    item = dynamodb.get_item(TableName=table, Key=record_key(model), ConsistentRead=True).get("Item") or {}
    return bool(item.get("tuning_job_name", {}).get("S") == tuning_job_name)


def _restore(dynamodb: Any, table: str, model: str, name: str, previous: dict[str, Any] | None) -> None:
    """Put the record back as it was, if it still names the job that could not be created."""
    if previous is None:
        condition_held(
            dynamodb.delete_item,
            TableName=table,
            Key=record_key(model),
            ConditionExpression="tuning_job_name = :name",
            ExpressionAttributeValues={":name": {"S": name}},
        )
        return
    condition_held(
        dynamodb.put_item,
        TableName=table,
        Item=previous,
        ConditionExpression="tuning_job_name = :name",
        ExpressionAttributeValues={":name": {"S": name}},
    )
