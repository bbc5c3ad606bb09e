"""Algorithm comparison on one split, each algorithm a tracked run, with a table and a chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promotion_ml.data import generate_transactions
from promotion_ml.evaluation import METRIC_NAMES, evaluate
from promotion_toolkit.algorithms import ALGORITHMS, Splits, compare_algorithms, make_splits
from promotion_toolkit.features import FraudFeatureBuilder
from promotion_toolkit.tracking import Tracker
from tests.toolkit.conftest import MLFLOW_WARNINGS

pytestmark = MLFLOW_WARNINGS
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_make_splits_is_the_data_module_split_read_back_as_csv() -> None:
    splits = make_splits(200, 100, 50, seed=5)
    rows = generate_transactions(350, seed=5)
    assert (splits.train.n_rows, splits.validation.n_rows, splits.holdout.n_rows) == (200, 100, 50)
    np.testing.assert_array_equal(splits.validation.labels, rows.labels[200:300])
    np.testing.assert_allclose(splits.train.features, rows.features[:200], rtol=1e-9)


def test_every_algorithm_on_the_same_split_tracked_with_table_and_chart(
    small_splits: Splits, tracker: Tracker, tmp_path: Path
) -> None:
    smaller = {"random_forest": {"n_estimators": 60}, "xgboost": {"n_estimators": 80}, "lightgbm": {"n_estimators": 80}}
    comparison = compare_algorithms(
        small_splits.train, small_splits.validation, tracker=tracker, output_dir=tmp_path, params=smaller
    )

    assert [r.algorithm for r in comparison.results] == list(ALGORITHMS)
    for result in comparison.results:
        # the one evaluation implementation, on the same validation rows
        assert result.metrics == evaluate(small_splits.validation.labels, result.scores)
        assert result.metrics.roc_auc is not None and result.metrics.roc_auc > 0.75
    table = comparison.table()
    assert all(label in table for label in ("XGBoost", "LightGBM", "Random forest", "MLP")) and "roc_auc" in table
    assert (tmp_path / "comparison.png").read_bytes().startswith(PNG_SIGNATURE)
    rows = json.loads((tmp_path / "comparison.json").read_text())
    assert [row["algorithm"] for row in rows] == list(ALGORITHMS)

    children = tracker.search(parent_run_id=comparison.parent_run_id)
    assert {run.run_id for run in children} == {r.run_id for r in comparison.results}
    for run in children:
        result = next(r for r in comparison.results if r.run_id == run.run_id)
        assert run.params["algorithm"] == result.algorithm
        if result.algorithm in smaller:  # the parameters actually used are the ones tracked
            assert run.params["n_estimators"] == str(smaller[result.algorithm]["n_estimators"])
        for name in METRIC_NAMES:
            assert run.metrics.get(name) == result.metrics.metric(name)
    parent = tracker.get_run(comparison.parent_run_id or "")
    assert parent.tags["best_algorithm"] == comparison.best("roc_auc").algorithm
    assert tracker.list_artifacts(parent.run_id) == ["comparison.json", "comparison.md", "comparison.png"]


def test_engineered_features_go_through_the_same_comparison(small_splits: Splits) -> None:
    builder = FraudFeatureBuilder().fit(small_splits.train.features)
    comparison = compare_algorithms(
        small_splits.train, small_splits.validation, algorithms=["lightgbm"], transform=builder.transform
    )
    (result,) = comparison.results
    assert result.run_id is None and comparison.parent_run_id is None  # no tracker, nothing tracked
    assert result.metrics.n_samples == small_splits.validation.n_rows


def test_unknown_algorithms_are_refused(small_splits: Splits) -> None:
    with pytest.raises(ValueError, match="unknown algorithms"):
        compare_algorithms(small_splits.train, small_splits.validation, algorithms=["svm"])
