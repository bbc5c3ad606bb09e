"""Traffic of the staged rollout: per-stage variant weights and sticky user assignment (the variants' names are
promotion.contract.names).

Pure Python (standard library only): runs in the Lambda layer next to the gate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

__all__ = ["assign_variant", "stage_weights"]

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
