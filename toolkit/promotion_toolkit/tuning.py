"""Local hyperparameter search over the model catalog's ranges: grid and random search with scikit-learn.

The search space is the catalog's (``models/<id>.yaml``, ``hyperparameters``), with the catalog's names (``eta``,
``num_round``...), so a local trial, a SageMaker tuning job (:mod:`promotion_toolkit.launcher` builds its ranges from
the same :class:`SearchSpace`) and a production parameter in Parameter Store speak of the same thing. Every trial
trains on the training rows and is scored on the validation rows (a predefined split, as SageMaker's
``validation:auc`` is), with the product's metrics (:func:`promotion_ml.evaluation.evaluate`); the objective and
its direction come from the catalog. With a tracker every trial is a run nested under the search's run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, PredefinedSplit, RandomizedSearchCV

from promotion_ml.data import Dataset
from promotion_ml.evaluation import DEFAULT_THRESHOLD, METRIC_NAMES, evaluate
from promotion_toolkit.tracking import Tracker

if TYPE_CHECKING:
    from promotion.contract.catalog import HyperparameterSpec, ModelCatalog

Scaling = Literal["Auto", "Linear", "Logarithmic"]
Value = str | int | float | bool
# SageMaker's built-in XGBoost names (the catalog's) -> XGBClassifier's names; others are the same in both.
XGBOOST_SKLEARN_NAMES: Mapping[str, str] = {
    "eta": "learning_rate",
    "num_round": "n_estimators",
    "lambda": "reg_lambda",
    "alpha": "reg_alpha",
}
# The part after "validation:" of a catalog objective -> the metric scored here, and whether larger is better.
OBJECTIVE_METRICS: Mapping[str, tuple[str, bool]] = {
    "auc": ("roc_auc", True),
    "aucpr": ("pr_auc", True),
    "accuracy": ("accuracy", True),
    "f1": ("f1", True),
    "precision": ("precision", True),
    "recall": ("recall", True),
    "error": ("error", False),
    "logloss": ("logloss", False),
}
SCORED_METRICS: tuple[str, ...] = (*METRIC_NAMES, "error", "logloss")
_SIGNIFICANT_DIGITS = 6


class TuningError(ValueError):
    """The search cannot be set up or found no trial with a defined objective."""


@dataclass(frozen=True)
class Dimension:
    """One tunable hyperparameter: an integer or continuous range, or a set of choices."""

    name: str
    kind: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    choices: tuple[Value, ...] = ()
    scaling: Scaling = "Auto"

    def __post_init__(self) -> None:
        if self.kind == "categorical":
            if not self.choices:
                raise TuningError(f"{self.name}: a categorical dimension needs choices")
            return
        if self.low is None or self.high is None or not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise TuningError(f"{self.name}: a numeric dimension needs a finite min and max")
        if self.low > self.high:
            raise TuningError(f"{self.name}: min {self.low} is greater than max {self.high}")
        if self.scaling == "Logarithmic" and self.low <= 0:
            raise TuningError(f"{self.name}: logarithmic scaling needs a positive min, got {self.low}")

    @property
    def bounds(self) -> tuple[float, float]:
        assert self.low is not None and self.high is not None  # checked in __post_init__
        return self.low, self.high

    def contains(self, value: object) -> bool:
        """Whether ``value`` is a value of this dimension (integers must be whole, within the bounds)."""
        if self.kind == "categorical":
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        low, high = self.bounds
        if self.kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
            return False
        return low <= value <= high

    def coerce(self, value: Any) -> Value:
        """A sampled value as a plain Python value of this dimension (numpy scalars unwrapped, clipped to bounds)."""
        if self.kind == "categorical":
            return value.item() if isinstance(value, np.generic) else value
        low, high = self.bounds
        if self.kind == "int":
            return int(min(max(round(float(value)), math.ceil(low)), math.floor(high)))
        return float(min(max(float(value), low), high))

    def grid(self, points: int) -> list[Value]:
        """``points`` values spread over the range (geometrically for logarithmic scaling), or every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        if points < 1:
            raise TuningError(f"grid points must be at least 1, got {points}")
        low, high = self.bounds
        if points == 1:
            raw = np.array([low if self.kind == "int" else (low + high) / 2])
        elif self.scaling == "Logarithmic":
            raw = np.geomspace(low, high, points)
        else:
            raw = np.linspace(low, high, points)
        if self.kind == "int":
            return list(dict.fromkeys(self.coerce(value) for value in raw))
        rounded = (float(f"{value:.{_SIGNIFICANT_DIGITS}g}") for value in raw)
        return list(dict.fromkeys(self.coerce(value) for value in rounded))

    def distribution(self) -> Any:
        """What ``RandomizedSearchCV`` samples from: a scipy distribution or the list of choices."""
        if self.kind == "categorical":
            return list(self.choices)
        low, high = self.bounds
        if self.kind == "int":
            lo, hi = math.ceil(low), math.floor(high)
            if self.scaling == "Logarithmic" and lo < hi:
                return stats.loguniform(lo, hi + 1)
            return stats.randint(lo, hi + 1)
        if self.scaling == "Logarithmic" and low < high:
            return stats.loguniform(low, high)
        return stats.uniform(low, high - low)


def _dimension(name: str, spec: HyperparameterSpec, scaling: Scaling) -> Dimension | None:
    """The dimension of one catalog hyperparameter, or None when it has one possible value (nothing to tune)."""
    if spec.choices:
        choices = tuple(dict.fromkeys(spec.choices))
        return Dimension(name, "categorical", choices=choices) if len(choices) > 1 else None
    if spec.type == "bool":
        return Dimension(name, "categorical", choices=(False, True))
    if spec.type in ("int", "float"):
        if spec.min is None or spec.max is None:
            raise TuningError(f"{name}: the catalog gives no min/max, so it cannot be tuned")
        low, high = (
            (float(math.ceil(spec.min)), float(math.floor(spec.max))) if spec.type == "int" else (spec.min, spec.max)
        )
        if low == high:
            return None
        return Dimension(name, spec.type, low=low, high=high, scaling=scaling)
    return None


def _allowed(spec: HyperparameterSpec, value: Value) -> bool:
    """Whether the catalog's schema accepts ``value`` (its choices, or its type and range)."""
    if spec.choices:
        return value in spec.choices
    if spec.type == "bool":
        return isinstance(value, bool)
    if spec.type == "str":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if spec.type == "int" and not float(value).is_integer():
        return False
    return (spec.min is None or value >= spec.min) and (spec.max is None or value <= spec.max)


def _single_value(spec: HyperparameterSpec) -> Value | None:
    if spec.choices:
        return spec.choices[0]
    if spec.type == "int" and spec.min is not None and spec.max is not None and math.ceil(spec.min) == spec.max:
        return int(spec.max)
    if spec.type == "float" and spec.min is not None and spec.min == spec.max:
        return float(spec.min)
    return None


@dataclass(frozen=True)
class SearchSpace:
    """The tuned dimensions and the static values every trial shares, in the catalog's names."""

    dimensions: Mapping[str, Dimension]
    static: Mapping[str, Value] = field(default_factory=dict)

    @classmethod
    def from_catalog(
        cls,
        catalog: ModelCatalog,
        *,
        include: Iterable[str] | None = None,
        static: Mapping[str, Value] | None = None,
        scaling: Mapping[str, Scaling] | None = None,
    ) -> SearchSpace:
        """Dimensions from ``catalog.hyperparameters``.

        ``include`` names the hyperparameters to tune (default: every numeric one; a categorical such as
        ``eval_metric`` only changes what is logged, so it is tuned only when named). The others are static:
        the value in ``static``, else the only or first choice; a required numeric one left out of ``include``
        must be given in ``static``. ``scaling`` sets SageMaker's scaling type per name (default ``Auto``;
        random and grid search here treat ``Auto`` as linear).
        """
        specs = catalog.hyperparameters
        include = list(include) if include is not None else None
        static = dict(static or {})
        scaling = dict(scaling or {})
        unknown = [name for name in [*(include or []), *static, *scaling] if name not in specs]
        if unknown:
            raise TuningError(f"not in the catalog of {catalog.id}: {', '.join(sorted(set(unknown)))}")
        candidates = {
            name: dimension
            for name, spec in specs.items()
            if (dimension := _dimension(name, spec, scaling.get(name, "Auto"))) is not None
        }
        chosen = include if include is not None else [n for n, d in candidates.items() if d.kind != "categorical"]
        fixed = [name for name in chosen if name not in candidates]
        if fixed:
            raise TuningError(f"{', '.join(fixed)}: the catalog allows one value only, nothing to tune")
        clash = sorted(set(chosen) & set(static))
        if clash:
            raise TuningError(f"{', '.join(clash)}: both tuned and static")
        outside = [f"{name}={value!r}" for name, value in static.items() if not _allowed(specs[name], value)]
        if outside:
            raise TuningError(f"static values outside the catalog's schema: {', '.join(outside)}")
        dimensions = {name: candidates[name] for name in chosen}
        statics: dict[str, Value] = {}
        missing = []
        for name, spec in specs.items():
            if name in dimensions:
                continue
            if name in static:
                statics[name] = static[name]
            elif (value := _single_value(spec)) is not None or (
                value := _first_choice(candidates.get(name))
            ) is not None:
                statics[name] = value
            elif spec.required:
                missing.append(name)
        if missing:
            raise TuningError(
                f"{', '.join(missing)}: required by the catalog, so either tune them (include=) or fix them (static=)"
            )
        if not dimensions:
            raise TuningError("nothing to tune: no dimension left")
        return cls(dimensions=dimensions, static=statics)

    def contains(self, params: Mapping[str, object]) -> bool:
        """Whether ``params`` sets every dimension (and nothing else) to one of its values."""
        return set(params) == set(self.dimensions) and all(
            dimension.contains(params[name]) for name, dimension in self.dimensions.items()
        )

    def grid(self, points: int | Mapping[str, int] = 3) -> dict[str, list[Value]]:
        """Values per dimension for a grid search (``points`` per numeric dimension, or per name)."""
        return {
            name: dimension.grid(points if isinstance(points, int) else points.get(name, 3))
            for name, dimension in self.dimensions.items()
        }

    def grid_size(self, points: int | Mapping[str, int] = 3) -> int:
        return math.prod(len(values) for values in self.grid(points).values())

    def distributions(self) -> dict[str, Any]:
        return {name: dimension.distribution() for name, dimension in self.dimensions.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": {
                name: {"kind": d.kind, "low": d.low, "high": d.high, "choices": list(d.choices), "scaling": d.scaling}
                for name, d in self.dimensions.items()
            },
            "static": dict(self.static),
        }


def _first_choice(dimension: Dimension | None) -> Value | None:
    return dimension.choices[0] if dimension is not None and dimension.kind == "categorical" else None


@dataclass(frozen=True)
class Objective:
    """What a search optimizes: a catalog metric (``validation:auc``), the metric scored here, and its direction."""

    catalog_metric: str
    metric: str
    maximize: bool

    @classmethod
    def from_catalog(cls, catalog: ModelCatalog) -> Objective:
        name = catalog.objective.metric
        suffix = name.split(":", 1)[-1]
        if suffix not in OBJECTIVE_METRICS:
            raise TuningError(f"objective {name!r}: no local metric for {suffix!r} ({', '.join(OBJECTIVE_METRICS)})")
        metric, larger_is_better = OBJECTIVE_METRICS[suffix]
        maximize = catalog.objective.type == "Maximize"
        if maximize != larger_is_better:
            raise TuningError(f"objective {name!r} is {catalog.objective.type}d, but {metric} is the other way round")
        return cls(catalog_metric=name, metric=metric, maximize=maximize)

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b``."""
        return a > b if self.maximize else a < b


def score_all(labels: NDArray[np.int8], scores: NDArray[np.float64], threshold: float) -> dict[str, float]:
    """Every metric a trial reports: the evaluation metrics plus error and log loss (NaN where undefined)."""
    metrics = evaluate(labels, scores, threshold)
    values = {name: metrics.metric(name) for name in METRIC_NAMES}
    result = {name: math.nan if value is None else float(value) for name, value in values.items()}
    result["error"] = 1.0 - metrics.accuracy
    result["logloss"] = float(log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1]))
    return result


@dataclass(frozen=True)
class Trial:
    """One point of the search: its hyperparameters (tuned ones, catalog names), objective and every metric."""

    number: int
    params: Mapping[str, Value]
    score: float | None
    metrics: Mapping[str, float | None]
    fit_seconds: float
    run_id: str | None = None


@dataclass(frozen=True)
class TuningResult:
    strategy: Literal["grid", "random"]
    objective: Objective
    space: SearchSpace
    trials: tuple[Trial, ...]
    best: Trial
    parent_run_id: str | None = None

    def best_hyperparameters(self) -> dict[str, Value]:
        """The best trial's values plus the static ones: a full set of catalog hyperparameters."""
        return {**self.space.static, **self.best.params}

    def table(self, limit: int | None = None) -> str:
        """Markdown table of the trials, best first."""
        names = list(self.space.dimensions)
        ranked = sorted(
            self.trials,
            key=lambda t: (t.score is None, -(t.score or 0.0) if self.objective.maximize else (t.score or 0.0)),
        )
        header = ["trial", *names, self.objective.catalog_metric]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for trial in ranked[:limit]:
            score = "n/a" if trial.score is None else f"{trial.score:.5f}"
            values = [
                f"{trial.params[n]:.4g}" if isinstance(trial.params[n], float) else str(trial.params[n]) for n in names
            ]
            lines.append("| " + " | ".join([str(trial.number), *values, score]) + " |")
        return "\n".join(lines) + "\n"


def xgboost_estimator(params: Mapping[str, Value], *, seed: int = 0, n_jobs: int = 1) -> Any:
    """An ``XGBClassifier`` from catalog-named hyperparameters (``eta`` -> ``learning_rate``...)."""
    from xgboost import XGBClassifier

    mapped = {XGBOOST_SKLEARN_NAMES.get(name, name): value for name, value in params.items()}
    return XGBClassifier(tree_method="hist", random_state=seed, n_jobs=n_jobs, **mapped)


def _choose_best(trials: Sequence[Trial], objective: Objective) -> Trial:
    """The trial with the best defined objective; on a tie, the earlier trial."""
    best: Trial | None = None
    best_score = math.nan
    for trial in trials:
        if trial.score is not None and (best is None or objective.better(trial.score, best_score)):
            best, best_score = trial, trial.score
    if best is None:
        raise TuningError("no trial produced a defined objective (did every fit fail, or is one class missing?)")
    return best


def _search(
    strategy: Literal["grid", "random"],
    space: SearchSpace,
    objective: Objective,
    train: Dataset,
    validation: Dataset,
    *,
    candidates: Any,
    n_iter: int,
    tracker: Tracker | None,
    seed: int,
    threshold: float,
    estimator_factory: Callable[[Mapping[str, Value]], Any] | None,
    name_map: Mapping[str, str] | None,
) -> TuningResult:
    def default_factory(params: Mapping[str, Value]) -> Any:
        return xgboost_estimator(params, seed=seed)

    factory: Callable[[Mapping[str, Value]], Any] = estimator_factory or default_factory
    names = dict(XGBOOST_SKLEARN_NAMES) if estimator_factory is None else dict(name_map or {})
    to_estimator = {catalog: names.get(catalog, catalog) for catalog in space.dimensions}
    to_catalog = {estimator: catalog for catalog, estimator in to_estimator.items()}
    base = factory(dict(space.static))

    def scorer(estimator: Any, features: NDArray[np.float64], labels: NDArray[np.int8]) -> dict[str, float]:
        return score_all(labels, np.asarray(estimator.predict_proba(features)[:, 1], dtype=np.float64), threshold)

    features = np.vstack([train.features, validation.features])
    labels = np.concatenate([train.labels, validation.labels])
    split = PredefinedSplit(np.concatenate([np.full(train.n_rows, -1), np.zeros(validation.n_rows)]))
    common = {"scoring": scorer, "refit": False, "cv": split, "error_score": np.nan, "n_jobs": 1}
    search: Any
    if strategy == "grid":
        grid = {to_estimator[name]: values for name, values in candidates.items()}
        search = GridSearchCV(base, grid, **common)
    else:
        distributions = {to_estimator[name]: dist for name, dist in candidates.items()}
        search = RandomizedSearchCV(base, distributions, n_iter=n_iter, random_state=seed, **common)
    search.fit(features, labels)

    results = search.cv_results_
    trials: list[Trial] = []
    for number, estimator_params in enumerate(results["params"]):
        params = {
            to_catalog[key]: space.dimensions[to_catalog[key]].coerce(value) for key, value in estimator_params.items()
        }
        metrics: dict[str, float | None] = {}
        for metric in SCORED_METRICS:
            value = float(results[f"mean_test_{metric}"][number])
            metrics[metric] = value if math.isfinite(value) else None
        trials.append(
            Trial(
                number=number,
                params=params,
                score=metrics[objective.metric],
                metrics=metrics,
                fit_seconds=float(results["mean_fit_time"][number]),
            )
        )
    if tracker is not None:
        return _tracked(strategy, space, objective, trials, tracker, seed=seed, n_train=train.n_rows)
    return TuningResult(strategy, objective, space, tuple(trials), _choose_best(trials, objective))


def _tracked(
    strategy: Literal["grid", "random"],
    space: SearchSpace,
    objective: Objective,
    trials: list[Trial],
    tracker: Tracker,
    *,
    seed: int,
    n_train: int,
) -> TuningResult:
    """Log the search as a parent run and each trial as a child run; the best is chosen from what was logged."""
    with tracker.start_run(
        f"{strategy}-search",
        params={
            "strategy": strategy,
            "objective": objective.catalog_metric,
            "direction": "Maximize" if objective.maximize else "Minimize",
            "n_trials": len(trials),
            "seed": seed,
            "n_train": n_train,
            **{f"static.{name}": value for name, value in space.static.items()},
        },
        tags={"promotion_ml.kind": "tuning", "promotion_ml.strategy": strategy},
    ) as parent:
        parent.log_json(space.to_dict(), "search_space.json")
        logged: list[Trial] = []
        for trial in trials:
            tags = {"promotion_ml.kind": "trial", "promotion_ml.trial": trial.number}
            if trial.score is None:
                tags["promotion_ml.objective"] = "undefined"
            with tracker.start_run(
                f"trial-{trial.number:03d}",
                parent=parent,
                params={**space.static, **trial.params},
                metrics={**trial.metrics, "objective": trial.score, "fit_seconds": trial.fit_seconds},
                tags=tags,
            ) as run:
                pass
            logged.append(Trial(trial.number, trial.params, trial.score, trial.metrics, trial.fit_seconds, run.run_id))
        best = _choose_best(logged, objective)
        parent.log(metrics={"best_objective": best.score}, tags={"best_run_id": best.run_id, "best_trial": best.number})
        parent.log_json({**space.static, **best.params}, "best_hyperparameters.json")
    return TuningResult(strategy, objective, space, tuple(logged), best, parent.run_id)


def grid_search(
    catalog: ModelCatalog,
    train: Dataset,
    validation: Dataset,
    *,
    points: int | Mapping[str, int] = 3,
    include: Iterable[str] | None = None,
    static: Mapping[str, Value] | None = None,
    scaling: Mapping[str, Scaling] | None = None,
    space: SearchSpace | None = None,
    tracker: Tracker | None = None,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    max_trials: int = 500,
    estimator_factory: Callable[[Mapping[str, Value]], Any] | None = None,
    name_map: Mapping[str, str] | None = None,
) -> TuningResult:
    """Every combination of ``points`` values per tuned hyperparameter (see :meth:`SearchSpace.from_catalog`).

    ``estimator_factory`` builds the model from static hyperparameters (default: XGBoost with the catalog's names
    mapped by ``XGBOOST_SKLEARN_NAMES``); ``name_map`` maps catalog names to its parameter names.
    """
    space = space or SearchSpace.from_catalog(catalog, include=include, static=static, scaling=scaling)
    size = space.grid_size(points)
    if size > max_trials:
        raise TuningError(
            f"the grid has {size} points, more than max_trials={max_trials}: tune fewer or use fewer points"
        )
    return _search(
        "grid",
        space,
        Objective.from_catalog(catalog),
        train,
        validation,
        candidates=space.grid(points),
        n_iter=size,
        tracker=tracker,
        seed=seed,
        threshold=threshold,
        estimator_factory=estimator_factory,
        name_map=name_map,
    )


def random_search(
    catalog: ModelCatalog,
    train: Dataset,
    validation: Dataset,
    *,
    n_iter: int = 10,
    include: Iterable[str] | None = None,
    static: Mapping[str, Value] | None = None,
    scaling: Mapping[str, Scaling] | None = None,
    space: SearchSpace | None = None,
    tracker: Tracker | None = None,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    estimator_factory: Callable[[Mapping[str, Value]], Any] | None = None,
    name_map: Mapping[str, str] | None = None,
) -> TuningResult:
    """``n_iter`` points drawn from the ranges (log-uniform where scaling is ``Logarithmic``), seeded."""
    if n_iter < 1:
        raise TuningError(f"n_iter must be at least 1, got {n_iter}")
    space = space or SearchSpace.from_catalog(catalog, include=include, static=static, scaling=scaling)
    if all(dimension.kind == "categorical" for dimension in space.dimensions.values()):
        n_iter = min(n_iter, space.grid_size())  # only so many distinct points: scikit-learn samples without repeats
    return _search(
        "random",
        space,
        Objective.from_catalog(catalog),
        train,
        validation,
        candidates=space.distributions(),
        n_iter=n_iter,
        tracker=tracker,
        seed=seed,
        threshold=threshold,
        estimator_factory=estimator_factory,
        name_map=name_map,
    )
