"""SageMaker training entry point: XGBoost on the ``train`` channel, evaluated on ``validation``.

Runs unchanged on SageMaker (script mode, with ``jobs/`` as the source directory) and locally with
``SAGEMAKER_BASE_DIR`` pointing at a folder laid out like ``/opt/ml``:

    input/config/hyperparameters.json   every value a string, as SageMaker writes it
    input/data/train/*.csv              label first, no header (built-in XGBoost CSV)
    input/data/validation/*.csv
    model/xgboost-model                 written here (UBJSON)
    output/data/metrics.json            final metrics and the hyperparameters used
    output/failure                      the reason, when the job fails (exit status 1)

``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``, ``SM_OUTPUT_DATA_DIR``, ``SM_INPUT_CONFIG_DIR``
and ``SM_OUTPUT_DIR`` override single folders. Command-line arguments (script mode repeats the hyperparameters
there) are ignored: the JSON file is the one source.

Log lines follow the built-in algorithm, so the same metric definitions work for both:
``[17]#011train-auc:0.98123#011validation-auc:0.97012`` per round, then ``validation-accuracy:0.984700`` etc.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if importlib.util.find_spec("promotion_ml") is None:
    # On SageMaker this file is <source dir>/training/train.py and the package sits beside training/.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xgboost as xgb

from promotion_ml.artifacts import predict_scores, save_booster
from promotion_ml.data import read_xgboost_csv
from promotion_ml.evaluation import METRIC_NAMES, evaluate
from promotion_ml.hyperparameters import (  # noqa: F401 (the entry point's names, as tests use them)
    DEFAULT_EVAL_METRIC,
    OBJECTIVES,
    PARSERS,
    HyperparameterError,
    parse_hyperparameters,
)
from promotion_ml.runtime import TrainingLayout, write_failure

# The built-in algorithm's tab between metrics shows as "#011" in CloudWatch; metric regexes are written for it.
SEPARATOR = "#011"


class RoundLogger(xgb.callback.TrainingCallback):
    """Prints one line per boosting round in the built-in algorithm's format."""

    def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> bool:
        parts = [f"[{epoch}]"]
        for data_name, metrics in evals_log.items():
            for metric_name, history in metrics.items():
                parts.append(f"{data_name}-{metric_name}:{float(history[-1]):.5f}")
        print(SEPARATOR.join(parts), flush=True)
        return False


def train(layout: TrainingLayout) -> dict[str, Any]:
    """Train, save the model, print and write the final metrics; returns what it wrote to metrics.json."""
    if not layout.hyperparameters_path.is_file():
        raise FileNotFoundError(f"no hyperparameters at {layout.hyperparameters_path}")
    raw = json.loads(layout.hyperparameters_path.read_text(encoding="utf-8"))
    params, num_round = parse_hyperparameters(raw)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    train_set = read_xgboost_csv(layout.channel("train"))
    validation_set = read_xgboost_csv(layout.channel("validation"))
    timings["read_data"] = time.perf_counter() - started
    if train_set.features.shape[1] != validation_set.features.shape[1]:
        raise ValueError(
            f"train has {train_set.features.shape[1]} features, validation {validation_set.features.shape[1]}"
        )
    print(
        f"training on {train_set.n_rows} rows ({train_set.positive_rate:.2%} positive), validating on "
        f"{validation_set.n_rows} rows, {num_round} rounds, params {json.dumps(params, sort_keys=True)}",
        flush=True,
    )
    started = time.perf_counter()
    dtrain = xgb.DMatrix(train_set.features, label=train_set.labels)
    dvalidation = xgb.DMatrix(validation_set.features, label=validation_set.labels)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=num_round,
        evals=[(dtrain, "train"), (dvalidation, "validation")],
        verbose_eval=False,
        callbacks=[RoundLogger()],
    )
    timings["train"] = time.perf_counter() - started
    model_path = save_booster(booster, layout.model_dir)

    started = time.perf_counter()
    metrics = evaluate(validation_set.labels, predict_scores(booster, validation_set.features))
    timings["evaluate"] = time.perf_counter() - started
    for name in METRIC_NAMES:
        value = metrics.metric(name)
        if value is not None:
            print(f"validation-{name}:{value:.6f}", flush=True)
    summary = {
        "validation": metrics.to_dict(),
        "hyperparameters": {**params, "num_round": num_round},
        "train_rows": train_set.n_rows,
        "validation_rows": validation_set.n_rows,
        "model": str(model_path),
        "timings_seconds": timings,
    }
    layout.output_data_dir.mkdir(parents=True, exist_ok=True)
    (layout.output_data_dir / "metrics.json").write_text(
        json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return summary


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the job; on any error write ``output/failure`` and return 1, as SageMaker expects."""
    layout = TrainingLayout.from_environ(os.environ if environ is None else environ)
    try:
        train(layout)
    except Exception as error:  # every failure must reach the failure file
        traceback.print_exc()
        write_failure(layout.failure_path, f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
