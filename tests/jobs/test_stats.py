"""promotion_ml.stats against reference implementations: statsmodels (McNemar), a brute-force DeLong covariance,
scikit-learn (metrics of every resample, leave-one-out values), scipy.stats.bootstrap (intervals); then the
decision rule at its boundaries."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar as statsmodels_mcnemar

from promotion_ml import stats
from promotion_ml.evaluation import METRIC_NAMES, evaluate
from promotion_ml.stats import (
    BootstrapDistribution,
    ComparisonStatistics,
    auc_components,
    cohens_h,
    cohens_h_magnitude,
    compare_models,
    decide,
    delong_test,
    effect_sizes,
    mcnemar_from_counts,
    mcnemar_test,
    paired_bootstrap,
    paired_bootstrap_statistic,
)


def correlated_scores(n: int, seed: int, positive_rate: float = 0.3) -> tuple[NDArray[Any], ...]:
    """Labels and two models' scores that share most of their noise, as two models of one problem do."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < positive_rate).astype(np.int8)
    shared = rng.normal(0.0, 1.0, n)
    champion = 1.0 * labels + shared + rng.normal(0.0, 0.6, n)
    challenger = 1.4 * labels + shared + rng.normal(0.0, 0.6, n)
    return labels, sps.norm.cdf(champion - 0.8), sps.norm.cdf(challenger - 0.8)


# --------------------------------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    ("b", "c"), [(0, 0), (0, 1), (3, 9), (12, 12), (24, 0), (10, 14), (10, 15), (30, 12), (200, 260), (1000, 1001)]
)
def test_mcnemar_agrees_with_statsmodels(b: int, c: int) -> None:
    ours = mcnemar_from_counts(500, b, c, 40)
    reference = statsmodels_mcnemar(ours.table(), exact=b + c < 25, correction=True)
    assert ours.method == ("exact-binomial" if b + c < 25 else "chi2-continuity-corrected")
    assert ours.statistic == pytest.approx(float(reference.statistic), rel=1e-12)
    assert ours.p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-300)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 400), st.integers(0, 60), st.integers(0, 60), st.integers(0, 400))
def test_mcnemar_agrees_with_statsmodels_on_any_table(a: int, b: int, c: int, d: int) -> None:
    if a + b + c + d == 0:
        return
    ours = mcnemar_from_counts(a, b, c, d)
    reference = statsmodels_mcnemar(ours.table(), exact=b + c < 25, correction=True)
    assert ours.p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-300)
    assert 0.0 <= ours.p_value <= 1.0


def test_mcnemar_counts_come_from_paired_predictions() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    champion = np.array([1, 0, 0, 1, 0, 0])  # correct on rows 0, 2, 5
    challenger = np.array([1, 1, 0, 0, 0, 1])  # correct on rows 0, 1, 2, 3
    result = mcnemar_test(labels, champion, challenger)
    assert (result.both_correct, result.champion_only_correct, result.challenger_only_correct, result.both_wrong) == (
        2,
        1,
        2,
        1,
    )
    assert result.accuracy_difference == pytest.approx(1 / 6)


# ---------------------------------------------------------------------------------------------------- DeLong


def brute_force_delong(labels: NDArray[Any], a: NDArray[Any], b: NDArray[Any]) -> tuple[float, float, float]:
    """DeLong (1988) from the O(m n) kernel matrix: AUC difference, its variance, two-sided p-value."""
    components = []
    for scores in (a, b):
        positives, negatives = scores[labels == 1][:, None], scores[labels == 0][None, :]
        kernel = (positives > negatives) + 0.5 * (positives == negatives)
        components.append((kernel.mean(), kernel.mean(axis=1), kernel.mean(axis=0)))
    m, n = int(labels.sum()), int((1 - labels).sum())
    s10 = np.cov(np.vstack([components[0][1], components[1][1]]))
    s01 = np.cov(np.vstack([components[0][2], components[1][2]]))
    covariance = s10 / m + s01 / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    difference = components[1][0] - components[0][0]
    return difference, variance, 2 * sps.norm.sf(abs(difference) / math.sqrt(variance))


@pytest.mark.parametrize("seed", range(6))
def test_delong_agrees_with_brute_force_structural_components(seed: int) -> None:
    labels, a, b = correlated_scores(120, seed)
    a, b = np.round(a, 1), np.round(b, 2)  # plenty of ties, which midranks must count as halves
    difference, variance, p_value = brute_force_delong(labels, a, b)
    result = delong_test(labels, a, b)
    assert result.champion_auc == pytest.approx(roc_auc_score(labels, a), abs=1e-12)
    assert result.challenger_auc == pytest.approx(roc_auc_score(labels, b), abs=1e-12)
    assert result.difference == pytest.approx(difference, abs=1e-12)
    assert result.variance == pytest.approx(variance, rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)


def test_auc_components_are_the_kernel_means_in_row_order() -> None:
    labels, a, _ = correlated_scores(40, 11)
    a = np.round(a, 1)
    kernel = (a[labels == 1][:, None] > a[labels == 0][None, :]) + 0.5 * (a[labels == 1][:, None] == a[labels == 0])
    components = auc_components(labels, a)
    np.testing.assert_allclose(components.positive_components, kernel.mean(axis=1))
    np.testing.assert_allclose(components.negative_components, kernel.mean(axis=0))


def test_delong_interval_covers_the_difference_symmetrically() -> None:
    labels, a, b = correlated_scores(500, 3)
    result = delong_test(labels, a, b)
    interval = result.interval(0.95)
    assert interval.low < result.difference < interval.high
    assert interval.high - result.difference == pytest.approx(1.959964 * result.standard_error, rel=1e-6)


def test_delong_of_a_model_against_itself_has_no_difference() -> None:
    labels, a, _ = correlated_scores(200, 4)
    result = delong_test(labels, a, a)
    assert (result.difference, result.variance, result.p_value, result.z) == (0.0, 0.0, 1.0, 0.0)


def test_delong_needs_two_rows_of_each_class() -> None:
    with pytest.raises(ValueError, match="two rows of each class"):
        delong_test([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3], [0.8, 0.1, 0.2, 0.3])


# ----------------------------------------------------------------------------------- bootstrap: exactness


def _as_array(metrics: Any) -> NDArray[np.float64]:
    return np.array([np.nan if metrics.metric(k) is None else metrics.metric(k) for k in METRIC_NAMES])


@pytest.mark.parametrize("seed", range(8))
def test_histogram_metrics_of_any_resample_equal_scikit_learn(seed: int) -> None:
    """The fast path's metrics of a resample are exactly scikit-learn's on the resampled rows (ties included)."""
    rng = np.random.default_rng(seed)
    labels, scores, _ = correlated_scores(int(rng.integers(20, 80)), seed)
    scores = np.round(scores, 1)  # ties among positives, among negatives, across classes and at the threshold
    codes = stats._MetricCodes(labels.astype(bool), scores, 0.5)
    np.testing.assert_allclose(codes.metrics(codes.histogram()[None, :])[0], _as_array(evaluate(labels, scores)))
    for _ in range(10):
        rows = rng.integers(0, labels.shape[0], labels.shape[0])
        if 0 < labels[rows].sum() < rows.shape[0]:
            expected = _as_array(evaluate(labels[rows], scores[rows]))
            np.testing.assert_allclose(codes.metrics(codes.histogram(rows)[None, :])[0], expected)


@pytest.mark.parametrize("seed", range(4))
def test_leave_one_out_values_equal_scikit_learn_without_that_row(seed: int) -> None:
    labels, scores, _ = correlated_scores(40, seed)
    scores = np.round(scores, 1)
    codes = stats._MetricCodes(labels.astype(bool), scores, 0.5)
    table = codes.leave_one_out(codes.histogram())
    for row in range(labels.shape[0]):
        keep = np.arange(labels.shape[0]) != row
        expected = _as_array(evaluate(labels[keep], scores[keep]))
        np.testing.assert_allclose(table[codes.codes[row]], expected, equal_nan=True)


def test_cell_counts_are_a_multinomial_resample_of_the_rows() -> None:
    """Each resample has n draws; over many, a cell's count has mean n p and variance n p (1 - p), for heavy
    (multinomial) and light (drawn row by row) cells alike."""
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.3).astype(bool)
    scores = np.round(rng.random(400), 1)  # few distinct scores: some cells large, some small
    books = [stats._MetricCodes(labels, scores, 0.5), stats._MetricCodes(labels, np.round(scores + 0.05, 1), 0.5)]
    cells = stats._PairedCells(books[0], books[1], heavy_rows=8)
    rows_per_cell = np.bincount(
        stats._PairedCells(books[0], books[1], heavy_rows=10**9).light_cell_of_row, minlength=cells.size
    )
    assert 0 < cells.heavy_cells.size < cells.size  # both paths are exercised
    draws = np.stack([cells.counts(np.random.default_rng(seed)) for seed in range(4_000)])
    assert (draws.sum(axis=1) == 400).all()
    p = rows_per_cell / 400
    standard_error = np.sqrt(400 * p * (1 - p) / 4_000)
    assert np.all(np.abs(draws.mean(axis=0) - rows_per_cell) < 5 * standard_error + 1e-9)
    np.testing.assert_allclose(draws.var(axis=0, ddof=1), 400 * p * (1 - p), rtol=0.15, atol=0.05)


# --------------------------------------------------------------------------------- bootstrap: distribution


def _auc_rows(labels: NDArray[Any], scores: NDArray[Any]) -> NDArray[np.float64]:
    ranks = sps.rankdata(scores, axis=-1)
    positives = labels.sum(axis=-1)
    negatives = labels.shape[-1] - positives
    return ((ranks * labels).sum(axis=-1) - positives * (positives + 1) / 2) / (positives * negatives)


def _scipy_auc_difference(labels: NDArray[Any], a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> Any:
    return _auc_rows(labels, b) - _auc_rows(labels, a)


def _scipy_accuracy_difference(labels: NDArray[Any], a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> Any:
    return ((b >= 0.5) == labels).mean(axis=-1) - ((a >= 0.5) == labels).mean(axis=-1)


@pytest.fixture(scope="module")
def bootstrap_case() -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], dict[str, BootstrapDistribution]]:
    labels, a, b = correlated_scores(400, 21)
    return labels, a, b, paired_bootstrap(labels, a, b, n_resamples=4_000, seed=5)


@pytest.mark.parametrize(
    ("metric", "statistic", "method"),
    [
        ("roc_auc", _scipy_auc_difference, "percentile"),
        ("accuracy", _scipy_accuracy_difference, "percentile"),
        ("roc_auc", _scipy_auc_difference, "BCa"),
    ],
)
def test_bootstrap_interval_agrees_with_scipy(bootstrap_case: Any, metric: str, statistic: Any, method: str) -> None:
    """Same data, same number of resamples, paired: the intervals agree within Monte-Carlo error (endpoints
    within 0.3 standard errors, about five times the Monte-Carlo spread of a 2.5 % quantile from 4,000 draws)."""
    labels, a, b, ours = bootstrap_case
    reference = sps.bootstrap(
        (labels, a, b),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=4_000,
        method=method,
        confidence_level=0.95,
        rng=np.random.default_rng(8),
    )
    distribution = ours[metric]
    interval = distribution.percentile_interval(0.95) if method == "percentile" else distribution.bca_interval(0.95)
    assert interval is not None
    standard_error = float(reference.standard_error)
    assert distribution.standard_error == pytest.approx(standard_error, rel=0.07)
    assert abs(interval.low - reference.confidence_interval.low) < 0.3 * standard_error
    assert abs(interval.high - reference.confidence_interval.high) < 0.3 * standard_error
    assert distribution.estimate == pytest.approx(float(statistic(labels, a, b)))


def test_bca_acceleration_is_the_jackknife_of_the_difference() -> None:
    labels, a, b = correlated_scores(60, 2)
    n = labels.shape[0]
    jackknife = np.array(
        [
            roc_auc_score(labels[np.arange(n) != i], b[np.arange(n) != i])
            - roc_auc_score(labels[np.arange(n) != i], a[np.arange(n) != i])
            for i in range(n)
        ]
    )
    deviations = jackknife.mean() - jackknife
    expected = np.sum(deviations**3) / (6 * np.sum(deviations**2) ** 1.5)
    assert paired_bootstrap(labels, a, b, n_resamples=50)["roc_auc"].acceleration == pytest.approx(expected)


@pytest.mark.parametrize(("estimate", "acceleration"), [(0.0, 0.1), (0.2, 0.0), (0.1, -0.05)])
def test_bca_matches_its_closed_form_on_a_normal_distribution(estimate: float, acceleration: float) -> None:
    """With N(0, 1) replicates, z0 is the estimate and each endpoint is z0 + (z0 + z) / (1 - a (z0 + z))."""
    replicates = sps.norm.ppf((np.arange(200_000) + 0.5) / 200_000)
    distribution = BootstrapDistribution("roc_auc", 0.5, 0.5 + estimate, replicates, 200_000, acceleration)
    interval = distribution.bca_interval(0.95)
    assert interval is not None
    for bound, z in ((interval.low, -1.959964), (interval.high, 1.959964)):
        w = estimate + z
        assert bound == pytest.approx(estimate + w / (1 - acceleration * w), abs=2e-3)


def test_the_general_path_samples_the_same_distribution(bootstrap_case: Any) -> None:
    labels, a, b, ours = bootstrap_case
    general = paired_bootstrap_statistic(
        labels, a, b, lambda y, s: float(_auc_rows(y, s)), name="roc_auc", n_resamples=2_000, seed=9
    )
    fast = ours["roc_auc"]
    assert general.estimate == pytest.approx(fast.estimate)
    assert general.standard_error == pytest.approx(fast.standard_error, rel=0.1)
    low, high = general.percentile_interval(), fast.percentile_interval()
    assert low is not None and high is not None
    assert abs(low.low - high.low) < 0.3 * fast.standard_error
    assert general.bca_interval() is None  # no jackknife on the general path


def test_same_seed_same_replicates_whatever_the_threads() -> None:
    labels, a, b = correlated_scores(3_000, 1)
    one = paired_bootstrap(labels, a, b, n_resamples=150, seed=4, n_threads=1)
    two = paired_bootstrap(labels, a, b, n_resamples=150, seed=4, n_threads=2)
    other = paired_bootstrap(labels, a, b, n_resamples=150, seed=5, n_threads=2)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(one[name].replicates, two[name].replicates)
    assert not np.array_equal(one["roc_auc"].replicates, other["roc_auc"].replicates)


def test_resamples_without_positives_are_left_out_of_auc_only() -> None:
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    rng = np.random.default_rng(3)
    a, b = rng.random(12), rng.random(12)
    result = paired_bootstrap(labels, a, b, n_resamples=400, seed=1)
    assert result["accuracy"].n_valid == 400
    assert 0 < result["roc_auc"].n_valid < 400  # about 0.83^12 = 11 % of resamples have no positive
    assert np.isfinite(result["roc_auc"].replicates).all()


def test_a_model_against_itself_gives_a_point_interval() -> None:
    labels, a, _ = correlated_scores(500, 6)
    result = paired_bootstrap(labels, a, a, n_resamples=100)
    for name in METRIC_NAMES:
        distribution = result[name]
        assert distribution.estimate == 0.0 and not distribution.replicates.any()
        for interval in (distribution.percentile_interval(), distribution.bca_interval()):
            assert interval is not None and (interval.low, interval.high) == (0.0, 0.0)


# ---------------------------------------------------------------------------------------------- effect sizes


def test_cohens_h_known_values() -> None:
    assert cohens_h(0.5, 0.5) == 0.0
    assert cohens_h(0.0, 1.0) == pytest.approx(math.pi)
    assert cohens_h(0.9, 0.95) == pytest.approx(2 * math.asin(math.sqrt(0.95)) - 2 * math.asin(math.sqrt(0.9)))
    assert cohens_h(0.95, 0.9) == pytest.approx(-cohens_h(0.9, 0.95))
    assert [cohens_h_magnitude(h) for h in (0.1, -0.3, 0.6, -1.0)] == ["negligible", "small", "medium", "large"]
    with pytest.raises(ValueError, match="proportions"):
        cohens_h(1.2, 0.5)


def test_effect_sizes_follow_the_paired_results() -> None:
    labels, a, b = correlated_scores(2_000, 8)
    comparison = compare_models(labels, a, b, n_resamples=200)
    sizes = comparison.effect_sizes
    champion, challenger = evaluate(labels, a), evaluate(labels, b)
    assert sizes.accuracy_difference == pytest.approx(challenger.accuracy - champion.accuracy)
    assert sizes.cohens_h == pytest.approx(cohens_h(champion.accuracy, challenger.accuracy))
    assert sizes.discordant_odds_ratio == pytest.approx(
        comparison.mcnemar.challenger_only_correct / comparison.mcnemar.champion_only_correct
    )
    assert challenger.roc_auc is not None and champion.roc_auc is not None
    assert sizes.roc_auc_difference == pytest.approx(challenger.roc_auc - champion.roc_auc)
    assert sizes.roc_auc_difference_delong.low < sizes.roc_auc_difference < sizes.roc_auc_difference_delong.high
    assert sizes.roc_auc_difference_bootstrap is not None


# -------------------------------------------------------------------------------------------------- decision


def synthetic_statistics(
    replicates: NDArray[Any], *, champion_only: int = 50, challenger_only: int = 50, estimate: float | None = None
) -> ComparisonStatistics:
    """Comparison statistics whose primary-metric bootstrap distribution is exactly ``replicates``."""
    observed = float(np.median(replicates)) if estimate is None else estimate
    mcnemar = mcnemar_from_counts(9_000, champion_only, challenger_only, 900)
    delong = stats.DeLongResult(
        0.90,
        0.90 + observed,
        observed,
        ((1e-6, 0.0), (0.0, 1e-6)),
        4e-6,
        observed / 2e-3,
        2 * sps.norm.sf(abs(observed) / 2e-3),
    )
    bootstrap = {
        name: BootstrapDistribution(name, 0.90, 0.90 + observed, np.asarray(replicates, float), len(replicates), 0.0)
        for name in METRIC_NAMES
    }
    return ComparisonStatistics(
        10_000, 150, 0.5, 0.05, mcnemar, delong, bootstrap, effect_sizes(mcnemar, delong, bootstrap)
    )


def spread(low: float, high: float) -> NDArray[np.float64]:
    return np.linspace(low, high, 1_001)


@pytest.mark.parametrize(
    ("low", "high", "outcome", "words"),
    [
        (0.002, 0.004, "PASS", "entirely above"),
        (-0.003, 0.0009, "FAIL", "not better by the required margin"),
        (-0.010, -0.002, "FAIL", "significantly worse"),
        (-0.001, 0.003, "INCONCLUSIVE", "contains the required gain"),
        (0.001, 0.001, "INCONCLUSIVE", "contains the required gain"),  # lower bound exactly on the margin
    ],
)
def test_decision_rule(low: float, high: float, outcome: str, words: str) -> None:
    decision = decide(synthetic_statistics(spread(low, high)), min_gain=0.001, alpha=0.05, interval_method="percentile")
    assert decision.outcome == outcome
    assert words in decision.reason
    assert decision.ci_low is not None and decision.ci_high is not None
    assert low <= decision.ci_low <= decision.ci_high <= high
    assert decision.to_dict()["outcome"] == outcome


def test_alpha_sets_the_interval_level() -> None:
    replicates = np.random.default_rng(0).normal(0.003, 0.001, 20_000)
    statistics = synthetic_statistics(replicates, estimate=0.003)
    loose = decide(statistics, min_gain=0.001, alpha=0.2, interval_method="percentile")
    strict = decide(statistics, min_gain=0.001, alpha=0.01, interval_method="percentile")
    assert (loose.outcome, strict.outcome) == ("PASS", "INCONCLUSIVE")  # 0.003 - 1.28 sd > 0.001 > 0.003 - 2.58 sd
    assert (loose.confidence_level, strict.confidence_level) == (0.8, 0.99)


def test_significantly_worse_accuracy_fails_a_better_auc() -> None:
    statistics = synthetic_statistics(spread(0.002, 0.004), champion_only=300, challenger_only=150)
    assert statistics.mcnemar.p_value < 0.05
    decision = decide(statistics, min_gain=0.001, alpha=0.05)
    assert decision.outcome == "FAIL" and decision.accuracy_significantly_worse
    assert "accuracy is significantly worse" in decision.reason
    assert decide(statistics, min_gain=0.001, alpha=0.05, accuracy_guardrail=False).outcome == "PASS"


def test_decision_can_use_delong() -> None:
    decision = decide(
        synthetic_statistics(spread(-1.0, 1.0), estimate=0.02), min_gain=0.001, alpha=0.05, interval_method="delong"
    )
    assert decision.interval_method == "delong" and decision.outcome == "PASS"  # 0.02 - 1.96 * 0.002 > 0.001
    with pytest.raises(ValueError, match="roc_auc only"):
        decide(
            synthetic_statistics(spread(-1, 1)), min_gain=0.0, alpha=0.05, primary_metric="f1", interval_method="delong"
        )


def test_no_interval_is_inconclusive() -> None:
    statistics = synthetic_statistics(np.array([]), estimate=0.01)
    decision = decide(statistics, min_gain=0.001, alpha=0.05)
    assert decision.outcome == "INCONCLUSIVE" and decision.ci_low is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"min_gain": math.nan}, "min_gain"),
        ({"primary_metric": "loss"}, "unknown primary metric"),
    ],
)
def test_decision_refuses_bad_settings(arguments: dict[str, Any], message: str) -> None:
    settings_ = {"min_gain": 0.001, "alpha": 0.05, **arguments}
    with pytest.raises(ValueError, match=message):
        decide(synthetic_statistics(spread(0, 1)), **settings_)


def test_identical_models_never_pass() -> None:
    labels, a, _ = correlated_scores(1_000, 9)
    statistics = compare_models(labels, a, a, n_resamples=200)
    assert decide(statistics, min_gain=0.001, alpha=0.05).outcome == "FAIL"
    assert decide(statistics, min_gain=0.0, alpha=0.05).outcome == "INCONCLUSIVE"


def test_comparison_statistics_serialise_to_strict_json() -> None:
    labels, a, b = correlated_scores(800, 10)
    json.dumps(compare_models(labels, a, b, n_resamples=100).to_dict(), allow_nan=False)
