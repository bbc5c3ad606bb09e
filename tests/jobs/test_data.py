"""The synthetic fraud data: deterministic, imbalanced, learnable but not perfectly, in the built-in CSV layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from promotion_ml.data import (
    FEATURE_NAMES,
    Dataset,
    generate_transactions,
    read_xgboost_csv,
    write_splits,
    write_xgboost_csv,
)


def test_same_seed_same_rows_and_other_seed_other_rows() -> None:
    first, again, other = (generate_transactions(2_000, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(first.features, again.features)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.features, other.features)


def test_fraud_is_rare_like_real_fraud() -> None:
    data = generate_transactions(60_000, seed=1)
    assert data.features.shape == (60_000, len(FEATURE_NAMES))
    assert 0.01 <= data.positive_rate <= 0.02
    assert set(np.unique(data.labels)) == {0, 1}


def test_fraud_rate_is_configurable() -> None:
    assert 0.04 <= generate_transactions(40_000, seed=2, fraud_rate=0.05).positive_rate <= 0.06


def test_features_have_their_documented_ranges() -> None:
    columns = dict(zip(FEATURE_NAMES, generate_transactions(20_000, seed=3).features.T, strict=True))
    assert (columns["amount"] > 0).all()
    assert set(np.unique(columns["hour_of_day"])) <= set(range(24))
    assert set(np.unique(columns["merchant_category"])) <= set(range(12))
    assert ((columns["merchant_risk"] >= 0) & (columns["merchant_risk"] <= 1)).all()
    assert (columns["velocity_24h"] >= columns["velocity_1h"]).all()
    assert set(np.unique(columns["is_online"])) <= {0.0, 1.0}


def test_a_tree_model_learns_the_signal_but_not_perfectly() -> None:
    train, holdout = generate_transactions(15_000, seed=4), generate_transactions(15_000, seed=5)
    booster = xgb.train(
        {"max_depth": 4, "eta": 0.1, "objective": "binary:logistic", "nthread": 2},
        xgb.DMatrix(train.features, label=train.labels),
        80,
    )
    auc = roc_auc_score(holdout.labels, booster.predict(xgb.DMatrix(holdout.features)))
    assert 0.85 < auc < 0.99


def test_csv_has_the_label_first_and_no_header(tmp_path: Path) -> None:
    data = generate_transactions(50, seed=6)
    path = write_xgboost_csv(tmp_path / "set.csv", data)
    first_line = path.read_text().splitlines()[0].split(",")
    assert len(first_line) == 1 + len(FEATURE_NAMES)
    assert first_line[0] in {"0", "1"}
    assert float(first_line[1]) == pytest.approx(data.features[0, 0])  # a number, not a column name
    back = read_xgboost_csv(path)
    np.testing.assert_array_equal(back.labels, data.labels)
    np.testing.assert_allclose(back.features, data.features, rtol=1e-9)


def test_a_channel_folder_reads_all_its_csv_files_in_name_order(tmp_path: Path) -> None:
    first, second = generate_transactions(10, seed=1), generate_transactions(5, seed=2)
    write_xgboost_csv(tmp_path / "b.csv", second)
    write_xgboost_csv(tmp_path / "a.csv", first)
    both = read_xgboost_csv(tmp_path)
    assert both.n_rows == 15
    np.testing.assert_array_equal(both.labels, np.concatenate([first.labels, second.labels]))


@pytest.mark.parametrize(("content", "message"), [("", "no rows"), ("2,1.0\n", "0/1 label"), ("1\n", "feature")])
def test_bad_csv_is_refused_with_a_reason(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_xgboost_csv(tmp_path / "bad.csv")


def test_empty_channel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_xgboost_csv(tmp_path)


def test_splits_are_disjoint_draws_in_their_own_channel_folders(tmp_path: Path) -> None:
    paths = write_splits(tmp_path, n_train=300, n_validation=100, n_holdout=200, seed=9)
    sets = {name: read_xgboost_csv(getattr(paths, name)) for name in ("train", "validation", "holdout")}
    assert {name: d.n_rows for name, d in sets.items()} == {"train": 300, "validation": 100, "holdout": 200}
    assert paths.train == tmp_path / "train" / "train.csv"
    whole = generate_transactions(600, seed=9)
    np.testing.assert_allclose(sets["holdout"].features, whole.features[400:], rtol=1e-9)


def test_a_split_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        write_splits(tmp_path, n_train=10, n_validation=0, n_holdout=10, seed=1)


def test_dataset_reports_its_size() -> None:
    data = Dataset(features=np.zeros((4, 2)), labels=np.array([0, 1, 0, 0], dtype=np.int8))
    assert (data.n_rows, data.positive_rate) == (4, 0.25)
