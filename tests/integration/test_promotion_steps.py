"""The promotion's steps over moto: what each writes, what it refuses, and that rollback restores everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key
from promotion.contract.state import ClaimStatus
from promotion.core.errors import BackupMissing, BackupTampered
from promotion.intake.candidate import validate_candidate
from promotion.production.backup import backup_production, load_backup
from promotion.production.config import parse_config, write_config
from promotion.production.parameters import write_hyperparameters
from promotion.production.restore import rollback_release
from tests.conftest import CONFIG_BUCKET, load_event
from tests.fakes import WorldSageMaker
from tests.integration.helpers import claimed_state, promote_until_config, snapshot, validated_state, world


def seed_champion(aws: dict[str, Any], catalog: ModelCatalog, auc: float = 0.95) -> bytes:
    for name, value in {"max_depth": "5", "eta": "0.1", "num_round": "100", "subsample": "0.8", "legacy": "x"}.items():
        aws["ssm"].put_parameter(
            Name=f"{catalog.parameter_store.prefix}/{name}", Value=value, Type="String", Overwrite=True
        )
    body = yaml.safe_dump(
        {
            "model": catalog.id,
            "release_id": "20261001-000000-champ0",
            "algorithm": "xgboost",
            "hyperparameters": {"max_depth": 5, "eta": 0.1},
            "performance": {"validation:auc": auc, "validation:accuracy": 0.93},
            "tested_date": "2026-10-01T00:00:00Z",
            "approved_by": "bob@example.com",
            "source": {"tuning_job_arn": "arn:old", "training_job_name": "old-job"},
            "previous_release_id": None,
        },
        sort_keys=False,
    ).encode()
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=body)
    return body


def test_claim_identifies_model_release_and_tuning_job(aws: dict[str, Any], catalog_dir: Path) -> None:
    state = claimed_state(aws, catalog_dir)
    assert state.claim.status == ClaimStatus.CLAIMED
    assert state.claim.model == "fraud-detection"
    assert state.claim.tuning_job_name == "fraud-xgb-tuning-0042"
    assert state.claim.release_id is not None
    assert state.claim.release_id.startswith("20261120-140541-")


def test_validation_passes_the_seed_candidate_with_typed_hyperparameters(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    validation = validated_state(aws, catalog, catalog_dir).validation
    assert validation is not None
    assert validation.verdict == "PASSED", validation.reasons
    assert validation.candidate is not None
    assert validation.candidate.hyperparameters["max_depth"] == 6
    assert validation.candidate.hyperparameters["eta"] == 0.0834
    assert validation.candidate.metrics["validation:accuracy"] == 0.9431
    assert validation.warnings == []


def _world_with(
    metrics: dict[str, float] | None = None,
    hyperparameters: dict[str, str] | None = None,
    objective_type: str | None = None,
    tuned: dict[str, str] | None = None,
) -> dict[str, Any]:
    the_world = world()
    training = the_world["DescribeTrainingJob"]["fraud-xgb-tuning-0042-017-5a1c9e2f"]
    if metrics is not None:
        training["FinalMetricDataList"] = [{"MetricName": k, "Value": v} for k, v in metrics.items()]
    if hyperparameters is not None:
        training["HyperParameters"].update(hyperparameters)
    tuning = the_world["DescribeHyperParameterTuningJob"]["fraud-xgb-tuning-0042"]
    if objective_type is not None:
        tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] = objective_type
    if tuned is not None:
        tuning["BestTrainingJob"]["TunedHyperParameters"].update(tuned)
    return the_world


@pytest.mark.parametrize(
    ("the_world", "fragment"),
    [
        (
            _world_with(metrics={"validation:auc": 0.97, "validation:accuracy": 0.85}),
            "below the production threshold 0.9",
        ),
        (_world_with(metrics={"validation:auc": 0.97}), "accuracy metric validation:accuracy is missing"),
        (_world_with(hyperparameters={"max_depth": "40"}), "max_depth: 40 is above the maximum 10"),
        (_world_with(objective_type="Minimize"), "differs from the catalog's Maximize validation:auc"),
        # The tuning job and its best training job disagree on a value: neither is trusted (it used to be the
        # training job's, silently).
        (
            _world_with(tuned={"max_depth": "7"}),
            "ran with max_depth='6', but tuning job fraud-xgb-tuning-0042 reports max_depth='7' as the tuned value",
        ),
    ],
)
def test_bad_candidates_are_rejected_with_the_reason(
    aws: dict[str, Any], catalog: ModelCatalog, the_world: dict[str, Any], fragment: str
) -> None:
    validation = validate_candidate(
        WorldSageMaker(the_world), aws["s3"], CONFIG_BUCKET, catalog, "fraud-xgb-tuning-0042"
    )
    assert validation.verdict == "REJECTED"
    assert any(fragment in reason for reason in validation.reasons), validation.reasons


def test_low_accuracy_warns_as_well(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    the_world = _world_with(metrics={"validation:auc": 0.97, "validation:accuracy": 0.7})
    validation = validate_candidate(
        WorldSageMaker(the_world), aws["s3"], CONFIG_BUCKET, catalog, "fraud-xgb-tuning-0042"
    )
    assert validation.verdict == "REJECTED"
    assert validation.warnings == ["low accuracy: validation:accuracy 0.7000 is below 0.8"]


def test_challenger_must_beat_the_champion(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    seed_champion(aws, catalog, auc=0.9712)
    validation = validate_candidate(WorldSageMaker(world()), aws["s3"], CONFIG_BUCKET, catalog, "fraud-xgb-tuning-0042")
    assert validation.verdict == "REJECTED"
    assert any("does not beat champion 20261001-000000-champ0" in r for r in validation.reasons)
    seed_champion(aws, catalog, auc=0.95)
    validation = validate_candidate(WorldSageMaker(world()), aws["s3"], CONFIG_BUCKET, catalog, "fraud-xgb-tuning-0042")
    assert validation.verdict == "PASSED"
    assert validation.champion is not None
    assert validation.champion.objective_value == 0.95


def test_unknown_tuning_job_is_rejected(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    validation = validate_candidate(WorldSageMaker(world()), aws["s3"], CONFIG_BUCKET, catalog, "nope")
    assert validation.verdict == "REJECTED"
    assert "tuning job nope not found" in validation.reasons[0]


def test_promotion_writes_parameters_and_a_schema_valid_config(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    champion_config = seed_champion(aws, catalog)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    after = snapshot(aws, catalog)
    prefix = catalog.parameter_store.prefix
    assert after["parameters"] == {
        f"{prefix}/max_depth": ("6", "String"),
        f"{prefix}/num_round": ("240", "String"),
        f"{prefix}/eta": ("0.0834", "String"),
        f"{prefix}/subsample": ("0.85", "String"),
        f"{prefix}/min_child_weight": ("3.0", "String"),
        f"{prefix}/objective": ("binary:logistic", "String"),
        f"{prefix}/eval_metric": ("auc", "String"),
    }
    assert state.parameters is not None
    assert state.parameters.removed == [f"{prefix}/legacy"]
    config = parse_config(after["config"])
    assert config.release_id == state.claim.release_id
    assert config.previous_release_id == "20261001-000000-champ0"
    assert config.approved_by == "alice@example.com"
    assert config.source.training_job_name == "fraud-xgb-tuning-0042-017-5a1c9e2f"
    assert state.backup is not None
    archived = aws["s3"].get_object(
        Bucket=CONFIG_BUCKET, Key=f"archive/fraud-detection/{state.claim.release_id}/previous-config.yaml"
    )
    assert archived["Body"].read() == champion_config


def test_rollback_restores_production_byte_for_byte_and_is_idempotent(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    seed_champion(aws, catalog)
    before = snapshot(aws, catalog)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    assert snapshot(aws, catalog) != before
    assert state.claim.release_id is not None
    first = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert first.restored
    assert first.config_action == "restored"
    assert snapshot(aws, catalog) == before
    second = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert second.parameters_restored == []
    assert second.parameters_deleted == []
    assert second.config_action == "unchanged"
    assert snapshot(aws, catalog) == before


def test_rollback_of_a_first_release_deletes_what_it_created(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    assert state.claim.release_id is not None
    restored = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert restored.config_action == "deleted"
    assert snapshot(aws, catalog) == {"parameters": {}, "config": None}


def test_writes_are_refused_without_a_backup(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path) -> None:
    seed_champion(aws, catalog)
    before = snapshot(aws, catalog)
    state = validated_state(aws, catalog, catalog_dir)
    assert state.validation is not None
    assert state.validation.candidate is not None
    assert state.claim.release_id is not None
    with pytest.raises(BackupMissing, match="refusing to write production"):
        write_hyperparameters(
            aws["ssm"],
            aws["s3"],
            CONFIG_BUCKET,
            catalog,
            state.claim.release_id,
            state.validation.candidate.hyperparameters,
        )
    with pytest.raises(BackupMissing):
        write_config(aws["s3"], CONFIG_BUCKET, catalog, state)
    assert snapshot(aws, catalog) == before
    assert not rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id).restored


def test_backup_is_never_overwritten(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path) -> None:
    seed_champion(aws, catalog)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    assert state.claim.release_id is not None
    original = load_backup(aws["s3"], CONFIG_BUCKET, catalog.id, state.claim.release_id)
    again = backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert load_backup(aws["s3"], CONFIG_BUCKET, catalog.id, state.claim.release_id) == original
    assert again.backup_key == backup_key(catalog.id, state.claim.release_id)


def test_malformed_and_unpromotable_events_are_rejected_before_any_claim(
    aws: dict[str, Any], catalog_dir: Path
) -> None:
    event = load_event("tuning-job-completed.json")
    cases = {
        "malformed tuning job event": {k: v for k, v in event.items() if k != "detail"},
        "only Completed tuning jobs": {
            **event,
            "detail": {**event["detail"], "HyperParameterTuningJobStatus": "Failed"},
        },
        "has no 'promotion:model' tag": {**event, "detail": {**event["detail"], "Tags": {}}},
        "no catalog for model 'churn'": {**event, "detail": {**event["detail"], "Tags": {"promotion:model": "churn"}}},
    }
    for fragment, bad in cases.items():
        state = claimed_state(aws, catalog_dir, bad)
        assert state.claim.status == ClaimStatus.REJECTED
        assert fragment in state.claim.reason
    assert aws["dynamodb"].scan(TableName="promotion-test", ConsistentRead=True)["Count"] == 0


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            lambda r: r["parameters"].update({"/churn/hyperparameters/eta": {"value": "9", "type": "String"}}),
            "parameters outside /fraud-detection/hyperparameters/: /churn/hyperparameters/eta",
        ),
        (lambda r: r["config"].update(key="someone-elses-config.yaml"), "config key someone-elses-config.yaml"),
        (lambda r: r.update(prefix="/churn/hyperparameters"), "prefix /churn/hyperparameters"),
        (lambda r: r.update(model="churn"), "is of model churn"),
        (lambda r: r.update(release_id="20200101-000000-000000"), "release 20200101-000000-000000"),
    ],
    ids=["foreign-parameter", "foreign-config-key", "foreign-prefix", "other-model", "other-release"],
)
def test_a_tampered_backup_record_is_refused_before_anything_is_restored(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, tamper: Any, named: str
) -> None:
    """Restores write what the record names: a record edited to name another model's production is refused."""
    seed_champion(aws, catalog)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    release = state.claim.release_id
    assert release is not None
    key = backup_key(catalog.id, release)
    record = json.loads(aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=key)["Body"].read())
    tamper(record)
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=key, Body=json.dumps(record).encode())
    promoted = snapshot(aws, catalog)
    with pytest.raises(BackupTampered, match=named):
        rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    assert snapshot(aws, catalog) == promoted  # nothing restored, nothing deleted
    assert aws["ssm"].get_parameters_by_path(Path="/churn", Recursive=True)["Parameters"] == []


def _minimizing(catalog: ModelCatalog) -> ModelCatalog:
    """The catalog of a model tuned to minimize its validation log loss."""
    return ModelCatalog.model_validate(
        {**catalog.model_dump(by_alias=True), "objective": {"metric": "validation:logloss", "type": "Minimize"}}
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "beats"),
    [(0.21, 0.30, True), (0.30, 0.30, False), (0.35, 0.30, False)],
    ids=["lower-loss-beats", "equal-loss-does-not", "higher-loss-does-not"],
)
def test_a_minimize_catalog_needs_a_lower_objective_to_beat_the_champion(
    aws: dict[str, Any], catalog: ModelCatalog, challenger: float, champion: float, beats: bool
) -> None:
    minimizing = _minimizing(catalog)
    seed_champion(aws, minimizing)
    config = yaml.safe_load(aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=minimizing.config.key)["Body"].read())
    config["performance"] = {"validation:logloss": champion, "validation:accuracy": 0.93}
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=minimizing.config.key, Body=yaml.safe_dump(config).encode())
    the_world = _world_with(
        metrics={"validation:logloss": challenger, "validation:auc": 0.97, "validation:accuracy": 0.95},
        objective_type="Minimize",
    )
    objective = the_world["DescribeHyperParameterTuningJob"]["fraud-xgb-tuning-0042"]
    objective["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"] = "validation:logloss"
    objective["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] = {
        "MetricName": "validation:logloss",
        "Value": challenger,
    }
    validation = validate_candidate(
        WorldSageMaker(the_world), aws["s3"], CONFIG_BUCKET, minimizing, "fraud-xgb-tuning-0042"
    )
    check = next(one for one in validation.checks if one.name == "beats_champion")
    assert check.passed is beats, validation.reasons
    assert check.value == pytest.approx(champion - challenger)
    assert (validation.verdict == "PASSED") is beats, validation.reasons
    if not beats:
        assert any("does not beat champion" in reason and "(Minimize)" in reason for reason in validation.reasons)
