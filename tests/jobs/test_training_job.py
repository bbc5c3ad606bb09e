"""The training entry point, end to end in a folder laid out like a SageMaker training container."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import xgboost as xgb

from promotion_ml.data import SplitPaths, write_splits
from tests.jobs.conftest import (
    ROOT,
    TRAIN_SCRIPT,
    VALIDATION_ACCURACY_REGEX,
    VALIDATION_AUC_REGEX,
    training_layout,
)

HYPERPARAMETERS = {
    # As SageMaker writes them: every value a string, plus keys SageMaker adds itself.
    "max_depth": "3",
    "eta": "0.2",
    "num_round": "12",
    "subsample": "0.9",
    "min_child_weight": "2",
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "_tuning_objective_metric": "validation:auc",
    "sagemaker_program": "training/train.py",
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> SplitPaths:
    return write_splits(tmp_path_factory.mktemp("data"), n_train=4_000, n_validation=2_000, n_holdout=10, seed=11)


def test_trains_writes_the_model_and_logs_parseable_metrics(tmp_path: Path, splits: SplitPaths) -> None:
    base = training_layout(tmp_path / "opt_ml", splits.train.parent, splits.validation.parent, HYPERPARAMETERS)
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base)}
    run = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr

    model = xgb.Booster()
    model.load_model(bytearray((base / "model" / "xgboost-model").read_bytes()))
    assert model.num_boosted_rounds() == 12

    lines = run.stdout.splitlines()
    aucs = [float(m.group(1)) for line in lines if (m := re.match(VALIDATION_AUC_REGEX, line))]
    accuracies = [float(m.group(1)) for line in lines if (m := re.match(VALIDATION_ACCURACY_REGEX, line))]
    assert len(aucs) == 12  # one per round, as a tuning job's objective metric needs
    assert all(0.5 < auc <= 1.0 for auc in aucs)
    assert "[0]#011train-logloss:" in lines[1]  # the asked-for metric first, auc added after it
    assert len(accuracies) == 1

    summary = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert accuracies[0] == pytest.approx(summary["validation"]["accuracy"], abs=1e-6)
    assert aucs[-1] == pytest.approx(summary["validation"]["roc_auc"], abs=1e-3)
    assert summary["hyperparameters"]["num_round"] == 12
    assert summary["train_rows"] == 4_000
    assert not (base / "output" / "failure").exists()


def test_sm_variables_move_single_folders(tmp_path: Path, splits: SplitPaths, train_job: ModuleType) -> None:
    base = training_layout(
        tmp_path / "opt_ml", splits.train.parent, splits.validation.parent, {"num_round": "3", "max_depth": "2"}
    )
    environ = {
        "SAGEMAKER_BASE_DIR": str(base),
        "SM_CHANNEL_TRAIN": str(splits.train.parent),
        "SM_MODEL_DIR": str(tmp_path / "elsewhere" / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "elsewhere" / "data"),
    }
    assert train_job.main(environ) == 0
    assert (tmp_path / "elsewhere" / "model" / "xgboost-model").is_file()
    assert (tmp_path / "elsewhere" / "data" / "metrics.json").is_file()
    assert not (base / "model").exists()


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        ({"num_round": "5", "max_depth": "deep"}, "max_depth='deep' is not an integer"),
        ({"max_depth": "3"}, "num_round is required"),
        ({"num_round": "5", "max_dept": "3"}, "unknown hyperparameter 'max_dept'"),
        ({"num_round": "5", "objective": "reg:squarederror"}, "objective must be one of binary:logistic"),
        ({"num_round": "5", "eta": "nan"}, "eta='nan' is not a finite number"),
    ],
)
def test_bad_hyperparameters_fail_with_a_reason(
    tmp_path: Path, splits: SplitPaths, train_job: ModuleType, hyperparameters: dict[str, str], reason: str
) -> None:
    base = training_layout(tmp_path, splits.train.parent, splits.validation.parent, hyperparameters)
    assert train_job.main({"SAGEMAKER_BASE_DIR": str(base)}) == 1
    failure = (base / "output" / "failure").read_text()
    assert failure.startswith("HyperparameterError: ") and reason in failure
    assert not (base / "model" / "xgboost-model").exists()


def test_a_missing_channel_fails_with_a_reason(tmp_path: Path, splits: SplitPaths, train_job: ModuleType) -> None:
    base = training_layout(tmp_path, splits.train.parent, splits.validation.parent, {"num_round": "2"})
    for file in (base / "input" / "data" / "validation").iterdir():
        file.unlink()
    assert train_job.main({"SAGEMAKER_BASE_DIR": str(base)}) == 1
    assert "validation" in (base / "output" / "failure").read_text()


def test_script_mode_quoting_is_understood(train_job: ModuleType) -> None:
    params, rounds = train_job.parse_hyperparameters(
        {"num_round": '"40"', "objective": '"binary:logistic"', "eval_metric": "auc,error", "eta": "0.1"}
    )
    assert rounds == 40
    assert params["objective"] == "binary:logistic"
    assert params["eval_metric"] == ["auc", "error"]
    assert params["eta"] == 0.1


def test_runs_from_another_working_directory_without_pythonpath(tmp_path: Path) -> None:
    """On SageMaker nothing puts jobs/ on the path: the entry point finds promotion_ml beside itself."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SAGEMAKER_BASE_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT.parent,
        timeout=120,
        check=False,
    )
    # Nothing is laid out, so it fails, but inside the job (failure file), not at import.
    assert run.returncode == 1
    assert "no hyperparameters" in (tmp_path / "output" / "failure").read_text()
