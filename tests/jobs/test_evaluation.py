"""promotion_ml.evaluation: the metrics every job and notebook shares, and the baseline comparison. The accuracy
thresholds are the promotion's (promotion.intake.candidate, tests/property/test_seed_properties.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion_ml.evaluation import (
    METRIC_NAMES,
    ConfusionMatrix,
    ModelEvaluator,
    compare_metric,
    compare_to_baseline,
    evaluate,
    plot_confusion_matrix,
    plot_pr_curves,
    plot_roc_curves,
)
from tests.jobs.conftest import JOBS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_metrics_of_a_small_case_computed_by_hand() -> None:
    # Scores 0.1 (neg), 0.6 (neg), 0.4 (pos), 0.8 (pos); at 0.5 the predictions are 0, 1, 0, 1.
    metrics = evaluate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8])
    assert metrics.confusion_matrix == ConfusionMatrix(tn=1, fp=1, fn=1, tp=1)
    assert (metrics.accuracy, metrics.precision, metrics.recall, metrics.f1) == (0.5, 0.5, 0.5, 0.5)
    assert metrics.roc_auc == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs are ordered right
    assert metrics.pr_auc == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)  # precision 1 at recall 1/2, 2/3 at recall 1


def test_a_score_equal_to_the_threshold_predicts_fraud() -> None:
    assert evaluate([1, 0], [0.5, 0.2]).confusion_matrix.tp == 1
    assert ModelEvaluator(threshold=0.7).evaluate([1, 0], [0.6, 0.2]).confusion_matrix.tp == 0


def test_undefined_metrics_are_none_not_nan() -> None:
    only_negatives = evaluate([0, 0, 0], [0.1, 0.7, 0.2])
    assert only_negatives.roc_auc is None and only_negatives.pr_auc is None
    assert only_negatives.precision == 0.0 and only_negatives.recall == 0.0  # zero_division=0
    only_positives = evaluate([1, 1], [0.1, 0.7])
    assert only_positives.roc_auc is None and only_positives.pr_auc == 1.0
    json.dumps(only_negatives.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([], [], "non-empty"),
        ([0, 2], [0.1, 0.2], "only 0 and 1"),
        ([0, 1], [0.1], "shape"),
        ([0, 1], [0.1, math.nan], "finite"),
    ],
)
def test_bad_inputs_are_refused(labels: list[int], scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(labels, scores)


labels_and_scores = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=n, max_size=n),
    )
)


def test_average_precision_of_a_ranking_that_rounds_above_one_is_one() -> None:
    """The case hypothesis found: sklearn's sum comes out at 1.0000000000000002."""
    labels = [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    scores = [0.5625, 0.0625, 0.625, 0.125, 0.1875, 0.15625, 0.0, 1.0, 0.5, 0.75, 0.25]
    assert evaluate(labels, scores).pr_auc == pytest.approx(1.0) and evaluate(labels, scores).pr_auc <= 1.0


@settings(max_examples=100, deadline=None)
@given(labels_and_scores)
def test_property_14_evaluation_metrics_completeness(case: tuple[list[int], list[float]]) -> None:
    """Every evaluation has every metric, each within its range and consistent with the confusion matrix."""
    labels, scores = case
    metrics = evaluate(labels, scores)
    report = metrics.to_dict()
    assert set(METRIC_NAMES) <= set(report)
    cm = metrics.confusion_matrix
    assert cm.total == len(labels) == metrics.n_samples
    assert cm.tp + cm.fn == sum(labels) == metrics.n_positive
    for name in ("accuracy", "precision", "recall", "f1"):
        value = metrics.metric(name)
        assert value is not None and 0.0 <= value <= 1.0
    assert metrics.accuracy == pytest.approx((cm.tp + cm.tn) / cm.total)
    assert metrics.precision == pytest.approx(cm.tp / (cm.tp + cm.fp) if cm.tp + cm.fp else 0.0)
    assert metrics.recall == pytest.approx(cm.tp / (cm.tp + cm.fn) if cm.tp + cm.fn else 0.0)
    both_classes = 0 < sum(labels) < len(labels)
    assert (metrics.roc_auc is not None) == both_classes
    assert (metrics.pr_auc is not None) == (sum(labels) > 0)
    for name in ("roc_auc", "pr_auc"):
        value = metrics.metric(name)
        assert value is None or 0.0 <= value <= 1.0
    json.dumps(report, allow_nan=False)


metric_value = st.one_of(st.none(), st.sampled_from([0.0, 5e-324, 1.0]), st.floats(0.0, 1.0, allow_nan=False))
metric_sets = st.fixed_dictionaries(dict.fromkeys(METRIC_NAMES, metric_value))


@settings(max_examples=200, deadline=None)
@given(metric_sets, metric_sets)
def test_property_16_baseline_comparison_completeness(
    baseline: dict[str, float | None], candidate: dict[str, float | None]
) -> None:
    """Every metric is compared, with baseline, candidate, difference and a percent change that is never inf/NaN."""
    comparison = compare_to_baseline(baseline, candidate)
    report = comparison.to_dict()
    assert list(report) == list(METRIC_NAMES)
    for name, entry in report.items():
        assert set(entry) == {"baseline", "candidate", "difference", "percent_change"}
        base, cand = baseline[name], candidate[name]
        assert (entry["baseline"], entry["candidate"]) == (base, cand)
        if base is None or cand is None:
            assert entry["difference"] is None and entry["percent_change"] is None
            continue
        assert entry["difference"] == pytest.approx(cand - base)
        percent = entry["percent_change"]
        if base == 0.0:
            assert percent == (0.0 if cand == 0.0 else None)
        else:
            expected = 100.0 * (cand - base) / base
            assert percent == (pytest.approx(expected) if math.isfinite(expected) else None)
    json.dumps(report, allow_nan=False)


def test_baseline_comparison_accepts_evaluations() -> None:
    champion = evaluate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8])
    challenger = evaluate([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.8])
    accuracy = compare_to_baseline(champion, challenger).metrics["accuracy"]
    assert (accuracy.baseline, accuracy.candidate, accuracy.difference, accuracy.percent_change) == (
        0.5,
        1.0,
        0.5,
        100.0,
    )


def test_zero_baseline_is_explicit() -> None:
    assert compare_metric("precision", 0.0, 0.0).percent_change == 0.0
    assert compare_metric("precision", 0.0, 0.4).percent_change is None
    assert compare_metric("precision", 0.0, 0.4).difference == 0.4
    assert compare_metric("precision", 5e-324, 0.4).percent_change is None  # would be inf


def test_baseline_comparison_needs_every_metric() -> None:
    with pytest.raises(KeyError, match="roc_auc"):
        compare_to_baseline({"accuracy": 0.9}, dict.fromkeys(METRIC_NAMES, 0.9))


def test_plots_are_png_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(5_000) < 0.05).astype(int)
    scores = np.clip(0.3 * labels + rng.random(5_000) * 0.7, 0, 1)
    curves = {"champion": (labels, scores), "challenger": (labels, np.sqrt(scores))}
    paths = [
        plot_roc_curves(curves, tmp_path / "roc.png"),
        plot_pr_curves(curves, tmp_path / "pr.png"),
        plot_confusion_matrix(evaluate(labels, scores).confusion_matrix, tmp_path / "sub" / "cm.png"),
    ]
    for path in paths:
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 5_000


def test_importing_evaluation_leaves_matplotlib_alone() -> None:
    """Notebooks import this module: it must not import matplotlib or switch its backend."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import promotion_ml.evaluation; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(JOBS)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
