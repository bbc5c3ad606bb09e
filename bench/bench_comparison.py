"""Comparison statistics on a million holdout rows: McNemar + DeLong + a 1,000-resample paired bootstrap
(promotion_ml.stats), beside scipy.stats.bootstrap computing the paired bootstrap interval of the AUC difference.

Setup (not timed): 1,000,000 generated holdout rows (about 1.5 % fraud) scored by two XGBoost models trained on
generated data (champion: depth 3, 60 rounds, 20,000 rows; challenger: depth 4, 120 rounds, 50,000 rows).
Each method then runs in its own fresh process on the same saved scores, so its peak memory (ru_maxrss) is its
own: loading the scores plus the computation.

scipy.stats.bootstrap (paired, vectorised, percentile) gets the AUC difference of each resample from ranks of the
resampled scores, in batches so its index matrix stays small. On a million rows it takes far too long for 1,000
resamples, so it runs ``--scipy-resamples`` resamples and its time is extrapolated linearly to 1,000 (the work
per resample is the same); the output says so.

Run: .venv/bin/python bench/bench_comparison.py [--rows 1000000] [--resamples 1000] [--scipy-resamples 20]
Writes bench/results/comparison.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "jobs"))

GOAL_SECONDS = 10.0
GOAL_SPEEDUP = 10.0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def _prepare(rows: int, path: Path) -> dict[str, Any]:
    """Generate the holdout, train the two models, save labels and scores."""
    import xgboost as xgb

    from promotion_ml.data import generate_transactions

    started = time.perf_counter()
    models = {}
    for name, (train_rows, depth, rounds, seed) in {
        "champion": (20_000, 3, 60, 1),
        "challenger": (50_000, 4, 120, 2),
    }.items():
        train = generate_transactions(train_rows, seed=seed)
        params = {"max_depth": depth, "eta": 0.1, "subsample": 0.8, "objective": "binary:logistic", "seed": seed}
        models[name] = xgb.train(params, xgb.DMatrix(train.features, label=train.labels), rounds)
    holdout = generate_transactions(rows, seed=3)
    matrix = xgb.DMatrix(holdout.features)
    scores = {name: model.predict(matrix).astype(np.float64) for name, model in models.items()}
    np.savez(path, labels=holdout.labels, champion=scores["champion"], challenger=scores["challenger"])
    return {"rows": rows, "positives": int(holdout.labels.sum()), "setup_s": round(time.perf_counter() - started, 2)}


def _auc_per_resample(labels: NDArray[Any], scores: NDArray[Any]) -> NDArray[np.float64]:
    """ROC AUC of each resample (last axis) from midranks: the usual vectorised way without promotion_ml."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=-1)
    positives = labels.sum(axis=-1)
    negatives = labels.shape[-1] - positives
    return ((ranks * labels).sum(axis=-1) - positives * (positives + 1) / 2.0) / (positives * negatives)


def _worker(method: str, data: Path, resamples: int, seed: int) -> dict[str, Any]:
    """Run one method in this (fresh) process and report its times and peak memory; imports are not timed."""
    started = time.perf_counter()
    if method == "ours":
        from promotion_ml.stats import delong_test, mcnemar_test, paired_bootstrap
    from scipy import stats

    result: dict[str, Any] = {"import_s": round(time.perf_counter() - started, 3)}
    loaded = np.load(data)
    labels, champion, challenger = loaded["labels"], loaded["champion"], loaded["challenger"]
    result["peak_rss_after_load_mb"] = round(_peak_rss_mb(), 1)
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "ours":
        t0 = time.perf_counter()
        mcnemar = mcnemar_test(labels, champion >= 0.5, challenger >= 0.5)
        t1 = time.perf_counter()
        delong = delong_test(labels, champion, challenger)
        t2 = time.perf_counter()
        bootstrap = paired_bootstrap(labels, champion, challenger, n_resamples=resamples, seed=seed)
        t3 = time.perf_counter()
        auc = bootstrap["roc_auc"]
        percentile, bca = auc.percentile_interval(0.95), auc.bca_interval(0.95)
        result.update(
            {
                "mcnemar_s": round(t1 - t0, 3),
                "delong_s": round(t2 - t1, 3),
                "bootstrap_s": round(t3 - t2, 3),
                "bootstrap_metrics": sorted(bootstrap),
                "threads": os.cpu_count(),
                "mcnemar_p_value": mcnemar.p_value,
                "auc_difference": auc.estimate,
                "delong_ci": [delong.interval(0.95).low, delong.interval(0.95).high],
                "bootstrap_percentile_ci": [percentile.low, percentile.high] if percentile else None,
                "bootstrap_bca_ci": [bca.low, bca.high] if bca else None,
            }
        )
    elif method == "scipy":

        def difference(y: NDArray[Any], a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> NDArray[np.float64]:
            return _auc_per_resample(y, b) - _auc_per_resample(y, a)

        outcome = stats.bootstrap(
            (labels, champion, challenger),
            difference,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            batch=5,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        result["ci"] = [float(outcome.confidence_interval.low), float(outcome.confidence_interval.high)]
    else:
        raise ValueError(method)
    result.update(
        {
            "wall_s": round(time.perf_counter() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "resamples": resamples,
        }
    )
    return result


def _run_worker(method: str, data: Path, resamples: int, seed: int, rows: int = 0) -> dict[str, Any]:
    """Run a step in a fresh process started from this small one: Linux carries a parent's peak RSS into a
    forked child's ru_maxrss, so the parent never holds the data itself."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--data",
        str(data),
        "--resamples",
        str(resamples),
        "--seed",
        str(seed),
        "--rows",
        str(rows),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--scipy-resamples", type=int, default=20, help="scipy resamples actually run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", choices=("prepare", "ours", "scipy"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.worker == "prepare":
            result = _prepare(args.rows, args.data)
        else:
            result = _worker(args.worker, args.data, args.resamples, args.seed)
        print(json.dumps(result))
        return result

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-comparison-") as folder:
        data = Path(folder) / "scores.npz"
        setup = _run_worker("prepare", data, 0, args.seed, args.rows)
        ours = _run_worker("ours", data, args.resamples, args.seed)
        scipy_run = _run_worker("scipy", data, args.scipy_resamples, args.seed)
    scale = args.resamples / args.scipy_resamples
    scipy_extrapolated = scipy_run["wall_s"] * scale
    result: dict[str, Any] = {
        "benchmark": "champion vs challenger statistics on the holdout",
        "data": {**setup, "resamples": args.resamples},
        "ours": {**ours, "what": "McNemar + DeLong + paired bootstrap of all six metrics (percentile and BCa)"},
        "scipy_bootstrap": {
            **scipy_run,
            "what": "scipy.stats.bootstrap, paired, vectorised, percentile, AUC difference only",
            "extrapolated": scale != 1,
            "wall_s_for_requested_resamples": round(scipy_extrapolated, 1),
            "note": (
                f"ran {args.scipy_resamples} resamples and scaled the wall time linearly by {scale:g} "
                f"to {args.resamples}"
            )
            if scale != 1
            else "ran every resample",
        },
        "speedup_bootstrap_only": round(scipy_extrapolated / ours["bootstrap_s"], 1),
        "speedup_all_statistics": round(scipy_extrapolated / ours["wall_s"], 1),
        "goals": {
            f"ours_under_{GOAL_SECONDS:g}s": ours["wall_s"] <= GOAL_SECONDS,
            f"at_least_{GOAL_SPEEDUP:g}x_faster_than_scipy": scipy_extrapolated / ours["wall_s"] >= GOAL_SPEEDUP,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": _version("scipy"),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    outcome = main()
    if "benchmark" in outcome:
        print(json.dumps(outcome, indent=2))
