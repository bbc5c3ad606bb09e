"""SageMaker's string hyperparameters as XGBoost's parameters: the training entry point's parsing, shared with the
comparison job's seed check (which retrains the challenger's configuration)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

OBJECTIVES = ("binary:logistic",)
DEFAULT_EVAL_METRIC = "auc"


class HyperparameterError(ValueError):
    """A hyperparameter is missing, unknown or not of its type."""


def _unquote(value: Any) -> str:
    """Values are strings; script mode JSON-encodes them once more (``"\\"binary:logistic\\""``): undo that."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        decoded = json.loads(text)
        return str(decoded)
    return text


def _integer(name: str, text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise HyperparameterError(f"{name}={text!r} is not an integer") from None
    if not number.is_integer():
        raise HyperparameterError(f"{name}={text!r} is not an integer")
    return int(number)


def _number(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise HyperparameterError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(number):
        raise HyperparameterError(f"{name}={text!r} is not a finite number")
    return number


def _text(name: str, text: str) -> str:
    if not text:
        raise HyperparameterError(f"{name} is empty")
    return text


def _metrics(name: str, text: str) -> list[str]:
    metrics = [part.strip() for part in text.split(",") if part.strip()]
    if not metrics:
        raise HyperparameterError(f"{name} is empty")
    return metrics


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "num_round": _integer,
    "max_depth": _integer,
    "eta": _number,
    "subsample": _number,
    "min_child_weight": _number,
    "objective": _text,
    "eval_metric": _metrics,
    "gamma": _number,
    "lambda": _number,
    "alpha": _number,
    "colsample_bytree": _number,
    "scale_pos_weight": _number,
    "max_delta_step": _number,
    "seed": _integer,
    "nthread": _integer,
    "tree_method": _text,
}


def parse_hyperparameters(raw: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """XGBoost parameters and the number of rounds from SageMaker's string hyperparameters.

    Keys SageMaker adds itself (``_tuning_objective_metric``, ``sagemaker_*``) are ignored; any other unknown
    key is an error rather than a silently ignored typo.
    """
    if not isinstance(raw, Mapping):
        raise HyperparameterError(f"hyperparameters must be a JSON object, got {type(raw).__name__}")
    params: dict[str, Any] = {"objective": "binary:logistic", "eval_metric": [DEFAULT_EVAL_METRIC]}
    num_round: int | None = None
    for name, value in raw.items():
        if name.startswith("_") or name.startswith("sagemaker_"):
            continue
        if name not in PARSERS:
            raise HyperparameterError(f"unknown hyperparameter {name!r}; known: {', '.join(sorted(PARSERS))}")
        parsed = PARSERS[name](name, _unquote(value))
        if name == "num_round":
            num_round = parsed
        else:
            params[name] = parsed
    if num_round is None:
        raise HyperparameterError("num_round is required")
    if num_round < 1:
        raise HyperparameterError(f"num_round must be at least 1, got {num_round}")
    if params["objective"] not in OBJECTIVES:
        raise HyperparameterError(f"objective must be one of {', '.join(OBJECTIVES)}, got {params['objective']!r}")
    # validation-auc is the tuning objective: always log it, after the metrics asked for.
    metrics: list[str] = params["eval_metric"]
    params["eval_metric"] = [*dict.fromkeys([*metrics, DEFAULT_EVAL_METRIC])]
    return params, num_round
