"""TriggerPipeline: the production pipeline is a SageMaker training job run with exactly the promoted
hyperparameters; the release id is in its name, its tags and its environment (experiment metadata).

The step waits for the job by callback (promotion.jobs.callbacks) rather than `createTrainingJob.sync`: the same
definition then runs on AWS and in the local runtime, and `check_pipeline` is what SageMaker's state-change event
runs to say whether the job ended and how. SageMaker itself stops a job at its MaxRuntimeInSeconds (Stopped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import MODEL_TAG, RELEASE_TAG, TUNING_JOB_TAG
from promotion.contract.hyperparameters import HyperparameterValue, to_parameter_value
from promotion.contract.job_image import Images, metric_definitions
from promotion.contract.names import job_environment, training_job_name
from promotion.contract.state import Pipeline
from promotion.core.errors import JobNotOurs, PipelineFailed, aws_error_code

TERMINAL_FAILURES = ("Failed", "Stopped")


def training_request(
    catalog: ModelCatalog,
    release_id: str,
    hyperparameters: dict[str, HyperparameterValue],
    role_arn: str,
    tuning_job_name: str,
    images: Images,
) -> dict[str, Any]:
    """The CreateTrainingJob request of the release (seed property 9: metadata carries model and release): the
    model's image with the metric definitions that make the catalog's metrics exist."""
    name = training_job_name(catalog.id, release_id)
    training = catalog.training
    metadata = {
        MODEL_TAG: catalog.id,
        RELEASE_TAG: release_id,
        TUNING_JOB_TAG: tuning_job_name,
    }

    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": images.resolve(training.image),
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(catalog),
        },
        "RoleArn": role_arn,
        "HyperParameters": {key: to_parameter_value(value) for key, value in sorted(hyperparameters.items())},
        "InputDataConfig": training_channels(catalog),
        "OutputDataConfig": {"S3OutputPath": training.output_path},
        "ResourceConfig": {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": training.volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
        "Environment": {**job_environment(catalog.id, release_id), "PROMOTION_TUNING_JOB": tuning_job_name},
        "Tags": [{"Key": key, "Value": value} for key, value in metadata.items()],
    }


def _summary(job: dict[str, Any], polls: int) -> Pipeline:
    name = job["TrainingJobName"]
    return Pipeline(
        training_job_name=name,
        training_job_arn=job["TrainingJobArn"],
        status=job.get("TrainingJobStatus", "InProgress"),
        failure_reason=job.get("FailureReason"),
        image=(job.get("AlgorithmSpecification") or {}).get("TrainingImage"),
        metrics={m["MetricName"]: float(m["Value"]) for m in job.get("FinalMetricDataList") or []},
        log_stream_prefix=f"{name}/",
        model_data_url=(job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        polls=polls,
    )


def trigger_pipeline(
    sagemaker: Any,
    catalog: ModelCatalog,
    release_id: str,
    hyperparameters: dict[str, HyperparameterValue],
    role_arn: str,
    tuning_job_name: str,
    images: Images,
) -> Pipeline:
    """Start the release's training job (idempotent: a retry finds the job it already started)."""
    request = training_request(catalog, release_id, hyperparameters, role_arn, tuning_job_name, images)
    adopting = False
    try:
        sagemaker.create_training_job(**request)
    except ClientError as error:
        code = aws_error_code(error)
        if code not in ("ResourceInUse", "ValidationException") or "unique" not in str(error).lower():
            raise
        adopting = True  # a retry finds its own job; anything else with that name is not adopted
    job = sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])
    if adopting:
        require_same_job("training job", request["TrainingJobName"], job, request, TRAINING_IDENTITY)
    return _summary(job, polls=0)


# What makes an existing training job the one a release asked for (DescribeTrainingJob answers each field).
TRAINING_IDENTITY: tuple[tuple[str, ...], ...] = (
    ("RoleArn",),
    ("AlgorithmSpecification", "TrainingImage"),
    ("HyperParameters",),
    ("OutputDataConfig", "S3OutputPath"),
    ("Environment",),
)


def _field(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def training_channels(catalog: ModelCatalog) -> list[dict[str, Any]]:
    """The catalog's train and validation channels as CSV S3 prefixes: the production pipeline's training job and
    drift's retraining tuning job read the same data the same way."""

    def channel(channel_name: str, uri: str) -> dict[str, Any]:
        return {
            "ChannelName": channel_name,
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
            },
            "ContentType": "text/csv",
        }

    return [channel("train", catalog.training.train_data), channel("validation", catalog.training.validation_data)]


def require_same_job(
    kind: str, name: str, existing: Mapping[str, Any], request: Mapping[str, Any], identity: tuple[tuple[str, ...], ...]
) -> None:
    """Refuse to adopt a job whose definition is not this release's request (JobNotOurs names the fields)."""
    differing = [".".join(path) for path in identity if _field(existing, path) != _field(request, path)]
    if differing:
        raise JobNotOurs(
            f"{kind} {name} already exists but is not the job this release asked for ({', '.join(differing)} "
            "differ); it is not adopted and its results are not used"
        )


def check_pipeline(sagemaker: Any, previous: Pipeline) -> Pipeline:
    """The training job's status; PipelineFailed (naming its log stream) when it failed or was stopped (at its
    MaxRuntimeInSeconds, or by a person)."""
    job = sagemaker.describe_training_job(TrainingJobName=previous.training_job_name)
    current = _summary(job, polls=previous.polls + 1)
    where = f"CloudWatch Logs group {current.log_group}, streams {current.log_stream_prefix}*"
    if current.status in TERMINAL_FAILURES:
        raise PipelineFailed(
            f"training job {current.training_job_name} {current.status}: "
            f"{current.failure_reason or 'no failure reason given'}; logs: {where}"
        )
    return current
