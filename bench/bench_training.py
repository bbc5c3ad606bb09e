"""Training time of the real training entry point (jobs/training/train.py) on the generated fraud data.

The data (default 100,000 training and 20,000 validation rows, about 1.5 % fraud, 10 features) is written once in
the built-in XGBoost CSV layout; then the entry point runs as SageMaker runs it, a fresh process on a folder laid
out like /opt/ml, with the hyperparameters of the tuning job's best candidate in shared/events/world.json
(max_depth 6, eta 0.0834, 240 rounds, subsample 0.85, min_child_weight 3). Wall time covers the whole job:
interpreter start, imports, reading the CSV files, training, writing the model, the final evaluation; the job's
own timings (metrics.json) give the training and reading parts alone. Peak memory
is the job process's own ru_maxrss, from os.wait4 on it (this parent imports nothing heavy, so nothing of its own
size carries into the child's number).

Run: .venv/bin/python bench/bench_training.py [--train-rows 100000] [--validation-rows 20000] [--repeats 3]
Writes bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TRAIN_SCRIPT = ROOT / "jobs" / "training" / "train.py"
HYPERPARAMETERS = {
    "max_depth": "6",
    "eta": "0.0834",
    "num_round": "240",
    "subsample": "0.85",
    "min_child_weight": "3",
    "objective": "binary:logistic",
    "eval_metric": "auc",
}
FINAL_METRIC = re.compile(r"^validation-([a-z0-9_]+):([-+]?[0-9]*\.?[0-9]+)$")

WRITE_DATA = """
import sys
sys.path.insert(0, {jobs!r})
from promotion_ml.data import write_splits
write_splits({folder!r}, n_train={train}, n_validation={validation}, n_holdout=1, seed={seed})
"""


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run a process to the end; its stdout, wall time and its own peak RSS in MB (rusage of that child)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{command[1]} exited with {process.returncode}: {err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024.0  # kilobytes on Linux


def _layout(base: Path, data: Path) -> None:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    for channel in ("train", "validation"):
        (base / "input" / "data").mkdir(parents=True, exist_ok=True)
        (base / "input" / "data" / channel).symlink_to(data / channel, target_is_directory=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Training entry point wall time on generated data.")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--validation-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        data = Path(folder) / "data"
        code = WRITE_DATA.format(
            jobs=str(ROOT / "jobs"),
            folder=str(data),
            train=args.train_rows,
            validation=args.validation_rows,
            seed=args.seed,
        )
        _, data_s, data_peak = _run([sys.executable, "-c", code])
        for repeat in range(args.repeats):
            base = Path(folder) / f"opt_ml_{repeat}"
            _layout(base, data)
            environment = {**os.environ, "SAGEMAKER_BASE_DIR": str(base)}
            stdout, wall, peak = _run([sys.executable, str(TRAIN_SCRIPT)], environment)
            metrics = {m.group(1): float(m.group(2)) for line in stdout.splitlines() if (m := FINAL_METRIC.match(line))}
            inside = json.loads((base / "output" / "data" / "metrics.json").read_text())["timings_seconds"]
            runs.append(
                {
                    "wall_s": round(wall, 2),
                    "train_s": round(inside["train"], 2),
                    "read_data_s": round(inside["read_data"], 2),
                    "peak_rss_mb": round(peak, 1),
                    "validation": metrics,
                    "model_bytes": (base / "model" / "xgboost-model").stat().st_size,
                }
            )

    result: dict[str, Any] = {
        "benchmark": "training entry point, end to end, as a fresh process",
        "data": {
            "train_rows": args.train_rows,
            "validation_rows": args.validation_rows,
            "features": 10,
            "fraud_rate": "about 1.5 %",
            "generate_and_write_s": round(data_s, 2),
        },
        "hyperparameters": HYPERPARAMETERS,
        "repeats": args.repeats,
        "wall_s_median": round(statistics.median(run["wall_s"] for run in runs), 2),
        "wall_s_runs": [run["wall_s"] for run in runs],
        "train_s_median": round(statistics.median(run["train_s"] for run in runs), 2),
        "read_data_s_median": round(statistics.median(run["read_data_s"] for run in runs), 2),
        "validation_metrics": runs[-1]["validation"],
        "model_bytes": runs[-1]["model_bytes"],
        "peak_rss_mb_training_job": max(run["peak_rss_mb"] for run in runs),
        "peak_rss_mb_data_writer": round(data_peak, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
