"""The seed plan's correctness properties (each named after its number) and ours, with hypothesis.

Tests that need AWS share one moto world per test and reset the model's production before each example.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion.contract.catalog import ModelCatalog, load_catalog
from promotion.contract.hyperparameters import from_parameter_value, to_parameter_value, validate_hyperparameters
from promotion.contract.job_image import Images
from promotion.contract.names import previous_config_key, training_job_name
from promotion.core.errors import HyperparameterValidationError
from promotion.intake.candidate import low_accuracy_warning, meets_production_threshold
from promotion.jobs.training import training_request, trigger_pipeline
from promotion.production.backup import backup_production, load_backup
from promotion.production.config import ProductionConfig, parse_config, render_config
from promotion.production.parameters import write_hyperparameters
from promotion.production.read import read_config, read_parameters
from promotion.production.restore import rollback_release
from tests.conftest import CONFIG_BUCKET
from tests.strategies import examples, production_states, valid_hyperparameters

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "models" / "fraud-detection.yaml")
WITH_AWS = settings(
    max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PURE = settings(max_examples=examples(200), deadline=None)
ROLE = "arn:aws:iam::123456789012:role/promotion-training"
IMAGES = Images(project_image_uri="111122223333.dkr.ecr.us-east-1.amazonaws.com/jobs:abc", region="us-east-1")
release_ids = st.builds(
    lambda moment, suffix: f"{moment:%Y%m%d-%H%M%S}-{suffix}",
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.text(alphabet="0123456789abcdef", min_size=6, max_size=6),
)


def reset_production(aws: dict[str, Any], catalog: ModelCatalog, state: dict[str, Any]) -> None:
    """Make the model's production exactly `state` (parameters by name: (value, type); config bytes or None), with
    no archive."""
    listing = aws["s3"].list_objects_v2(Bucket=CONFIG_BUCKET, Prefix="archive/")
    for item in listing.get("Contents", []):
        aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=item["Key"])
    for path in read_parameters(aws["ssm"], catalog):
        aws["ssm"].delete_parameter(Name=path)
    for name, (value, kind) in state["parameters"].items():
        aws["ssm"].put_parameter(Name=catalog.parameter_path(name), Value=value, Type=kind, Overwrite=True)
    if state["config"] is None:
        aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key)
    else:
        aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=state["config"])


def production(aws: dict[str, Any], catalog: ModelCatalog) -> dict[str, Any]:
    return {
        "parameters": {path: (p.value, p.type) for path, p in read_parameters(aws["ssm"], catalog).items()},
        "config": read_config(aws["s3"], CONFIG_BUCKET, catalog.config.key).body,
    }


def config_for(hyperparameters: dict[str, Any], release_id: str, accuracy: float) -> ProductionConfig:
    return ProductionConfig(
        model=CATALOG.id,
        release_id=release_id,
        algorithm=CATALOG.algorithm,
        hyperparameters=hyperparameters,
        performance={"validation:accuracy": accuracy, "validation:auc": accuracy},
        tested_date=datetime(2026, 11, 20, tzinfo=UTC),
        approved_by="alice@example.com",
        source={
            "tuning_job_arn": "arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/x",
            "training_job_name": "x-1",
        },
        previous_release_id=None,
    )


@WITH_AWS
@given(hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids)
def test_property_1_parameter_store_path_correctness(
    aws: dict[str, Any], hyperparameters: dict[str, Any], release_id: str
) -> None:
    """Every hyperparameter lands at /<model>/hyperparameters/<name>, one parameter each, nothing else."""
    reset_production(aws, CATALOG, {"parameters": {}, "config": None})
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    write_hyperparameters(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id, hyperparameters, sleep=lambda _s: None
    )
    stored = read_parameters(aws["ssm"], CATALOG)
    assert set(stored) == {f"/fraud-detection/hyperparameters/{name}" for name in hyperparameters}
    for name, value in hyperparameters.items():
        assert stored[f"/fraud-detection/hyperparameters/{name}"].value == to_parameter_value(value)


@PURE
@given(
    hyperparameters=valid_hyperparameters(CATALOG),
    name=st.sampled_from(sorted(n for n, s in CATALOG.hyperparameters.items() if s.max is not None)),
    excess=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    unknown=st.from_regex(r"[a-z][a-z_]{2,9}", fullmatch=True).filter(lambda n: not n.startswith("sagemaker_")),
)
def test_property_2_hyperparameter_validation(
    hyperparameters: dict[str, Any], name: str, excess: float, unknown: str
) -> None:
    """Valid sets pass with their types; an out-of-range value and an unknown name are both reported at once."""
    raw = {key: to_parameter_value(value) for key, value in hyperparameters.items()}
    assert validate_hyperparameters(raw, CATALOG.hyperparameters) == hyperparameters
    spec = CATALOG.hyperparameters[name]
    assert spec.max is not None
    too_big = spec.max + max(excess, 1.0) if spec.type == "int" else spec.max + excess
    bad = dict(raw, **{name: to_parameter_value(math.ceil(too_big) if spec.type == "int" else too_big)})
    if unknown not in CATALOG.hyperparameters:
        bad[unknown] = "1"
    with pytest.raises(HyperparameterValidationError) as caught:
        validate_hyperparameters(bad, CATALOG.hyperparameters)
    problems = caught.value.problems
    assert any(problem.startswith(f"{name}:") for problem in problems)
    if unknown not in CATALOG.hyperparameters:
        assert any(problem.startswith(f"{unknown}: unknown") for problem in problems)


@WITH_AWS
@given(state=production_states(CATALOG), release_id=release_ids)
def test_property_3_backup_creation(aws: dict[str, Any], state: dict[str, Any], release_id: str) -> None:
    """The backup records every present parameter's value and type, and every absent schema parameter as absent."""
    reset_production(aws, CATALOG, state)
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    record = load_backup(aws["s3"], CONFIG_BUCKET, CATALOG.id, release_id)
    for name, (value, kind) in state["parameters"].items():
        saved = record.parameters[CATALOG.parameter_path(name)]
        assert saved is not None
        assert (saved.value, saved.type) == (value, kind)
    for name in set(CATALOG.hyperparameters) - set(state["parameters"]):
        assert record.parameters[CATALOG.parameter_path(name)] is None
    assert record.config.existed == (state["config"] is not None)


@PURE
@given(hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids, accuracy=st.floats(0, 1))
def test_property_5_config_yaml_format(hyperparameters: dict[str, Any], release_id: str, accuracy: float) -> None:
    """The config renders to YAML that parses back to the same document, with identical bytes on re-render."""
    config = config_for(hyperparameters, release_id, accuracy)
    text = render_config(config)
    assert isinstance(yaml.safe_load(text), dict)
    assert parse_config(text) == config
    assert render_config(parse_config(text)) == text


@PURE
@given(hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids, accuracy=st.floats(0, 1))
def test_property_6_config_completeness(hyperparameters: dict[str, Any], release_id: str, accuracy: float) -> None:
    """Every schema field of shared/design.md is in the written file, hyperparameters with the catalog's types."""
    document = yaml.safe_load(render_config(config_for(hyperparameters, release_id, accuracy)))
    required = {
        "model",
        "release_id",
        "algorithm",
        "hyperparameters",
        "performance",
        "tested_date",
        "approved_by",
        "source",
        "previous_release_id",
    }
    assert required <= set(document)
    assert set(document["source"]) >= {"tuning_job_arn", "training_job_name", "model_data_url"}
    assert document["hyperparameters"] == hyperparameters


@WITH_AWS
@given(hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids)
def test_property_7_config_s3_location(aws: dict[str, Any], hyperparameters: dict[str, Any], release_id: str) -> None:
    """The config is written at the catalog's key of the config bucket and archived under the release."""
    from promotion.contract.state import Candidate, Claim, ClaimStatus, PromotionState, Validation
    from promotion.production.config import write_config

    reset_production(aws, CATALOG, {"parameters": {}, "config": None})
    backup = backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    candidate = Candidate(
        tuning_job_name="t",
        tuning_job_arn="arn:t",
        training_job_name="t-1",
        objective_metric="validation:auc",
        objective_type="Maximize",
        hyperparameters=hyperparameters,
        metrics={"validation:auc": 0.97},
    )
    state = PromotionState(
        claim=Claim(
            status=ClaimStatus.CLAIMED,
            execution_name="e",
            execution_arn="arn:e",
            model=CATALOG.id,
            release_id=release_id,
            event_time=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        validation=Validation(verdict="PASSED", candidate=candidate),
        backup=backup,
    )
    written = write_config(aws["s3"], CONFIG_BUCKET, CATALOG, state)
    assert (written.bucket, written.key) == (CONFIG_BUCKET, "production-model-config.yaml")
    body = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key="production-model-config.yaml")["Body"].read()
    assert parse_config(body).hyperparameters == hyperparameters
    assert aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=written.archive_key)["Body"].read() == body


@WITH_AWS
@given(previous=st.binary(min_size=1, max_size=500), release_id=release_ids)
def test_property_8_config_backup_creation(aws: dict[str, Any], previous: bytes, release_id: str) -> None:
    """The config in production before a release is archived byte for byte under the release id."""
    reset_production(aws, CATALOG, {"parameters": {}, "config": previous})
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    archived = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=previous_config_key(CATALOG.id, release_id))
    assert archived["Body"].read() == previous


@PURE
@given(
    hyperparameters=valid_hyperparameters(CATALOG),
    release_id=release_ids,
    tuning=st.from_regex(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", fullmatch=True),
)
def test_property_9_pipeline_trigger_metadata(hyperparameters: dict[str, Any], release_id: str, tuning: str) -> None:
    """The training job carries the release id in its name, tags and environment, and exactly the hyperparameters."""
    request = training_request(CATALOG, release_id, hyperparameters, ROLE, tuning, IMAGES)
    assert release_id in request["TrainingJobName"]
    assert len(request["TrainingJobName"]) <= 63
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags == {"promotion:model": CATALOG.id, "promotion:release-id": release_id, "promotion:tuning-job": tuning}
    assert request["Environment"]["PROMOTION_RELEASE_ID"] == release_id
    assert request["HyperParameters"] == {k: to_parameter_value(v) for k, v in hyperparameters.items()}


@WITH_AWS
@given(hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids)
def test_property_10_pipeline_trigger_response(
    aws: dict[str, Any], hyperparameters: dict[str, Any], release_id: str
) -> None:
    """Triggering returns the created job's ARN and status, and a retried trigger returns the same job."""
    first = trigger_pipeline(aws["sagemaker"], CATALOG, release_id, hyperparameters, ROLE, "tuning-1", IMAGES)
    again = trigger_pipeline(aws["sagemaker"], CATALOG, release_id, hyperparameters, ROLE, "tuning-1", IMAGES)
    assert first.training_job_name == training_job_name(CATALOG.id, release_id)
    assert first.training_job_arn.endswith(f":training-job/{first.training_job_name}")
    assert first.status
    assert again.training_job_arn == first.training_job_arn


@PURE
@given(accuracy=st.floats(min_value=0, max_value=1), threshold=st.floats(min_value=0, max_value=1))
def test_property_15_production_threshold_detection(accuracy: float, threshold: float) -> None:
    """Production-ready exactly when accuracy >= the threshold (0.90 by default)."""
    assert meets_production_threshold(accuracy, threshold) == (accuracy >= threshold)
    assert meets_production_threshold(accuracy, 0.90) == (accuracy >= 0.90)


@PURE
@given(accuracy=st.floats(min_value=0, max_value=1))
def test_property_17_low_accuracy_warning(accuracy: float) -> None:
    """A warning exactly when accuracy < 0.80; NaN always warns."""
    assert low_accuracy_warning(accuracy, 0.80) == (accuracy < 0.80)
    assert low_accuracy_warning(math.nan, 0.80)


@PURE
@given(hyperparameters=valid_hyperparameters(CATALOG))
def test_property_23_hyperparameter_round_trip(hyperparameters: dict[str, Any]) -> None:
    """Typed value -> Parameter Store string -> typed value is the identity, type included."""
    for name, value in hyperparameters.items():
        back = from_parameter_value(to_parameter_value(value), CATALOG.hyperparameters[name])
        assert back == value
        assert type(back) is type(value)


@WITH_AWS
@given(state=production_states(CATALOG), hyperparameters=valid_hyperparameters(CATALOG), release_id=release_ids)
def test_rollback_restores_production_byte_for_byte(
    aws: dict[str, Any], state: dict[str, Any], hyperparameters: dict[str, Any], release_id: str
) -> None:
    """Whatever production was, backup -> writes -> rollback leaves it exactly as it was."""
    reset_production(aws, CATALOG, state)
    before = production(aws, CATALOG)
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    write_hyperparameters(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id, hyperparameters, sleep=lambda _s: None
    )
    aws["s3"].put_object(
        Bucket=CONFIG_BUCKET,
        Key=CATALOG.config.key,
        Body=render_config(config_for(hyperparameters, release_id, 0.95)).encode(),
    )
    rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, CATALOG, release_id)
    assert production(aws, CATALOG) == before
