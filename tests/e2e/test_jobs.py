"""The production pipeline and the comparison as real job code on the local runtime: the challenger is trained with
the promoted hyperparameters and must prove itself against the champion on the same holdout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.runtime import LocalRuntime
from tests.e2e.conftest import event, runtime_with, world


def test_a_better_challenger_passes_the_comparison_and_is_promoted(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), champion="weak") as runtime:
        result = runtime.run(event(), seed=True)
        assert runtime.jobs is not None
        logs = dict(runtime.jobs.logs)
    assert result.outcome == "PROMOTED", result.cause
    comparison = result.output["comparison"]
    assert comparison["decision"] == "PASS"
    assert comparison["challenger_value"] > comparison["champion_value"]
    assert comparison["ci_low"] > comparison["min_gain"]
    assert comparison["holdout_rows"] > 1000
    pipeline = result.output["pipeline"]
    assert pipeline["status"] == "Completed"
    training_log = logs[pipeline["training_job_name"]].read_text()
    assert "validation-auc" in training_log
    assert (
        '"max_depth": "6"'
        in (logs[pipeline["training_job_name"]].parent / "opt_ml/input/config/hyperparameters.json").read_text()
    )
    assert result.report is not None
    report = json.loads(Path(result.report["json"]).read_text())
    assert report["comparison"]["decision"] == "PASS"
    assert "data:image/png;base64," in Path(result.report["html"]).read_text()  # the comparison plots, embedded
    # Both jobs ran the stack's job image (the template's JOB_IMAGE_URI, built from jobs/Dockerfile)...
    assert runtime.jobs.project_image is not None
    assert ".dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets-" in runtime.jobs.project_image
    assert report["pipeline"]["image"] == report["comparison"]["image"] == runtime.jobs.project_image
    # ...and the training job's metrics are what its metric definitions read from its log, the catalog's among them.
    metrics = report["pipeline"]["metrics"]
    assert {"validation:auc", "validation:accuracy"} <= set(metrics)
    final = [line for line in training_log.splitlines() if line.startswith("validation-accuracy:")]
    assert metrics["validation:accuracy"] == float(final[-1].split(":")[1])


def test_a_challenger_no_better_than_the_champion_rolls_back(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), champion="strong") as runtime:
        result = runtime.run(event(), seed=True)
    assert result.status == "FAILED"
    assert result.error == "ROLLED_BACK"
    comparison = result.output["comparison"]
    assert comparison["decision"] in ("FAIL", "INCONCLUSIVE")
    assert result.cause is not None
    assert "challenger not proven better" in result.cause
    assert result.production_after == result.production_before


def test_a_failed_training_job_rolls_back_and_names_its_log(synthesized: Path, tmp_path: Path) -> None:
    """The training data breaks after the data-quality gate passed it (a writer replaced the file meanwhile): the
    training job fails, and its failure file is its FailureReason."""
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        runtime.seed_champion("fraud-detection")
        s3 = runtime.clients.s3

        def break_training_data(state: str, _: Any) -> None:
            if state == "CheckDataQuality":
                s3.put_object(Bucket="fraud-detection-data", Key="train/train.csv", Body=b"label,amount\nnot,numbers\n")

        runtime.after_step = break_training_data
        result = runtime.run(event())
        assert runtime.jobs is not None
        # The task failed (SendTaskFailure from the job's state-change event): no $.pipeline; the release's job is it.
        job = next(name for name in runtime.jobs.logs if re.fullmatch(r"fraud-detection-[0-9-]+", name))
        failure = (runtime.jobs.logs[job].parent / "opt_ml" / "output" / "failure").read_text().strip()
    assert result.error == "ROLLED_BACK"
    assert result.cause is not None
    assert f"AlgorithmError: {failure}" in result.cause  # the job's failure file is its FailureReason
    assert "PipelineFailed" in result.cause
    assert "/aws/sagemaker/TrainingJobs" in result.cause
    assert "local log" in result.cause
    assert result.production_after == result.production_before


def test_an_empty_training_channel_is_refused_by_create_training_job(synthesized: Path, tmp_path: Path) -> None:
    """SageMaker refuses a training job whose S3Prefix channel has no object at once (ValidationException; moto
    accepts it): TriggerPipeline fails with that error and the promotion rolls back."""
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        runtime.seed_champion("fraud-detection")
        s3 = runtime.clients.s3

        def empty_training_channel(state: str, _: Any) -> None:
            if state == "CheckDataQuality":
                for item in s3.list_objects_v2(Bucket="fraud-detection-data", Prefix="train/").get("Contents", []):
                    s3.delete_object(Bucket="fraud-detection-data", Key=item["Key"])

        runtime.after_step = empty_training_channel
        result = runtime.run(event())
    assert result.error == "ROLLED_BACK"
    assert 'No S3 objects found under S3 URL "s3://fraud-detection-data/train/"' in str(result.cause)
    assert "CreateTrainingJob" in str(result.cause)
    assert result.production_after == result.production_before


def test_a_job_name_is_used_once_as_sagemaker_allows(runtime: LocalRuntime) -> None:
    """SageMaker refuses a second job with a name already used (moto would overwrite the first): the local runtime
    refuses it too, so a retried step must adopt its own job, and a foreign one is found out."""
    result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED"
    sagemaker = runtime.clients.sagemaker
    (name,) = [
        job["TrainingJobName"]
        for job in sagemaker.list_training_jobs()["TrainingJobSummaries"]
        if job["TrainingJobName"].startswith("fraud-detection-")
    ]
    existing = sagemaker.describe_training_job(TrainingJobName=name)
    again = {key: existing[key] for key in ("AlgorithmSpecification", "RoleArn", "OutputDataConfig")}
    again["AlgorithmSpecification"] = {
        k: v for k, v in again["AlgorithmSpecification"].items() if k in ("TrainingImage", "TrainingInputMode")
    }
    with pytest.raises(ClientError) as refused:
        sagemaker.create_training_job(
            TrainingJobName=name,
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            **again,
        )
    assert refused.value.response["Error"]["Code"] == "ResourceInUse"
    assert "Training job names must be unique within an AWS account and region" in str(refused.value)


def test_container_arguments_past_sagemakers_limits_are_refused(runtime: LocalRuntime) -> None:
    """CreateProcessingJob takes at most 256 container arguments of at most 256 characters each (moto takes any):
    the local runtime refuses more, as SageMaker does, so a request that would fail on AWS fails here."""
    sagemaker = runtime.clients.sagemaker

    def create(name: str, arguments: list[str]) -> None:
        sagemaker.create_processing_job(
            ProcessingJobName=name,
            RoleArn="arn:aws:iam::123456789012:role/anything",
            AppSpecification={"ImageUri": "img", "ContainerArguments": arguments},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
        )

    for name, arguments in (("too-long", ["x" * 257]), ("too-many", ["a"] * 257)):
        with pytest.raises(ClientError) as refused:
            create(name, arguments)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "appSpecification.containerArguments" in str(refused.value)


def test_more_than_ten_processing_inputs_are_refused(runtime: LocalRuntime) -> None:
    """CreateProcessingJob takes at most 10 ProcessingInputs (SageMaker's API model; moto takes any): a drift check
    reads the reference profile and one input per captured hour, which is why the catalog's schedule_hours stops
    at 8."""
    inputs = [
        {
            "InputName": f"input-{index}",
            "S3Input": {"S3Uri": "s3://bucket/prefix/", "LocalPath": f"/opt/ml/processing/input/{index}",
                        "S3DataType": "S3Prefix", "S3InputMode": "File"},
        }
        for index in range(11)
    ]  # fmt: skip
    with pytest.raises(ClientError) as refused:
        runtime.clients.sagemaker.create_processing_job(
            ProcessingJobName="eleven-inputs",
            RoleArn="arn:aws:iam::123456789012:role/anything",
            AppSpecification={"ImageUri": "img"},
            ProcessingInputs=inputs,
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'processingInputs' failed to satisfy constraint" in str(refused.value)
