"""The comparison job's request with the catalog's seed check: the challenger's hyperparameters, one container
argument each, exactly as training got them, and the training data as an input; without it, neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promotion.contract.catalog import ModelCatalog
from promotion.contract.hyperparameters import to_parameter_value
from promotion.contract.job_image import Images
from promotion.contract.state import Pipeline, PipelineState
from promotion.jobs.comparison import comparison_request
from tests.conftest import CONFIG_BUCKET
from tests.integration.helpers import ROLE, validated_state

IMAGES = Images(project_image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest", region="us-east-1")


def request_for(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path) -> dict[str, Any]:
    state = validated_state(aws, catalog, catalog_dir)
    pipeline = Pipeline(
        training_job_name="t",
        training_job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/t",
        status="Completed",
        model_data_url="s3://fraud-detection-models/production/t/output/model.tar.gz",
    )
    piped = PipelineState.model_validate({**state.model_dump(mode="json"), "pipeline": pipeline.model_dump()})
    return comparison_request(
        catalog,
        piped,
        role_arn=ROLE,
        bucket=CONFIG_BUCKET,
        images=IMAGES,
        champion_model_url="s3://fraud-detection-models/champion/model.tar.gz",
    )


def test_the_seed_check_passes_the_challengers_configuration_and_training_data(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    assert catalog.comparison is not None
    checked = catalog.model_copy(update={"comparison": catalog.comparison.model_copy(update={"seed_check_seeds": 4})})
    request = request_for(aws, checked, catalog_dir)
    arguments = request["AppSpecification"]["ContainerArguments"]
    seeds_at = arguments.index("--seed-check-seeds")
    assert arguments[seeds_at + 1] == "4"
    pairs = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--hyperparameter"]
    state = validated_state(aws, catalog, catalog_dir)
    assert state.validation is not None and state.validation.candidate is not None
    expected = state.validation.candidate.hyperparameters
    assert pairs == [f"{name}={to_parameter_value(value)}" for name, value in sorted(expected.items())]
    assert all(len(argument) <= 256 for argument in arguments)  # SageMaker's limit per container argument
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert inputs["train"] == catalog.training.train_data


def test_without_the_seed_check_the_job_gets_neither(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    assert catalog.comparison is not None
    unchecked = catalog.model_copy(
        update={"comparison": catalog.comparison.model_copy(update={"seed_check_seeds": None})}
    )
    request = request_for(aws, unchecked, catalog_dir)
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert "--seed-check-seeds" not in arguments and "--hyperparameter" not in arguments
    assert "train" not in {i["InputName"] for i in request["ProcessingInputs"]}
