"""Traffic of the staged rollout: per-stage variant weights, SageMaker resource names, sticky user assignment.

Pure Python (standard library only): runs in the Lambda layer next to the gate.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

__all__ = [
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "assign_variant",
    "challenger_variant_name",
    "champion_variant_name",
    "endpoint_config_name",
    "final_endpoint_config_name",
    "model_name",
    "name_pattern",
    "stage_weights",
]

MAX_NAME_LENGTH = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_RELEASE_ID_LENGTH = 32
HASH_LENGTH = 8
_PARTS_PER_MILLION = 1_000_000


# ---------------------------------------------------------------------------------------------------------------
# Stage weights.


def stage_weights(stages: Sequence[float]) -> list[tuple[float, float]]:
    """(champion, challenger) weights per stage from challenger percentages such as [1, 10, 50, 100].

    Weights are whole parts per million (6 decimals): challenger = k / 1e6 and champion = (1e6 - k) / 1e6, whose
    float sum is exactly 1.0 for every k in 0..1e6 (checked exhaustively in the tests). A percentage that does not
    survive that rounding as strictly increasing and above 0 is refused rather than silently merged.
    """
    if not stages:
        raise ValueError("a rollout needs at least one stage")
    weights: list[tuple[float, float]] = []
    previous = 0
    for percent in stages:
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise TypeError(f"stage {percent!r} is not a number")
        if not math.isfinite(percent) or not 0 < percent <= 100:
            raise ValueError(f"stage {percent!r}% is outside (0, 100]")
        ppm = round(percent * (_PARTS_PER_MILLION // 100))
        if ppm <= previous:
            raise ValueError(f"stages must be strictly increasing (at 6-decimal weight precision): {list(stages)!r}")
        previous = ppm
        weights.append(((_PARTS_PER_MILLION - ppm) / _PARTS_PER_MILLION, ppm / _PARTS_PER_MILLION))
    if stages[-1] != 100:
        raise ValueError(f"the last stage must send 100% to the challenger, got {stages[-1]!r}%")
    return weights


# ---------------------------------------------------------------------------------------------------------------
# SageMaker names.


def _check_part(label: str, value: str, max_length: int) -> None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{label} {value!r} must match {NAME_PATTERN.pattern}")
    if len(value) > max_length:
        raise ValueError(f"{label} {value!r} is longer than {max_length} characters")


def _resource_name(role: str, model_id: str, release_id: str) -> str:
    """`<model id>-<role>-<release id>-<hash8>`, at most 63 characters, matching SageMaker's name pattern.

    The release id is always kept whole; the model id is cut to the room left. The hash covers role, full model id
    and release id (newline-separated, a character no valid part contains), so names that the cut or an ambiguous
    dash split make look alike still differ unless 32 bits of sha256 collide.
    """
    _check_part("model id", model_id, MAX_NAME_LENGTH)
    _check_part("release id", release_id, MAX_RELEASE_ID_LENGTH)
    digest = hashlib.sha256(f"{role}\n{model_id}\n{release_id}".encode()).hexdigest()[:HASH_LENGTH]
    suffix = f"-{role}-{release_id}-{digest}"
    return model_id[: MAX_NAME_LENGTH - len(suffix)] + suffix


def challenger_variant_name(model_id: str, release_id: str) -> str:
    """Production variant that serves the release under test."""
    return _resource_name("challenger", model_id, release_id)


def champion_variant_name(model_id: str, release_id: str) -> str:
    """Production variant that serves the current release (pass the champion's release id)."""
    return _resource_name("champion", model_id, release_id)


def endpoint_config_name(model_id: str, release_id: str) -> str:
    """Endpoint config holding both variants during the rollout of `release_id`."""
    return _resource_name("config", model_id, release_id)


def final_endpoint_config_name(model_id: str, release_id: str) -> str:
    """Endpoint config holding the promoted challenger alone, once the rollout of `release_id` is done."""
    return f"{endpoint_config_name(model_id, release_id)[:55]}-final"


def model_name(model_id: str, release_id: str) -> str:
    """SageMaker Model (container + artefact) of one release."""
    return _resource_name("model", model_id, release_id)


def name_pattern(role: str, model_id: str) -> str:
    """An IAM resource-name pattern that every name `role` ("model", "config") gets for `model_id`, whatever the
    release id, matches (and the final endpoint configs): the model id as far as the longest release id leaves it
    uncut, then `-<role>-`. The product's grants to create and delete models and endpoint configs name these, so
    they reach no other SageMaker model or endpoint config in the account."""
    uncut = MAX_NAME_LENGTH - len(f"-{role}-") - MAX_RELEASE_ID_LENGTH - 1 - HASH_LENGTH
    kept = model_id[:uncut]
    return f"{model_id}-{role}-*" if kept == model_id else f"{kept}*-{role}-*"


# ---------------------------------------------------------------------------------------------------------------
# Sticky assignment.


def _unit_point(user_id: str, salt: str) -> Fraction:
    """The user's fixed point in [0, 1): the first 64 bits of sha256(salt, user id) over 2^64."""
    digest = hashlib.sha256(f"{salt}\n{user_id}".encode()).digest()
    return Fraction(int.from_bytes(digest[:8], "big"), 1 << 64)


def assign_variant(user_id: str, weights: Mapping[str, float], salt: str = "") -> str:
    """The variant a user is served by, the same on every call while the weights stay the same.

    Each user has a fixed point u in [0, 1) (a hash of the user id, so no state is kept). Variants are laid out on
    [0, 1) in name order, each over an interval as long as its share of the total weight, and the user gets the
    variant whose interval holds u. With the rollout's two variants, one sits on [0, s) and the other on [s, 1):
    both intervals touch an end of [0, 1), so when the challenger's share grows its interval only grows (the
    boundary s moves away from its anchored end) and swallows champion users, while no challenger user leaves it.
    Users therefore only ever move champion -> challenger. Comparisons use exact fractions (weights are converted
    exactly from their floats), so float rounding cannot move a boundary the wrong way. With more than two
    variants assignments are still sticky for fixed weights, but a growing middle variant shifts its neighbours.

    `salt` (e.g. the release id) picks a different, independent set of users for each rollout.
    """
    if not weights:
        raise ValueError("no variants to assign to")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {weight!r}")
    serving = sorted(name for name, weight in weights.items() if weight > 0)
    if not serving:
        raise ValueError("at least one variant needs a positive weight")
    exact = {name: Fraction(weights[name]) for name in serving}
    total = sum(exact.values(), Fraction(0))
    point = _unit_point(user_id, salt) * total
    cumulative = Fraction(0)
    for name in serving:
        cumulative += exact[name]
        if point < cumulative:
            return name
    return serving[-1]
