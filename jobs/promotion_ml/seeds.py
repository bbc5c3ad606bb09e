"""Seed sensitivity: is the challenger's gain larger than what retraining its own configuration with another seed
changes? The comparison job trains the challenger's hyperparameters K times with seeds 1..K on the same training
data, scores each on the holdout, and takes the spread (max - min) of the primary metric. A PASS whose gain over the
champion is inside that spread becomes INCONCLUSIVE: the same configuration, retrained, could have done as well or
as badly, so the gain is not the configuration's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import xgboost as xgb

from promotion_ml import evaluation
from promotion_ml.artifacts import predict_scores
from promotion_ml.data import Dataset
from promotion_ml.hyperparameters import parse_hyperparameters
from promotion_ml.stats import Decision


@dataclass(frozen=True)
class SeedSpread:
    metric: str
    seeds: list[int]
    values: list[float]
    spread: float
    mean: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_spread(
    params: Mapping[str, Any],
    num_round: int,
    train: Dataset,
    holdout: Dataset,
    *,
    seeds: Sequence[int],
    metric: str,
    threshold: float = evaluation.DEFAULT_THRESHOLD,
) -> SeedSpread:
    """The holdout's `metric` of the configuration trained once per seed (the same rows, only the seed changes)."""
    dtrain = xgb.DMatrix(train.features, label=train.labels)
    values = []
    for seed in seeds:
        booster = xgb.train({**params, "seed": seed}, dtrain, num_boost_round=num_round, verbose_eval=False)
        value = evaluation.evaluate(holdout.labels, predict_scores(booster, holdout.features), threshold).metric(metric)
        if value is None:
            raise ValueError(f"{metric} is undefined on this holdout: the seed check cannot measure it")
        values.append(float(value))
    array = np.asarray(values)
    return SeedSpread(
        metric=metric,
        seeds=list(seeds),
        values=[round(v, 6) for v in values],
        spread=float(array.max() - array.min()),
        mean=float(array.mean()),
        std=float(array.std(ddof=1)) if len(values) > 1 else 0.0,
    )


def within_seed_noise(decision: Decision, spread: SeedSpread) -> Decision:
    """A PASS whose gain does not exceed the seeds' spread, as INCONCLUSIVE (anything else as it was)."""
    if decision.outcome != "PASS" or decision.difference is None or decision.difference > spread.spread:
        return decision
    return replace(
        decision,
        outcome="INCONCLUSIVE",
        reason=(
            f"The challenger's {spread.metric} gain of {decision.difference:+.4f} is inside the spread of its own "
            f"configuration retrained with {len(spread.seeds)} seeds ({spread.spread:.4f}: "
            f"{min(spread.values):.4f} to {max(spread.values):.4f}); it is not the configuration's gain."
        ),
    )


def parse_hyperparameter_pairs(pairs: Sequence[str]) -> tuple[dict[str, Any], int]:
    """`name=value` arguments (one per hyperparameter: a container argument is at most 256 characters), parsed as
    the training entry point parses SageMaker's hyperparameters."""
    raw = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"hyperparameter {pair!r} is not name=value")
        raw[name] = value
    return parse_hyperparameters(raw)
