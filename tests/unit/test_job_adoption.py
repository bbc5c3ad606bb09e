"""A retried step adopts the SageMaker job it already started; a job someone else made under that name is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import Images
from promotion.core.errors import JobNotOurs
from promotion.jobs.training import training_request, trigger_pipeline

IMAGES = Images(project_image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest", region="us-east-1")
ROLE = "arn:aws:iam::123456789012:role/training-fraud-detection"
HYPERPARAMETERS: dict[str, Any] = {
    "max_depth": 6,
    "eta": 0.1,
    "num_round": 200,
    "subsample": 0.8,
    "min_child_weight": 2.0,
    "objective": "binary:logistic",
    "eval_metric": "auc",
}


class NameTaken:
    """SageMaker where the release's job name is already used, by `existing` (DescribeTrainingJob's answer)."""

    def __init__(self, existing: dict[str, Any]) -> None:
        self.existing = existing

    def create_training_job(self, **request: Any) -> None:
        message = (
            "Training job names must be unique within an AWS account and region, and a training job with this name "
            f"already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/{request['TrainingJobName']})"
        )
        raise ClientError({"Error": {"Code": "ResourceInUse", "Message": message}}, "CreateTrainingJob")

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return {**self.existing, "TrainingJobArn": f"arn:...:training-job/{TrainingJobName}"}


def own_job(catalog: ModelCatalog) -> dict[str, Any]:
    request = training_request(catalog, "r1", HYPERPARAMETERS, ROLE, "fraud-xgb-tuning-0042", IMAGES)
    return {**copy.deepcopy(request), "TrainingJobStatus": "InProgress"}


def test_a_retry_adopts_the_job_it_started(catalog: ModelCatalog) -> None:
    pipeline = trigger_pipeline(
        NameTaken(own_job(catalog)), catalog, "r1", HYPERPARAMETERS, ROLE, "fraud-xgb-tuning-0042", IMAGES
    )
    assert pipeline.status == "InProgress"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda job: job.update(RoleArn="arn:aws:iam::123456789012:role/someone-else"), "RoleArn"),
        (lambda job: job["HyperParameters"].update(max_depth="3"), "HyperParameters"),
        (lambda job: job["AlgorithmSpecification"].update(TrainingImage="evil:latest"), "TrainingImage"),
        (lambda job: job["OutputDataConfig"].update(S3OutputPath="s3://elsewhere/"), "S3OutputPath"),
        (lambda job: job["Environment"].update(PROMOTION_RELEASE_ID="r0"), "Environment"),
    ],
)
def test_a_job_someone_else_made_under_the_name_is_not_adopted(catalog: ModelCatalog, change: Any, named: str) -> None:
    foreign = own_job(catalog)
    change(foreign)
    with pytest.raises(JobNotOurs, match=f"already exists but is not the job this release asked for .*{named}"):
        trigger_pipeline(NameTaken(foreign), catalog, "r1", HYPERPARAMETERS, ROLE, "fraud-xgb-tuning-0042", IMAGES)
