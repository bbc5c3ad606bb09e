"""The one implementation of the model evaluation metrics and the baseline comparison.

The training job, the comparison job and data scientists' notebooks all import this module, so a number in a
training log, in a comparison report and in a notebook means the same thing. Metrics come from scikit-learn;
metrics that are undefined for the data (ROC AUC with a single class, PR AUC without positives) are ``None``,
never NaN, so every result serialises to strict JSON. Whether an accuracy is good enough for production is not
decided here: that is the promotion's rule, with each model catalog's thresholds (``promotion.intake.candidate``).

Plots use matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so importing this
module neither imports matplotlib nor changes the backend of a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn import metrics as skm

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
DEFAULT_THRESHOLD = 0.5
_MAX_CURVE_POINTS = 2_000


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of a binary classifier at one threshold (positive class = 1)."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def total(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    def as_array(self) -> NDArray[np.int64]:
        """Rows are the true class, columns the predicted class, as scikit-learn lays it out."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)

    def to_dict(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}


@dataclass(frozen=True)
class EvaluationMetrics:
    """Every metric the product reports for one model on one data set."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    pr_auc: float | None
    confusion_matrix: ConfusionMatrix
    threshold: float
    n_samples: int
    n_positive: int

    def metric(self, name: str) -> float | None:
        """The value of one of :data:`METRIC_NAMES`."""
        if name not in METRIC_NAMES:
            raise KeyError(f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}")
        value: float | None = getattr(self, name)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: self.metric(name) for name in METRIC_NAMES},
            "confusion_matrix": self.confusion_matrix.to_dict(),
            "threshold": self.threshold,
            "n_samples": self.n_samples,
            "n_positive": self.n_positive,
        }


@dataclass(frozen=True)
class MetricComparison:
    """One metric of a candidate against its baseline.

    ``percent_change`` is the difference relative to the baseline, in percent. A zero baseline has no relative
    change: it is ``0.0`` when the candidate is zero too and ``None`` otherwise (never inf or NaN); it is also
    ``None`` when either value is undefined, or when the baseline is so close to zero that the ratio overflows.
    """

    metric: str
    baseline: float | None
    candidate: float | None
    difference: float | None
    percent_change: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "difference": self.difference,
            "percent_change": self.percent_change,
        }


@dataclass(frozen=True)
class BaselineComparison:
    """A :class:`MetricComparison` for every metric in :data:`METRIC_NAMES`, in that order."""

    metrics: Mapping[str, MetricComparison]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: comparison.to_dict() for name, comparison in self.metrics.items()}


def _as_labels(y_true: ArrayLike) -> NDArray[np.int8]:
    labels = np.asarray(y_true)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("y_true must be a non-empty one-dimensional array")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    return labels.astype(np.int8)


def _as_scores(y_score: ArrayLike, n: int) -> NDArray[np.float64]:
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.shape != (n,):
        raise ValueError(f"y_score must have shape ({n},), got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("y_score must be finite")
    return scores


def validate_inputs(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Check and convert labels (0/1) and scores (finite, same length); every public function here uses it."""
    labels = _as_labels(y_true)
    return labels, _as_scores(y_score, labels.shape[0])


def evaluate(y_true: ArrayLike, y_score: ArrayLike, threshold: float = DEFAULT_THRESHOLD) -> EvaluationMetrics:
    """Compute every metric from labels and scores; a score ``>= threshold`` predicts the positive class.

    Precision, recall and F1 are 0 where their denominator is 0 (scikit-learn's ``zero_division=0``).
    """
    labels, scores = validate_inputs(y_true, y_score)
    if not math.isfinite(threshold):
        raise ValueError("threshold must be finite")
    predicted = (scores >= threshold).astype(np.int8)
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    n_positive = int(labels.sum())
    both_classes = 0 < n_positive < labels.shape[0]
    return EvaluationMetrics(
        accuracy=float(skm.accuracy_score(labels, predicted)),
        precision=float(skm.precision_score(labels, predicted, zero_division=0)),
        recall=float(skm.recall_score(labels, predicted, zero_division=0)),
        f1=float(skm.f1_score(labels, predicted, zero_division=0)),
        roc_auc=float(skm.roc_auc_score(labels, scores)) if both_classes else None,
        # Average precision sums precision x recall steps: float rounding can land it a hair above 1
        # (1.0000000000000002 for a perfect ranking), which a range check downstream would refuse.
        pr_auc=min(1.0, float(skm.average_precision_score(labels, scores))) if n_positive > 0 else None,
        confusion_matrix=ConfusionMatrix(tn=tn, fp=fp, fn=fn, tp=tp),
        threshold=float(threshold),
        n_samples=int(labels.shape[0]),
        n_positive=n_positive,
    )


def _metric_values(metrics: EvaluationMetrics | Mapping[str, float | None]) -> dict[str, float | None]:
    if isinstance(metrics, EvaluationMetrics):
        return {name: metrics.metric(name) for name in METRIC_NAMES}
    missing = [name for name in METRIC_NAMES if name not in metrics]
    if missing:
        raise KeyError(f"missing metrics: {', '.join(missing)}")
    values: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        value = metrics[name]
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be finite or None, got {value}")
        values[name] = None if value is None else float(value)
    return values


def compare_metric(metric: str, baseline: float | None, candidate: float | None) -> MetricComparison:
    """Difference and percent change of one metric (candidate minus baseline)."""
    if baseline is None or candidate is None:
        return MetricComparison(metric, baseline, candidate, None, None)
    difference = candidate - baseline
    if baseline == 0.0:
        # Relative change from zero is undefined; say so instead of writing inf.
        percent: float | None = 0.0 if candidate == 0.0 else None
    else:
        percent = 100.0 * difference / abs(baseline)
        if not math.isfinite(percent):  # a vanishingly small baseline: as undefined as a zero one
            percent = None
    return MetricComparison(metric, baseline, candidate, difference, percent)


def compare_to_baseline(
    baseline: EvaluationMetrics | Mapping[str, float | None],
    candidate: EvaluationMetrics | Mapping[str, float | None],
) -> BaselineComparison:
    """Compare a candidate with a baseline on every metric (champion = baseline, challenger = candidate)."""
    base, cand = _metric_values(baseline), _metric_values(candidate)
    return BaselineComparison({name: compare_metric(name, base[name], cand[name]) for name in METRIC_NAMES})


def _thin(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Keep at most a few thousand points of a curve: a million-point line draws slowly and looks the same."""
    if x.shape[0] <= _MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, x.shape[0] - 1, _MAX_CURVE_POINTS).round().astype(np.int64))
    return x[keep], y[keep]


def _new_figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def plot_roc_curves(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], path: str | Path) -> Path:
    """ROC curves of several models (name -> (y_true, y_score)) on one PNG, with their AUC in the legend."""
    figure = _new_figure()
    axes = figure.add_subplot()
    for name, (y_true, y_score) in curves.items():
        labels, scores = validate_inputs(y_true, y_score)
        fpr, tpr, _ = skm.roc_curve(labels, scores)
        fpr, tpr = _thin(fpr, tpr)
        axes.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(labels, scores):.4f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="chance")
    axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_pr_curves(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], path: str | Path) -> Path:
    """Precision-recall curves of several models on one PNG, with their average precision in the legend."""
    figure = _new_figure()
    axes = figure.add_subplot()
    prevalence = None
    for name, (y_true, y_score) in curves.items():
        labels, scores = validate_inputs(y_true, y_score)
        precision, recall, _ = skm.precision_recall_curve(labels, scores)
        recall, precision = _thin(recall, precision)
        ap = skm.average_precision_score(labels, scores)
        axes.step(recall, precision, where="post", label=f"{name} (AP {ap:.4f})")
        prevalence = float(labels.mean())
    if prevalence is not None:
        axes.axhline(prevalence, linestyle="--", color="grey", linewidth=0.8, label="chance")
    axes.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve", xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="upper right")
    return _save(figure, path)


def plot_confusion_matrix(matrix: ConfusionMatrix, path: str | Path, title: str = "Confusion matrix") -> Path:
    """The confusion matrix as a heat map of each true class's shares, annotated with counts and shares.

    Colouring by share of the true class (not by count) keeps the fraud row readable when legitimate
    transactions outnumber fraud a hundred to one.
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    counts = matrix.as_array()
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    class_names: Sequence[str] = ("legitimate (0)", "fraud (1)")
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="Predicted class",
        ylabel="True class",
        title=title,
    )
    for row in range(2):
        for column in range(2):
            share = float(shares[row, column])
            axes.text(
                column,
                row,
                f"{int(counts[row, column]):,}\n{share:.1%}",
                ha="center",
                va="center",
                color="white" if share > 0.5 else "black",
            )
    return _save(figure, path)


class ModelEvaluator:
    """Evaluates models at one classification threshold; the object form of this module for notebooks and jobs."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold

    def evaluate(self, y_true: ArrayLike, y_score: ArrayLike) -> EvaluationMetrics:
        """All metrics at this evaluator's threshold."""
        return evaluate(y_true, y_score, self.threshold)

    @staticmethod
    def compare_to_baseline(
        baseline: EvaluationMetrics | Mapping[str, float | None],
        candidate: EvaluationMetrics | Mapping[str, float | None],
    ) -> BaselineComparison:
        """See :func:`compare_to_baseline`."""
        return compare_to_baseline(baseline, candidate)
