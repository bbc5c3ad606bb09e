"""A retried DeployChallenger or PromoteChallenger adopts the model or endpoint config it created, and nothing else
of that name (issue 19: models with the expected names were adopted without a check)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local import endpoints
from promotion.core.errors import ResourceNotOurs
from promotion.rollout.steps import _create_if_absent

ROLE = "arn:aws:iam::123456789012:role/promotion-training"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:serve"
OURS = "s3://config/releases/fraud-detection/r1/model.tar.gz"


@pytest.fixture(autouse=True)
def sagemaker_as_aws(aws: dict[str, Any]) -> Iterator[None]:
    """SageMaker's refusal of a taken name (local.endpoints; moto replaces the first model silently)."""
    simulator = endpoints.TrafficSimulator(aws["sagemaker"], None, [], "good")
    endpoints.HOOKS.activate(simulator)
    yield
    endpoints.HOOKS.deactivate(simulator)


def test_sagemaker_refuses_a_second_model_of_a_name(aws: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    request = {"PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": OURS}, "ExecutionRoleArn": ROLE}
    aws["sagemaker"].create_model(ModelName="Taken", **request)
    with pytest.raises(ClientError) as taken:
        aws["sagemaker"].create_model(ModelName="Taken", **request)
    assert taken.value.response["Error"]["Code"] == "ValidationException"
    assert taken.value.response["Error"]["Message"] == (
        'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/taken".'
    )


def create_model(aws: dict[str, Any], data: str) -> None:
    sagemaker = aws["sagemaker"]
    _create_if_absent(
        sagemaker.create_model,
        sagemaker.describe_model,
        ModelName="fraud-detection-model-r1-0a1b2c3d",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data},
        ExecutionRoleArn=ROLE,
        Tags=[{"Key": "promotion:release-id", "Value": "r1"}],
    )


def test_a_retry_adopts_the_model_it_created(aws: dict[str, Any]) -> None:
    create_model(aws, OURS)
    create_model(aws, OURS)  # the retry: same request, adopted
    (model,) = aws["sagemaker"].list_models()["Models"]
    assert model["ModelName"] == "fraud-detection-model-r1-0a1b2c3d"


def test_a_model_someone_else_made_under_the_name_is_not_adopted(aws: dict[str, Any]) -> None:
    create_model(aws, "s3://elsewhere/their-model.tar.gz")
    with pytest.raises(ResourceNotOurs, match=r"PrimaryContainer\.ModelDataUrl: 's3://elsewhere/their-model\.tar\.gz'"):
        create_model(aws, OURS)


def test_an_endpoint_config_with_other_variants_is_not_adopted(aws: dict[str, Any]) -> None:
    sagemaker = aws["sagemaker"]
    create_model(aws, OURS)
    variant = {
        "VariantName": "challenger",
        "ModelName": "fraud-detection-model-r1-0a1b2c3d",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 0.0,
    }
    sagemaker.create_endpoint_config(
        EndpointConfigName="fraud-detection-config-r1-1a2b3c4d",
        ProductionVariants=[{**variant, "InitialVariantWeight": 1.0}],
    )
    with pytest.raises(ResourceNotOurs, match=r"ProductionVariants\.0\.InitialVariantWeight: 1\.0"):
        _create_if_absent(
            sagemaker.create_endpoint_config,
            sagemaker.describe_endpoint_config,
            EndpointConfigName="fraud-detection-config-r1-1a2b3c4d",
            ProductionVariants=[variant],
        )
    _create_if_absent(  # what was asked: adopted
        sagemaker.create_endpoint_config,
        sagemaker.describe_endpoint_config,
        EndpointConfigName="fraud-detection-config-r1-1a2b3c4d",
        ProductionVariants=[{**variant, "InitialVariantWeight": 1.0}],
    )
