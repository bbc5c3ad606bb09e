"""Rollout weights, SageMaker names and sticky user assignment (properties and fixed cases)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from promotion.contract.names import (
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    challenger_variant_name,
    champion_variant_name,
    endpoint_config_name,
    model_name,
)
from promotion.rollout.weights import assign_variant, stage_weights

NAME_PART = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"
model_ids = st.from_regex(NAME_PART, fullmatch=True).filter(lambda s: len(s) <= MAX_NAME_LENGTH)
release_ids = st.one_of(
    # what layout.release_id_for makes, and what a takeover of an abandoned claim makes of it
    st.from_regex(r"20[0-9]{6}-[0-9]{6}-[0-9a-f]{6}(-t[1-9][0-9]?)?", fullmatch=True),
    st.from_regex(NAME_PART, fullmatch=True).filter(lambda s: len(s) <= 32),
)
NAMERS = [challenger_variant_name, champion_variant_name, endpoint_config_name, model_name]


# ---------------------------------------------------------------------------------------------------------------
# Stage weights.


def test_default_stages() -> None:
    assert stage_weights([1, 10, 50, 100]) == [(0.99, 0.01), (0.9, 0.1), (0.5, 0.5), (0.0, 1.0)]


@pytest.mark.parametrize(
    "stages",
    [[], [0, 100], [-1, 100], [10, 5, 100], [1, 1, 100], [1, 10, 50], [50, 101], [math.nan, 100], [math.inf]],
)
def test_invalid_stage_lists_are_refused(stages: list[float]) -> None:
    with pytest.raises(ValueError, match="stage"):
        stage_weights(stages)


def test_stages_that_collapse_at_weight_precision_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        stage_weights([0.00001, 100])  # rounds to a 0 weight
    with pytest.raises(ValueError, match="strictly increasing"):
        stage_weights([10.00001, 10.00002, 100])  # both round to 0.100000


def test_non_numbers_are_refused() -> None:
    with pytest.raises(TypeError):
        stage_weights([True, 100])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        stage_weights(["10", 100])  # type: ignore[list-item]


def test_every_representable_weight_pair_sums_to_exactly_one() -> None:
    """Weights are k/1e6 and (1e6-k)/1e6; their float sum is exactly 1.0 for every k (exhaustive)."""
    scale = 1_000_000
    assert all((scale - k) / scale + k / scale == 1.0 for k in range(scale + 1))


def _valid_stage_lists() -> st.SearchStrategy[list[float]]:
    """Strictly increasing percentages ending at 100, drawn both as float percentages and as exact 6-decimal ones."""
    as_ppm = st.lists(st.integers(1, 999_999), max_size=12, unique=True).map(
        lambda ppm: [p / 10_000 for p in sorted(ppm)] + [100]
    )
    as_float = st.lists(st.floats(min_value=1e-3, max_value=99.999, allow_nan=False), max_size=12, unique=True).map(
        lambda values: [*sorted(values), 100.0]
    )
    return st.one_of(as_ppm, as_float)


@settings(max_examples=200)
@given(_valid_stage_lists())
def test_rollout_weights_sum_to_one_and_only_grow(stages: list[float]) -> None:
    try:
        weights = stage_weights(stages)
    except ValueError:
        # Only lists whose neighbours collapse at 6-decimal precision may be refused.
        ppm = [round(s * 10_000) for s in stages]
        assert any(b <= a for a, b in zip([0, *ppm], ppm, strict=False))
        return
    assert len(weights) == len(stages)
    challenger_shares = [challenger for _, challenger in weights]
    for (champion, challenger), percent in zip(weights, stages, strict=True):
        assert champion + challenger == 1.0
        assert 0.0 <= champion < 1.0 and 0.0 < challenger <= 1.0
        assert round(challenger, 6) == challenger and round(champion, 6) == champion
        assert challenger == pytest.approx(percent / 100, abs=5e-7)
    assert all(b > a for a, b in itertools.pairwise(challenger_shares))
    assert weights[-1] == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Names.


def test_names_for_the_shipped_model() -> None:
    name = challenger_variant_name("fraud-detection", "20240101-120000-abcdef")
    assert name.startswith("fraud-detection-challenger-20240101-120000-abcdef-")
    assert len(name) <= MAX_NAME_LENGTH


@settings(max_examples=200)
@given(model_ids, release_ids, model_ids, release_ids)
def test_property_21_challenger_endpoint_naming(model: str, release: str, other_model: str, other_release: str) -> None:
    names = [namer(model, release) for namer in NAMERS]
    for name in names:
        assert len(name) <= MAX_NAME_LENGTH
        assert NAME_PATTERN.fullmatch(name)
        assert release in name
    challenger = names[0]
    model_part = challenger.split(f"-challenger-{release}-")[0]
    assert model.startswith(model_part) and len(model_part) >= 1
    if len(model) <= MAX_NAME_LENGTH - len(f"-challenger-{release}-") - 8:
        assert challenger.startswith(f"{model}-challenger-")
    # Deterministic, distinct per role, and distinct for distinct inputs.
    assert challenger_variant_name(model, release) == challenger
    assert len(set(names)) == len(names)
    assume((model, release) != (other_model, other_release))
    assert challenger_variant_name(other_model, other_release) != challenger


def test_names_stay_distinct_when_the_model_id_is_truncated() -> None:
    release = "20240101-120000-abcdef"
    models = [f"{'m' * 40}{i}" for i in range(2_000)]  # all share the same 20 visible characters
    names = {challenger_variant_name(m, release) for m in models}
    assert len(names) == len(models)
    assert all(len(n) <= MAX_NAME_LENGTH for n in names)


@pytest.mark.parametrize(
    ("model", "release"),
    [("", "r1"), ("-model", "r1"), ("model_x", "r1"), ("model", ""), ("model", "rel/1"), ("model", "r" * 33)],
)
def test_invalid_name_parts_are_refused(model: str, release: str) -> None:
    with pytest.raises(ValueError, match=r"must match|longer than"):
        challenger_variant_name(model, release)


# ---------------------------------------------------------------------------------------------------------------
# Sticky assignment.

CHALLENGER = challenger_variant_name("fraud-detection", "20240101-120000-abcdef")
CHAMPION = champion_variant_name("fraud-detection", "20231201-090000-123456")


def _weights(share: float, challenger: str = CHALLENGER, champion: str = CHAMPION) -> dict[str, float]:
    return {champion: 1.0 - share, challenger: share}


@pytest.mark.parametrize("share", [0.01, 0.1, 0.5, 0.9])
def test_assignment_matches_weights_over_many_users(share: float) -> None:
    """20,000 users land on the challenger within 1.5 percentage points of its weight."""
    users = [f"user-{i}" for i in range(20_000)]
    observed = sum(assign_variant(u, _weights(share)) == CHALLENGER for u in users) / len(users)
    assert abs(observed - share) <= 0.015


@settings(max_examples=200)
@given(st.text(max_size=40), st.floats(min_value=0.0, max_value=1.0), st.text(max_size=10))
def test_assignment_is_sticky(user: str, share: float, salt: str) -> None:
    weights = _weights(share)
    first = assign_variant(user, weights, salt=salt)
    assert first in weights
    assert assign_variant(user, dict(reversed(list(weights.items()))), salt=salt) == first
    assert assign_variant(user, weights, salt=salt) == first
    if share == 0.0:
        assert first == CHAMPION
    if share == 1.0:
        assert first == CHALLENGER


@settings(max_examples=200)
@given(
    st.text(max_size=40),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
    st.booleans(),
)
def test_users_only_move_from_champion_to_challenger_as_its_share_grows(
    user: str, share_a: float, share_b: float, challenger_sorts_first: bool
) -> None:
    low, high = sorted((share_a, share_b))
    # Both name orders: the challenger's interval is anchored at 0 or at 1 depending on how the names sort.
    challenger, champion = ("a-challenger", "b-champion") if challenger_sorts_first else ("b-challenger", "a-champion")
    before = assign_variant(user, _weights(low, challenger, champion))
    after = assign_variant(user, _weights(high, challenger, champion))
    if before == challenger:
        assert after == challenger


def test_challenger_users_are_nested_across_the_real_stages() -> None:
    users = [f"card-{i}" for i in range(5_000)]
    previous: set[str] = set()
    for champion_weight, challenger_weight in stage_weights([1, 10, 50, 100]):
        weights = {CHAMPION: champion_weight, CHALLENGER: challenger_weight}
        current = {u for u in users if assign_variant(u, weights, salt="20240101-120000-abcdef") == CHALLENGER}
        assert previous <= current
        assert len(current) > len(previous)
        previous = current
    assert previous == set(users)


def test_salt_picks_a_different_set_of_users() -> None:
    users = [f"user-{i}" for i in range(5_000)]
    weights = _weights(0.1)
    first = {u for u in users if assign_variant(u, weights, salt="release-1") == CHALLENGER}
    second = {u for u in users if assign_variant(u, weights, salt="release-2") == CHALLENGER}
    assert first != second
    assert len(first & second) < 0.5 * len(first)


@pytest.mark.parametrize(
    "weights", [{}, {"a": 0.0, "b": 0.0}, {"a": -0.1, "b": 1.1}, {"a": math.nan, "b": 1.0}, {"a": math.inf}]
)
def test_invalid_weights_are_refused(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"variant|weight"):
        assign_variant("user", weights)


def test_zero_weight_variant_is_never_chosen() -> None:
    weights = {"a-challenger": 0.0, "b-champion": 1.0, "c-shadow": 0.0}
    assert {assign_variant(f"u{i}", weights) for i in range(2_000)} == {"b-champion"}
