"""Local grid and random search over the catalog's hyperparameter ranges, every trial tracked."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin

from promotion.contract.catalog import ModelCatalog, parse_catalog
from promotion_ml.data import Dataset, generate_transactions
from promotion_toolkit.algorithms import Splits
from promotion_toolkit.tracking import RunRecord, Tracker
from promotion_toolkit.tuning import (
    Dimension,
    Objective,
    SearchSpace,
    TuningError,
    TuningResult,
    Value,
    grid_search,
    random_search,
)
from tests.toolkit.conftest import MLFLOW_WARNINGS, fresh_tracker

pytestmark = MLFLOW_WARNINGS
TRACKED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIXED = {"num_round": 50, "subsample": 0.8, "min_child_weight": 1.0}
MAX_GRID = 8  # grid points per example: more says nothing new about the property, only takes longer


class ParamScored(ClassifierMixin, BaseEstimator):
    """A stand-in model whose scores depend on its parameters and nothing is fitted: the search logic is what these
    properties check, and a real fit per example would make them slow."""

    def __init__(self, **params: Any) -> None:
        self._params = dict(params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return dict(self._params)

    def set_params(self, **params: Any) -> Self:
        self._params.update(params)
        return self

    def fit(self, features: NDArray[np.float64], labels: NDArray[np.int8]) -> Self:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        digest = zlib.crc32(json.dumps(self._params, sort_keys=True, default=str).encode())
        weight = (digest % 2001 - 1000) / 1000.0
        z = weight * np.log1p(features[:, 0]) / 3.0 + (1.0 - abs(weight)) * features[:, 3] * 4.0 - 2.0
        positive = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - positive, positive])


@pytest.fixture(scope="module")
def tiny() -> tuple[Dataset, Dataset]:
    """A third of the rows are fraud here, so even 80 validation rows define every metric."""
    rows = generate_transactions(200, seed=99, fraud_rate=0.3)
    cut = 120
    return (
        Dataset(rows.features[:cut], rows.labels[:cut]),
        Dataset(rows.features[cut:], rows.labels[cut:]),
    )


def catalog_with(base: ModelCatalog, hyperparameters: dict[str, Any], objective: tuple[str, str]) -> ModelCatalog:
    document = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    document["hyperparameters"] = hyperparameters
    document["objective"] = {"metric": objective[0], "type": objective[1]}
    return parse_catalog(document)


@st.composite
def spec_dicts(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["int", "float", "str", "bool"]))
    if kind == "int":
        low = draw(st.integers(-50, 50))
        return {"type": "int", "min": low, "max": low + draw(st.integers(1, 500))}
    if kind == "float":
        low = draw(st.floats(1e-4, 10.0))
        return {"type": "float", "min": low, "max": low + draw(st.floats(1e-3, 100.0))}
    if kind == "str":
        return {
            "type": "str",
            "choices": draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=4, unique=True)),
        }
    return {"type": "bool"}


SPACES = st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), spec_dicts(), min_size=1, max_size=4)
OBJECTIVES = st.sampled_from([("validation:auc", "Maximize"), ("validation:logloss", "Minimize")])


def _within_catalog(catalog: ModelCatalog, name: str, value: Value) -> bool:
    """Independent of SearchSpace: the catalog's own bounds and choices."""
    spec = catalog.hyperparameters[name]
    if spec.choices:
        return value in spec.choices
    if spec.type == "bool":
        return isinstance(value, bool)
    if spec.type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        return False
    assert spec.min is not None and spec.max is not None
    return isinstance(value, (int, float)) and spec.min <= value <= spec.max


def _run_search(
    catalog: ModelCatalog, data: tuple[Dataset, Dataset], tracker: Tracker, plan: dict[str, Any]
) -> TuningResult:
    """Search the drawn space with the stand-in model; numeric hyperparameters left out are fixed at their min."""
    include = [name for name in catalog.hyperparameters if name in plan["include"]]
    static: dict[str, Value] = {
        name: int(spec.min) if spec.type == "int" else float(spec.min)
        for name, spec in catalog.hyperparameters.items()
        if name not in include and spec.type in ("int", "float") and spec.min is not None
    }
    space = SearchSpace.from_catalog(catalog, include=include, static=static)
    if space.grid_size(plan["points"]) > MAX_GRID:
        plan["points"] = 1
    common: dict[str, Any] = {
        "space": space,
        "tracker": tracker,
        "seed": plan["seed"],
        "estimator_factory": lambda fixed: ParamScored(**fixed),
    }
    if plan["strategy"] == "grid":
        return grid_search(catalog, *data, points=plan["points"], **common)
    return random_search(catalog, *data, n_iter=plan["n_iter"], **common)


def _tunable(hyperparameters: dict[str, Any]) -> list[str]:
    return [n for n, s in hyperparameters.items() if s["type"] != "str" or len(s["choices"]) > 1]


PLANS = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(["grid", "random"]),
        "points": st.integers(1, 3),
        "n_iter": st.integers(1, 4),
        "seed": st.integers(1, 10_000),
    }
)


def _search_some_tunables(
    tracking_uri: str,
    base_catalog: ModelCatalog,
    tiny: tuple[Dataset, Dataset],
    hyperparameters: dict[str, Any],
    objective: tuple[str, str],
    plan: dict[str, Any],
    data: st.DataObject,
) -> tuple[ModelCatalog, Tracker, TuningResult] | None:
    """Search a drawn, non-empty subset of the schema's tunable hyperparameters (None when none is tunable)."""
    tunable = _tunable(hyperparameters)
    if not tunable:
        return None
    plan["include"] = data.draw(st.lists(st.sampled_from(tunable), min_size=1, unique=True))
    catalog = catalog_with(base_catalog, hyperparameters, objective)
    tracker = fresh_tracker(tracking_uri)
    return catalog, tracker, _run_search(catalog, tiny, tracker, plan)


def _logged_trials(tracker: Tracker, result: TuningResult) -> list[RunRecord]:
    return tracker.search(parent_run_id=result.parent_run_id)


@TRACKED
@given(hyperparameters=SPACES, objective=OBJECTIVES, plan=PLANS, data=st.data())
def test_property_19_every_trial_is_within_the_search_space_and_logged(
    tracking_uri: str,
    base_catalog: ModelCatalog,
    tiny: tuple[Dataset, Dataset],
    hyperparameters: dict[str, Any],
    objective: tuple[str, str],
    plan: dict[str, Any],
    data: st.DataObject,
) -> None:
    searched = _search_some_tunables(tracking_uri, base_catalog, tiny, hyperparameters, objective, plan, data)
    if searched is None:
        return
    catalog, tracker, result = searched

    space = result.space
    expected = space.grid_size(plan["points"]) if plan["strategy"] == "grid" else plan["n_iter"]
    if plan["strategy"] == "random" and all(d.kind == "categorical" for d in space.dimensions.values()):
        expected = min(expected, space.grid_size())  # all-categorical: sampled without replacement
    assert len(result.trials) == expected
    for trial in result.trials:
        assert set(trial.params) == set(plan["include"])
        assert space.contains(trial.params)
        assert all(_within_catalog(catalog, name, value) for name, value in trial.params.items())

    logged = _logged_trials(tracker, result)
    assert sorted(run.run_id for run in logged) == sorted(t.run_id for t in result.trials if t.run_id)
    assert len(logged) == len(result.trials)
    by_id = {run.run_id: run for run in logged}
    for trial in result.trials:
        run = by_id[trial.run_id or ""]
        expected_params = {name: str(value) for name, value in {**space.static, **trial.params}.items()}
        assert dict(run.params) == expected_params
        assert run.tags["promotion_ml.trial"] == str(trial.number)


@TRACKED
@given(hyperparameters=SPACES, objective=OBJECTIVES, plan=PLANS, data=st.data())
def test_property_20_the_best_trial_is_the_best_logged_trial_by_the_objective(
    tracking_uri: str,
    base_catalog: ModelCatalog,
    tiny: tuple[Dataset, Dataset],
    hyperparameters: dict[str, Any],
    objective: tuple[str, str],
    plan: dict[str, Any],
    data: st.DataObject,
) -> None:
    searched = _search_some_tunables(tracking_uri, base_catalog, tiny, hyperparameters, objective, plan, data)
    if searched is None:
        return
    _, tracker, result = searched

    logged = _logged_trials(tracker, result)
    scores = {run.run_id: run.metrics["objective"] for run in logged if "objective" in run.metrics}
    assert scores, "every trial on this data has a defined objective"
    best_logged = max(scores.values()) if objective[1] == "Maximize" else min(scores.values())
    assert result.best.score == best_logged
    assert scores[result.best.run_id or ""] == best_logged
    parent = tracker.get_run(result.parent_run_id or "")
    assert parent.tags["best_run_id"] == result.best.run_id
    assert parent.metrics["best_objective"] == best_logged
    assert tracker.read_json(parent.run_id, "best_hyperparameters.json") == {
        **result.space.static,
        **result.best.params,
    }
    # ties go to the earliest trial
    tied = [t.number for t in result.trials if t.score == best_logged]
    assert result.best.number == min(tied)


# ------------------------------------------------------------------------------------------------ examples


@pytest.fixture(scope="module")
def base_catalog(catalog: ModelCatalog) -> ModelCatalog:
    return catalog


def test_the_catalog_space_tunes_the_numeric_hyperparameters(catalog: ModelCatalog) -> None:
    space = SearchSpace.from_catalog(catalog, scaling={"eta": "Logarithmic"})
    assert list(space.dimensions) == ["max_depth", "eta", "num_round", "subsample", "min_child_weight"]
    assert space.static == {"objective": "binary:logistic", "eval_metric": "auc"}
    assert space.dimensions["max_depth"] == Dimension("max_depth", "int", low=3, high=10)
    assert space.grid(3)["eta"] == [0.01, 0.0547723, 0.3]  # geometric for logarithmic scaling
    assert space.grid(3)["max_depth"] == [3, 6, 10]
    assert Objective.from_catalog(catalog) == Objective("validation:auc", "roc_auc", maximize=True)


def test_the_catalog_space_refuses_what_cannot_be_a_complete_trial(catalog: ModelCatalog) -> None:
    with pytest.raises(TuningError, match="required by the catalog"):
        SearchSpace.from_catalog(catalog, include=["eta"])
    with pytest.raises(TuningError, match="not in the catalog"):
        SearchSpace.from_catalog(catalog, include=["gamma"])
    with pytest.raises(TuningError, match="one value only"):
        SearchSpace.from_catalog(catalog, include=["objective"], static=FIXED)
    with pytest.raises(TuningError, match="outside the catalog"):
        SearchSpace.from_catalog(catalog, include=["eta", "max_depth"], static={**FIXED, "num_round": 5_000})
    with pytest.raises(TuningError, match="both tuned and static"):
        SearchSpace.from_catalog(catalog, include=["eta", "max_depth"], static={**FIXED, "eta": 0.1})


def test_grid_search_with_xgboost_on_generated_data(
    catalog: ModelCatalog, small_splits: Splits, tracker: Tracker
) -> None:
    result = grid_search(
        catalog,
        small_splits.train,
        small_splits.validation,
        include=["max_depth", "eta"],
        static=FIXED,
        points=2,
        tracker=tracker,
    )
    assert [t.params for t in result.trials] == [
        {"eta": 0.01, "max_depth": 3},
        {"eta": 0.01, "max_depth": 10},
        {"eta": 0.3, "max_depth": 3},
        {"eta": 0.3, "max_depth": 10},
    ]
    assert all(t.score is not None and 0.6 < t.score <= 1.0 for t in result.trials)
    assert result.best.score == max(t.score or 0.0 for t in result.trials)
    best = result.best_hyperparameters()
    assert set(best) == set(catalog.hyperparameters)  # a full, promotable set
    assert "| trial | max_depth | eta | validation:auc |" in result.table()
    assert len(tracker.search(parent_run_id=result.parent_run_id)) == 4


def test_random_search_is_seeded(catalog: ModelCatalog, small_splits: Splits) -> None:
    def run(seed: int) -> list[Mapping[str, Value]]:
        result = random_search(
            catalog,
            small_splits.train,
            small_splits.validation,
            n_iter=3,
            include=["max_depth", "eta", "subsample"],
            static={"num_round": 50, "min_child_weight": 1.0},
            scaling={"eta": "Logarithmic"},
            seed=seed,
        )
        assert result.parent_run_id is None
        return [t.params for t in result.trials]

    first = run(4)
    assert first == run(4) and first != run(5)
