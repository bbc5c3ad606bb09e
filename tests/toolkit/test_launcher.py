"""The SageMaker tuning job launcher: the CreateHyperParameterTuningJob request the sagemaker SDK 3.x sends,
captured on the SDK's own boto3 client with botocore's Stubber, without AWS or a network."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import MODEL_TAG
from promotion_ml.data import write_splits
from promotion_ml.runtime import TrainingLayout
from promotion_toolkit.launcher import (
    LaunchError,
    TuningJobSettings,
    launch_tuning_job,
    main,
    plan_tuning_job,
    tuning_job_name,
)
from tests.jobs.conftest import TRAIN_SCRIPT, load_script, training_layout

# The SDK's own model_trainer still imports its deprecated configs shim.
pytestmark = pytest.mark.filterwarnings("ignore:sagemaker.train.configs has been moved:DeprecationWarning")
REGION = "us-east-1"
ROLE = "arn:aws:iam::111122223333:role/PromotionTraining"
JOB = "fraud-detection-261120-130000"
# The stack output JobImageUri of a deployment (the catalog trains with `image: project`).
IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/cdk-hnb659fds-container-assets-111122223333-{REGION}:abc123"
FIXED = {"num_round": 200, "subsample": 0.8, "min_child_weight": 1.0}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: the request must be captured, never sent."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The SDK checks a role with iam:SimulatePrincipalPolicy unless told not to; there is no IAM here.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")


@pytest.fixture
def captured() -> Iterator[tuple[boto3.Session, list[dict[str, Any]]]]:
    """A boto3 session whose SageMaker client (the one the SDK builds and caches for it) is stubbed: the create
    request is recorded, then answered with an ARN, and the SDK's read-back Describe with the job."""
    from sagemaker.core.utils.utils import SageMakerClient

    session = boto3.Session(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    client = SageMakerClient(session=session, region_name=REGION).get_client("sagemaker")
    requests: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateHyperParameterTuningJob",
        lambda params, **_: requests.append(json.loads(json.dumps(params))),
    )
    arn = f"arn:aws:sagemaker:{REGION}:111122223333:hyper-parameter-tuning-job/{JOB}"
    with Stubber(client) as stubber:
        stubber.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": arn})
        stubber.add_response(
            "describe_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobName": JOB,
                "HyperParameterTuningJobArn": arn,
                "HyperParameterTuningJobConfig": {
                    "Strategy": "Bayesian",
                    "ResourceLimits": {"MaxParallelTrainingJobs": 1},
                },
                "HyperParameterTuningJobStatus": "InProgress",
                "CreationTime": datetime(2026, 11, 20, 13, tzinfo=UTC),
                "TrainingJobStatusCounters": {},
                "ObjectiveStatusCounters": {},
            },
        )
        yield session, requests
        stubber.assert_no_pending_responses()


def _launch(
    catalog: ModelCatalog, captured: tuple[boto3.Session, list[dict[str, Any]]], **settings: Any
) -> dict[str, Any]:
    session, requests = captured
    job = launch_tuning_job(
        catalog, TuningJobSettings(role_arn=ROLE, job_name=JOB, image_uri=IMAGE, **settings), session
    )
    assert job.name == JOB and job.arn.endswith(f"hyper-parameter-tuning-job/{JOB}")
    (request,) = requests
    return request


def _ranges(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return dict(request["HyperParameterTuningJobConfig"]["ParameterRanges"])


def test_bayesian_job_from_the_catalog(catalog: ModelCatalog, captured: tuple[boto3.Session, list[Any]]) -> None:
    request = _launch(catalog, captured, scaling={"eta": "Logarithmic"}, max_jobs=30, max_parallel_jobs=3)
    config = request["HyperParameterTuningJobConfig"]
    assert request["HyperParameterTuningJobName"] == JOB
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 30, "MaxParallelTrainingJobs": 3}
    assert _ranges(request)["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "3", "MaxValue": "10", "ScalingType": "Auto"},
        {"Name": "num_round", "MinValue": "50", "MaxValue": "500", "ScalingType": "Auto"},
    ]
    assert _ranges(request)["ContinuousParameterRanges"] == [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1.0", "ScalingType": "Auto"},
        {"Name": "min_child_weight", "MinValue": "1.0", "MaxValue": "10.0", "ScalingType": "Auto"},
    ]
    assert request["Tags"] == [{"Key": MODEL_TAG, "Value": "fraud-detection"}]

    definition = request["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {"objective": "binary:logistic", "eval_metric": "auc"}
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE  # the production pipeline's image
    names = [m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]]
    assert names[:2] == ["validation:auc", "validation:accuracy"]  # objective, threshold: first, never cut
    assert len(names) == len(set(names)) <= 20  # the tuning job's limit
    assert definition["RoleArn"] == ROLE
    assert definition["OutputDataConfig"]["S3OutputPath"] == "s3://fraud-detection-models/tuning/"
    assert definition["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    channels = {c["ChannelName"]: c for c in definition["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == catalog.training.train_data
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3Uri"] == catalog.training.validation_data
    assert {c["ContentType"] for c in channels.values()} == {"text/csv"}


def test_grid_job_has_categorical_ranges_only(catalog: ModelCatalog, captured: tuple[boto3.Session, list[Any]]) -> None:
    request = _launch(catalog, captured, strategy="Grid", include=("max_depth", "eta"), static=FIXED, grid_points=3)
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Grid"
    assert "MaxNumberOfTrainingJobs" not in config["ResourceLimits"]  # SageMaker counts the grid itself
    assert _ranges(request) == {
        "CategoricalParameterRanges": [
            {"Name": "max_depth", "Values": ["3", "6", "10"]},
            {"Name": "eta", "Values": ["0.01", "0.155", "0.3"]},
        ]
    }
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static == {
        "num_round": "200",
        "subsample": "0.8",
        "min_child_weight": "1.0",
        "objective": "binary:logistic",
        "eval_metric": "auc",
    }


def test_random_and_hyperband_jobs(catalog: ModelCatalog, captured: tuple[boto3.Session, list[Any]]) -> None:
    request = _launch(
        catalog,
        captured,
        strategy="Hyperband",
        include=("eta", "max_depth", "eval_metric"),
        static=FIXED,
        hyperband_min_resource=10,
        hyperband_max_resource=200,
        tags={"team": "risk-ml"},
    )
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband"
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MinResource": 10, "MaxResource": 200}}
    assert _ranges(request)["CategoricalParameterRanges"] == [
        {"Name": "eval_metric", "Values": ["auc", "logloss", "error"]}
    ]
    assert request["Tags"] == [{"Key": MODEL_TAG, "Value": "fraud-detection"}, {"Key": "team", "Value": "risk-ml"}]


def test_random_job_is_seeded(catalog: ModelCatalog, captured: tuple[boto3.Session, list[Any]]) -> None:
    request = _launch(catalog, captured, strategy="Random", random_seed=42)
    assert request["HyperParameterTuningJobConfig"]["Strategy"] == "Random"
    assert request["HyperParameterTuningJobConfig"]["RandomSeed"] == 42


def test_the_dry_run_plans_the_same_request(catalog: ModelCatalog, captured: tuple[boto3.Session, list[Any]]) -> None:
    settings = {"strategy": "Random", "random_seed": 3, "scaling": {"eta": "Logarithmic"}}
    sent = _launch(catalog, captured, **settings)
    planned = plan_tuning_job(
        catalog,
        TuningJobSettings(role_arn=ROLE, job_name=JOB, image_uri=IMAGE, **settings),  # type: ignore[arg-type]
    )
    assert planned == sent


def test_the_cli_prints_the_planned_request(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fraud-detection", "--role-arn", ROLE, "--strategy", "Grid", "--include", "eta"]
    argv += ["--static", "num_round=100", "--static", "max_depth=6", "--static", "subsample=1"]
    argv += ["--static", "min_child_weight=1", "--grid-points", "2", "--dry-run"]
    assert main(argv) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["HyperParameterTuningJobConfig"]["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "eta", "Values": ["0.01", "0.3"]}
    ]
    assert request["TrainingJobDefinition"]["StaticHyperParameters"]["num_round"] == "100"
    assert main(["fraud-detection", "--role-arn", "not-a-role", "--dry-run"]) == 2
    assert "IAM role ARN" in capsys.readouterr().err


def test_settings_that_cannot_make_a_valid_job_are_refused(catalog: ModelCatalog) -> None:
    for settings, message in (
        (TuningJobSettings(role_arn="admin"), "IAM role ARN"),
        (TuningJobSettings(role_arn=ROLE, strategy="Annealing"), "strategy"),  # type: ignore[arg-type]
        (TuningJobSettings(role_arn=ROLE, hyperband_max_resource=5), "Hyperband"),
        (TuningJobSettings(role_arn=ROLE, tags={MODEL_TAG: "other"}), "from the catalog"),
        (TuningJobSettings(role_arn=ROLE, max_jobs=0), "max_jobs"),
    ):
        with pytest.raises(LaunchError, match=message):
            settings.check()


def test_job_names_fit_sagemaker() -> None:
    now = datetime(2026, 11, 20, 13, 5, 9, tzinfo=UTC)
    assert tuning_job_name("fraud-detection", now) == "fraud-detection-261120-130509"
    long = tuning_job_name("a-very-long-model-identifier-xy", now)
    assert len(long) <= 32 and long.endswith("-261120-130509") and re.fullmatch(r"[a-z0-9-]+", long)


def test_every_metric_the_catalog_judges_on_is_read_from_the_real_training_log_by_both_jobs(
    catalog: ModelCatalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real train.py's log, read with the metric definitions of the tuning job the launcher builds and of the
    production training job the promotion starts: the catalog's objective and threshold metrics exist in both
    (SageMaker reads a custom image's metrics only through these definitions), with the values the job computed."""
    from promotion.contract.job_image import FINAL_METRICS, Images
    from promotion.jobs.training import training_request
    from promotion_ml.evaluation import METRIC_NAMES

    assert FINAL_METRICS == METRIC_NAMES  # the layer's copy of what train.py prints at the end
    splits = write_splits(tmp_path / "data", n_train=600, n_validation=400, n_holdout=1, seed=8)
    hyperparameters = {"num_round": "7", "max_depth": "3", "eta": "0.3", "objective": "binary:logistic"}
    base = training_layout(tmp_path / "opt_ml", splits.train.parent, splits.validation.parent, hyperparameters)
    summary = load_script(TRAIN_SCRIPT).train(TrainingLayout.from_environ({"SAGEMAKER_BASE_DIR": str(base)}))
    lines = capsys.readouterr().out.splitlines()

    tuning = plan_tuning_job(catalog, TuningJobSettings(role_arn=ROLE, job_name=JOB, image_uri=IMAGE))
    production = training_request(
        catalog, "r1", {"num_round": 7}, ROLE, JOB, Images(project_image_uri=IMAGE, region=REGION)
    )
    for job in (tuning["TrainingJobDefinition"], production):
        assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
        values: dict[str, list[float]] = {}
        for definition in job["AlgorithmSpecification"]["MetricDefinitions"]:
            pattern = re.compile(definition["Regex"])
            values[definition["Name"]] = [float(m.group(1)) for line in lines if (m := pattern.search(line))]
        for judged in (catalog.objective.metric, catalog.thresholds.metric):
            assert values.get(judged), f"{judged} is never read from the training log"
        assert len(values["validation:auc"]) == 7  # one per round; SageMaker keeps the last
        assert values["validation:auc"][-1] == pytest.approx(summary["validation"]["roc_auc"], abs=1e-3)
        assert values["validation:accuracy"] == [pytest.approx(summary["validation"]["accuracy"], abs=1e-6)]
        assert all(values.values()), [name for name, found in values.items() if not found]  # no dead definition


def _variant_catalog(catalog: ModelCatalog) -> ModelCatalog:
    """The fraud catalog with every kind of hyperparameter the search space treats apart: a boolean, an int with
    one value, a float with one choice, a categorical with several choices, and a Random retraining strategy."""
    from promotion.contract.catalog import parse_catalog

    document = catalog.model_dump(by_alias=True, exclude_none=True)
    document["hyperparameters"] |= {
        "use_bias": {"type": "bool"},
        "max_bin": {"type": "int", "min": 256, "max": 256},
        "gamma": {"type": "float", "choices": [0.5]},
        "eval_metric": {"type": "str", "choices": ["logloss", "auc", "error"]},
    }
    document["monitoring"]["retraining"] = {"strategy": "Random", "max_jobs": 7, "max_parallel_jobs": 3}
    return parse_catalog(document)


@pytest.mark.parametrize("variant", [False, True], ids=["fraud-detection", "every-kind-of-hyperparameter"])
def test_drifts_retraining_asks_for_the_tuning_job_the_launcher_builds(catalog: ModelCatalog, variant: bool) -> None:
    """The retraining drift starts (boto3 in a Lambda, no SDK) is the data scientists' launch with its defaults:
    the same tuning config, ranges, static hyperparameters, training definition and promotion tag, request for
    request against the SDK's own CreateHyperParameterTuningJob."""
    from promotion.monitoring.retraining import tuning_job_request

    chosen = _variant_catalog(catalog) if variant else catalog
    assert chosen.monitoring is not None and chosen.monitoring.retraining is not None
    retraining = chosen.monitoring.retraining
    settings = TuningJobSettings(
        role_arn=ROLE,
        job_name=JOB,
        image_uri=IMAGE,
        strategy=retraining.strategy,
        max_jobs=retraining.max_jobs,
        max_parallel_jobs=retraining.max_parallel_jobs,
    )
    launched = plan_tuning_job(chosen, settings)
    drift = {"promotion:trigger": "drift", "promotion:drift-feature": "amount"}
    built = tuning_job_request(chosen, name=JOB, role_arn=ROLE, image_uri=IMAGE, tags=drift)
    assert built["HyperParameterTuningJobName"] == launched["HyperParameterTuningJobName"]
    assert built["HyperParameterTuningJobConfig"] == launched["HyperParameterTuningJobConfig"]
    assert built["TrainingJobDefinition"] == launched["TrainingJobDefinition"]
    assert launched["Tags"] == [{"Key": MODEL_TAG, "Value": chosen.id}]
    assert built["Tags"] == [
        {"Key": MODEL_TAG, "Value": chosen.id},
        {"Key": "promotion:drift-feature", "Value": "amount"},
        {"Key": "promotion:trigger", "Value": "drift"},
    ]
