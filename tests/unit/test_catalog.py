"""The model catalog: the shipped file is valid; an invalid one names its file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from promotion.contract.catalog import ModelCatalog, catalog_for, load_catalog, load_catalogs
from promotion.core.errors import CatalogError, UnknownModel
from promotion.rollout.steps import gate_settings

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_catalog_has_the_seed_thresholds(catalog: ModelCatalog) -> None:
    assert catalog.id == "fraud-detection"
    assert catalog.parameter_store.prefix == "/fraud-detection/hyperparameters"
    assert catalog.config.key == "production-model-config.yaml"
    assert (catalog.thresholds.pass_, catalog.thresholds.warn) == (0.90, 0.80)
    assert {"max_depth", "eta", "num_round", "subsample", "min_child_weight"} <= set(catalog.hyperparameters)


def _write(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["thresholds"].update({"warn": 0.95}), "thresholds"),
        (lambda d: d["hyperparameters"]["max_depth"].update({"min": 20}), "hyperparameters.max_depth"),
        (lambda d: d["parameter_store"].update({"prefix": "no-leading-slash"}), "parameter_store.prefix"),
        (lambda d: d["config"].update({"key": "archive/x.yaml"}), "config.key"),
        (lambda d: d["approval"].update({"demo_approver": "mallory@example.com"}), "approval"),
        (lambda d: d.pop("objective"), "objective"),
        (lambda d: d.update({"unexpected": 1}), "unexpected"),
    ],
)
def test_invalid_catalog_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    mutate(document)
    path = _write(tmp_path, "fraud-detection", document)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
    assert field in str(caught.value)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    with pytest.raises(CatalogError, match="must match the file name"):
        load_catalog(_write(tmp_path, "churn", document))


def test_second_model_is_a_second_file(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    _write(tmp_path, "fraud-detection", document)
    document.update(
        id="churn", parameter_store={"prefix": "/churn/hyperparameters"}, config={"key": "churn/config.yaml"}
    )
    _write(tmp_path, "churn", document)
    assert sorted(load_catalogs(tmp_path)) == ["churn", "fraud-detection"]
    assert catalog_for("churn", tmp_path).parameter_path("eta") == "/churn/hyperparameters/eta"
    with pytest.raises(UnknownModel, match="no catalog for model 'nope'"):
        catalog_for("nope", tmp_path)


def test_models_may_not_share_a_prefix(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    _write(tmp_path, "fraud-detection", document)
    document["id"] = "copycat"
    _write(tmp_path, "copycat", document)
    with pytest.raises(CatalogError, match="share the Parameter Store prefix"):
        load_catalogs(tmp_path)


@pytest.mark.parametrize("inner", ["/fraud-detection/hyperparameters/lite", "/fraud-detection/hyperparameters/a/b"])
def test_a_prefix_inside_another_models_is_refused(tmp_path: Path, inner: str) -> None:
    """Reads are recursive and stale parameters are deleted: a nested prefix lost its parameters to the outer
    model's write (issue 19)."""
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    _write(tmp_path, "fraud-detection", document)
    document.update(id="lite", parameter_store={"prefix": inner}, config={"key": "lite/config.yaml"})
    _write(tmp_path, "lite", document)
    with pytest.raises(CatalogError, match=f"prefix {inner} of model lite lies under /fraud-detection/hyperparameters"):
        load_catalogs(tmp_path)


def test_a_prefix_that_only_starts_with_the_same_letters_is_not_nested(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    _write(tmp_path, "fraud-detection", document)
    document.update(
        id="lite", parameter_store={"prefix": "/fraud-detection/hyperparameters-lite"}, config={"key": "l.yaml"}
    )
    _write(tmp_path, "lite", document)
    assert sorted(load_catalogs(tmp_path)) == ["fraud-detection", "lite"]


def _shipped() -> dict:
    return yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())


OWN_IMAGE = "111122223333.dkr.ecr.{region}.amazonaws.com/fraud/trainer:1.4"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["training"].update(
                {"image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}
            ),
            "write {region} instead",
        ),
        (lambda d: d["rollout"].update({"serving_image": "docker.io/library/python:3.11"}), "rollout.serving_image"),
        (lambda d: d["training"].update({"image": OWN_IMAGE}), "training.metric_definitions is required"),
        (
            lambda d: d["training"].update(
                {"image": OWN_IMAGE, "metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]}
            ),
            "thresholds.metric: validation:accuracy has no training.metric_definitions entry",
        ),
        (
            lambda d: d["training"].update(
                {"image": OWN_IMAGE, "metric_definitions": [{"name": "validation:auc", "regex": "auc=[0-9.]+"}]}
            ),
            "has no group",
        ),
        (lambda d: d["thresholds"].update({"metric": "validation:balanced_accuracy"}), "not a metric the project"),
    ],
)
def test_images_resolve_in_any_region_and_the_judged_metrics_exist(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    document = _shipped()
    mutate(document)
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(_write(tmp_path, "fraud-detection", document))


def test_an_own_image_with_its_metric_definitions_resolves_in_the_deployment_region(tmp_path: Path) -> None:
    from promotion.contract.job_image import Images, metric_definitions

    document = _shipped()
    definitions = [
        {"name": "validation:auc", "regex": "val_auc=([0-9.]+)"},
        {"name": "validation:accuracy", "regex": "val_acc=([0-9.]+)"},
    ]
    document["training"].update({"image": OWN_IMAGE, "metric_definitions": definitions})
    catalog = load_catalog(_write(tmp_path, "fraud-detection", document))
    images = Images(project_image_uri=None, region="eu-west-1")
    assert images.resolve(catalog.training.image) == "111122223333.dkr.ecr.eu-west-1.amazonaws.com/fraud/trainer:1.4"
    assert metric_definitions(catalog) == [{"Name": d["name"], "Regex": d["regex"]} for d in definitions]
    assert Images(project_image_uri="p", region="eu-west-1").resolve("project") == "p"


def test_each_stage_rules_out_a_smaller_harm_by_default_and_the_catalog_may_say_otherwise(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    rollout = load_catalog(_write(tmp_path, "fraud-detection", document)).rollout
    assert rollout is not None
    assert [round(rollout.rule_out_ratio(stage), 3) for stage in range(4)] == [2.0, 1.5, 1.333, 1.25]
    # The absolute floor shrinks as the ratio's excess does: 0.5 pp at 1 %, then 1/k of it.
    assert [round(rollout.rule_out_floor(stage), 5) for stage in range(4)] == [0.005, 0.0025, 0.00167, 0.00125]
    many = dict(document, rollout=dict(document["rollout"], stages=[1, 2, 5, 10, 20, 35, 50, 70, 85, 95, 100]))
    long_rollout = load_catalog(_write(tmp_path, "fraud-detection", many)).rollout
    assert long_rollout is not None
    assert [round(long_rollout.rule_out_ratio(stage), 2) for stage in range(11)][4:] == [1.2] * 7
    assert all(gate_settings(load_catalog(_write(tmp_path, "fraud-detection", many)), s) for s in range(11))
    document["rollout"]["gates"]["rule_out_ratios"] = [3.0, 2.0, 1.5, 1.2]
    rollout = load_catalog(_write(tmp_path, "fraud-detection", document)).rollout
    assert rollout is not None and rollout.rule_out_ratio(3) == 1.2
    for wrong, message in (([2.0, 1.5], "one per stage"), ([2.0, 1.5, 1.2, 1.05], "rule_out_ratios")):
        document["rollout"]["gates"]["rule_out_ratios"] = wrong
        with pytest.raises(CatalogError, match=message):
            load_catalog(_write(tmp_path, "fraud-detection", document))


def test_the_minimum_bake_defaults_to_ten_minutes_or_the_whole_bake_and_may_not_exceed_it(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["rollout"].pop("min_bake_minutes", None)
    document["rollout"].update(bake_minutes=5, look_minutes=5)
    rollout = load_catalog(_write(tmp_path, "fraud-detection", document)).rollout
    assert rollout is not None and rollout.shortest_bake_minutes == 5
    document["rollout"].update(bake_minutes=60, min_bake_minutes=90)
    with pytest.raises(CatalogError, match="min_bake_minutes"):
        load_catalog(_write(tmp_path, "fraud-detection", document))
    # A bake whose last look comes before the minimum bake could never pass: refused.
    document["rollout"].update(bake_minutes=60, look_minutes=25, min_bake_minutes=60)
    with pytest.raises(CatalogError, match="last look comes after 50 minutes"):
        load_catalog(_write(tmp_path, "fraud-detection", document))


def test_the_gates_of_a_stage_come_from_the_catalog(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["rollout"]["gates"].update(min_latency_requests=300, beta=0.05, alpha=0.02)
    catalog = load_catalog(_write(tmp_path, "fraud-detection", document))
    settings = gate_settings(catalog, 1)
    assert (settings.min_latency_requests, settings.beta, settings.alpha) == (300, 0.05, 0.02)
    assert (settings.pass_max_ratio, settings.pass_abs_excess) == (1.5, 0.0025)


def test_a_models_lock_outlives_its_longest_promotion(tmp_path: Path) -> None:
    """The lease covers the approval wait, both jobs' waits at their longest (max run time plus an hour), every
    endpoint change's wait at its longest (two hours each) and every stage undecided to its last extension: a lock
    that expired mid-rollout would let the next promotion of the model start beside it."""
    from promotion.claim.claim import lock_lease_seconds

    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["rollout"].update(bake_minutes=24 * 60, look_minutes=60, max_bake_extensions=3)
    catalog = load_catalog(_write(tmp_path, "fraud-detection", document))
    rollout = 4 * 24 * 3600 * (1 + 3)
    endpoint_changes = (1 + 4 + 1) * 2 * 3600  # DeployChallenger, four ShiftTraffic, PromoteChallenger
    assert catalog.comparison is not None
    jobs = catalog.training.max_runtime_seconds + catalog.comparison.max_runtime_seconds + 2 * 3600
    longest = 72 * 3600 + jobs + endpoint_changes + rollout
    assert longest < lock_lease_seconds(catalog) <= longest + 3600


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("rollout"), "monitoring needs rollout settings"),
        (lambda d: d.pop("data_quality"), "monitoring needs data_quality.feature_names"),
        (lambda d: d["data_quality"].pop("feature_names"), "monitoring needs data_quality.feature_names"),
        # one processing input per captured hour beside the reference: SageMaker takes at most 10
        (lambda d: d["monitoring"].update({"schedule_hours": 9}), "monitoring.schedule_hours"),
        # a divisor of 24: every day's checks at the same hours, windows that never overlap
        (lambda d: d["monitoring"].update({"schedule_hours": 5}), "monitoring.schedule_hours"),
        (lambda d: d["monitoring"]["retraining"].update({"strategy": "Grid"}), "monitoring.retraining.strategy"),
        (lambda d: d["monitoring"]["retraining"].update({"min_interval_hours": 0.5}), "min_interval_hours"),
    ],
)
def test_monitoring_has_what_it_reads_and_fits_sagemakers_limits(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    mutate(document)
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(_write(tmp_path, "fraud-detection", document))


def test_two_monitored_models_may_not_share_a_retraining_name_prefix(tmp_path: Path) -> None:
    """Retrainings are named <model id cut to 18>-<time>: two monitored models whose ids agree on their first 18
    characters would take (and adopt) each other's tuning jobs."""
    base = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    for suffix in ("eu-1", "eu-2"):
        document = {**base, "id": f"fraud-detection-{suffix}"}
        document["parameter_store"] = {"prefix": f"/fraud-{suffix}/hyperparameters"}
        document["config"] = {"key": f"{suffix}/production-model-config.yaml"}
        document["approval"] = {**base["approval"], "model_package_group": f"fraud-{suffix}"}
        _write(tmp_path, f"fraud-detection-{suffix}", document)
    with pytest.raises(CatalogError, match="both retrain under the tuning job name prefix 'fraud-detection-eu'"):
        load_catalogs(tmp_path)
