"""Hyperparameter validation against the catalog schema and the string form SageMaker and Parameter Store use.

SageMaker passes hyperparameters as strings; the catalog says what type each one really is. Validation reports
every problem at once so a data scientist fixes a tuning job in one go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from promotion.contract.catalog import HyperparameterSpec
from promotion.core.errors import HyperparameterValidationError

HyperparameterValue = int | float | str | bool

# SageMaker adds these to every tuned training job; they are not the model's hyperparameters.
SAGEMAKER_INTERNAL_PREFIXES = ("_", "sagemaker_")
MAX_VALUE_LENGTH = 256


def is_internal(name: str) -> bool:
    """True for hyperparameters SageMaker injects itself (e.g. `_tuning_objective_metric`)."""
    return name.startswith(SAGEMAKER_INTERNAL_PREFIXES)


def _parse_one(name: str, raw: object, spec: HyperparameterSpec) -> tuple[HyperparameterValue | None, str | None]:
    """Parse one raw value into the catalog's type; returns (value, problem)."""
    if isinstance(raw, str) and len(raw) > MAX_VALUE_LENGTH:
        return None, f"{name}: value is {len(raw)} characters long (at most {MAX_VALUE_LENGTH})"
    text = raw.strip() if isinstance(raw, str) else raw
    value: HyperparameterValue
    if spec.type == "bool":
        lowered = str(text).lower()
        if isinstance(text, bool):
            value = text
        elif lowered in ("true", "false"):
            value = lowered == "true"
        else:
            return None, f"{name}: expected bool (true/false), got {raw!r}"
    elif spec.type == "int":
        if isinstance(text, bool):
            return None, f"{name}: expected int, got {raw!r}"
        try:
            number = float(text) if isinstance(text, str) else text
            if not isinstance(number, (int, float)) or not math.isfinite(number) or number != int(number):
                raise ValueError
            value = int(number)
        except (TypeError, ValueError, OverflowError):
            return None, f"{name}: expected int, got {raw!r}"
    elif spec.type == "float":
        if isinstance(text, bool):
            return None, f"{name}: expected float, got {raw!r}"
        try:
            value = float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None, f"{name}: expected float, got {raw!r}"
        if not math.isfinite(value):
            return None, f"{name}: expected a finite float, got {raw!r}"
    else:
        if not isinstance(text, str):
            return None, f"{name}: expected str, got {raw!r}"
        value = text
    if spec.min is not None and isinstance(value, (int, float)) and value < spec.min:
        return None, f"{name}: {value} is below the minimum {_number(spec.min)}"
    if spec.max is not None and isinstance(value, (int, float)) and value > spec.max:
        return None, f"{name}: {value} is above the maximum {_number(spec.max)}"
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(repr(choice) for choice in spec.choices)
        return None, f"{name}: {value!r} is not one of {allowed}"
    return value, None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def validate_hyperparameters(
    raw: Mapping[str, object], schema: Mapping[str, HyperparameterSpec]
) -> dict[str, HyperparameterValue]:
    """Typed hyperparameters, or HyperparameterValidationError listing every problem (missing, unknown,
    wrong type, out of range). SageMaker-internal names are ignored."""
    problems: list[str] = []
    typed: dict[str, HyperparameterValue] = {}
    candidate = {name: value for name, value in raw.items() if not is_internal(name)}
    for name in sorted(set(candidate) - set(schema)):
        problems.append(f"{name}: unknown hyperparameter (not in the catalog schema)")
    for name, spec in schema.items():
        if name not in candidate:
            if spec.required:
                problems.append(f"{name}: missing (required by the catalog schema)")
            continue
        value, problem = _parse_one(name, candidate[name], spec)
        if problem is not None:
            problems.append(problem)
        elif value is not None:
            typed[name] = value
    if problems:
        raise HyperparameterValidationError(problems)
    return typed


def to_parameter_value(value: HyperparameterValue) -> str:
    """The string a training job expects (and Parameter Store stores): repr-exact floats, lower-case bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def from_parameter_value(text: str, spec: HyperparameterSpec) -> HyperparameterValue:
    """Inverse of `to_parameter_value` for one catalog type."""
    value, problem = _parse_one("value", text, spec)
    if problem is not None or value is None:
        raise HyperparameterValidationError([problem or f"value: cannot parse {text!r}"])
    return value
