"""Paired statistics for a champion and a challenger scored on the same rows, and the promotion decision.

* McNemar's test for accuracy (exact binomial for few discordant pairs, chi-square with continuity correction
  otherwise: the same numbers as ``statsmodels.stats.contingency_tables.mcnemar``).
* DeLong's test for the difference of two correlated ROC AUCs, in the O(n log n) midrank form of Sun & Xu (2014).
* Paired bootstrap distributions of the challenger-minus-champion difference of every metric of
  :mod:`promotion_ml.evaluation`, with percentile and BCa intervals, fast enough for a million rows.
* Effect sizes (accuracy difference, Cohen's h, discordant odds ratio, AUC difference with intervals).
* :func:`decide`: PASS / FAIL / INCONCLUSIVE from those numbers (the rule is in its docstring).

How the bootstrap stays fast (a million rows, a thousand resamples, a few seconds): for each model, every row gets
a small integer code (its class, where its score falls among the distinct scores of the positive rows, whether it
is predicted positive) such that the histogram of codes over a resample determines accuracy, precision, recall,
F1, ROC AUC and average precision of that resample exactly -- no sort per resample. Rows whose codes agree for
both models form a cell and are interchangeable, so a resample is fully described by its cell counts. Those are
drawn exactly as n uniform draws of rows would give them (multinomial): large cells with one multinomial draw,
the rows of small cells by index. The metrics of a chunk of resamples then come out of a few vectorised passes
over their histograms. Each resample has its own seed, so results do not depend on chunking or thread count, and
the resample-by-row index matrix (8 GB at a million rows and a thousand resamples) never exists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy import stats as sps

from promotion_ml.evaluation import DEFAULT_THRESHOLD, METRIC_NAMES, validate_inputs

Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE"]
IntervalMethod = Literal["bca", "percentile", "delong"]

EXACT_DISCORDANT_LIMIT = 25
"""Below this many discordant pairs McNemar uses the exact binomial test (the chi-square approximation is poor)."""

_HISTOGRAM_BUDGET = 2_000_000  # histogram cells per chunk of resamples, bounds the memory of one chunk
_MAX_CHUNK = 64
_METRIC_INDEX = {name: index for index, name in enumerate(METRIC_NAMES)}


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class ConfidenceInterval:
    """A two-sided interval for challenger minus champion."""

    low: float
    high: float
    confidence_level: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "confidence_level": self.confidence_level, "method": self.method}


def _check_confidence_level(confidence_level: float) -> None:
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")


def _paired_inputs(
    y_true: ArrayLike, champion: ArrayLike, challenger: ArrayLike
) -> tuple[NDArray[np.int8], NDArray[np.float64], NDArray[np.float64]]:
    labels, champion_scores = validate_inputs(y_true, champion)
    _, challenger_scores = validate_inputs(labels, challenger)
    return labels, champion_scores, challenger_scores


# --------------------------------------------------------------------------------------------------- McNemar


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the paired correctness of two classifiers."""

    both_correct: int
    champion_only_correct: int
    challenger_only_correct: int
    both_wrong: int
    statistic: float
    p_value: float
    method: str

    @property
    def discordant(self) -> int:
        return self.champion_only_correct + self.challenger_only_correct

    @property
    def n_rows(self) -> int:
        return self.both_correct + self.discordant + self.both_wrong

    @property
    def accuracy_difference(self) -> float:
        """Challenger accuracy minus champion accuracy: only discordant rows move it."""
        return (self.challenger_only_correct - self.champion_only_correct) / self.n_rows

    def table(self) -> NDArray[np.int64]:
        """The 2x2 table in statsmodels' layout: rows champion correct/wrong, columns challenger correct/wrong."""
        return np.array(
            [[self.both_correct, self.champion_only_correct], [self.challenger_only_correct, self.both_wrong]],
            dtype=np.int64,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "both_correct": self.both_correct,
            "champion_only_correct": self.champion_only_correct,
            "challenger_only_correct": self.challenger_only_correct,
            "both_wrong": self.both_wrong,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "method": self.method,
            "accuracy_difference": self.accuracy_difference,
        }


def mcnemar_from_counts(
    both_correct: int,
    champion_only_correct: int,
    challenger_only_correct: int,
    both_wrong: int,
    *,
    exact_limit: int = EXACT_DISCORDANT_LIMIT,
) -> McNemarResult:
    """McNemar's test from the paired table; exact binomial when discordant pairs < ``exact_limit``."""
    counts = (both_correct, champion_only_correct, challenger_only_correct, both_wrong)
    if min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"counts must be non-negative and not all zero, got {counts}")
    b, c = champion_only_correct, challenger_only_correct
    if b + c < exact_limit:
        statistic = float(min(b, c))
        # Two-sided exact test: P(X <= min(b, c)) doubled, X ~ Binomial(b + c, 1/2); 1 when there is no discordance.
        p_value = min(1.0, 2.0 * float(sps.binom.cdf(statistic, b + c, 0.5)))
        method = "exact-binomial"
    else:
        statistic = (abs(b - c) - 1.0) ** 2 / (b + c)
        p_value = float(sps.chi2.sf(statistic, 1))
        method = "chi2-continuity-corrected"
    return McNemarResult(both_correct, b, c, both_wrong, float(statistic), p_value, method)


def mcnemar_test(
    y_true: ArrayLike,
    champion_predictions: ArrayLike,
    challenger_predictions: ArrayLike,
    *,
    exact_limit: int = EXACT_DISCORDANT_LIMIT,
) -> McNemarResult:
    """McNemar's test on 0/1 predictions of two models for the same rows."""
    labels = np.asarray(y_true)
    champion_correct = np.asarray(champion_predictions) == labels
    challenger_correct = np.asarray(challenger_predictions) == labels
    if champion_correct.shape != labels.shape or challenger_correct.shape != labels.shape:
        raise ValueError("labels and predictions must have the same length")
    return mcnemar_from_counts(
        int(np.count_nonzero(champion_correct & challenger_correct)),
        int(np.count_nonzero(champion_correct & ~challenger_correct)),
        int(np.count_nonzero(~champion_correct & challenger_correct)),
        int(np.count_nonzero(~champion_correct & ~challenger_correct)),
        exact_limit=exact_limit,
    )


# ---------------------------------------------------------------------------------------------------- DeLong


@dataclass(frozen=True)
class AUCComponents:
    """A ROC AUC with DeLong's structural components (one per positive row, one per negative row)."""

    auc: float
    positive_components: NDArray[np.float64]  # V10: share of negatives each positive outscores (ties count half)
    negative_components: NDArray[np.float64]  # V01: share of positives that outscore each negative


def _sorted_midranks(sorted_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based midranks of an ascending array: tied values share the mean of their positions, in O(n)."""
    n = sorted_values.shape[0]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_values)) + 1])
    ends = np.concatenate([starts[1:], [n]])
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def auc_components(y_true: ArrayLike, y_score: ArrayLike) -> AUCComponents:
    """AUC and structural components from midranks (Sun & Xu 2014), with one sort of the scores.

    A positive's component is (its midrank among all rows - its midrank among positives) / n_negative; a
    negative's is 1 - (its midrank among all rows - its midrank among negatives) / n_positive. Components come
    back in row order, so two models' components pair up row by row.
    """
    labels, scores = validate_inputs(y_true, y_score)
    m = int(labels.sum())
    n = labels.shape[0] - m
    if m == 0 or n == 0:
        raise ValueError("AUC needs at least one positive and one negative row")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    is_positive = labels[order] == 1
    ranks_all = _sorted_midranks(sorted_scores)
    positive_components = np.empty(labels.shape[0])
    negative_components = np.empty(labels.shape[0])
    positive_components[order[is_positive]] = (
        ranks_all[is_positive] - _sorted_midranks(sorted_scores[is_positive])
    ) / n
    negative_components[order[~is_positive]] = (
        1.0 - (ranks_all[~is_positive] - _sorted_midranks(sorted_scores[~is_positive])) / m
    )
    auc = (ranks_all[is_positive].sum() - m * (m + 1) / 2.0) / (m * n)
    return AUCComponents(float(auc), positive_components[labels == 1], negative_components[labels == 0])


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of challenger AUC minus champion AUC on the same rows."""

    champion_auc: float
    challenger_auc: float
    difference: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    variance: float
    z: float | None
    p_value: float

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance)

    def interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Normal-theory interval ``difference +- z * SE``."""
        _check_confidence_level(confidence_level)
        half_width = float(special.ndtri(0.5 + confidence_level / 2.0)) * self.standard_error
        return ConfidenceInterval(
            self.difference - half_width, self.difference + half_width, confidence_level, "delong"
        )

    def to_dict(self, confidence_level: float = 0.95) -> dict[str, Any]:
        return {
            "champion_auc": self.champion_auc,
            "challenger_auc": self.challenger_auc,
            "difference": self.difference,
            "covariance": [list(row) for row in self.covariance],
            "variance": self.variance,
            "standard_error": self.standard_error,
            "z": self.z,
            "p_value": self.p_value,
            "interval": self.interval(confidence_level).to_dict(),
        }


def delong_test(y_true: ArrayLike, champion_scores: ArrayLike, challenger_scores: ArrayLike) -> DeLongResult:
    """Two-sided DeLong test; needs at least two positive and two negative rows (sample covariances)."""
    labels, champion, challenger = _paired_inputs(y_true, champion_scores, challenger_scores)
    m = int(labels.sum())
    n = labels.shape[0] - m
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs at least two rows of each class, got {m} positive and {n} negative")
    components = [auc_components(labels, champion), auc_components(labels, challenger)]
    s10 = np.cov(np.vstack([c.positive_components for c in components]))
    s01 = np.cov(np.vstack([c.negative_components for c in components]))
    covariance = s10 / m + s01 / n
    difference = components[1].auc - components[0].auc
    variance = max(0.0, float(covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1]))
    z: float | None
    if variance > 0.0:
        z = difference / math.sqrt(variance)
        p_value = float(2.0 * special.ndtr(-abs(z)))
    else:
        # Zero variance: the two models rank every positive-negative pair alike (e.g. the same model twice).
        z = 0.0 if difference == 0.0 else None
        p_value = 1.0 if difference == 0.0 else 0.0
    cov = ((float(covariance[0, 0]), float(covariance[0, 1])), (float(covariance[1, 0]), float(covariance[1, 1])))
    return DeLongResult(components[0].auc, components[1].auc, difference, cov, variance, z, p_value)


# ------------------------------------------------------------------------------------------------- bootstrap


class _MetricCodes:
    """Codes the rows of one model so that a code histogram determines every metric of :data:`METRIC_NAMES`.

    With ``v_0 < ... < v_{G-1}`` the distinct scores of the positive rows, a row's base code is
    ``r`` for a negative scored strictly between ``v_{r-1}`` and ``v_r`` (0..G), ``G+1+r`` for a negative tied with
    ``v_r``, ``2G+1+g`` for a positive scored ``v_g``; its code is ``2 * base + (score >= threshold)``.
    """

    def __init__(self, labels: NDArray[np.bool_], scores: NDArray[np.float64], threshold: float) -> None:
        values = np.unique(scores[labels])
        groups = values.shape[0]
        position = np.searchsorted(values, scores, side="left")
        tied = np.zeros(scores.shape[0], dtype=bool)
        inside = position < groups
        tied[inside] = values[position[inside]] == scores[inside]
        base = np.where(labels, 2 * groups + 1 + position, np.where(tied, groups + 1 + position, position))
        self.codes: NDArray[np.intp] = (2 * base + (scores >= threshold)).astype(np.intp)
        self.groups = groups
        self.size = 2 * (3 * groups + 1)

    def histogram(self, rows: NDArray[np.integer[Any]] | None = None) -> NDArray[np.int64]:
        """Code counts over all rows, or over the given (resampled) row indices."""
        codes = self.codes if rows is None else np.take(self.codes, rows)
        return np.bincount(codes, minlength=self.size)

    def _split(self, histograms: NDArray[Any]) -> tuple[NDArray[np.float64], ...]:
        g = self.groups
        counts = histograms.reshape(histograms.shape[0], 3 * g + 1, 2).astype(np.float64, copy=False)
        predicted = counts[:, :, 1]
        base = counts[:, :, 0] + predicted
        return base[:, : g + 1], base[:, g + 1 : 2 * g + 1], base[:, 2 * g + 1 :], predicted

    def metrics(self, histograms: NDArray[Any]) -> NDArray[np.float64]:
        """Metrics (columns in :data:`METRIC_NAMES` order, NaN when undefined) for each histogram row."""
        between, tied, positive, predicted = self._split(histograms)
        g = self.groups
        n_pos = positive.sum(axis=1)
        n_neg = between.sum(axis=1) + tied.sum(axis=1)
        tp = predicted[:, 2 * g + 1 :].sum(axis=1)
        fp = predicted[:, : 2 * g + 1].sum(axis=1)
        negatives_below = np.cumsum(between, axis=1)[:, :g] + np.cumsum(tied, axis=1) - tied
        mann_whitney = (positive * (negatives_below + 0.5 * tied)).sum(axis=1)
        # Average precision: at each positive score v_g, precision of "score >= v_g" weighted by the positives at v_g.
        tp_at = np.cumsum(positive[:, ::-1], axis=1)[:, ::-1]
        fp_at = n_neg[:, None] - negatives_below
        ap_sum = (positive * _safe_divide(tp_at, tp_at + fp_at)).sum(axis=1)
        return _metric_table(tp, fp, n_pos, n_neg, mann_whitney, ap_sum)

    def leave_one_out(self, histogram: NDArray[np.int64]) -> NDArray[np.float64]:
        """Metrics of the full data less one row, for a removed row of each code: shape (codes, metrics)."""
        between, tied, positive, predicted = (part[0] for part in self._split(histogram[None, :]))
        g = self.groups
        n_pos, n_neg = positive.sum(), between.sum() + tied.sum()
        tp, fp = predicted[2 * g + 1 :].sum(), predicted[: 2 * g + 1].sum()
        negatives_below = np.cumsum(between)[:g] + np.cumsum(tied) - tied
        mann_whitney = float((positive * (negatives_below + 0.5 * tied)).sum())
        tp_at = np.cumsum(positive[::-1])[::-1]
        fp_at = n_neg - negatives_below
        # a: AP terms as they are; b: with one negative above v_g removed; d, e: with one positive above/at v_g removed.
        a = positive * _safe_divide(tp_at, tp_at + fp_at)
        b = positive * _safe_divide(tp_at, tp_at + fp_at - 1.0)
        d = positive * _safe_divide(tp_at - 1.0, tp_at - 1.0 + fp_at)
        e = (positive - 1.0) * _safe_divide(tp_at - 1.0, tp_at - 1.0 + fp_at)
        ap_total = float(a.sum())
        prefix_a, prefix_b, prefix_d = (np.concatenate([[0.0], np.cumsum(x)]) for x in (a, b, d))
        positives_from = np.concatenate([np.cumsum(positive[::-1])[::-1], [0.0]])  # sum of positive[g:] for g=0..G

        r = np.arange(g + 1)  # negative strictly between v_{r-1} and v_r
        t = np.arange(g)  # negative tied with v_t
        mw = np.concatenate(
            [
                mann_whitney - positives_from[r],
                mann_whitney - (positives_from[t + 1] + 0.5 * positive[t]),
                mann_whitney - (negatives_below + 0.5 * tied),
            ]
        )
        ap = np.concatenate(
            [
                prefix_b[r] + ap_total - prefix_a[r],
                prefix_b[t + 1] + ap_total - prefix_a[t + 1],
                prefix_d[t] + e + ap_total - prefix_a[t + 1],
            ]
        )
        is_positive = np.concatenate([np.zeros(2 * g + 1), np.ones(g)])
        # Expand base codes to codes (x2: predicted negative, predicted positive).
        mw, ap, is_positive = (np.repeat(x, 2) for x in (mw, ap, is_positive))
        is_predicted = np.tile([0.0, 1.0], 3 * g + 1)
        return _metric_table(
            tp - is_positive * is_predicted,
            fp - (1.0 - is_positive) * is_predicted,
            n_pos - is_positive,
            n_neg - (1.0 - is_positive),
            mw,
            ap,
        )


class _PairedCells:
    """Rows grouped into cells of equal (champion code, challenger code), and exact resampling of cell counts.

    Rows of a cell are interchangeable for every metric of both models, so a resample is fully described by how
    many of its n draws land in each cell. Drawing n rows uniformly with replacement gives multinomial cell
    counts; this class draws exactly that distribution in two parts: the number of draws that land in large cells
    is binomial, and their split among the large cells multinomial (a cost per cell, not per row); the remaining
    draws pick light-cell rows uniformly, by index (a cost per row). Large means at least ``heavy_rows`` rows,
    where one cell's multinomial draw costs less than drawing its rows one by one.
    """

    def __init__(self, champion: _MetricCodes, challenger: _MetricCodes, heavy_rows: int = 16) -> None:
        keys, cell_of_row = np.unique(
            champion.codes.astype(np.int64) * challenger.size + challenger.codes, return_inverse=True
        )
        self.size = int(keys.shape[0])
        self.n_rows = int(cell_of_row.shape[0])
        self.champion_codes: NDArray[np.intp] = (keys // challenger.size).astype(np.intp)
        self.challenger_codes: NDArray[np.intp] = (keys % challenger.size).astype(np.intp)
        self.champion_size, self.challenger_size = champion.size, challenger.size
        rows_per_cell = np.bincount(cell_of_row, minlength=self.size)
        heavy = rows_per_cell >= heavy_rows
        self.heavy_cells = np.flatnonzero(heavy)
        self.heavy_share = float(rows_per_cell[heavy].sum()) / self.n_rows
        self.heavy_probabilities = rows_per_cell[heavy] / max(1, int(rows_per_cell[heavy].sum()))
        self.light_cell_of_row: NDArray[np.int32] = cell_of_row[~heavy[cell_of_row]].astype(np.int32)

    def counts(self, rng: np.random.Generator) -> NDArray[np.float64]:
        """Cell counts of one bootstrap resample of all rows."""
        heavy_draws = int(rng.binomial(self.n_rows, self.heavy_share)) if self.heavy_cells.size else 0
        per_cell = np.zeros(self.size)
        if heavy_draws:
            per_cell[self.heavy_cells] = rng.multinomial(heavy_draws, self.heavy_probabilities)
        light_draws = self.n_rows - heavy_draws
        if light_draws:
            light_rows = self.light_cell_of_row.shape[0]
            rows = rng.integers(0, light_rows, size=light_draws, dtype=np.int32 if light_rows < 2**31 else np.int64)
            per_cell += np.bincount(np.take(self.light_cell_of_row, rows), minlength=self.size)
        return per_cell

    def histograms(self, per_cell: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Champion and challenger code histograms of a resample from its cell counts."""
        champion = np.bincount(self.champion_codes, weights=per_cell, minlength=self.champion_size)
        challenger = np.bincount(self.challenger_codes, weights=per_cell, minlength=self.challenger_size)
        return champion.astype(np.float64, copy=False), challenger.astype(np.float64, copy=False)


def _safe_divide(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerator / denominator, 0 where the denominator is not positive."""
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _metric_table(
    tp: NDArray[np.float64] | float,
    fp: NDArray[np.float64] | float,
    n_pos: NDArray[np.float64] | float,
    n_neg: NDArray[np.float64] | float,
    mann_whitney: NDArray[np.float64] | float,
    ap_sum: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """The six metrics from weighted counts, with scikit-learn's conventions (zero_division=0, NaN if undefined)."""
    tp, fp, n_pos, n_neg, mann_whitney, ap_sum = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (tp, fp, n_pos, n_neg, mann_whitney, ap_sum))
    )
    fn, tn = n_pos - tp, n_neg - fp
    nan = np.full(tp.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = np.stack(
            [
                (tp + tn) / (n_pos + n_neg),
                _safe_divide(tp, tp + fp),
                _safe_divide(tp, n_pos),
                _safe_divide(2.0 * tp, 2.0 * tp + fp + fn),
                np.where((n_pos > 0) & (n_neg > 0), mann_whitney / (n_pos * n_neg), nan),
                np.where(n_pos > 0, ap_sum / n_pos, nan),
            ],
            axis=-1,
        )
    return table


def _resample_indices(seed: np.random.SeedSequence, n_rows: int) -> NDArray[np.integer[Any]]:
    """One bootstrap resample: ``n_rows`` row indices drawn uniformly with replacement, from its own seed."""
    dtype = np.int32 if n_rows < 2**31 else np.int64
    return np.random.default_rng(seed).integers(0, n_rows, size=n_rows, dtype=dtype)


def _resample_seeds(seed: int | np.random.SeedSequence, n_resamples: int) -> list[np.random.SeedSequence]:
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n_resamples)


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True, eq=False)
class BootstrapDistribution:
    """Bootstrap distribution of challenger minus champion for one metric.

    ``replicates`` holds the resamples where the metric is defined for both models (a resample without positives
    has no AUC); ``acceleration`` is the BCa jackknife acceleration, ``None`` where it is not available.
    """

    metric: str
    champion_estimate: float | None
    challenger_estimate: float | None
    replicates: NDArray[np.float64]
    n_resamples: int
    acceleration: float | None

    @property
    def estimate(self) -> float | None:
        """The observed difference on all rows (challenger minus champion)."""
        if self.champion_estimate is None or self.challenger_estimate is None:
            return None
        return self.challenger_estimate - self.champion_estimate

    @property
    def n_valid(self) -> int:
        return int(self.replicates.shape[0])

    @property
    def standard_error(self) -> float | None:
        return float(np.std(self.replicates, ddof=1)) if self.n_valid >= 2 else None

    def percentile_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval | None:
        """Percentile interval (linear interpolation, like ``scipy.stats.bootstrap``); None without replicates."""
        _check_confidence_level(confidence_level)
        if self.n_valid < 2 or self.estimate is None:
            return None
        tail = (1.0 - confidence_level) / 2.0
        low, high = np.quantile(self.replicates, [tail, 1.0 - tail])
        return ConfidenceInterval(float(low), float(high), confidence_level, "percentile")

    def bca_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval | None:
        """Bias-corrected and accelerated interval (Efron 1987); None where the bias or acceleration is undefined.

        Replicates equal to the estimate count half below it (mid-p), so the bias correction of a discrete
        statistic (accuracy moves in steps of 1/n) is not pulled down by ties.
        """
        _check_confidence_level(confidence_level)
        estimate = self.estimate
        if self.n_valid < 2 or estimate is None or self.acceleration is None:
            return None
        below = np.count_nonzero(self.replicates < estimate)
        equal = np.count_nonzero(self.replicates == estimate)
        share = (below + 0.5 * equal) / self.n_valid
        if not 0.0 < share < 1.0:
            return None
        z0 = float(special.ndtri(share))
        tail = (1.0 - confidence_level) / 2.0
        z = special.ndtri(np.array([tail, 1.0 - tail]))
        levels = special.ndtr(z0 + (z0 + z) / (1.0 - self.acceleration * (z0 + z)))
        if not np.all(np.isfinite(levels)):
            return None
        low, high = np.quantile(self.replicates, levels)
        return ConfidenceInterval(float(low), float(high), confidence_level, "bca")

    def interval(
        self, confidence_level: float = 0.95, method: Literal["bca", "percentile"] = "bca"
    ) -> ConfidenceInterval | None:
        """BCa when available, else percentile (``method="percentile"`` asks for percentile only)."""
        if method == "bca":
            return self.bca_interval(confidence_level) or self.percentile_interval(confidence_level)
        if method == "percentile":
            return self.percentile_interval(confidence_level)
        raise ValueError(f"unknown interval method {method!r}")

    def to_dict(self, confidence_level: float = 0.95) -> dict[str, Any]:
        percentile, bca = self.percentile_interval(confidence_level), self.bca_interval(confidence_level)
        return {
            "champion": self.champion_estimate,
            "challenger": self.challenger_estimate,
            "difference": self.estimate,
            "standard_error": self.standard_error,
            "n_resamples": self.n_resamples,
            "n_valid": self.n_valid,
            "acceleration": self.acceleration,
            "percentile": percentile.to_dict() if percentile else None,
            "bca": bca.to_dict() if bca else None,
        }


def _jackknife_acceleration(leave_one_out_differences: NDArray[np.float64]) -> float | None:
    """BCa acceleration from the jackknife values of the difference; 0 when they are all equal."""
    if not np.all(np.isfinite(leave_one_out_differences)):
        return None
    deviations = leave_one_out_differences.mean() - leave_one_out_differences
    squared = deviations * deviations
    squares = float(squared.sum())
    if squares == 0.0:
        return 0.0
    return float(np.dot(squared, deviations) / (6.0 * squares**1.5))


def paired_bootstrap(
    y_true: ArrayLike,
    champion_scores: ArrayLike,
    challenger_scores: ArrayLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    n_resamples: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    n_threads: int | None = None,
) -> dict[str, BootstrapDistribution]:
    """Paired bootstrap of challenger minus champion for every metric of :data:`METRIC_NAMES`, at once.

    A resample is n rows drawn with replacement, each bringing its label and both models' scores, so the
    pairing of the two models on a row is kept (drawn as cell counts, see the module docstring). Resamples where
    a metric is undefined (no positive row) are left out of that metric's distribution. Same seed, same result,
    whatever ``n_threads``.
    """
    labels, champion, challenger = _paired_inputs(y_true, champion_scores, challenger_scores)
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}")
    if not math.isfinite(threshold):
        raise ValueError("threshold must be finite")
    is_positive = labels.astype(bool)
    books = [_MetricCodes(is_positive, champion, threshold), _MetricCodes(is_positive, challenger, threshold)]
    cells = _PairedCells(books[0], books[1])
    seeds = _resample_seeds(seed, n_resamples)
    values = np.empty((2, n_resamples, len(METRIC_NAMES)))
    chunk = max(1, min(_MAX_CHUNK, _HISTOGRAM_BUDGET // max(book.size for book in books)))

    def run(start: int) -> None:
        stop = min(start + chunk, n_resamples)
        histograms = [np.empty((stop - start, book.size)) for book in books]
        for row, resample in enumerate(range(start, stop)):
            counts = cells.counts(np.random.default_rng(seeds[resample]))
            histograms[0][row], histograms[1][row] = cells.histograms(counts)
        for model, (histogram, book) in enumerate(zip(histograms, books, strict=True)):
            values[model, start:stop] = book.metrics(histogram)

    starts = range(0, n_resamples, chunk)
    threads = min(n_threads or _default_threads(), len(starts))
    if threads == 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))

    full = [book.histogram() for book in books]
    estimates = np.stack([book.metrics(h[None, :])[0] for book, h in zip(books, full, strict=True)])
    leave_one_out = [book.leave_one_out(h) for book, h in zip(books, full, strict=True)]
    result: dict[str, BootstrapDistribution] = {}
    for name, column in _METRIC_INDEX.items():
        differences = values[1, :, column] - values[0, :, column]
        jackknife = leave_one_out[1][:, column][books[1].codes] - leave_one_out[0][:, column][books[0].codes]
        result[name] = BootstrapDistribution(
            metric=name,
            champion_estimate=_finite_or_none(estimates[0, column]),
            challenger_estimate=_finite_or_none(estimates[1, column]),
            replicates=differences[np.isfinite(differences)],
            n_resamples=n_resamples,
            acceleration=_jackknife_acceleration(jackknife),
        )
    return result


def paired_bootstrap_statistic(
    y_true: ArrayLike,
    champion_scores: ArrayLike,
    challenger_scores: ArrayLike,
    statistic: Callable[[NDArray[np.int8], NDArray[np.float64]], float],
    *,
    name: str = "statistic",
    n_resamples: int = 1000,
    seed: int | np.random.SeedSequence = 0,
) -> BootstrapDistribution:
    """Paired bootstrap of ``statistic(labels, scores)`` for any metric function, one resample at a time.

    The slow, general path for a metric :func:`paired_bootstrap` does not know: it draws row indices with
    replacement (the same resampling distribution, not the same draws) and calls ``statistic`` twice per
    resample. It has no jackknife, so it gives percentile intervals only (``bca_interval`` is None).
    """
    labels, champion, challenger = _paired_inputs(y_true, champion_scores, challenger_scores)
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}")
    replicates = []
    for resample_seed in _resample_seeds(seed, n_resamples):
        rows = _resample_indices(resample_seed, labels.shape[0])
        try:
            difference = statistic(labels[rows], challenger[rows]) - statistic(labels[rows], champion[rows])
        except ValueError:  # e.g. an AUC of a resample with one class: that resample has no value
            continue
        if math.isfinite(difference):
            replicates.append(difference)
    return BootstrapDistribution(
        metric=name,
        champion_estimate=_finite_or_none(statistic(labels, champion)),
        challenger_estimate=_finite_or_none(statistic(labels, challenger)),
        replicates=np.asarray(replicates, dtype=np.float64),
        n_resamples=n_resamples,
        acceleration=None,
    )


# ---------------------------------------------------------------------------------------------- effect sizes


def cohens_h(champion_proportion: float, challenger_proportion: float) -> float:
    """Cohen's h = 2 asin(sqrt(p_challenger)) - 2 asin(sqrt(p_champion)): a difference of proportions on a scale
    where the same h means the same detectability wherever the proportions lie (0.2 small, 0.5 medium, 0.8 large).
    """
    for p in (champion_proportion, challenger_proportion):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"proportions must be in [0, 1], got {p}")
    return 2.0 * math.asin(math.sqrt(challenger_proportion)) - 2.0 * math.asin(math.sqrt(champion_proportion))


def cohens_h_magnitude(h: float) -> str:
    """Cohen's (1988) labels for |h|."""
    size = abs(h)
    if size < 0.2:
        return "negligible"
    if size < 0.5:
        return "small"
    if size < 0.8:
        return "medium"
    return "large"


@dataclass(frozen=True)
class EffectSizes:
    """How large the difference is, as opposed to how sure we are of it."""

    accuracy_difference: float
    cohens_h: float
    cohens_h_magnitude: str
    discordant_odds_ratio: float | None  # challenger-only-correct / champion-only-correct rows; None if no such rows
    roc_auc_difference: float
    roc_auc_difference_delong: ConfidenceInterval
    roc_auc_difference_bootstrap: ConfidenceInterval | None

    def to_dict(self) -> dict[str, Any]:
        bootstrap = self.roc_auc_difference_bootstrap
        return {
            "accuracy_difference": self.accuracy_difference,
            "cohens_h": self.cohens_h,
            "cohens_h_magnitude": self.cohens_h_magnitude,
            "discordant_odds_ratio": self.discordant_odds_ratio,
            "roc_auc_difference": self.roc_auc_difference,
            "roc_auc_difference_delong": self.roc_auc_difference_delong.to_dict(),
            "roc_auc_difference_bootstrap": bootstrap.to_dict() if bootstrap else None,
        }


def effect_sizes(
    mcnemar: McNemarResult,
    delong: DeLongResult,
    bootstrap: Mapping[str, BootstrapDistribution],
    confidence_level: float = 0.95,
) -> EffectSizes:
    """Effect sizes of the challenger over the champion from the paired results."""
    n = mcnemar.n_rows
    champion_accuracy = (mcnemar.both_correct + mcnemar.champion_only_correct) / n
    challenger_accuracy = (mcnemar.both_correct + mcnemar.challenger_only_correct) / n
    h = cohens_h(champion_accuracy, challenger_accuracy)
    odds = mcnemar.challenger_only_correct / mcnemar.champion_only_correct if mcnemar.champion_only_correct else None
    auc = bootstrap.get("roc_auc")
    return EffectSizes(
        accuracy_difference=challenger_accuracy - champion_accuracy,
        cohens_h=h,
        cohens_h_magnitude=cohens_h_magnitude(h),
        discordant_odds_ratio=odds,
        roc_auc_difference=delong.difference,
        roc_auc_difference_delong=delong.interval(confidence_level),
        roc_auc_difference_bootstrap=auc.interval(confidence_level) if auc else None,
    )


# ------------------------------------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class ComparisonStatistics:
    """Everything the decision and the comparison report need, computed once on the holdout rows."""

    n_rows: int
    n_positive: int
    threshold: float
    alpha: float
    mcnemar: McNemarResult
    delong: DeLongResult
    bootstrap: Mapping[str, BootstrapDistribution]
    effect_sizes: EffectSizes

    @property
    def confidence_level(self) -> float:
        return 1.0 - self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_positive": self.n_positive,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "confidence_level": self.confidence_level,
            "mcnemar": self.mcnemar.to_dict(),
            "delong": self.delong.to_dict(self.confidence_level),
            "bootstrap": {name: d.to_dict(self.confidence_level) for name, d in self.bootstrap.items()},
            "effect_sizes": self.effect_sizes.to_dict(),
        }


def _check_alpha(alpha: float) -> None:
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def compare_models(
    y_true: ArrayLike,
    champion_scores: ArrayLike,
    challenger_scores: ArrayLike,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
    n_threads: int | None = None,
) -> ComparisonStatistics:
    """McNemar, DeLong, paired bootstrap of every metric and effect sizes for two models on the same rows."""
    _check_alpha(alpha)
    labels, champion, challenger = _paired_inputs(y_true, champion_scores, challenger_scores)
    mcnemar = mcnemar_test(labels, champion >= threshold, challenger >= threshold)
    delong = delong_test(labels, champion, challenger)
    bootstrap = paired_bootstrap(
        labels, champion, challenger, threshold=threshold, n_resamples=n_resamples, seed=seed, n_threads=n_threads
    )
    return ComparisonStatistics(
        n_rows=int(labels.shape[0]),
        n_positive=int(labels.sum()),
        threshold=float(threshold),
        alpha=alpha,
        mcnemar=mcnemar,
        delong=delong,
        bootstrap=bootstrap,
        effect_sizes=effect_sizes(mcnemar, delong, bootstrap, 1.0 - alpha),
    )


# -------------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    """PASS / FAIL / INCONCLUSIVE with the numbers it rests on and one sentence for a human."""

    outcome: Outcome
    reason: str
    primary_metric: str
    champion_value: float | None
    challenger_value: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    confidence_level: float
    interval_method: str | None
    min_gain: float
    alpha: float
    accuracy_significantly_worse: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "primary_metric": self.primary_metric,
            "champion_value": self.champion_value,
            "challenger_value": self.challenger_value,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence_level": self.confidence_level,
            "interval_method": self.interval_method,
            "min_gain": self.min_gain,
            "alpha": self.alpha,
            "accuracy_significantly_worse": self.accuracy_significantly_worse,
        }


def decide(
    statistics: ComparisonStatistics,
    *,
    min_gain: float,
    alpha: float,
    primary_metric: str = "roc_auc",
    interval_method: IntervalMethod = "bca",
    accuracy_guardrail: bool = True,
) -> Decision:
    """Decide whether the challenger beats the champion by at least ``min_gain`` on ``primary_metric``.

    Let D = challenger - champion on the primary metric (absolute units, e.g. AUC points) and [L, U] its
    two-sided (1 - alpha) confidence interval (paired bootstrap BCa by default, percentile where BCa is
    undefined; or DeLong's for roc_auc). Then, in this order:

    1. FAIL if U < min_gain: the challenger is not better by the margin, with one-sided confidence 1 - alpha/2
       (this includes "significantly worse", U < 0, because min_gain >= 0 in the catalog).
    2. FAIL if ``accuracy_guardrail`` and McNemar's p < alpha with the challenger's accuracy lower: a
       significantly worse accuracy is not traded for a better primary metric.
    3. PASS if L > min_gain: better by more than the margin, with one-sided confidence 1 - alpha/2.
    4. INCONCLUSIVE otherwise (the interval contains min_gain), or when the interval cannot be computed.

    Both bounds compare strictly, so an interval ending exactly on the margin is INCONCLUSIVE. PASS and FAIL
    cannot both hold because L <= U. A negative min_gain turns PASS into a non-inferiority verdict.
    """
    _check_alpha(alpha)
    if not math.isfinite(min_gain):
        raise ValueError(f"min_gain must be finite, got {min_gain}")
    if primary_metric not in METRIC_NAMES:
        raise ValueError(f"unknown primary metric {primary_metric!r}; expected one of {', '.join(METRIC_NAMES)}")
    confidence_level = 1.0 - alpha
    distribution = statistics.bootstrap[primary_metric]
    interval: ConfidenceInterval | None
    if interval_method == "delong":
        if primary_metric != "roc_auc":
            raise ValueError("DeLong's interval exists for roc_auc only")
        interval = statistics.delong.interval(confidence_level)
        difference: float | None = statistics.delong.difference
    elif interval_method in ("bca", "percentile"):
        interval = distribution.interval(confidence_level, interval_method)
        difference = distribution.estimate
    else:
        raise ValueError(f"unknown interval method {interval_method!r}")

    mcnemar = statistics.mcnemar
    worse_accuracy = accuracy_guardrail and mcnemar.p_value < alpha and mcnemar.accuracy_difference < 0

    def verdict(outcome: Outcome, reason: str) -> Decision:
        return Decision(
            outcome=outcome,
            reason=reason,
            primary_metric=primary_metric,
            champion_value=distribution.champion_estimate,
            challenger_value=distribution.challenger_estimate,
            difference=difference,
            ci_low=interval.low if interval else None,
            ci_high=interval.high if interval else None,
            confidence_level=confidence_level,
            interval_method=interval.method if interval else None,
            min_gain=min_gain,
            alpha=alpha,
            accuracy_significantly_worse=worse_accuracy,
        )

    if interval is None or difference is None:
        return verdict(
            "INCONCLUSIVE",
            f"The {primary_metric} difference has no confidence interval on this holdout "
            f"(too few rows of a class), so the challenger cannot be judged.",
        )
    span = f"{difference:+.4f} ({confidence_level:.0%} CI {interval.low:+.4f} to {interval.high:+.4f})"
    if interval.high < min_gain:
        worse = "significantly worse" if interval.high < 0 else "not better by the required margin"
        return verdict(
            "FAIL",
            f"The challenger's {primary_metric} changes by {span}, entirely below the required "
            f"gain of {min_gain:.4f}: it is {worse}.",
        )
    if worse_accuracy:
        return verdict(
            "FAIL",
            f"The challenger's accuracy is significantly worse "
            f"({mcnemar.accuracy_difference:+.4f}, McNemar p = {mcnemar.p_value:.3g}), whatever "
            f"its {primary_metric}.",
        )
    if interval.low > min_gain:
        return verdict(
            "PASS",
            f"The challenger's {primary_metric} is higher by {span}, entirely above the required "
            f"gain of {min_gain:.4f}.",
        )
    return verdict(
        "INCONCLUSIVE",
        f"The challenger's {primary_metric} changes by {span}, an interval that contains "
        f"the required gain of {min_gain:.4f}: more holdout data is needed to tell.",
    )
