"""Feature engineering for the transaction data of :mod:`promotion_ml.data`, and feature selection.

:class:`FraudFeatureBuilder` adds time, amount and interaction features to the raw columns (``data.FEATURE_NAMES``);
it is a scikit-learn transformer, so it learns its few statistics (typical amount per merchant category, the
high-amount cut) on training rows only and goes into a pipeline unchanged.

Selection keeps ``k`` of the columns by one of three methods: univariate scores (``SelectKBest``), recursive
feature elimination (``RFE``) or model importance. Whatever the method, the selection is a subset of the input
names, in input order.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import RFE, SelectKBest, f_classif, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from promotion_ml.data import FEATURE_NAMES

TIME_FEATURES: tuple[str, ...] = ("hour_sin", "hour_cos", "is_night", "is_business_hours")
AMOUNT_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_vs_category",
    "is_round_amount",
    "amount_per_txn_24h",
    "is_high_amount",
)
INTERACTION_FEATURES: tuple[str, ...] = (
    "night_x_high_amount",
    "new_card_x_velocity_1h",
    "online_x_foreign",
    "risk_x_log_amount",
    "foreign_x_log_distance",
)
SELECTION_METHODS: tuple[str, ...] = ("univariate", "rfe", "importance")
SelectionMethod = Literal["univariate", "rfe", "importance"]
NEW_CARD_DAYS = 60
HIGH_AMOUNT_QUANTILE = 0.9
_COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}


def _column(features: NDArray[np.float64], name: str) -> NDArray[np.float64]:
    return features[:, _COLUMN[name]]


class FraudFeatureBuilder(TransformerMixin, BaseEstimator):
    """Raw transaction columns in, raw plus engineered columns out (see :meth:`get_feature_names_out`).

    Time: cyclic hour (sin/cos), night (23:00-04:59), business hours (09:00-17:59). Amount: log amount, log amount
    against the median of its merchant category, round amounts, amount per transaction of the last 24 h, high
    amount (above the training 90th percentile). Interactions: night x high amount, new card x 1 h velocity,
    online x foreign, merchant risk x log amount, foreign x log distance.
    """

    def __init__(self, time: bool = True, amount: bool = True, interactions: bool = True) -> None:
        self.time = time
        self.amount = amount
        self.interactions = interactions

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        features = self._check(X)
        log_amount = np.log1p(_column(features, "amount"))
        category = _column(features, "merchant_category").astype(np.int64)
        overall = float(np.median(log_amount))
        self.category_log_amount_: dict[int, float] = {
            int(c): float(np.median(log_amount[category == c])) for c in np.unique(category)
        }
        self.default_log_amount_ = overall
        self.high_log_amount_ = float(np.quantile(log_amount, HIGH_AMOUNT_QUANTILE))
        self.n_features_in_ = features.shape[1]
        return self

    @staticmethod
    def _check(X: ArrayLike) -> NDArray[np.float64]:
        features = np.asarray(X, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"expected the {len(FEATURE_NAMES)} raw columns of promotion_ml.data, got {features.shape}"
            )
        return features

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> NDArray[np.str_]:
        names = list(FEATURE_NAMES)
        if self.time:
            names += TIME_FEATURES
        if self.amount:
            names += AMOUNT_FEATURES
        if self.interactions:
            names += INTERACTION_FEATURES
        return np.asarray(names, dtype=np.str_)

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "high_log_amount_"):
            raise ValueError("FraudFeatureBuilder is not fitted: call fit() on training rows first")
        features = self._check(X)
        hour = _column(features, "hour_of_day")
        amount = _column(features, "amount")
        log_amount = np.log1p(amount)
        category = _column(features, "merchant_category").astype(np.int64)
        typical = np.array([self.category_log_amount_.get(int(c), self.default_log_amount_) for c in category])
        night = ((hour <= 4) | (hour >= 23)).astype(np.float64)
        high_amount = (log_amount > self.high_log_amount_).astype(np.float64)
        is_online, is_foreign = _column(features, "is_online"), _column(features, "is_foreign")
        columns: list[NDArray[np.float64]] = [features]
        if self.time:
            angle = 2.0 * np.pi * hour / 24.0
            business = ((hour >= 9) & (hour <= 17)).astype(np.float64)
            columns.append(np.column_stack([np.sin(angle), np.cos(angle), night, business]))
        if self.amount:
            columns.append(
                np.column_stack(
                    [
                        log_amount,
                        log_amount - typical,
                        (np.round(amount, 2) % 1.0 == 0.0).astype(np.float64),
                        amount / (_column(features, "velocity_24h") + 1.0),
                        high_amount,
                    ]
                )
            )
        if self.interactions:
            new_card = (_column(features, "card_age_days") < NEW_CARD_DAYS).astype(np.float64)
            columns.append(
                np.column_stack(
                    [
                        night * high_amount,
                        new_card * _column(features, "velocity_1h"),
                        is_online * is_foreign,
                        _column(features, "merchant_risk") * log_amount,
                        is_foreign * np.log1p(_column(features, "distance_from_home_km")),
                    ]
                )
            )
        return np.ascontiguousarray(np.column_stack(columns))


def engineer_features(
    train: ArrayLike, *others: ArrayLike, time: bool = True, amount: bool = True, interactions: bool = True
) -> tuple[list[NDArray[np.float64]], tuple[str, ...]]:
    """Fit the builder on ``train`` and transform it and every other matrix; returns the matrices and the names."""
    builder = FraudFeatureBuilder(time=time, amount=amount, interactions=interactions).fit(train)
    matrices = [builder.transform(train), *(builder.transform(other) for other in others)]
    return matrices, tuple(str(name) for name in builder.get_feature_names_out())


# ------------------------------------------------------------------------------------------------ selection


@dataclass(frozen=True)
class FeatureSelection:
    """The ``k`` columns a method kept, in input order, and every input's score (higher is better)."""

    method: str
    selected: tuple[str, ...]
    scores: Mapping[str, float]

    def indices(self, names: Sequence[str]) -> list[int]:
        """Positions of the selected columns in ``names``."""
        position = {name: index for index, name in enumerate(names)}
        return [position[name] for name in self.selected]

    def apply(self, features: ArrayLike, names: Sequence[str]) -> NDArray[np.float64]:
        """The selected columns of a matrix whose columns are ``names``."""
        return np.asarray(features, dtype=np.float64)[:, self.indices(names)]


def _check_selection_inputs(
    features: ArrayLike, labels: ArrayLike, names: Sequence[str], k: int
) -> tuple[NDArray[np.float64], NDArray[np.int8], list[str], int]:
    matrix = np.asarray(features, dtype=np.float64)
    target = np.asarray(labels)
    names = [str(name) for name in names]  # numpy string arrays (get_feature_names_out) become plain str
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-D matrix, got shape {matrix.shape}")
    if len(names) != matrix.shape[1]:
        raise ValueError(f"{len(names)} names for {matrix.shape[1]} columns")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    if target.shape != (matrix.shape[0],) or not np.isin(target, (0, 1)).all():
        raise ValueError("labels must be 0/1, one per row")
    if len(np.unique(target)) < 2:
        raise ValueError("feature selection needs both classes in the labels")
    if not np.isfinite(matrix).all():
        raise ValueError("features must be finite")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return matrix, target.astype(np.int8), names, min(k, matrix.shape[1])


def _selection(method: str, names: list[str], keep: NDArray[np.bool_], scores: NDArray[np.float64]) -> FeatureSelection:
    clean = np.where(np.isfinite(scores), scores, 0.0)
    return FeatureSelection(
        method=method,
        selected=tuple(name for name, kept in zip(names, keep, strict=True) if kept),
        scores={name: float(score) for name, score in zip(names, clean, strict=True)},
    )


def select_univariate(
    features: ArrayLike,
    labels: ArrayLike,
    names: Sequence[str],
    k: int,
    *,
    score: Literal["f_classif", "mutual_info"] = "f_classif",
    seed: int = 0,
) -> FeatureSelection:
    """``SelectKBest`` on the ANOVA F statistic (default) or mutual information; constant columns score 0."""
    matrix, target, names, k = _check_selection_inputs(features, labels, names, k)
    score_func: Any
    if score == "f_classif":
        score_func = f_classif
    elif score == "mutual_info":
        score_func = functools.partial(mutual_info_classif, random_state=seed)
    else:
        raise ValueError(f"unknown univariate score {score!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant columns: F is 0/0
        warnings.simplefilter("ignore", UserWarning)
        selector = SelectKBest(score_func, k=k).fit(matrix, target)
    return _selection(f"univariate:{score}", names, selector.get_support(), np.asarray(selector.scores_))


def select_rfe(
    features: ArrayLike,
    labels: ArrayLike,
    names: Sequence[str],
    k: int,
    *,
    estimator: BaseEstimator | None = None,
    step: int = 1,
    seed: int = 0,
) -> FeatureSelection:
    """Recursive feature elimination down to ``k`` columns.

    The default ranks standardized columns by the weights of a logistic regression; any estimator with ``coef_`` or
    ``feature_importances_`` can stand in. Scores are minus the elimination rank (the kept columns score -1).
    """
    matrix, target, names, k = _check_selection_inputs(features, labels, names, k)
    if k == len(names):  # nothing to eliminate (and RFE itself needs two columns to start)
        return _selection("rfe", names, np.ones(len(names), dtype=bool), -np.ones(len(names)))
    if estimator is None:
        model: Any = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
        getter = "named_steps.logisticregression.coef_"
    else:
        model, getter = clone(estimator), "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        selector = RFE(model, n_features_to_select=k, step=step, importance_getter=getter).fit(matrix, target)
    return _selection("rfe", names, selector.get_support(), -np.asarray(selector.ranking_, dtype=np.float64))


def select_by_importance(
    features: ArrayLike,
    labels: ArrayLike,
    names: Sequence[str],
    k: int,
    *,
    estimator: BaseEstimator | None = None,
    seed: int = 0,
) -> FeatureSelection:
    """The ``k`` columns a fitted model finds most important (a random forest unless ``estimator`` is given).

    Ties keep the earlier column, so the selection is deterministic for a seed.
    """
    matrix, target, names, k = _check_selection_inputs(features, labels, names, k)
    model: Any = (
        clone(estimator)
        if estimator is not None
        else RandomForestClassifier(n_estimators=50, max_depth=8, min_samples_leaf=2, random_state=seed, n_jobs=1)
    )
    model.fit(matrix, target)
    importances = np.asarray(model.feature_importances_, dtype=np.float64)
    importances = np.where(np.isfinite(importances), importances, 0.0)
    order = np.argsort(-importances, kind="stable")[:k]
    keep = np.zeros(len(names), dtype=bool)
    keep[order] = True
    return _selection("importance", names, keep, importances)


def select_features(
    features: ArrayLike,
    labels: ArrayLike,
    names: Sequence[str],
    *,
    method: SelectionMethod,
    k: int,
    seed: int = 0,
    estimator: BaseEstimator | None = None,
) -> FeatureSelection:
    """Keep ``k`` columns (all of them when ``k`` exceeds their number) by ``method``."""
    if method == "univariate":
        return select_univariate(features, labels, names, k, seed=seed)
    if method == "rfe":
        return select_rfe(features, labels, names, k, estimator=estimator, seed=seed)
    if method == "importance":
        return select_by_importance(features, labels, names, k, estimator=estimator, seed=seed)
    raise ValueError(f"unknown selection method {method!r}; expected one of {', '.join(SELECTION_METHODS)}")
