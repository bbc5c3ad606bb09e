"""Invariants of the rollout gate (promotion.rollout.gate) on arbitrary counts: what a verdict claims is what its
numbers say,
the running bounds only tighten, and more errors never make a challenger look better."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from promotion.rollout.gate import (
    GateOutcome,
    GateSettings,
    SequentialState,
    StageObservation,
    StageVerdict,
    VariantMetrics,
    evaluate_stage,
    lower_confidence_bound,
    upper_confidence_bound,
)
from tests.strategies import examples

GATE = settings(max_examples=examples(150), deadline=None)
SETTINGS = GateSettings()


@st.composite
def stage_counts(draw: st.DrawFn) -> tuple[int, int, int, int, float]:
    """(champion errors, champion requests, challenger errors, challenger requests, challenger share)."""
    share = draw(st.sampled_from([0.01, 0.1, 0.5]))
    n_b = draw(st.integers(min_value=1, max_value=20_000))
    n_a = max(1, round(n_b * (1 - share) / share * draw(st.floats(min_value=0.97, max_value=1.03))))
    x_a = draw(st.integers(min_value=0, max_value=min(n_a, max(1, n_a // 20))))
    x_b = draw(st.integers(min_value=0, max_value=min(n_b, max(1, n_b // 5))))
    return x_a, n_a, x_b, n_b, share


def observe(x_a: int, n_a: int, x_b: int, n_b: int, share: float, p99_b: float = 100.0) -> StageObservation:
    return StageObservation(
        challenger_share=share,
        champion=VariantMetrics(invocations=n_a, errors_5xx=x_a, latency_p99_ms=100.0),
        challenger=VariantMetrics(invocations=n_b, errors_5xx=x_b, latency_p99_ms=p99_b),
    )


@GATE
@given(stage_counts(), st.sampled_from([0.005, 0.01, 0.05]), st.sampled_from([0.01, 0.05, 0.2]))
def test_the_bounds_bracket_the_observed_difference(
    counts: tuple[int, int, int, int, float], tau: float, level: float
) -> None:
    x_a, n_a, x_b, n_b, _ = counts
    difference = x_b / n_b - x_a / n_a
    assert -1 <= lower_confidence_bound(x_a, n_a, x_b, n_b, tau, level) <= difference
    assert difference <= upper_confidence_bound(x_a, n_a, x_b, n_b, tau, level) <= 1


@GATE
@given(stage_counts(), st.booleans(), st.booleans())
def test_a_verdict_says_only_what_its_numbers_show(
    counts: tuple[int, int, int, int, float], final_look: bool, may_pass: bool
) -> None:
    verdict = evaluate_stage(observe(*counts), SETTINGS, final_look=final_look, may_pass=may_pass)
    errors = verdict.error_rate
    if verdict.outcome is GateOutcome.PASS:
        assert may_pass
        assert errors is not None and errors.pass_margin is not None
        assert errors.cs_upper < errors.pass_margin
        assert verdict.latency is not None and verdict.latency.checked
        assert verdict.latency.p99_ratio is not None and verdict.latency.p99_ratio <= SETTINGS.p99_latency_max_ratio
    if verdict.outcome is GateOutcome.FAIL and errors is not None and "error rate" in verdict.reason:
        assert errors.fail_margin is not None and errors.cs_lower > errors.fail_margin
        assert verdict.challenger.errors_5xx >= SETTINGS.min_errors_to_fail
    if verdict.outcome is GateOutcome.INCONCLUSIVE and not final_look:
        assert "keeps baking" in verdict.reason or "No requests" in verdict.reason
    assert StageVerdict.model_validate_json(verdict.model_dump_json()) == verdict


@GATE
@given(stage_counts(), st.integers(min_value=1, max_value=50))
def test_more_challenger_errors_never_turn_a_fail_into_a_pass(
    counts: tuple[int, int, int, int, float], more: int
) -> None:
    x_a, n_a, x_b, n_b, share = counts
    assume(x_b + more <= n_b)
    rank = {GateOutcome.PASS: 0, GateOutcome.INCONCLUSIVE: 1, GateOutcome.FAIL: 2}
    fewer = evaluate_stage(observe(x_a, n_a, x_b, n_b, share), SETTINGS, final_look=True)
    worse = evaluate_stage(observe(x_a, n_a, x_b + more, n_b, share), SETTINGS, final_look=True)
    assume(GateOutcome.INVALID not in (fewer.outcome, worse.outcome))
    assert rank[worse.outcome] >= rank[fewer.outcome], (fewer.reason, worse.reason)
    assert worse.error_rate is not None and fewer.error_rate is not None
    assert worse.error_rate.cs_lower >= fewer.error_rate.cs_lower
    assert worse.error_rate.cs_upper >= fewer.error_rate.cs_upper


@GATE
@given(st.lists(st.tuples(st.integers(0, 3_000), st.integers(0, 30)), min_size=2, max_size=8))
def test_running_bounds_only_tighten_from_look_to_look(increments: list[tuple[int, int]]) -> None:
    """Whatever the next minutes bring, the running lower bound never falls and the upper bound never rises,
    unless they crossed (then the look restarts them and says so)."""
    n_a = x_a = n_b = x_b = 0
    prior: SequentialState | None = None
    for requests, errors in increments:
        n_b += max(1, requests // 99)
        n_a += requests
        x_b = min(n_b, x_b + errors // 10)
        x_a = min(n_a, x_a + errors)
        verdict = evaluate_stage(observe(x_a, n_a, x_b, n_b, 0.01), SETTINGS, final_look=False, prior=prior)
        if verdict.error_rate is not None and prior is not None and not verdict.error_rate.cs_restarted:
            assert verdict.state.cs_lower >= prior.cs_lower
            assert verdict.state.cs_upper <= prior.cs_upper
            assert verdict.state.always_valid_p_value <= prior.always_valid_p_value
        if verdict.outcome is not GateOutcome.INCONCLUSIVE:
            break
        prior = verdict.state
