"""CheckDataQuality's domain functions over moto: the reference the shift is measured against (the champion
release's profile, when it has one), the job request, a catalog without the gate, and the job's verdict read back
(a failed check and a failed job each raise their named error)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import Images
from promotion.contract.state import DataQuality
from promotion.jobs.data_quality import (
    DataQualityFailed,
    DataQualityJobFailed,
    check_data_quality,
    reference_profile,
    start_data_quality,
)
from promotion.production.config import ConfigSource, ProductionConfig, render_config
from tests.conftest import CONFIG_BUCKET
from tests.integration.helpers import ROLE, claimed_state

IMAGES = Images(project_image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:latest", region="us-east-1")


def seed_config(aws: dict[str, Any], catalog: ModelCatalog, release: str) -> None:
    """A production config naming `release` (the champion)."""
    config = ProductionConfig(
        model=catalog.id,
        release_id=release,
        algorithm="xgboost",
        hyperparameters={"max_depth": 5},
        performance={"validation:auc": 0.96},
        tested_date=datetime(2026, 11, 1, tzinfo=UTC),
        approved_by="Alice Martin",
        source=ConfigSource(
            tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/old",
            training_job_name="old-training",
        ),
        previous_release_id=None,
    )
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=render_config(config).encode())


def test_the_reference_is_the_champion_releases_profile_when_it_has_one(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    assert reference_profile(aws["s3"], catalog, CONFIG_BUCKET) == (None, None)  # no champion yet
    seed_config(aws, catalog, "20261101-000000-000000")
    assert reference_profile(aws["s3"], catalog, CONFIG_BUCKET) == ("20261101-000000-000000", None)
    key = "reports/fraud-detection/20261101-000000-000000/data-quality/profile.json"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=b"{}")
    assert reference_profile(aws["s3"], catalog, CONFIG_BUCKET) == (
        "20261101-000000-000000",
        f"s3://{CONFIG_BUCKET}/{key}",
    )


def test_the_job_reads_every_channel_and_the_reference(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    seed_config(aws, catalog, "20261101-000000-000000")
    key = "reports/fraud-detection/20261101-000000-000000/data-quality/profile.json"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=b"{}")
    state = claimed_state(aws, catalog_dir)
    started = start_data_quality(
        aws["sagemaker"], aws["s3"], catalog, state, role_arn=ROLE, bucket=CONFIG_BUCKET, images=IMAGES
    )
    assert started.status == "InProgress" and started.reference_release == "20261101-000000-000000"
    job = aws["sagemaker"].describe_processing_job(ProcessingJobName=started.processing_job_name)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs == {
        "train": catalog.training.train_data,
        "validation": catalog.training.validation_data,
        "holdout": catalog.comparison.holdout_data if catalog.comparison else None,
        "reference": f"s3://{CONFIG_BUCKET}/{key}",
    }
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert "max_psi=0.25" in arguments and all(len(argument) <= 256 for argument in arguments)
    features = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--feature"]
    assert features == catalog.data_quality.feature_names if catalog.data_quality else []


def test_a_catalog_without_the_gate_passes_at_once(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = claimed_state(aws, catalog_dir)
    skipped = start_data_quality(
        aws["sagemaker"],
        aws["s3"],
        catalog.model_copy(update={"data_quality": None}),
        state,
        role_arn=ROLE,
        bucket=CONFIG_BUCKET,
        images=IMAGES,
    )
    assert (skipped.status, skipped.decision, skipped.processing_job_name) == ("Skipped", "PASS", None)
    assert check_data_quality(aws["sagemaker"], aws["s3"], skipped) == skipped


class Jobs:
    """DescribeProcessingJob as SageMaker answers once the job ended (moto completes jobs without running them)."""

    def __init__(self, status: str, **extra: Any) -> None:
        self.answer = {
            "ProcessingJobStatus": status,
            "ProcessingOutputConfig": {
                "Outputs": [{"S3Output": {"S3Uri": f"s3://{CONFIG_BUCKET}/reports/m/r/data-quality"}}]
            },
            **extra,
        }

    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        return self.answer


def waiting() -> DataQuality:
    return DataQuality(processing_job_name="m-r-dq", status="InProgress", reference_release="r0")


def test_the_verdict_names_every_failed_check_and_a_failed_job_names_its_log(aws: dict[str, Any]) -> None:
    failures = [
        {"check": "label.values", "sentence": "label.values on channel train, column label: labels 2 ..."},
        {"check": "shift.psi", "sentence": "shift.psi on channel holdout, column amount: 4.97 (limit 0.25)"},
    ]
    report = {"failures": failures, "findings": [{}] * 90, "channels": {"train": {"rows": 10}}}
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="reports/m/r/data-quality/report.json", Body=json.dumps(report))
    with pytest.raises(DataQualityFailed, match=r"2 of 90 data-quality checks failed \(against release r0") as failed:
        check_data_quality(Jobs("Completed"), aws["s3"], waiting())
    assert "label.values on channel train" in str(failed.value) and "shift.psi on channel holdout" in str(failed.value)
    report = {"failures": [], "findings": [{}] * 90, "channels": {"train": {"rows": 10}}}
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="reports/m/r/data-quality/report.json", Body=json.dumps(report))
    passed = check_data_quality(Jobs("Completed"), aws["s3"], waiting())
    assert (passed.decision, passed.checks, passed.rows) == ("PASS", 90, {"train": 10})
    with pytest.raises(DataQualityJobFailed, match=r"m-r-dq Failed: AlgorithmError: .*streams m-r-dq/"):
        check_data_quality(Jobs("Failed", ExitMessage="AlgorithmError: boom"), aws["s3"], waiting())
    assert check_data_quality(Jobs("InProgress"), aws["s3"], waiting()).decision is None
