"""The production pipeline and the comparison as real job code on the local runtime: the challenger is trained with
the promoted hyperparameters and must prove itself against the champion on the same holdout."""

from __future__ import annotations

import json
from pathlib import Path

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
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        runtime.seed_champion("fraud-detection")
        s3 = runtime.clients.s3
        listed = s3.list_objects_v2(Bucket="fraud-detection-data", Prefix="train/")
        for item in listed.get("Contents", []):
            s3.delete_object(Bucket="fraud-detection-data", Key=item["Key"])  # the training channel is empty
        result = runtime.run(event())
        assert runtime.jobs is not None
        # The task failed (SendTaskFailure from the job's state-change event): no $.pipeline; the release's job is it.
        job = next(name for name in runtime.jobs.logs if name.startswith("fraud-detection-2"))
        failure = (runtime.jobs.logs[job].parent / "opt_ml" / "output" / "failure").read_text().strip()
    assert result.error == "ROLLED_BACK"
    assert result.cause is not None
    assert f"AlgorithmError: {failure}" in result.cause  # the job's failure file is its FailureReason
    assert "PipelineFailed" in result.cause
    assert "/aws/sagemaker/TrainingJobs" in result.cause
    assert "local log" in result.cause
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
