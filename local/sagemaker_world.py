"""The SageMaker world: what DescribeHyperParameterTuningJob and DescribeTrainingJob answer for a tuning job.

moto completes a tuning job at once with a canned best training job (`FakeTrainingJobName`, Accuracy 1.0). The
local runtime instead seeds moto's own sagemaker backend from a world file (`shared/events/world.json` shape:
`{"DescribeHyperParameterTuningJob": {name: response}, "DescribeTrainingJob": {name: response}}`): each job is
created through the backend's create call, then its attributes are set to the world's values, so the ordinary
boto3 describe calls, served by moto's responses and serializer, return the world's BestTrainingJob,
TunedHyperParameters, FinalMetricDataList, HyperParameters, ModelArtifacts, statuses, objective and times.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from moto.sagemaker.models import HyperParameterTuningJob, SageMakerModelBackend, sagemaker_backends

from local import sagemaker_jobs
from local.errors import SetupError

TUNING = "DescribeHyperParameterTuningJob"
TRAINING = "DescribeTrainingJob"

# DescribeHyperParameterTuningJob field -> attribute of moto's HyperParameterTuningJob (see its `describe`).
_TUNING_ATTRIBUTES = {
    "HyperParameterTuningJobName": "hyper_parameter_tuning_job_name",
    "HyperParameterTuningJobArn": "arn",
    "HyperParameterTuningJobConfig": "hyper_parameter_tuning_job_config",
    "TrainingJobDefinition": "training_job_definition",
    "TrainingJobDefinitions": "training_job_definitions",
    "HyperParameterTuningJobStatus": "hyper_parameter_tuning_job_status",
    "CreationTime": "creation_time",
    "HyperParameterTuningEndTime": "hyper_parameter_tuning_end_time",
    "LastModifiedTime": "last_modified_time",
    "TrainingJobStatusCounters": "training_job_status_counters",
    "ObjectiveStatusCounters": "objective_status_counters",
    "BestTrainingJob": "best_training_job",
    "OverallBestTrainingJob": "OverallBestTrainingJob",
    "WarmStartConfig": "warm_start_config",
    "Autotune": "autotune",
    "FailureReason": "failure_reason",
    "TuningJobCompletionDetails": "tuning_job_completion_details",
    "ConsumedResources": "consumed_resources",
}
# moto's canned values that a world file does not speak about are cleared rather than served.
_TUNING_CANNED = (
    "BestTrainingJob",  # absent on AWS when no training job succeeded
    "OverallBestTrainingJob",
    "TuningJobCompletionDetails",
    "ConsumedResources",
    "FailureReason",
)


class WorldFileError(SetupError):
    """A world file is unreadable or does not have the documented shape."""


def load_world(source: Path | dict[str, Any]) -> dict[str, Any]:
    """Read and check a world file (or an already loaded document)."""
    if isinstance(source, Path):
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise WorldFileError(f"cannot read world file {source}: {error}") from error
    else:
        document = source
    if not isinstance(document, dict) or set(document) - {TUNING, TRAINING}:
        raise WorldFileError(f"a world file has only {TUNING!r} and {TRAINING!r} sections")
    for section in (TUNING, TRAINING):
        if not isinstance(document.get(section, {}), dict):
            raise WorldFileError(f"{section} must map job names to describe responses")
    return document


def _timestamps(value: Any, key: str = "") -> Any:
    """ISO strings in *Time / Timestamp fields -> datetimes, the type moto's serializer expects for timestamps."""
    if isinstance(value, dict):
        return {k: _timestamps(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_timestamps(item, key) for item in value]
    if isinstance(value, str) and (key.endswith("Time") or key == "Timestamp"):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _seed_training_job(backend: SageMakerModelBackend, name: str, response: dict[str, Any]) -> None:
    response = _timestamps(copy.deepcopy(response))
    artifacts = response.get("ModelArtifacts", {}).get("S3ModelArtifacts", "s3://local/output/model.tar.gz")
    output_path = artifacts.split(f"/{name}/", 1)[0] + "/" if f"/{name}/" in artifacts else "s3://local/output/"
    # What the world says happened: moto records it, the local job runner does not run it again.
    create = sagemaker_jobs.HOOKS.originals.get("create_training_job")
    record: Any = partial(create, backend) if create is not None else backend.create_training_job
    job = record(
        training_job_name=name,
        hyper_parameters=response.get("HyperParameters", {}),
        algorithm_specification=dict(response.get("AlgorithmSpecification", {})),
        role_arn=response.get("RoleArn", f"arn:aws:iam::{backend.account_id}:role/local-sagemaker"),
        input_data_config=response.get("InputDataConfig", []),
        output_data_config=response.get("OutputDataConfig", {"S3OutputPath": output_path}),
        resource_config=response.get("ResourceConfig", {}),
        vpc_config=response.get("VpcConfig", {}),
        stopping_condition=response.get("StoppingCondition", {}),
        tags=response.get("Tags", []),
        enable_network_isolation=response.get("EnableNetworkIsolation", False),
        enable_inter_container_traffic_encryption=response.get("EnableInterContainerTrafficEncryption", False),
        enable_managed_spot_training=response.get("EnableManagedSpotTraining", False),
        checkpoint_config=response.get("CheckpointConfig", {}),
        debug_hook_config=response.get("DebugHookConfig", {}),
        debug_rule_configurations=response.get("DebugRuleConfigurations", []),
        tensor_board_output_config=response.get("TensorBoardOutputConfig", {}),
        experiment_config=response.get("ExperimentConfig", {}),
    )
    # moto's FakeTrainingJob serves its attributes by name (snake_case -> CamelCase); its ARN is `arn`.
    for key, value in response.items():
        setattr(job, "arn" if key == "TrainingJobArn" else _snake(key), value)
    if "AlgorithmSpecification" in response:
        job.algorithm_specification = response["AlgorithmSpecification"]  # drops moto's canned MetricDefinitions


def _seed_tuning_job(backend: SageMakerModelBackend, name: str, response: dict[str, Any]) -> None:
    unknown = set(response) - set(_TUNING_ATTRIBUTES)
    if unknown:
        raise WorldFileError(f"{TUNING}[{name}]: fields moto cannot serve: {', '.join(sorted(unknown))}")
    response = _timestamps(copy.deepcopy(response))
    # What the world says happened: moto records it, the local job runner does not run it again.
    create = sagemaker_jobs.HOOKS.originals.get("create_hyper_parameter_tuning_job")
    record: Any = partial(create, backend) if create is not None else backend.create_hyper_parameter_tuning_job
    record(
        hyper_parameter_tuning_job_name=name,
        hyper_parameter_tuning_job_config=response.get("HyperParameterTuningJobConfig", {}),
        training_job_definition=response.get("TrainingJobDefinition"),
        training_job_definitions=response.get("TrainingJobDefinitions"),
        warm_start_config=response.get("WarmStartConfig"),
        tags=None,
        autotune=response.get("Autotune"),
    )
    job: HyperParameterTuningJob = backend.hyper_parameter_tuning_jobs[name]
    for field in _TUNING_CANNED:
        setattr(job, _TUNING_ATTRIBUTES[field], None)
    for key, value in response.items():
        setattr(job, _TUNING_ATTRIBUTES[key], value)


def seed_sagemaker(world: dict[str, Any], *, account: str, region: str) -> list[str]:
    """Create the world's tuning and training jobs in moto's sagemaker backend; returns the job names seeded.

    Must run inside the mock (the backend is moto's in-memory state for that account and region)."""
    backend: SageMakerModelBackend = sagemaker_backends[account][region]
    seeded = []
    for name, response in world.get(TRAINING, {}).items():
        _seed_training_job(backend, name, response)
        seeded.append(name)
    for name, response in world.get(TUNING, {}).items():
        _seed_tuning_job(backend, name, response)
        seeded.append(name)
    return seeded
