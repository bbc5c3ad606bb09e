"""Synthetic card-transaction data and the CSV convention of SageMaker's built-in XGBoost.

The generator stands in for the real fraud data set wherever no real data may be used (the local runtime, tests,
benchmarks). It is deterministic for a seed, imbalanced like real fraud (about 1.5 % positives by default) and its
labels are drawn from a known probability, so a tree model can learn the signal but never perfectly.

CSV convention (built-in XGBoost, ``text/csv``): label in the first column, features after it, no header.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "hour_of_day",
    "merchant_category",
    "merchant_risk",
    "distance_from_home_km",
    "card_age_days",
    "velocity_1h",
    "velocity_24h",
    "is_online",
    "is_foreign",
)
DEFAULT_FRAUD_RATE = 0.015

# Per merchant category: share of transactions, baseline fraud risk, share of online transactions, typical log-amount.
_CATEGORY_SHARE = np.array([0.20, 0.15, 0.12, 0.10, 0.08, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02])
_CATEGORY_RISK = np.array([0.05, 0.08, 0.10, 0.12, 0.15, 0.20, 0.25, 0.30, 0.45, 0.55, 0.70, 0.85])
_CATEGORY_ONLINE = np.array([0.05, 0.10, 0.30, 0.20, 0.50, 0.40, 0.60, 0.30, 0.70, 0.80, 0.90, 0.60])
_CATEGORY_LOG_AMOUNT = np.array([3.0, 3.4, 3.2, 3.8, 4.0, 3.6, 4.2, 4.5, 4.8, 5.0, 5.5, 6.0])
# Transactions per hour of day: quiet at night, busy in the day and the evening.
_HOUR_WEIGHTS = np.array(
    [1, 0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 2.5, 3.5, 4, 4.2, 4.5, 5, 4.8, 4.5, 4.4, 4.6, 5, 5.2, 5, 4.2, 3.2, 2.2, 1.5]
)
# Scales the log-odds: at 1.5 the true probabilities reach a ROC AUC of about 0.97, so a good model gets close to,
# but never to, perfect.
_SIGNAL_SCALE = 1.5
_REFERENCE_ROWS = 200_000
_REFERENCE_SEED = 20_241_120


@dataclass(frozen=True)
class Dataset:
    """Feature matrix and binary labels (1 = fraud), row for row."""

    features: NDArray[np.float64]
    labels: NDArray[np.int8]

    @property
    def n_rows(self) -> int:
        return int(self.labels.shape[0])

    @property
    def positive_rate(self) -> float:
        return float(self.labels.mean()) if self.n_rows else 0.0


@dataclass(frozen=True)
class SplitPaths:
    """CSV files written by :func:`write_splits`; each lies in its own folder, ready to be a SageMaker channel."""

    train: Path
    validation: Path
    holdout: Path


def _features_and_logit(rng: np.random.Generator, n_rows: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw the features and the fraud log-odds without intercept (the intercept sets the fraud rate)."""
    category = rng.choice(len(_CATEGORY_SHARE), size=n_rows, p=_CATEGORY_SHARE / _CATEGORY_SHARE.sum())
    hour = rng.choice(24, size=n_rows, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    merchant_risk = np.clip(_CATEGORY_RISK[category] + rng.normal(0.0, 0.12, n_rows), 0.0, 1.0)
    log_amount = _CATEGORY_LOG_AMOUNT[category] + rng.normal(0.0, 1.0, n_rows)
    amount = np.round(np.exp(log_amount), 2)
    distance = np.exp(rng.normal(1.5, 1.3, n_rows))
    card_age = np.floor(rng.gamma(1.5, 500.0, n_rows)) + 1.0
    velocity_1h = rng.poisson(0.4, n_rows).astype(np.float64)
    velocity_24h = velocity_1h + rng.poisson(3.0, n_rows)
    is_online = (rng.random(n_rows) < _CATEGORY_ONLINE[category]).astype(np.float64)
    is_foreign = (rng.random(n_rows) < 0.04 + 0.06 * is_online).astype(np.float64)

    night = ((hour <= 4) | (hour >= 23)).astype(np.float64)
    amount_z = (log_amount - 3.8) / 1.2
    new_card = (card_age < 60).astype(np.float64)
    logit = _SIGNAL_SCALE * (
        0.8 * amount_z
        + 1.1 * night
        + 2.8 * merchant_risk
        + 0.35 * np.log1p(distance)
        - 0.35 * np.log(card_age / 365.0 + 0.1)
        + 0.45 * velocity_1h
        + 0.08 * velocity_24h
        + 0.6 * is_online
        + 0.9 * is_foreign
        # Interactions: what makes a tree model worth having over a linear one.
        + 1.2 * night * (amount_z > 1.0)
        + 1.0 * new_card * (velocity_1h >= 2)
        + 0.8 * is_online * is_foreign
    )
    features = np.column_stack(
        [amount, hour, category, merchant_risk, distance, card_age, velocity_1h, velocity_24h, is_online, is_foreign]
    ).astype(np.float64)
    return features, logit


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@functools.lru_cache(maxsize=16)
def _intercept_for(fraud_rate: float) -> float:
    """Intercept that gives ``fraud_rate`` in expectation, solved once on a fixed reference sample.

    Solving on a fixed sample (not on each data set) keeps every call on the same distribution, so a holdout set
    and training sets drawn with different seeds really come from one population.
    """
    _, logit = _features_and_logit(np.random.default_rng(_REFERENCE_SEED), _REFERENCE_ROWS)
    low, high = -30.0, 10.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if float(_sigmoid(logit + middle).mean()) < fraud_rate:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def generate_transactions(n_rows: int, *, seed: int, fraud_rate: float = DEFAULT_FRAUD_RATE) -> Dataset:
    """Draw ``n_rows`` transactions; the same seed always gives the same rows."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    rng = np.random.default_rng(seed)
    features, logit = _features_and_logit(rng, n_rows)
    probability = _sigmoid(logit + _intercept_for(fraud_rate))
    labels = (rng.random(n_rows) < probability).astype(np.int8)
    return Dataset(features=features, labels=labels)


def write_xgboost_csv(path: str | Path, dataset: Dataset) -> Path:
    """Write ``dataset`` as built-in XGBoost CSV: label first, no header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([dataset.labels.astype(np.float64), dataset.features])
    # Integers stay integers; 10 significant digits keep amounts and distances exact enough for a tree model.
    np.savetxt(path, table, delimiter=",", fmt="%.10g")
    return path


def read_xgboost_csv(path: str | Path) -> Dataset:
    """Read one CSV file, or every ``*.csv`` in a channel folder (sorted by name), in the built-in XGBoost layout."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no .csv file in {path}")
    # Empty part files are normal in a sharded channel: skip them rather than ask loadtxt about them.
    tables = [np.loadtxt(file, delimiter=",", dtype=np.float64, ndmin=2) for file in files if file.stat().st_size]
    if not tables:
        raise ValueError(f"no rows in {path}")
    if len({t.shape[1] for t in tables}) > 1:
        raise ValueError(f"{path}: the files have different numbers of columns")
    table = np.concatenate(tables, axis=0)
    if table.shape[1] < 2:
        raise ValueError(f"{path}: expected a label column and at least one feature column")
    labels = table[:, 0]
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"{path}: the first column must be a 0/1 label")
    return Dataset(features=np.ascontiguousarray(table[:, 1:]), labels=labels.astype(np.int8))


def write_splits(
    output_dir: str | Path,
    *,
    n_train: int,
    n_validation: int,
    n_holdout: int,
    seed: int,
    fraud_rate: float = DEFAULT_FRAUD_RATE,
) -> SplitPaths:
    """Write train, validation and holdout sets under ``output_dir/<split>/<split>.csv`` and return the files.

    The three splits are disjoint draws from one seeded stream, so the holdout never overlaps training data.
    """
    sizes = {"n_train": n_train, "n_validation": n_validation, "n_holdout": n_holdout}
    if min(sizes.values()) < 1:
        raise ValueError(f"every split needs at least one row, got {sizes}")
    output_dir = Path(output_dir)
    data = generate_transactions(n_train + n_validation + n_holdout, seed=seed, fraud_rate=fraud_rate)
    bounds = {
        "train": (0, n_train),
        "validation": (n_train, n_train + n_validation),
        "holdout": (n_train + n_validation, n_train + n_validation + n_holdout),
    }
    paths: dict[str, Path] = {}
    for split, (start, stop) in bounds.items():
        part = Dataset(features=data.features[start:stop], labels=data.labels[start:stop])
        paths[split] = write_xgboost_csv(output_dir / split / f"{split}.csv", part)
    return SplitPaths(train=paths["train"], validation=paths["validation"], holdout=paths["holdout"])
