"""Seeding moto's sagemaker backend: the ordinary describe calls answer what the world file says."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.sagemaker_world import WorldFileError, load_world, seed_sagemaker
from tests.local.conftest import SAMPLES

TUNING_JOB = "fraud-xgb-tuning-0042"
TRAINING_JOB = "fraud-xgb-tuning-0042-017-5a1c9e2f"


@pytest.fixture
def world() -> dict[str, Any]:
    return load_world(SAMPLES / "world.json")


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def test_describe_tuning_job_answers_the_worlds_best_training_job(sagemaker: Any, world: dict[str, Any]) -> None:
    seed_sagemaker(world, account="123456789012", region="us-east-1")
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=TUNING_JOB)
    expected = world["DescribeHyperParameterTuningJob"][TUNING_JOB]
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == TRAINING_JOB
    assert best["TunedHyperParameters"] == expected["BestTrainingJob"]["TunedHyperParameters"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {"MetricName": "validation:auc", "Value": 0.9712}
    assert described["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:auc",
    }
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["HyperParameterTuningJobArn"] == expected["HyperParameterTuningJobArn"]
    assert described["TrainingJobStatusCounters"]["Completed"] == 20
    assert described["CreationTime"].isoformat() == "2026-11-20T13:00:00+00:00"
    assert "OverallBestTrainingJob" not in described  # moto's canned values are not served


def test_describe_training_job_answers_the_worlds_metrics_and_hyperparameters(
    sagemaker: Any, world: dict[str, Any]
) -> None:
    seed_sagemaker(world, account="123456789012", region="us-east-1")
    described = sagemaker.describe_training_job(TrainingJobName=TRAINING_JOB)
    expected = world["DescribeTrainingJob"][TRAINING_JOB]
    assert described["HyperParameters"] == expected["HyperParameters"]
    assert described["ModelArtifacts"] == expected["ModelArtifacts"]
    assert described["TrainingJobStatus"] == "Completed" and described["SecondaryStatus"] == "Completed"
    assert described["TuningJobArn"] == expected["TuningJobArn"]
    assert [(m["MetricName"], m["Value"]) for m in described["FinalMetricDataList"]] == [
        ("validation:auc", 0.9712),
        ("validation:accuracy", 0.9431),
        ("validation:f1", 0.8712),
    ]
    assert described["AlgorithmSpecification"] == expected["AlgorithmSpecification"]


def test_a_job_the_world_does_not_know_is_not_found(sagemaker: Any, world: dict[str, Any]) -> None:
    seed_sagemaker(world, account="123456789012", region="us-east-1")
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_training_job(TrainingJobName="not-in-the-world")


def test_a_world_with_fields_moto_cannot_serve_is_refused(world: dict[str, Any]) -> None:
    broken = copy.deepcopy(world)
    broken["DescribeHyperParameterTuningJob"][TUNING_JOB]["Bogus"] = 1
    with mock_aws(), pytest.raises(WorldFileError, match="Bogus"):
        seed_sagemaker(broken, account="123456789012", region="us-east-1")


def test_unreadable_or_misshapen_world_files_are_refused(tmp_path: Any) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(WorldFileError, match="cannot read"):
        load_world(bad_json)
    misshapen = tmp_path / "misshapen.json"
    misshapen.write_text(json.dumps({"DescribeEndpoint": {}}))
    with pytest.raises(WorldFileError, match="only"):
        load_world(misshapen)
