"""Hyperparameter validation: every problem named at once, types as the catalog says."""

from __future__ import annotations

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.hyperparameters import from_parameter_value, to_parameter_value, validate_hyperparameters
from promotion.core.errors import HyperparameterValidationError

VALID = {
    "max_depth": "6",
    "num_round": "240",
    "eta": "0.0834",
    "subsample": "0.85",
    "min_child_weight": "3",
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "_tuning_objective_metric": "validation:auc",
}


def test_valid_strings_become_catalog_types(catalog: ModelCatalog) -> None:
    typed = validate_hyperparameters(VALID, catalog.hyperparameters)
    assert typed == {
        "max_depth": 6,
        "num_round": 240,
        "eta": 0.0834,
        "subsample": 0.85,
        "min_child_weight": 3.0,
        "objective": "binary:logistic",
        "eval_metric": "auc",
    }
    assert isinstance(typed["max_depth"], int)
    assert isinstance(typed["min_child_weight"], float)


def test_every_problem_is_listed_at_once(catalog: ModelCatalog) -> None:
    raw = dict(VALID, max_depth="12", eta="fast", gamma="1")
    del raw["num_round"]
    with pytest.raises(HyperparameterValidationError) as caught:
        validate_hyperparameters(raw, catalog.hyperparameters)
    problems = caught.value.problems
    assert any(p.startswith("max_depth: 12 is above the maximum 10") for p in problems)
    assert any(p.startswith("eta: expected float") for p in problems)
    assert any(p.startswith("gamma: unknown hyperparameter") for p in problems)
    assert any(p.startswith("num_round: missing") for p in problems)
    assert len(problems) == 4


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("eta", "nan", "finite float"),
        ("eta", "inf", "finite float"),
        ("max_depth", "-3", "below the minimum 3"),
        ("max_depth", "6.5", "expected int"),
        ("num_round", "1e400", "expected int"),
        ("subsample", "1" * 300, "characters long"),
        ("objective", "reg:squarederror", "is not one of"),
    ],
)
def test_bad_values_are_named(catalog: ModelCatalog, name: str, value: str, fragment: str) -> None:
    with pytest.raises(HyperparameterValidationError, match=fragment):
        validate_hyperparameters(dict(VALID, **{name: value}), catalog.hyperparameters)


def test_parameter_strings_round_trip(catalog: ModelCatalog) -> None:
    for name, value in validate_hyperparameters(VALID, catalog.hyperparameters).items():
        assert from_parameter_value(to_parameter_value(value), catalog.hyperparameters[name]) == value
