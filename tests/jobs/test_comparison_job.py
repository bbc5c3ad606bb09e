"""The comparison entry point, end to end: models trained by the training entry point, a shared holdout, the
processing container's folders, and the decision in report.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from promotion_ml.data import generate_transactions, write_splits, write_xgboost_csv
from tests.jobs.conftest import COMPARE_SCRIPT, training_layout

# Trains its models once per module, so the module stays on one xdist worker.
pytestmark = pytest.mark.xdist_group("comparison_job")

PLOTS = ("roc.png", "pr.png", "confusion_champion.png", "confusion_challenger.png")


@dataclass(frozen=True)
class Models:
    weak: Path  # a model directory holding xgboost-model
    strong: Path
    holdout: Path  # a holdout CSV file
    strong_train: Path  # the strong model's training CSV
    strong_reseeded: Path  # the strong model's configuration and data, trained with another seed


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, train_job: ModuleType) -> Models:
    """A weak champion (one split, three rounds, little data) and a strong challenger (depth 5, 120 rounds, ten
    times the data), both trained by the real training entry point, and a holdout neither has seen."""
    root = tmp_path_factory.mktemp("models")
    plans = {
        "weak": (2_000, {"max_depth": "1", "eta": "0.3", "num_round": "3"}),
        "strong": (20_000, {"max_depth": "5", "eta": "0.1", "num_round": "120", "subsample": "0.8"}),
    }
    for seed, (name, (rows, hyperparameters)) in enumerate(plans.items()):
        splits = write_splits(root / f"{name}-data", n_train=rows, n_validation=2_000, n_holdout=1, seed=seed)
        base = training_layout(root / name, splits.train.parent, splits.validation.parent, hyperparameters)
        assert train_job.main({"SAGEMAKER_BASE_DIR": str(base)}) == 0
        if name == "strong":
            strong_train = splits.train
            again = training_layout(
                root / "reseeded", splits.train.parent, splits.validation.parent, {**hyperparameters, "seed": "7"}
            )
            assert train_job.main({"SAGEMAKER_BASE_DIR": str(again)}) == 0
    holdout = write_xgboost_csv(root / "holdout.csv", generate_transactions(20_000, seed=99))
    return Models(
        weak=root / "weak" / "model",
        strong=root / "strong" / "model",
        holdout=holdout,
        strong_train=strong_train,
        strong_reseeded=root / "reseeded" / "model",
    )


def processing_layout(
    root: Path, champion: Path, challenger: Path, holdout: Path, *, challenger_as_archive: bool = False
) -> Path:
    """``root`` laid out like ``/opt/ml/processing``; the challenger as SageMaker stores it (model.tar.gz) if asked."""
    inputs = root / "input"
    for name in ("champion", "challenger", "holdout"):
        (inputs / name).mkdir(parents=True)
    shutil.copy(champion / "xgboost-model", inputs / "champion" / "xgboost-model")
    if challenger_as_archive:
        with tarfile.open(inputs / "challenger" / "model.tar.gz", "w:gz") as archive:
            archive.add(challenger / "xgboost-model", arcname="xgboost-model")
    else:
        shutil.copy(challenger / "xgboost-model", inputs / "challenger" / "xgboost-model")
    shutil.copy(holdout, inputs / "holdout" / "holdout.csv")
    return root


def read_report(root: Path) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"report.json holds {constant}")

    return json.loads((root / "output" / "report.json").read_text(), parse_constant=refuse)


ARGS = ["--min-gain", "0.001", "--alpha", "0.05", "--bootstrap-resamples", "300", "--seed", "1"]


def test_a_better_challenger_passes(tmp_path: Path, models: Models) -> None:
    """Run as SageMaker runs it: a process, ContainerArguments on the command line, the challenger archived."""
    root = processing_layout(
        tmp_path / "processing", models.weak, models.strong, models.holdout, challenger_as_archive=True
    )
    env = {**os.environ, "PROCESSING_ROOT": str(root), "SAGEMAKER_BASE_DIR": str(tmp_path / "opt_ml")}
    run = subprocess.run(
        [sys.executable, str(COMPARE_SCRIPT), *ARGS, "--primary_metric", "roc_auc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "decision: PASS" in run.stdout

    report = read_report(root)
    decision = report["decision"]
    assert decision["outcome"] == "PASS"
    assert decision["ci_low"] > 0.001
    assert report["challenger"]["metrics"]["roc_auc"] > report["champion"]["metrics"]["roc_auc"]
    assert report["holdout"]["rows"] == 20_000
    assert set(report["baseline_comparison"]) == {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}
    statistics = report["statistics"]
    assert {"mcnemar", "delong", "bootstrap", "effect_sizes"} <= set(statistics)
    assert statistics["bootstrap"]["roc_auc"]["n_resamples"] == 300
    assert statistics["delong"]["p_value"] < 0.05
    # The accuracy thresholds are each catalog's, applied by the promotion: the report carries no verdict of its own.
    for side in ("champion", "challenger"):
        assert set(report[side]) == {"artifact", "metrics"}
    for plot in PLOTS:
        assert (root / "output" / plot).read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "opt_ml" / "output" / "message").exists()


@pytest.mark.parametrize(("min_gain", "outcome"), [("0.001", "FAIL"), ("0", "INCONCLUSIVE")])
def test_identical_models_do_not_pass(
    tmp_path: Path, models: Models, compare_job: ModuleType, min_gain: str, outcome: str
) -> None:
    root = processing_layout(tmp_path, models.strong, models.strong, models.holdout)
    args = [*ARGS[2:], "--min-gain", min_gain]
    assert compare_job.main(args, {"PROCESSING_ROOT": str(root)}) == 0
    decision = read_report(root)["decision"]
    assert decision["outcome"] == outcome
    assert decision["difference"] == 0.0 and decision["ci_low"] == decision["ci_high"] == 0.0


@pytest.mark.parametrize(
    ("extra", "interval_method"),
    [
        ([], "bca"),
        (["--primary-metric", "pr_auc", "--interval-method", "percentile"], "percentile"),
        (["--interval-method", "delong"], "delong"),
    ],
)
def test_a_clearly_worse_challenger_fails(
    tmp_path: Path, models: Models, compare_job: ModuleType, extra: list[str], interval_method: str
) -> None:
    root = processing_layout(tmp_path, models.strong, models.weak, models.holdout)
    assert compare_job.main([*ARGS, *extra], {"PROCESSING_ROOT": str(root)}) == 0  # a FAIL is a result, not an error
    decision = read_report(root)["decision"]
    assert decision["outcome"] == "FAIL"
    assert decision["interval_method"] == interval_method
    assert decision["ci_high"] < 0.0
    assert "significantly worse" in decision["reason"]


def test_a_missing_model_is_an_error_with_a_message(tmp_path: Path, models: Models, compare_job: ModuleType) -> None:
    root = processing_layout(tmp_path / "processing", models.weak, models.strong, models.holdout)
    (root / "input" / "champion" / "xgboost-model").unlink()
    environ = {"PROCESSING_ROOT": str(root), "SAGEMAKER_BASE_DIR": str(tmp_path / "opt_ml")}
    assert compare_job.main(ARGS, environ) == 1
    message = (tmp_path / "opt_ml" / "output" / "message").read_text()
    assert message.startswith("FileNotFoundError") and "champion" in message
    assert not (root / "output" / "report.json").exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--alpha", "1.5"],
        ["--bootstrap-resamples", "1"],
        ["--primary-metric", "loss"],
        ["--min-gain", "nan"],
        ["--seed", "-1"],
        ["--primary-metric", "f1", "--interval-method", "delong"],
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, compare_job: ModuleType, bad: list[str]) -> None:
    assert compare_job.main(bad, {"SAGEMAKER_BASE_DIR": str(tmp_path)}) == 2
    assert "invalid arguments" in (tmp_path / "output" / "message").read_text()


def with_training_data(root: Path, models: Models) -> Path:
    """The processing layout plus input/train: the strong model's training rows, which the seed check retrains on."""
    (root / "input" / "train").mkdir()
    shutil.copy(models.strong_train, root / "input" / "train" / "train.csv")
    return root


STRONG = {"max_depth": "5", "eta": "0.1", "num_round": "120", "subsample": "0.8"}


def seed_arguments(seeds: int, hyperparameters: dict[str, str]) -> list[str]:
    pairs = [item for name, value in hyperparameters.items() for item in ("--hyperparameter", f"{name}={value}")]
    return ["--seed-check-seeds", str(seeds), *pairs]


def test_a_gain_far_beyond_the_seeds_spread_still_passes(
    tmp_path: Path, models: Models, compare_job: ModuleType
) -> None:
    root = with_training_data(processing_layout(tmp_path, models.weak, models.strong, models.holdout), models)
    assert compare_job.main([*ARGS, *seed_arguments(3, STRONG)], {"PROCESSING_ROOT": str(root)}) == 0
    report = read_report(root)
    seeds = report["seed_check"]
    assert seeds["seeds"] == [1, 2, 3] and len(seeds["values"]) == 3 and seeds["metric"] == "roc_auc"
    assert seeds["spread"] == pytest.approx(max(seeds["values"]) - min(seeds["values"]), abs=1e-5)
    assert report["decision"]["outcome"] == "PASS"
    assert report["decision"]["difference"] > seeds["spread"]


def test_a_gain_inside_the_seeds_spread_is_inconclusive(
    tmp_path: Path, models: Models, compare_job: ModuleType
) -> None:
    """The champion is the challenger's own configuration with another seed: whatever the CI says (a margin of
    -0.05 lets it pass), the gain is seed noise, and the seed check says so."""
    root = with_training_data(
        processing_layout(tmp_path, models.strong_reseeded, models.strong, models.holdout), models
    )
    arguments = ["--min-gain", "-0.05", *ARGS[2:], *seed_arguments(5, STRONG)]
    assert compare_job.main(arguments, {"PROCESSING_ROOT": str(root)}) == 0
    report = read_report(root)
    decision, seeds = report["decision"], report["seed_check"]
    assert abs(decision["difference"]) <= seeds["spread"], (decision, seeds)
    assert decision["outcome"] == "INCONCLUSIVE"
    assert "inside the spread of its own configuration retrained with 5 seeds" in decision["reason"]


def test_the_seed_check_needs_the_challengers_hyperparameters(
    tmp_path: Path, models: Models, compare_job: ModuleType
) -> None:
    root = with_training_data(processing_layout(tmp_path, models.weak, models.strong, models.holdout), models)
    environ = {"PROCESSING_ROOT": str(root), "SAGEMAKER_BASE_DIR": str(tmp_path / "opt_ml")}
    assert compare_job.main([*ARGS, "--seed-check-seeds", "3"], environ) == 1
    assert "num_round is required" in (tmp_path / "opt_ml" / "output" / "message").read_text()
