"""Feature engineering on the generated transactions, and feature selection by three methods."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from promotion_ml.data import FEATURE_NAMES
from promotion_toolkit.algorithms import Splits
from promotion_toolkit.features import (
    AMOUNT_FEATURES,
    INTERACTION_FEATURES,
    SELECTION_METHODS,
    TIME_FEATURES,
    FraudFeatureBuilder,
    engineer_features,
    select_features,
)


def test_the_builder_adds_time_amount_and_interaction_features(small_splits: Splits) -> None:
    builder = FraudFeatureBuilder().fit(small_splits.train.features)
    names = list(builder.get_feature_names_out())
    assert names == [*FEATURE_NAMES, *TIME_FEATURES, *AMOUNT_FEATURES, *INTERACTION_FEATURES]
    matrix = builder.transform(small_splits.validation.features)
    assert matrix.shape == (small_splits.validation.n_rows, len(names))
    assert np.isfinite(matrix).all()
    np.testing.assert_array_equal(matrix[:, : len(FEATURE_NAMES)], small_splits.validation.features)
    column = dict(zip(names, matrix.T, strict=True))
    hour = column["hour_of_day"]
    assert np.array_equal(column["is_night"], ((hour <= 4) | (hour >= 23)).astype(float))
    np.testing.assert_allclose(column["hour_sin"] ** 2 + column["hour_cos"] ** 2, 1.0)
    assert set(np.unique(column["online_x_foreign"])) <= {0.0, 1.0}
    np.testing.assert_allclose(column["log_amount"], np.log1p(column["amount"]))


def test_groups_can_be_switched_off_and_statistics_come_from_training_rows_only(small_splits: Splits) -> None:
    (train, validation), names = engineer_features(
        small_splits.train.features, small_splits.validation.features, time=False, interactions=False
    )
    assert names == (*FEATURE_NAMES, *AMOUNT_FEATURES)
    assert train.shape[1] == validation.shape[1] == len(names)
    builder = FraudFeatureBuilder().fit(small_splits.train.features)
    refit = FraudFeatureBuilder().fit(small_splits.validation.features)
    assert builder.high_log_amount_ != refit.high_log_amount_  # fitted on what it was given, nothing else


def test_the_builder_works_in_a_pipeline_and_refuses_unfitted_or_foreign_input(small_splits: Splits) -> None:
    model = make_pipeline(FraudFeatureBuilder(), DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(small_splits.train.features, small_splits.train.labels)
    assert model.predict_proba(small_splits.validation.features).shape == (small_splits.validation.n_rows, 2)
    with pytest.raises(ValueError, match="not fitted"):
        FraudFeatureBuilder().transform(small_splits.train.features)
    with pytest.raises(ValueError, match="raw columns"):
        FraudFeatureBuilder().fit(small_splits.train.features[:, :4])


@pytest.mark.parametrize("method", SELECTION_METHODS)
def test_selection_keeps_the_signal(small_splits: Splits, method: str) -> None:
    rows = slice(0, 1_500)  # RFE refits once per dropped column: keep it quick
    (train,), names = engineer_features(small_splits.train.features[rows])
    labels = small_splits.train.labels[rows]
    selection = select_features(train, labels, names, method=method, k=8)  # type: ignore[arg-type]
    assert len(selection.selected) == 8
    assert set(selection.scores) == set(names)
    # merchant risk drives fraud most in the generator: every method should keep it or a feature built on it
    assert {"merchant_risk", "risk_x_log_amount"} & set(selection.selected)
    assert selection.apply(train, names).shape == (train.shape[0], 8)


@st.composite
def selection_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    rows = draw(st.integers(8, 60))
    columns = draw(st.integers(1, 8))
    values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
    features = draw(hnp.arrays(np.float64, (rows, columns), elements=values))
    labels = draw(hnp.arrays(np.int8, rows, elements=st.integers(0, 1)))
    labels[0], labels[1] = 0, 1  # both classes, as selection needs
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True), min_size=columns, max_size=columns, unique=True
        )
    )
    k = draw(st.integers(1, columns + 3))
    return features, labels, names, k


@settings(max_examples=100, deadline=None)
@given(problem=selection_problems(), method=st.sampled_from(SELECTION_METHODS), seed=st.integers(0, 2**16))
def test_property_18_selected_features_are_always_a_subset_of_the_inputs(
    problem: tuple[np.ndarray, np.ndarray, list[str], int], method: str, seed: int
) -> None:
    features, labels, names, k = problem
    selection = select_features(features, labels, names, method=method, k=k, seed=seed)  # type: ignore[arg-type]
    assert set(selection.selected) <= set(names)
    assert len(selection.selected) == len(set(selection.selected)) == min(k, len(names))
    order = [names.index(name) for name in selection.selected]
    assert order == sorted(order)  # in input order
    assert set(selection.scores) == set(names) and all(np.isfinite(list(selection.scores.values())))
    np.testing.assert_array_equal(selection.apply(features, names), features[:, order])


def test_selection_rejects_what_it_cannot_judge() -> None:
    features = np.arange(12, dtype=float).reshape(6, 2)
    with pytest.raises(ValueError, match="both classes"):
        select_features(features, np.zeros(6, dtype=int), ["a", "b"], method="univariate", k=1)
    with pytest.raises(ValueError, match="unique"):
        select_features(features, np.array([0, 1] * 3), ["a", "a"], method="rfe", k=1)
    with pytest.raises(ValueError, match="k must"):
        select_features(features, np.array([0, 1] * 3), ["a", "b"], method="importance", k=0)
    with pytest.raises(ValueError, match="unknown selection method"):
        select_features(features, np.array([0, 1] * 3), ["a", "b"], method="lasso", k=1)  # type: ignore[arg-type]
