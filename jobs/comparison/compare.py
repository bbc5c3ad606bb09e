"""SageMaker Processing entry point: the challenger against the champion on the same holdout rows.

Runs unchanged on SageMaker and locally with ``SAGEMAKER_BASE_DIR`` (moves ``/opt/ml``) or ``PROCESSING_ROOT``
(moves ``/opt/ml/processing`` alone) pointing at a temporary folder:

    input/champion/     xgboost-model, or model.tar.gz holding it (a training job's output as is)
    input/challenger/   the same
    input/holdout/      *.csv, label first, no header (built-in XGBoost CSV)
    output/report.json  every number (strict JSON: undefined values are null) and the decision
    output/roc.png, output/pr.png, output/confusion_champion.png, output/confusion_challenger.png

Arguments (the job's ContainerArguments): ``--min-gain``, ``--alpha``, ``--bootstrap-resamples``,
``--primary-metric``, ``--seed``, ``--threshold``, ``--interval-method``, ``--threads`` (underscores work too).

Exit status 0 whatever the decision (PASS, FAIL and INCONCLUSIVE are in the report); 1 on an error and 2 on bad
arguments, with the reason in ``/opt/ml/output/message`` (SageMaker's ExitMessage of a processing job).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if importlib.util.find_spec("promotion_ml") is None:
    # On SageMaker this file is <code dir>/comparison/compare.py and the package sits beside comparison/.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promotion_ml import evaluation
from promotion_ml.artifacts import load_booster, model_source, predict_scores, sha256_of
from promotion_ml.data import read_xgboost_csv
from promotion_ml.runtime import ProcessingLayout, run_processing_job
from promotion_ml.seeds import parse_hyperparameter_pairs, seed_spread, within_seed_noise
from promotion_ml.stats import compare_models, decide

REPORT_VERSION = 2  # 2: each model entry names the artifact it evaluated (file, sha256)
PLOTS = {
    "roc": "roc.png",
    "pr": "pr.png",
    "confusion_champion": "confusion_champion.png",
    "confusion_challenger": "confusion_challenger.png",
}


def _finite(
    kind: type[float] | type[int], low: float | None = None, high: float | None = None, inclusive: bool = True
) -> Any:
    """An argparse type: a finite number, optionally within bounds (open bounds when not ``inclusive``)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite")
        too_low = low is not None and (value < low if inclusive else value <= low)
        too_high = high is not None and (value > high if inclusive else value >= high)
        if too_low or too_high:
            interval = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
            raise argparse.ArgumentTypeError(f"{text} is outside {interval}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The job's arguments; each accepts ``--kebab-case`` and ``--snake_case``."""
    parser = argparse.ArgumentParser(description="Compare a challenger with the champion on held-out data.")
    parser.add_argument(
        "--min-gain",
        "--min_gain",
        dest="min_gain",
        type=_finite(float),
        default=0.0,
        help="margin the challenger must beat on the primary metric, in its units (default 0)",
    )
    parser.add_argument(
        "--alpha",
        type=_finite(float, 0.0, 1.0, inclusive=False),
        default=0.05,
        help="the decision uses a two-sided (1 - alpha) interval (default 0.05)",
    )
    parser.add_argument(
        "--bootstrap-resamples",
        "--bootstrap_resamples",
        dest="bootstrap_resamples",
        type=_finite(int, 2),
        default=1000,
        help="paired bootstrap resamples (default 1000)",
    )
    parser.add_argument(
        "--primary-metric",
        "--primary_metric",
        dest="primary_metric",
        default="roc_auc",
        choices=evaluation.METRIC_NAMES,
        help="metric the decision is about (default roc_auc)",
    )
    parser.add_argument("--seed", type=_finite(int, 0), default=0, help="bootstrap seed, >= 0 (default 0)")
    parser.add_argument(
        "--threshold",
        type=_finite(float),
        default=evaluation.DEFAULT_THRESHOLD,
        help="score at or above which a row is predicted fraud (default 0.5)",
    )
    parser.add_argument(
        "--interval-method",
        "--interval_method",
        dest="interval_method",
        default="bca",
        choices=("bca", "percentile", "delong"),
        help="interval the decision uses (default bca)",
    )
    parser.add_argument(
        "--seed-check-seeds",
        "--seed_check_seeds",
        dest="seed_check_seeds",
        type=_finite(int, 2, 20),
        default=None,
        help="retrain the challenger's configuration with this many seeds; a gain inside their spread is "
        "INCONCLUSIVE (needs input/train and --hyperparameter)",
    )
    parser.add_argument(
        "--hyperparameter",
        dest="hyperparameters",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one of the challenger's hyperparameters, as SageMaker passed it to training (repeat)",
    )
    parser.add_argument(
        "--threads",
        type=_finite(int, 1),
        default=None,
        help="bootstrap threads (default: the machine's cores, at most 8)",
    )
    return parser


def _model_entry(metrics: evaluation.EvaluationMetrics, artifact: Path) -> dict[str, Any]:
    return {
        # The exact bytes evaluated: the promotion deploys the challenger only if they are unchanged.
        "artifact": {"file": artifact.name, "sha256": sha256_of(artifact)},
        # Metrics only: the accuracy thresholds are each catalog's, applied by the promotion (promotion.intake).
        "metrics": metrics.to_dict(),
    }


def run(args: argparse.Namespace, layout: ProcessingLayout) -> dict[str, Any]:
    """Score both models on the holdout, compute every statistic, decide, write the report and plots."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    holdout = read_xgboost_csv(layout.input_dir / "holdout")
    with tempfile.TemporaryDirectory(prefix="models-") as work_dir:
        champion_model = load_booster(layout.input_dir / "champion", work_dir)
        challenger_model = load_booster(layout.input_dir / "challenger", work_dir)
    timings["load"] = time.perf_counter() - started

    started = time.perf_counter()
    labels = holdout.labels
    champion_scores = predict_scores(champion_model, holdout.features)
    challenger_scores = predict_scores(challenger_model, holdout.features)
    champion = evaluation.evaluate(labels, champion_scores, args.threshold)
    challenger = evaluation.evaluate(labels, challenger_scores, args.threshold)
    timings["score_and_evaluate"] = time.perf_counter() - started

    started = time.perf_counter()
    statistics = compare_models(
        labels,
        champion_scores,
        challenger_scores,
        threshold=args.threshold,
        alpha=args.alpha,
        n_resamples=args.bootstrap_resamples,
        seed=args.seed,
        n_threads=args.threads,
    )
    decision = decide(
        statistics,
        min_gain=args.min_gain,
        alpha=args.alpha,
        primary_metric=args.primary_metric,
        interval_method=args.interval_method,
    )
    timings["statistics"] = time.perf_counter() - started

    spread = None
    # Only a PASS can turn out to be seed noise: a FAIL or an INCONCLUSIVE stands without K more trainings.
    if args.seed_check_seeds and decision.outcome == "PASS":
        started = time.perf_counter()
        params, num_round = parse_hyperparameter_pairs(args.hyperparameters)
        spread = seed_spread(
            params,
            num_round,
            read_xgboost_csv(layout.input_dir / "train"),
            holdout,
            seeds=list(range(1, args.seed_check_seeds + 1)),
            metric=args.primary_metric,
            threshold=args.threshold,
        )
        decision = within_seed_noise(decision, spread)
        timings["seed_check"] = time.perf_counter() - started

    started = time.perf_counter()
    output = layout.output_dir
    curves = {"champion": (labels, champion_scores), "challenger": (labels, challenger_scores)}
    evaluation.plot_roc_curves(curves, output / PLOTS["roc"])
    evaluation.plot_pr_curves(curves, output / PLOTS["pr"])
    evaluation.plot_confusion_matrix(
        champion.confusion_matrix, output / PLOTS["confusion_champion"], "Champion confusion matrix"
    )
    evaluation.plot_confusion_matrix(
        challenger.confusion_matrix, output / PLOTS["confusion_challenger"], "Challenger confusion matrix"
    )
    timings["plots"] = time.perf_counter() - started

    report = {
        "report_version": REPORT_VERSION,
        "decision": decision.to_dict(),
        "parameters": {
            "min_gain": args.min_gain,
            "alpha": args.alpha,
            "bootstrap_resamples": args.bootstrap_resamples,
            "primary_metric": args.primary_metric,
            "seed": args.seed,
            "threshold": args.threshold,
            "interval_method": args.interval_method,
        },
        "seed_check": spread.to_dict() if spread is not None else None,
        "holdout": {"rows": holdout.n_rows, "positives": int(labels.sum()), "features": holdout.features.shape[1]},
        "champion": _model_entry(champion, model_source(layout.input_dir / "champion")),
        "challenger": _model_entry(challenger, model_source(layout.input_dir / "challenger")),
        "baseline_comparison": evaluation.compare_to_baseline(champion, challenger).to_dict(),
        "statistics": statistics.to_dict(),
        "plots": PLOTS,
        "timings_seconds": timings,
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval_method == "delong" and args.primary_metric != "roc_auc":
        parser.error("--interval-method delong needs --primary-metric roc_auc")
    return args


def _summarize(report: Mapping[str, Any]) -> None:
    decision = report["decision"]
    print(f"decision: {decision['outcome']}: {decision['reason']}", flush=True)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the job; the exit status says whether it ran, not what it decided."""
    return run_processing_job(lambda: _parse(argv), run, _summarize, os.environ if environ is None else environ)


if __name__ == "__main__":
    sys.exit(main())
