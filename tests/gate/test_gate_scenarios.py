"""Stage verdicts on typical rollout situations, and the rules' edges."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from promotion.rollout.gate import (
    GateOutcome,
    GateSettings,
    SequentialState,
    StageObservation,
    StageVerdict,
    VariantMetrics,
    evaluate_stage,
)

SETTINGS = GateSettings()


def observe(
    n_a: int,
    x_a: int,
    n_b: int,
    x_b: int,
    share: float = 0.01,
    p99_a: float | None = 100.0,
    p99_b: float | None = 100.0,
    x4_a: int = 0,
    x4_b: int = 0,
) -> StageObservation:
    return StageObservation(
        challenger_share=share,
        champion=VariantMetrics(
            invocations=n_a, errors_5xx=x_a, errors_4xx=x4_a, latency_p50_ms=20.0, latency_p99_ms=p99_a
        ),
        challenger=VariantMetrics(
            invocations=n_b, errors_5xx=x_b, errors_4xx=x4_b, latency_p50_ms=20.0, latency_p99_ms=p99_b
        ),
    )


def judge(
    observation: StageObservation,
    final_look: bool = True,
    settings: GateSettings = SETTINGS,
    prior: SequentialState | None = None,
    may_pass: bool = True,
) -> StageVerdict:
    return evaluate_stage(observation, settings, final_look, prior=prior, may_pass=may_pass)


def test_aa_with_identical_rates_passes_at_the_end_of_the_bake() -> None:
    verdict = judge(observe(356_400, 3_564, 3_600, 36))
    assert verdict.outcome is GateOutcome.PASS, verdict.reason
    assert verdict.error_rate is not None and verdict.error_rate.pass_margin is not None
    assert verdict.error_rate.cs_lower < 0 < verdict.error_rate.cs_upper < verdict.error_rate.pass_margin
    assert verdict.srm is not None and verdict.srm.checked
    assert "No harm" in verdict.reason


def test_aa_is_not_failed_in_repeated_looks_typically() -> None:
    """200 simulated A/A stages (1% share, 1% errors), a look every 5 minutes for up to 3 hours (a 60-minute bake
    and two extensions), ending at the first decision: FAIL stays well under alpha and almost every stage passes."""
    rng = np.random.default_rng(2024)
    runs, minutes = 200, 180
    total = rng.poisson(6_000, size=(runs, minutes))
    n_b = rng.binomial(total, 0.01)
    n_a = total - n_b
    cum = [np.cumsum(a, axis=1) for a in (n_a, rng.binomial(n_a, 0.01), n_b, rng.binomial(n_b, 0.01))]
    outcomes = []
    for run in range(runs):
        prior = None
        for minute in range(4, minutes, 5):
            na, xa, nb, xb = (int(c[run, minute]) for c in cum)
            verdict = judge(observe(na, xa, nb, xb), final_look=minute == minutes - 1, prior=prior)
            prior = verdict.state
            if verdict.outcome is not GateOutcome.INCONCLUSIVE:
                break
        outcomes.append(verdict.outcome)
    assert outcomes.count(GateOutcome.FAIL) / runs <= SETTINGS.alpha
    assert outcomes.count(GateOutcome.PASS) / runs >= 0.98


def test_doubled_error_rate_with_plenty_of_traffic_fails_before_the_end() -> None:
    verdict = judge(observe(356_400, 3_564, 3_600, 72), final_look=False)
    assert verdict.outcome is GateOutcome.FAIL, verdict.reason
    assert verdict.error_rate is not None and verdict.error_rate.fail_margin is not None
    assert verdict.error_rate.cs_lower > verdict.error_rate.fail_margin
    assert verdict.error_rate.always_valid_p_value < SETTINGS.alpha
    assert "worse than the champion" in verdict.reason


def test_broken_challenger_fails_within_a_minute_of_traffic() -> None:
    verdict = judge(observe(5_940, 59, 60, 30), final_look=False)
    assert verdict.outcome is GateOutcome.FAIL, verdict.reason


def test_no_traffic_is_inconclusive() -> None:
    for final_look in (False, True):
        verdict = judge(observe(0, 0, 0, 0), final_look=final_look)
        assert verdict.outcome is GateOutcome.INCONCLUSIVE
        assert "No requests" in verdict.reason


def test_too_few_challenger_requests_at_the_end_is_inconclusive() -> None:
    verdict = judge(observe(15_000, 150, 150, 1))
    assert verdict.outcome is GateOutcome.INCONCLUSIVE
    assert "Too few requests" in verdict.reason


def test_wide_bound_at_the_end_is_inconclusive() -> None:
    # 250 challenger requests: a doubled error rate cannot be ruled out yet.
    verdict = judge(observe(24_750, 248, 250, 3))
    assert verdict.outcome is GateOutcome.INCONCLUSIVE, verdict.reason
    assert verdict.error_rate is not None and verdict.error_rate.pass_margin is not None
    assert verdict.error_rate.cs_upper >= verdict.error_rate.pass_margin
    assert "harm is not ruled out" in verdict.reason


def test_skewed_split_is_invalid() -> None:
    # 10% stage, but the challenger received only 8% of the requests.
    verdict = judge(observe(92_000, 920, 8_000, 80, share=0.1))
    assert verdict.outcome is GateOutcome.INVALID
    assert verdict.srm is not None and verdict.srm.p_value is not None
    assert verdict.srm.p_value < verdict.srm.alpha_this_look
    assert "Sample-ratio mismatch" in verdict.reason


def test_srm_threshold_tightens_with_every_look() -> None:
    # p ~ 2e-5: below what the first look spends (6.1e-4), above what the tenth spends (6.1e-6).
    observation = observe(356_000, 3_560, 3_860, 39)
    first = judge(observation, final_look=False, may_pass=False)
    tenth = judge(
        observation,
        final_look=False,
        may_pass=False,
        prior=SequentialState(
            looks=9,
            champion_invocations=0,
            challenger_invocations=0,
            always_valid_p_value=1.0,
            cs_lower=-1.0,
            cs_upper=1.0,
        ),
    )
    assert first.srm is not None and first.srm.p_value is not None
    assert tenth.srm is not None and tenth.srm.alpha_this_look < first.srm.p_value < first.srm.alpha_this_look
    assert first.outcome is GateOutcome.INVALID
    assert tenth.outcome is GateOutcome.INCONCLUSIVE


def test_slow_p99_fails() -> None:
    verdict = judge(observe(356_400, 3_564, 3_600, 36, p99_a=120.0, p99_b=240.0), final_look=False)
    assert verdict.outcome is GateOutcome.FAIL
    assert verdict.latency is not None and verdict.latency.p99_ratio == pytest.approx(2.0)
    assert "p99 latency" in verdict.reason


def test_p99_of_too_few_requests_neither_fails_nor_passes_a_stage() -> None:
    """Below min_latency_requests a p99 rests on a handful of requests: no FAIL on it, and no PASS without it."""
    slow = judge(observe(89_100, 891, 900, 2, p99_a=120.0, p99_b=240.0), final_look=False)
    assert slow.outcome is GateOutcome.INCONCLUSIVE and slow.latency is not None and not slow.latency.checked
    good = judge(observe(89_100, 891, 900, 0), settings=SETTINGS.model_copy(update={"beta": 0.3}))
    assert good.outcome is GateOutcome.INCONCLUSIVE
    assert "compare p99 latencies" in good.reason
    enough = SETTINGS.model_copy(update={"beta": 0.3, "min_latency_requests": 500})
    assert judge(observe(89_100, 891, 900, 0), settings=enough).outcome is GateOutcome.PASS


def test_slow_p99_with_too_few_requests_does_not_fail() -> None:
    verdict = judge(observe(9_900, 99, 100, 1, p99_a=120.0, p99_b=240.0), final_look=False)
    assert verdict.outcome is GateOutcome.INCONCLUSIVE
    assert verdict.latency is not None and not verdict.latency.checked


def test_missing_latency_blocks_pass() -> None:
    verdict = judge(observe(356_400, 3_564, 3_600, 36, p99_b=None))
    assert verdict.outcome is GateOutcome.INCONCLUSIVE
    assert "p99" in verdict.reason


def test_good_challenger_passes_at_the_first_look_after_the_minimum_bake() -> None:
    """The bounds are anytime-valid, so a stage ends as soon as the harm is ruled out, not at the end of its bake."""
    observation = observe(356_400, 3_564, 3_600, 36)
    early = judge(observation, final_look=False, may_pass=False)
    assert early.outcome is GateOutcome.INCONCLUSIVE
    assert "keeps baking" in early.reason and "minimum bake" in early.reason
    assert judge(observation, final_look=False).outcome is GateOutcome.PASS


def test_undecided_stage_keeps_baking_until_its_longest_bake_is_over() -> None:
    # 1,000 challenger requests at 1 %: neither a doubling ruled out nor harm shown.
    observation = observe(99_000, 990, 1_000, 12)
    verdict = judge(observation, final_look=False)
    assert verdict.outcome is GateOutcome.INCONCLUSIVE
    assert "keeps baking" in verdict.reason and "not ruled out" in verdict.reason
    final = judge(observation, final_look=True)
    assert final.outcome is GateOutcome.INCONCLUSIVE and "keeps baking" not in final.reason


def test_pass_and_fail_sides_use_their_own_levels() -> None:
    """A looser beta passes sooner; a looser alpha fails sooner; neither changes the other side's bound."""
    observation = observe(178_200, 1_782, 1_800, 18)
    strict, loose = SETTINGS, SETTINGS.model_copy(update={"beta": 0.2})
    assert judge(observation, final_look=False, settings=strict).outcome is GateOutcome.INCONCLUSIVE
    assert judge(observation, final_look=False, settings=loose).outcome is GateOutcome.PASS
    a, b = judge(observation, settings=strict).error_rate, judge(observation, settings=loose).error_rate
    assert a is not None and b is not None
    assert a.cs_lower == b.cs_lower and b.cs_upper < a.cs_upper


def test_inconsistent_counts_are_invalid() -> None:
    verdict = judge(observe(1_000, 10, 100, 90, x4_b=20))
    assert verdict.outcome is GateOutcome.INVALID
    assert verdict.error_rate is None


def test_counts_going_down_between_looks_are_invalid() -> None:
    first = judge(observe(356_400, 3_564, 3_600, 36), final_look=False)
    second = judge(observe(300_000, 3_000, 3_000, 30), final_look=False, prior=first.state)
    assert second.outcome is GateOutcome.INVALID
    assert "went down" in second.reason
    assert second.state == first.state


def test_running_p_value_and_confidence_sequence_only_tighten() -> None:
    # A bad start then a recovery: this look's own 1/Lambda and CS would loosen again, the running ones must not.
    looks = [(29_700, 297, 300, 8), (59_400, 594, 600, 11), (89_100, 891, 900, 12), (118_800, 1188, 1_200, 15)]
    prior = None
    previous = (1.0, -1.0, 1.0)
    for n_a, x_a, n_b, x_b in looks:
        verdict = judge(observe(n_a, x_a, n_b, x_b), final_look=False, prior=prior)
        prior = verdict.state
        current = (prior.always_valid_p_value, prior.cs_lower, prior.cs_upper)
        assert current[0] <= previous[0]
        assert previous[1] <= current[1] <= current[2] <= previous[2]
        previous = current
    assert prior is not None and prior.looks == len(looks)
    assert verdict.error_rate is not None and verdict.error_rate.log_likelihood_ratio is not None
    assert prior.always_valid_p_value < min(1.0, np.exp(-verdict.error_rate.log_likelihood_ratio))


def test_two_errors_against_a_clean_champion_are_not_a_failure() -> None:
    """2 errors in 60 requests vs a 0.1% champion: pooled z = 6.8, yet a 0.17% event; min_errors_to_fail guards."""
    observation = observe(5_940, 6, 60, 2)
    assert judge(observation, final_look=False).outcome is GateOutcome.INCONCLUSIVE
    unguarded = SETTINGS.model_copy(update={"min_errors_to_fail": 1, "error_rate_abs_tolerance": 0.0})
    assert judge(observation, final_look=False, settings=unguarded).outcome is GateOutcome.FAIL


def test_4xx_are_reported_but_only_gated_when_asked() -> None:
    observation = observe(356_400, 3_564, 3_600, 36, x4_a=3_564, x4_b=108)
    reported = judge(observation, final_look=False)
    assert reported.outcome is GateOutcome.PASS, reported.reason
    assert reported.challenger.error_rate_4xx == pytest.approx(0.03)
    assert reported.error_rate is not None and reported.error_rate.z_statistic_4xx is not None
    assert reported.error_rate.z_statistic_4xx > 5
    gated = judge(observation, final_look=False, settings=SETTINGS.model_copy(update={"count_4xx_as_errors": True}))
    assert gated.outcome is GateOutcome.FAIL
    assert gated.error_rate is not None and gated.error_rate.errors_counted == "5XX+4XX"


def test_full_traffic_stage_compares_with_a_champion_reference_and_skips_srm() -> None:
    verdict = judge(observe(180_000, 1_800, 360_000, 3_560, share=1.0))
    assert verdict.srm is not None and not verdict.srm.checked
    assert verdict.outcome is GateOutcome.PASS, verdict.reason


def test_pass_bound_below_fail_tolerance_is_refused() -> None:
    with pytest.raises(ValidationError):
        GateSettings(pass_abs_excess=0.0001, error_rate_abs_tolerance=0.001)
    with pytest.raises(ValidationError):
        GateSettings(pass_max_ratio=1.05, error_rate_max_ratio=1.1)


def test_observation_rejects_impossible_inputs() -> None:
    with pytest.raises(ValidationError):
        VariantMetrics(invocations=-1)
    with pytest.raises(ValidationError):
        observe(100, 1, 10, 0, share=0.0)
    with pytest.raises(ValidationError):
        observe(100, 1, 10, 0, share=1.5)


def test_verdict_round_trips_through_json() -> None:
    verdict = judge(observe(356_400, 3_564, 3_600, 72), final_look=False)
    assert StageVerdict.model_validate_json(verdict.model_dump_json()) == verdict


def test_the_full_traffic_reference_adds_up_the_champions_shared_stages() -> None:
    """At 100 % the challenger is compared with everything the champion served beside it (its error rate does not
    depend on the split), and with the p99 of its last shared stage (percentiles of separate windows do not add)."""
    from promotion.rollout.steps import champion_reference

    first = VariantMetrics(invocations=280_000, errors_5xx=2_800, errors_4xx=10, latency_p99_ms=100.0)
    last = VariantMetrics(invocations=45_000, errors_5xx=460, errors_4xx=3, latency_p50_ms=21.0, latency_p99_ms=104.0)
    assert champion_reference(None, first) == first
    merged = champion_reference(first.model_dump(mode="json"), last)
    assert (merged.invocations, merged.errors_5xx, merged.errors_4xx) == (325_000, 3_260, 13)
    assert (merged.latency_p50_ms, merged.latency_p99_ms) == (21.0, 104.0)
