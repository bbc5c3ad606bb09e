"""Benchmark of the online A/B gate (promotion.gate) on simulated rollouts at the 1% stage.

(a) A/A: both variants at the same error rate, the orchestrator looking every 5 minutes (and every minute) during a
    1-hour bake. How often does the gate roll back a harmless challenger? The mSPRT gate should stay <= alpha; a
    fixed-horizon z-test applied at every look should not.
(b) A 2x error-rate regression (1% -> 2%): how many challenger requests until the gate stops it, how often it is
    caught, beside the sample size a fixed-horizon test needs for 80% power at the same alpha.

Traffic: Poisson arrivals, 6,000 requests a minute (100 per second) on the endpoint, each routed to the challenger
with probability 1%; errors Bernoulli per request. Latency is the same for both variants (not under test here).
The gate is the production code (pure Python); numpy only simulates traffic and runs the naive comparator.

Run: .venv/bin/python bench/bench_gate.py [--runs 1000] [--seed 7]; writes bench/results/gate.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "promotion" / "python"))

from promotion.gate import (  # noqa: E402
    GateOutcome,
    GateSettings,
    SequentialState,
    StageObservation,
    VariantMetrics,
    evaluate_stage,
)

REQUESTS_PER_MINUTE = 6_000
CHALLENGER_SHARE = 0.01
BASE_ERROR_RATE = 0.01
LOW_BASE_ERROR_RATE = 0.001
ALPHA = 0.05
REGRESSED_ERROR_RATE = 0.02
BAKE_MINUTES = 60
EXTENDED_MINUTES = 120
POWER = 0.80
P50_MS, P99_MS = 20.0, 100.0

IntArray = NDArray[np.int64]


class Traffic:
    """Cumulative per-minute counts of many simulated rollouts of one stage."""

    def __init__(self, rng: np.random.Generator, runs: int, minutes: int, p_champion: float, p_challenger: float):
        self.p_champion, self.p_challenger = p_champion, p_challenger
        total = rng.poisson(REQUESTS_PER_MINUTE, size=(runs, minutes))
        n_b = rng.binomial(total, CHALLENGER_SHARE)
        n_a = total - n_b
        x_a = rng.binomial(n_a, p_champion)
        x_b = rng.binomial(n_b, p_challenger)
        self.n_a: IntArray = np.cumsum(n_a, axis=1)
        self.n_b: IntArray = np.cumsum(n_b, axis=1)
        self.x_a: IntArray = np.cumsum(x_a, axis=1)
        self.x_b: IntArray = np.cumsum(x_b, axis=1)

    def observation(self, run: int, minute: int) -> StageObservation:
        """The CloudWatch view at the end of `minute` (1-based) of the stage."""
        i = minute - 1
        return StageObservation(
            challenger_share=CHALLENGER_SHARE,
            champion=VariantMetrics(
                invocations=int(self.n_a[run, i]),
                errors_5xx=int(self.x_a[run, i]),
                latency_p50_ms=P50_MS,
                latency_p99_ms=P99_MS,
            ),
            challenger=VariantMetrics(
                invocations=int(self.n_b[run, i]),
                errors_5xx=int(self.x_b[run, i]),
                latency_p50_ms=P50_MS,
                latency_p99_ms=P99_MS,
            ),
        )


def run_gate(traffic: Traffic, settings: GateSettings, looks: list[int], final_minute: int) -> list[dict[str, Any]]:
    """Each rollout looked at `looks` (minutes) until FAIL/INVALID; the look at `final_minute` is the final one."""
    results = []
    runs = traffic.n_a.shape[0]
    for run in range(runs):
        state: SequentialState | None = None
        outcome, stop_minute, stop_requests = GateOutcome.INCONCLUSIVE, None, None
        for minute in looks:
            verdict = evaluate_stage(
                traffic.observation(run, minute), settings, final_look=minute == final_minute, prior=state
            )
            state = verdict.state
            outcome = verdict.outcome
            if outcome in (GateOutcome.FAIL, GateOutcome.INVALID):
                stop_minute, stop_requests = minute, verdict.challenger.invocations
                break
        results.append({"outcome": outcome, "minute": stop_minute, "challenger_requests": stop_requests})
    return results


def pooled_z(traffic: Traffic, minute_index: IntArray | int) -> NDArray[np.float64]:
    """Pooled two-proportion z (challenger - champion) of every run at the given minute(s)."""
    n_a, n_b = traffic.n_a[:, minute_index], traffic.n_b[:, minute_index]
    x_a, x_b = traffic.x_a[:, minute_index], traffic.x_b[:, minute_index]
    pooled = (x_a + x_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x_b / n_b - x_a / n_a) / se, 0.0)
    return np.asarray(z, dtype=np.float64)


def naive_rates(traffic: Traffic, looks: list[int], alpha: float) -> dict[str, float]:
    """Fixed-horizon two-sided z-test (level alpha) applied at every look, and only at the last one."""
    critical = stats.norm.ppf(1 - alpha / 2)
    z = pooled_z(traffic, np.asarray(looks) - 1)
    return {
        "harm_side_any_look": float(np.mean((z > critical).any(axis=1))),
        "either_side_any_look": float(np.mean((np.abs(z) > critical).any(axis=1))),
        "harm_side_final_look_only": float(np.mean(z[:, -1] > critical)),
    }


def aa_case(traffic: Traffic, cadence: int, default: GateSettings, zero_margin: GateSettings) -> dict[str, Any]:
    """False rollbacks of one A/A traffic sample looked at every `cadence` minutes, gate vs naive z."""
    looks = list(range(cadence, BAKE_MINUTES + 1, cadence))
    gate_default = run_gate(traffic, default, looks, BAKE_MINUTES)
    gate_zero = run_gate(traffic, zero_margin, looks, BAKE_MINUTES)
    return {
        "looks": len(looks),
        "base_error_rate": traffic.p_champion,
        "msprt_gate_default": {
            "false_rollback_rate": fraction(gate_default, GateOutcome.FAIL)
            + fraction(gate_default, GateOutcome.INVALID),
            "fail_rate": fraction(gate_default, GateOutcome.FAIL),
            "invalid_srm_rate": fraction(gate_default, GateOutcome.INVALID),
            "pass_rate_at_end_of_bake": fraction(gate_default, GateOutcome.PASS),
            "inconclusive_rate_at_end_of_bake": fraction(gate_default, GateOutcome.INCONCLUSIVE),
        },
        "msprt_gate_zero_tolerance": {"fail_rate": fraction(gate_zero, GateOutcome.FAIL)},
        "naive_fixed_horizon_z": naive_rates(traffic, looks, ALPHA),
    }


def fraction(results: list[dict[str, Any]], outcome: GateOutcome) -> float:
    return sum(r["outcome"] == outcome for r in results) / len(results)


def fixed_horizon_n(p_a: float, p_b: float, alpha: float, power: float, ratio: float, margin: float = 0.0) -> int:
    """Challenger requests a fixed-horizon two-sided test needs (champion gets `ratio` times as many).

    margin 0: the classic pooled two-proportion formula; margin > 0: Wald test of H0 diff <= margin.
    """
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    alt_var = p_b * (1 - p_b) + p_a * (1 - p_a) / ratio
    if margin == 0:
        pooled = (p_b + ratio * p_a) / (1 + ratio)
        null_var = pooled * (1 - pooled) * (1 + 1 / ratio)
        n = (z_a * math.sqrt(null_var) + z_b * math.sqrt(alt_var)) ** 2 / (p_b - p_a) ** 2
    else:
        n = (z_a + z_b) ** 2 * alt_var / (p_b - p_a - margin) ** 2
    return math.ceil(n)


def empirical_fixed_power(traffic: Traffic, n_required: int, alpha: float) -> float:
    """Power of the fixed-horizon test run once, at the first minute each rollout reaches n_required."""
    reached = traffic.n_b >= n_required
    ok = reached.any(axis=1)
    first = np.argmax(reached, axis=1)
    rows = np.arange(traffic.n_a.shape[0])
    n_a, n_b = traffic.n_a[rows, first], traffic.n_b[rows, first]
    x_a, x_b = traffic.x_a[rows, first], traffic.x_b[rows, first]
    pooled = (x_a + x_b) / (n_a + n_b)
    z = (x_b / n_b - x_a / n_a) / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return float(np.mean(ok & (z > stats.norm.ppf(1 - alpha / 2))))


def stopping_summary(results: list[dict[str, Any]], bake_minutes: int) -> dict[str, Any]:
    requests = np.array([r["challenger_requests"] if r["outcome"] == GateOutcome.FAIL else np.inf for r in results])
    minutes = np.array([r["minute"] if r["outcome"] == GateOutcome.FAIL else np.inf for r in results])

    def finite(value: float) -> float | None:
        return float(value) if math.isfinite(value) else None

    return {
        "caught_within_bake": float(np.mean(minutes <= bake_minutes)),
        "caught_within_horizon": float(np.mean(np.isfinite(minutes))),
        "median_challenger_requests_to_stop": finite(float(np.median(requests))),
        "p25_challenger_requests_to_stop": finite(float(np.quantile(requests, 0.25))),
        "p75_challenger_requests_to_stop": finite(float(np.quantile(requests, 0.75))),
        "median_minutes_to_stop": finite(float(np.median(minutes))),
        "invalid_rate": fraction(results, GateOutcome.INVALID),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tau", type=float, default=None, help="override the gate's mixing sd")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gate.json")
    args = parser.parse_args()

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    default = GateSettings() if args.tau is None else GateSettings(tau=args.tau)
    zero_margin = default.model_copy(update={"error_rate_abs_tolerance": 0.0, "error_rate_max_ratio": 1.0})
    alpha = default.alpha
    assert alpha == ALPHA, "the naive comparator uses the gate's alpha"

    # (a) A/A with repeated looks; plus a low base error rate (0.1%), where the normal approximation is weakest.
    a_results: dict[str, Any] = {}
    aa = Traffic(rng, args.runs, BAKE_MINUTES, BASE_ERROR_RATE, BASE_ERROR_RATE)
    for cadence in (5, 1):
        a_results[f"every_{cadence}_min"] = aa_case(aa, cadence, default, zero_margin)
    aa_low = Traffic(rng, args.runs, BAKE_MINUTES, LOW_BASE_ERROR_RATE, LOW_BASE_ERROR_RATE)
    a_results["every_1_min_base_error_0.1%"] = aa_case(aa_low, 1, default, zero_margin)

    # (b) 2x regression, looked at every minute, bake extended up to EXTENDED_MINUTES.
    regression = Traffic(rng, args.runs, EXTENDED_MINUTES, BASE_ERROR_RATE, REGRESSED_ERROR_RATE)
    every_minute = list(range(1, EXTENDED_MINUTES + 1))
    every_5 = list(range(5, EXTENDED_MINUTES + 1, 5))
    ratio = (1 - CHALLENGER_SHARE) / CHALLENGER_SHARE
    fail_margin = max(default.error_rate_abs_tolerance, (default.error_rate_max_ratio - 1) * BASE_ERROR_RATE)
    n_fixed = fixed_horizon_n(BASE_ERROR_RATE, REGRESSED_ERROR_RATE, alpha, POWER, ratio)
    n_fixed_margin = fixed_horizon_n(BASE_ERROR_RATE, REGRESSED_ERROR_RATE, alpha, POWER, ratio, fail_margin)
    b_results = {
        "msprt_gate_default": {
            "looks_every_1_min": stopping_summary(
                run_gate(regression, default, every_minute, EXTENDED_MINUTES), BAKE_MINUTES
            ),
            "looks_every_5_min": stopping_summary(
                run_gate(regression, default, every_5, EXTENDED_MINUTES), BAKE_MINUTES
            ),
        },
        "msprt_gate_zero_tolerance": {
            "looks_every_1_min": stopping_summary(
                run_gate(regression, zero_margin, every_minute, EXTENDED_MINUTES), BAKE_MINUTES
            ),
        },
        "fixed_horizon": {
            "challenger_requests_for_80pct_power": n_fixed,
            "minutes_at_this_traffic": n_fixed / (REQUESTS_PER_MINUTE * CHALLENGER_SHARE),
            "empirical_power_at_that_n": empirical_fixed_power(regression, n_fixed, alpha),
            "challenger_requests_for_80pct_power_vs_fail_tolerance": n_fixed_margin,
            "fail_tolerance": fail_margin,
        },
    }
    elapsed = time.perf_counter() - started

    report = {
        "benchmark": "online A/B gate (mSPRT) at the 1% stage",
        "setup": {
            "runs": args.runs,
            "seed": args.seed,
            "requests_per_minute": REQUESTS_PER_MINUTE,
            "challenger_share": CHALLENGER_SHARE,
            "base_error_rate": BASE_ERROR_RATE,
            "regressed_error_rate": REGRESSED_ERROR_RATE,
            "bake_minutes": BAKE_MINUTES,
            "extended_bake_minutes": EXTENDED_MINUTES,
            "alpha": alpha,
            "gate_settings": default.model_dump(),
            "naive_test": "pooled two-proportion z, two-sided at alpha, re-run at every look",
        },
        "a_aa_false_rollback": a_results,
        "b_2x_regression": b_results,
        "elapsed_seconds": round(elapsed, 1),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report)
    print(f"wrote {args.out} in {elapsed:.1f} s")


def print_summary(report: dict[str, Any]) -> None:
    setup, a, b = report["setup"], report["a_aa_false_rollback"], report["b_2x_regression"]
    print(
        f"Online gate, {setup['runs']} simulated rollouts per case, 1% stage, "
        f"{setup['requests_per_minute']:,} requests/min, alpha {setup['alpha']}."
    )
    print(f"(a) A/A (same error rate on both variants), {setup['bake_minutes']}-minute bake:")
    for cadence, row in a.items():
        gate, zero, naive = row["msprt_gate_default"], row["msprt_gate_zero_tolerance"], row["naive_fixed_horizon_z"]
        print(
            f"  base {row['base_error_rate']:.1%}, {row['looks']:>2} looks "
            f"({cadence.split('_base')[0].replace('_', ' ')}): mSPRT gate false rollback "
            f"{gate['false_rollback_rate']:.1%} (FAIL {gate['fail_rate']:.1%}, SRM {gate['invalid_srm_rate']:.1%}), "
            f"mSPRT zero-tolerance {zero['fail_rate']:.1%}; naive z at every look {naive['harm_side_any_look']:.1%} "
            f"harm side / {naive['either_side_any_look']:.1%} either side "
            f"(final look only {naive['harm_side_final_look_only']:.1%}); "
            f"gate PASS at end {gate['pass_rate_at_end_of_bake']:.1%}"
        )
    fixed = b["fixed_horizon"]
    print(f"(b) 2x regression {setup['base_error_rate']:.0%} -> {setup['regressed_error_rate']:.0%}:")
    print(
        f"  fixed-horizon test, 80% power: {fixed['challenger_requests_for_80pct_power']:,} challenger requests "
        f"({fixed['minutes_at_this_traffic']:.0f} min; simulated power {fixed['empirical_power_at_that_n']:.1%}); "
        f"vs the {fixed['fail_tolerance'] * 100:.2f} pp FAIL tolerance: "
        f"{fixed['challenger_requests_for_80pct_power_vs_fail_tolerance']:,}"
    )
    for name, cadences in (
        ("mSPRT gate (default tolerance)", b["msprt_gate_default"]),
        ("mSPRT gate (zero tolerance)", b["msprt_gate_zero_tolerance"]),
    ):
        for cadence, row in cadences.items():
            median = row["median_challenger_requests_to_stop"]
            median_text = f"{median:,.0f}" if median is not None else "not reached"
            print(
                f"  {name}, {cadence.replace('_', ' ')}: median {median_text} challenger requests to stop, "
                f"caught {row['caught_within_bake']:.1%} within the bake, {row['caught_within_horizon']:.1%} "
                f"within {setup['extended_bake_minutes']} min"
            )


if __name__ == "__main__":
    main()
