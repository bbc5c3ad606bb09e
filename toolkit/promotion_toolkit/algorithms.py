"""Algorithm comparison: XGBoost, LightGBM, a random forest and a neural network on the same split.

Every model is trained on the same training rows and scored on the same validation rows of :mod:`promotion_ml.data`,
with the product's one metric implementation (:func:`promotion_ml.evaluation.evaluate`), so the table here and the
numbers the promotion flow uses mean the same thing. With a tracker, each algorithm is a run nested under one
comparison run that also keeps the table and the chart.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from promotion_ml.data import Dataset, read_xgboost_csv, write_splits
from promotion_ml.evaluation import DEFAULT_THRESHOLD, METRIC_NAMES, EvaluationMetrics, _new_figure, _save, evaluate
from promotion_toolkit.tracking import Tracker

ALGORITHMS: tuple[str, ...] = ("xgboost", "lightgbm", "random_forest", "mlp")
ALGORITHM_LABELS = {
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "random_forest": "Random forest",
    "mlp": "MLP (scikit-learn)",
}
CHART_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "f1", "recall", "precision")


@dataclass(frozen=True)
class Splits:
    """Train, validation and holdout rows exactly as the jobs read them (written and read back as CSV)."""

    train: Dataset
    validation: Dataset
    holdout: Dataset


def make_splits(
    n_train: int, n_validation: int, n_holdout: int, *, seed: int, work_dir: str | Path | None = None
) -> Splits:
    """The seeded split of :func:`promotion_ml.data.write_splits`, read back through the jobs' CSV reader.

    Going through the CSV files (not the in-memory rows) gives the values the training job sees, rounding included.
    """
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(work_dir) if work_dir is not None else Path(scratch)
        paths = write_splits(folder, n_train=n_train, n_validation=n_validation, n_holdout=n_holdout, seed=seed)
        return Splits(
            train=read_xgboost_csv(paths.train),
            validation=read_xgboost_csv(paths.validation),
            holdout=read_xgboost_csv(paths.holdout),
        )


def make_estimator(name: str, *, seed: int = 0, params: Mapping[str, Any] | None = None, n_jobs: int = 1) -> Any:
    """An unfitted classifier with ``predict_proba``; ``params`` override the defaults below."""
    overrides = dict(params or {})
    if name == "xgboost":
        from xgboost import XGBClassifier

        defaults: dict[str, Any] = {
            "n_estimators": 200,
            "max_depth": 6,
            "learning_rate": 0.1,
            "subsample": 0.8,
            "min_child_weight": 1.0,
            "tree_method": "hist",
            "eval_metric": "auc",
        }
        return XGBClassifier(**{**defaults, **overrides}, random_state=seed, n_jobs=n_jobs)
    if name == "lightgbm":
        from lightgbm import LGBMClassifier

        defaults = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "subsample": 0.8, "subsample_freq": 1}
        return LGBMClassifier(**{**defaults, **overrides}, random_state=seed, n_jobs=n_jobs, verbose=-1)
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        defaults = {"n_estimators": 200, "min_samples_leaf": 2, "max_features": "sqrt"}
        return RandomForestClassifier(**{**defaults, **overrides}, random_state=seed, n_jobs=n_jobs)
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import QuantileTransformer

        defaults = {"hidden_layer_sizes": (32, 16), "alpha": 1e-3, "max_iter": 300, "early_stopping": True}
        # Amounts and distances are log-normal: a quantile transform gives the network inputs on one scale.
        return make_pipeline(
            QuantileTransformer(n_quantiles=200, output_distribution="normal", random_state=seed),
            MLPClassifier(**{**defaults, **overrides}, random_state=seed),
        )
    raise ValueError(f"unknown algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}")


def loggable_params(estimator: Any) -> dict[str, str | int | float | bool]:
    """The estimator's scalar parameters (of the last step of a pipeline), for tracking."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    params = final.get_params(deep=False)
    return {
        key: value if isinstance(value, (str, int, float, bool)) else str(value)
        for key, value in sorted(params.items())
        if value is not None and not callable(value)
    }


def positive_scores(estimator: Any, features: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probability of the positive class (fraud) for each row."""
    return np.asarray(estimator.predict_proba(features)[:, 1], dtype=np.float64)


@dataclass(frozen=True)
class AlgorithmResult:
    """One algorithm's validation metrics, timings and run."""

    algorithm: str
    metrics: EvaluationMetrics
    fit_seconds: float
    predict_seconds: float
    params: Mapping[str, Any]
    run_id: str | None = None
    scores: NDArray[np.float64] = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def label(self) -> str:
        return ALGORITHM_LABELS.get(self.algorithm, self.algorithm)

    def row(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            **{name: self.metrics.metric(name) for name in METRIC_NAMES},
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class Comparison:
    """Every algorithm's result, in the order they ran, on one validation set."""

    results: tuple[AlgorithmResult, ...]
    n_train: int
    n_validation: int
    parent_run_id: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        return [result.row() for result in self.results]

    def best(self, metric: str = "roc_auc") -> AlgorithmResult:
        """The result with the highest ``metric`` (undefined values rank last; ties keep the earlier)."""
        if metric not in METRIC_NAMES:
            raise KeyError(f"unknown metric {metric!r}")

        def key(result: AlgorithmResult) -> float:
            value = result.metrics.metric(metric)
            return -np.inf if value is None else value

        return max(self.results, key=key)

    def table(self, metrics: Sequence[str] = METRIC_NAMES) -> str:
        """A Markdown table: one row per algorithm, the metrics and the fit time."""
        header = ["algorithm", *metrics, "fit s"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for result in self.results:
            values = [result.metrics.metric(name) for name in metrics]
            cells = ["n/a" if value is None else f"{value:.4f}" for value in values]
            lines.append("| " + " | ".join([result.label, *cells, f"{result.fit_seconds:.2f}"]) + " |")
        return "\n".join(lines) + "\n"


def plot_comparison(comparison: Comparison, path: str | Path, metrics: Sequence[str] = CHART_METRICS) -> Path:
    """Grouped bar chart PNG: one group per metric, one bar per algorithm (undefined metrics drawn as 0)."""
    figure = _new_figure()
    figure.set_size_inches(8.0, 4.8)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(comparison.results))
    positions = np.arange(len(metrics))
    for index, result in enumerate(comparison.results):
        values = [result.metrics.metric(name) or 0.0 for name in metrics]
        bars = axes.bar(positions + index * width, values, width, label=result.label)
        axes.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    axes.set_xticks(positions + width * (len(comparison.results) - 1) / 2, list(metrics))
    axes.set(
        ylim=(0.0, 1.12),
        ylabel="validation score",
        title=f"Algorithms on {comparison.n_validation:,} validation rows",
    )
    axes.legend(loc="upper right", fontsize=8, ncols=2)
    return _save(figure, path)


def compare_algorithms(
    train: Dataset,
    validation: Dataset,
    *,
    algorithms: Sequence[str] = ALGORITHMS,
    tracker: Tracker | None = None,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    transform: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    output_dir: str | Path | None = None,
    n_jobs: int = 1,
) -> Comparison:
    """Fit each algorithm on ``train``, evaluate it on ``validation``; track each as a run when ``tracker`` is set.

    ``transform`` (e.g. a fitted feature builder's ``transform``) is applied to both sets first. With
    ``output_dir``, the table (Markdown and JSON) and the chart are written there and, with a tracker, logged on
    the comparison run.
    """
    unknown = [name for name in algorithms if name not in ALGORITHMS]
    if unknown or not algorithms:
        raise ValueError(f"unknown algorithms {unknown}; expected some of {', '.join(ALGORITHMS)}")
    x_train, x_validation = train.features, validation.features
    if transform is not None:
        x_train, x_validation = transform(x_train), transform(x_validation)
    parent = (
        tracker.start_run(
            "algorithm-comparison",
            params={
                "algorithms": ",".join(algorithms),
                "seed": seed,
                "n_train": train.n_rows,
                "n_validation": validation.n_rows,
                "n_features": x_train.shape[1],
                "threshold": threshold,
            },
            tags={"promotion_ml.kind": "algorithm-comparison"},
        )
        if tracker is not None
        else None
    )
    results: list[AlgorithmResult] = []
    try:
        for name in algorithms:
            estimator = make_estimator(name, seed=seed, params=(params or {}).get(name), n_jobs=n_jobs)
            started = time.perf_counter()
            estimator.fit(x_train, train.labels)
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            scores = positive_scores(estimator, x_validation)
            predict_seconds = time.perf_counter() - started
            metrics = evaluate(validation.labels, scores, threshold)
            run_id = None
            if tracker is not None and parent is not None:
                with tracker.start_run(
                    name,
                    parent=parent,
                    params={"algorithm": name, **loggable_params(estimator)},
                    metrics={
                        **{key: metrics.metric(key) for key in METRIC_NAMES},
                        "fit_seconds": fit_seconds,
                        "predict_seconds": predict_seconds,
                    },
                    tags={"promotion_ml.kind": "algorithm"},
                ) as run:
                    run_id = run.run_id
            results.append(
                AlgorithmResult(
                    algorithm=name,
                    metrics=metrics,
                    fit_seconds=fit_seconds,
                    predict_seconds=predict_seconds,
                    params=loggable_params(estimator),
                    run_id=run_id,
                    scores=scores,
                )
            )
        comparison = Comparison(
            results=tuple(results),
            n_train=train.n_rows,
            n_validation=validation.n_rows,
            parent_run_id=parent.run_id if parent is not None else None,
        )
        if output_dir is not None:
            written = write_comparison(comparison, output_dir)
            if parent is not None:
                for path in written:
                    parent.log_artifact(path)
        if parent is not None:
            best = comparison.best("roc_auc")
            parent.log(metrics={"best_roc_auc": best.metrics.roc_auc}, tags={"best_algorithm": best.algorithm})
            parent.end("FINISHED")
    except BaseException:
        if parent is not None:
            parent.end("FAILED")
        raise
    return comparison


def write_comparison(comparison: Comparison, output_dir: str | Path) -> list[Path]:
    """``comparison.md``, ``comparison.json`` and ``comparison.png`` in ``output_dir``."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "comparison.md"
    table.write_text(comparison.table(), encoding="utf-8")
    document = folder / "comparison.json"
    document.write_text(json.dumps(comparison.rows(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return [table, document, plot_comparison(comparison, folder / "comparison.png")]
