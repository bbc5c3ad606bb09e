"""Benchmark of the online A/B gate over whole simulated rollouts (1 % -> 10 % -> 50 % -> 100 %).

Each simulated rollout runs the shipped catalog's rollout (models/fraud-detection.yaml: stages, bake, minimum bake,
look interval, extensions, gates) through the production gate (promotion.rollout.steps.gate_settings and
promotion.rollout.gate.evaluate_stage, pure Python), stage after stage, until it is rolled back or promoted. Beside
it, on
the same simulated traffic (common random numbers), at the same alpha and power:

* `previous_gate`: the design of the gate this one replaces (commit 05b06d6), at the same alpha (that commit's
  catalog used 0.05): a two-sided mixture confidence sequence at alpha for both decisions, a doubling to rule out at
  every stage, and a stage that PASSes only at the end of a bake;
* `fixed_horizon`: one z-test per stage (score test of the FAIL tolerance, one-sided at alpha) at the challenger
  sample size that gives power 1 - beta against the stage's harm to rule out;
* `kayenta_mann_whitney`: Kayenta's judge over the same endpoint split: a fixed window of one bake per stage, then a
  one-sided Mann-Whitney U test of the challenger's per-minute error rates (and per-minute p99 latencies) against the
  champion's, each at alpha/2. (Kayenta is usually run against a baseline as small as the canary; here the
  champion's per-minute values rest on 99 times more requests at 1 %, which favours neither side's error rate but
  makes the challenger's per-minute p99 close to its maximum.)

Traffic: 6,000 requests a minute (Poisson), routed to the challenger by the stage's weight; errors Bernoulli per
request; model latency log-normal (champion median 20 ms, p99 100 ms), counted in a 150-bin histogram per minute
(4 % per bin, interpolated) so that every look's p99 is the p99 of all the stage's requests so far, as CloudWatch
reports it. At 100 % the champion serves nothing and the challenger is compared with the champion's requests and
errors over the three shared stages and its p99 at the end of the 50 % stage, as in production
(promotion.rollout.steps.champion_reference). Scenarios: A/A, a challenger 20 % better, 1.5x / 2x / 5x error rates, 1.5x
latency.

Time and instance-hours add SageMaker's endpoint changes (assumed: 8 minutes to add the challenger's instance, 1 to
shift weights, 8 to promote or roll back). The AWS cost of a promotion adds the orchestration measured by
bench/bench_cost.py (bench/results/cost.json), the training and comparison jobs (catalog upper bounds) and the
challenger variant's instance-hours, at the dated price table in bench/cost_model.py.

Run: .venv/bin/python bench/bench_gate.py [--runs 1000] [--seed 7]; writes bench/results/gate.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "layers" / "promotion" / "python", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.cost_model import SAGEMAKER_HOURLY  # noqa: E402
from promotion.contract.catalog import ModelCatalog, load_catalog  # noqa: E402
from promotion.result.cost import PRICE_TABLE_DATE  # noqa: E402
from promotion.rollout.gate import (  # noqa: E402
    GateOutcome,
    SequentialState,
    StageObservation,
    VariantMetrics,
    _edge,
    error_rate_margins,
    evaluate_stage,
    first_step,
    msprt_log_lr_at,
    restricted_variance,
    srm_alpha_for_look,
    srm_chi_square,
)
from promotion.rollout.steps import champion_reference, gate_settings  # noqa: E402

REQUESTS_PER_MINUTE = 6_000
BASE_ERROR_RATE = 0.01
MEDIAN_MS, P99_MS = 20.0, 100.0
LATENCY_SIGMA = math.log(P99_MS / MEDIAN_MS) / stats.norm.ppf(0.99)
BINS = np.geomspace(2.0, 1_000.0, 151)  # histogram edges (ms): 4.2 % per bin
CHUNK = 50
DEPLOY_MINUTES, SHIFT_MINUTES, PROMOTE_MINUTES, ROLLBACK_MINUTES = 8.0, 1.0, 8.0, 8.0
SCENARIOS: dict[str, tuple[float, float]] = {  # challenger (error rate, latency factor)
    "aa": (BASE_ERROR_RATE, 1.0),
    "better_20pct": (BASE_ERROR_RATE * 0.8, 1.0),
    "errors_1.5x": (BASE_ERROR_RATE * 1.5, 1.0),
    "errors_2x": (BASE_ERROR_RATE * 2.0, 1.0),
    "errors_5x": (BASE_ERROR_RATE * 5.0, 1.0),
    "p99_latency_1.5x": (BASE_ERROR_RATE, 1.5),
}
Array = NDArray[Any]


@dataclass
class StageTraffic:
    """Cumulative per-minute counts of one stage for every run (runs x minutes), and latency histograms."""

    share: float
    n_a: Array
    x_a: Array
    n_b: Array
    x_b: Array
    p99_a: Array  # p99 of all requests so far, at the end of each minute (runs x minutes); nan when none
    p99_b: Array
    minute_p99_a: Array  # p99 of each minute's own requests (Kayenta compares per-interval values)
    minute_p99_b: Array


def _p99(histogram: Array) -> Array:
    """p99 (ms) of histograms along the last axis, interpolated log-linearly inside the bin where 99 % of the
    requests are reached (a bin's edge alone would round every ratio to the 4 % grid)."""
    cumulative = np.cumsum(histogram, axis=-1)
    total = cumulative[..., -1:]
    target = 0.99 * np.maximum(total, 1)
    index = np.argmax(cumulative >= target, axis=-1)
    below = np.where(index > 0, np.take_along_axis(cumulative, np.maximum(index - 1, 0)[..., None], -1)[..., 0], 0)
    inside = np.take_along_axis(histogram, index[..., None], -1)[..., 0]
    fraction = np.clip((target[..., 0] - below) / np.maximum(inside, 1), 0.0, 1.0)
    lower, upper = np.log(BINS[:-1][index]), np.log(BINS[1:][index])
    return np.where(total[..., 0] > 0, np.exp(lower + fraction * (upper - lower)), np.nan)


def simulate_stage(
    rng: np.random.Generator, runs: int, minutes: int, share: float, p_b: float, latency_factor: float
) -> StageTraffic:
    probabilities = np.diff(stats.norm.cdf((np.log(BINS) - math.log(MEDIAN_MS)) / LATENCY_SIGMA))
    slower = np.diff(stats.norm.cdf((np.log(BINS / latency_factor) - math.log(MEDIAN_MS)) / LATENCY_SIGMA))
    total = rng.poisson(REQUESTS_PER_MINUTE, size=(runs, minutes))
    n_b = rng.binomial(total, share)
    n_a = total - n_b
    x_a, x_b = rng.binomial(n_a, BASE_ERROR_RATE), rng.binomial(n_b, p_b)
    p99 = {}
    for name, counts, shape in (("a", n_a, probabilities), ("b", n_b, slower)):
        pvals = shape / shape.sum()
        cumulative, per_minute = np.empty(counts.shape), np.empty(counts.shape)
        for chunk in range(0, runs, CHUNK):  # runs x minutes x bins at once would not fit in memory
            histogram = rng.multinomial(counts[chunk : chunk + CHUNK], pvals).astype(np.int32)
            cumulative[chunk : chunk + CHUNK] = _p99(np.cumsum(histogram, axis=1))
            per_minute[chunk : chunk + CHUNK] = _p99(histogram)
        p99[name] = (cumulative, per_minute)
    return StageTraffic(
        share,
        np.cumsum(n_a, axis=1),
        np.cumsum(x_a, axis=1),
        np.cumsum(n_b, axis=1),
        np.cumsum(x_b, axis=1),
        p99["a"][0],
        p99["b"][0],
        p99["a"][1],
        p99["b"][1],
    )


def _latency(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass
class Reference:
    """The champion's numbers at the end of the last shared stage (what the 100 % stage is compared with)."""

    metrics: VariantMetrics | None = None


@dataclass
class StageEnd:
    outcome: GateOutcome
    minute: int
    challenger_requests: int
    champion: VariantMetrics | None = None
    why: str = ""  # errors, latency, split or undecided: what ended a stage that did not pass


@dataclass
class Rollout:
    outcome: str  # PROMOTED or ROLLED_BACK
    stopped_stage: int | None
    why: str
    challenger_requests: int
    minutes: float
    stage_minutes: list[int] = field(default_factory=list)


def observation(traffic: StageTraffic, run: int, minute: int, reference: Reference) -> StageObservation:
    i = minute - 1
    challenger = VariantMetrics(
        invocations=int(traffic.n_b[run, i]),
        errors_5xx=int(traffic.x_b[run, i]),
        latency_p99_ms=_latency(traffic.p99_b[run, i]),
    )
    if traffic.share >= 1.0 and reference.metrics is not None:
        champion = reference.metrics
    else:
        champion = VariantMetrics(
            invocations=int(traffic.n_a[run, i]),
            errors_5xx=int(traffic.x_a[run, i]),
            latency_p99_ms=_latency(traffic.p99_a[run, i]),
        )
    return StageObservation(challenger_share=traffic.share, champion=champion, challenger=challenger)


StagePolicy = Callable[[StageTraffic, int, Reference, int], StageEnd]


@dataclass(frozen=True)
class Schedule:
    """A stage's clock from the catalog: looks every `look` minutes, PASS from `min_bake`, give up at `longest`."""

    look: int
    min_bake: int
    bake: int
    longest: int

    @classmethod
    def from_catalog(cls, catalog: ModelCatalog, look_minutes: int | None = None) -> Schedule:
        settings = catalog.rollout
        assert settings is not None
        look = look_minutes or int(settings.look_minutes)
        looks_per_bake = max(1, round(settings.bake_minutes / look))
        bake = looks_per_bake * look
        return cls(look, int(settings.shortest_bake_minutes), bake, bake * (1 + settings.max_bake_extensions))


def gate_policy(catalog: ModelCatalog, schedule: Schedule) -> StagePolicy:
    """The production gate, as promotion.rollout.steps drives it: a look every `look` minutes, the first decision
    ends."""

    def run_stage(traffic: StageTraffic, run: int, reference: Reference, stage: int) -> StageEnd:
        settings = gate_settings(catalog, stage)
        state: SequentialState | None = None
        for minute in range(schedule.look, schedule.longest + 1, schedule.look):
            seen = observation(traffic, run, minute, reference)
            verdict = evaluate_stage(
                seen, settings, final_look=minute >= schedule.longest, prior=state, may_pass=minute >= schedule.min_bake
            )
            state = verdict.state
            if verdict.outcome is not GateOutcome.INCONCLUSIVE or minute >= schedule.longest:
                why = {GateOutcome.INVALID: "split", GateOutcome.INCONCLUSIVE: "undecided"}.get(verdict.outcome, "")
                if verdict.outcome is GateOutcome.FAIL:
                    why = "latency" if "p99 latency" in verdict.reason else "errors"
                return StageEnd(verdict.outcome, minute, seen.challenger.invocations, seen.champion, why)
        raise AssertionError("unreachable: the last look is final")

    return run_stage


def _two_sided_bounds(x_a: int, n_a: int, x_b: int, n_b: int, tau: float, alpha: float) -> tuple[float, float]:
    """The previous gate's confidence sequence: {theta : two-sided mixture Lambda(theta) < 1/alpha}."""
    difference = x_b / n_b - x_a / n_a
    threshold = math.log(1 / alpha)
    step = first_step(x_a, n_a, x_b, n_b)

    def log_lr(theta: float) -> float:
        return msprt_log_lr_at(x_a, n_a, x_b, n_b, tau, theta)

    return _edge(log_lr, threshold, difference, -1.0, step), _edge(log_lr, threshold, difference, 1.0, step)


def previous_gate_policy(catalog: ModelCatalog, schedule: Schedule) -> StagePolicy:
    """The gate before this change: one two-sided CS at alpha for both sides, a doubling (or the absolute
    tolerance) to rule out at every stage, PASS only at the end of a bake (then extended, up to the same limit)."""
    base = gate_settings(catalog, 0).model_copy(update={"pass_max_ratio": 2.0})

    def run_stage(traffic: StageTraffic, run: int, reference: Reference, stage: int) -> StageEnd:
        lower, upper = -1.0, 1.0
        for look, minute in enumerate(range(schedule.look, schedule.longest + 1, schedule.look), start=1):
            seen = observation(traffic, run, minute, reference)
            a, b = seen.champion, seen.challenger
            end_of_bake = minute % schedule.bake == 0
            if traffic.share < 1:
                _, p_value = srm_chi_square(a.invocations, b.invocations, traffic.share)
                if p_value < srm_alpha_for_look(base.srm_alpha, look):
                    return StageEnd(GateOutcome.INVALID, minute, b.invocations, a, "split")
            if a.invocations and b.invocations:
                low, high = _two_sided_bounds(
                    a.errors_5xx, a.invocations, b.errors_5xx, b.invocations, base.tau, base.alpha
                )
                lower, upper = max(lower, low), min(upper, high)
                fail_margin, pass_margin = error_rate_margins(base, a.errors_5xx / a.invocations)
                if b.errors_5xx >= base.min_errors_to_fail and lower > fail_margin:
                    return StageEnd(GateOutcome.FAIL, minute, b.invocations, a, "errors")
                ratio = _p99_ratio(seen)
                enough = b.invocations >= base.min_challenger_requests and a.invocations >= base.min_champion_requests
                if enough and ratio is not None and ratio > base.p99_latency_max_ratio:
                    return StageEnd(GateOutcome.FAIL, minute, b.invocations, a, "latency")
                if end_of_bake and enough and ratio is not None and upper < pass_margin:
                    return StageEnd(GateOutcome.PASS, minute, b.invocations, a)
        return StageEnd(GateOutcome.INCONCLUSIVE, schedule.longest, b.invocations, a, "undecided")

    return run_stage


def _p99_ratio(seen: StageObservation) -> float | None:
    a, b = seen.champion.latency_p99_ms, seen.challenger.latency_p99_ms
    return b / a if a and b is not None else None


def fixed_horizon_n(p_a: float, theta0: float, delta: float, alpha: float, power: float, share: float) -> int:
    """Challenger requests for a one-sided test of "difference <= theta0" at alpha with `power` at `delta`
    (variances under each hypothesis; the champion gets (1 - share)/share times as many requests)."""
    ratio = (1 - share) / share if share < 1 else math.inf

    def per_request(theta: float) -> float:
        champion = p_a * (1 - p_a) / ratio if math.isfinite(ratio) else 0.0
        return (p_a + theta) * (1 - p_a - theta) + champion

    z_a, z_b = stats.norm.ppf(1 - alpha), stats.norm.ppf(power)
    spread = z_a * math.sqrt(per_request(theta0)) + z_b * math.sqrt(per_request(delta))
    return math.ceil((spread / (delta - theta0)) ** 2)


def fixed_horizon_policy(catalog: ModelCatalog, schedule: Schedule) -> StagePolicy:
    """One analysis per stage, at the first minute the planned challenger sample size is reached."""

    def run_stage(traffic: StageTraffic, run: int, reference: Reference, stage: int) -> StageEnd:
        settings = gate_settings(catalog, stage)
        theta0, delta = error_rate_margins(settings, BASE_ERROR_RATE)
        needed = fixed_horizon_n(BASE_ERROR_RATE, theta0, delta, settings.alpha, 1 - settings.beta, traffic.share)
        reached = np.nonzero(traffic.n_b[run] >= needed)[0]
        minute = int(reached[0]) + 1 if reached.size else traffic.n_b.shape[1]
        seen = observation(traffic, run, minute, reference)
        a, b = seen.champion, seen.challenger
        variance = restricted_variance(a.errors_5xx, a.invocations, b.errors_5xx, b.invocations, theta0)
        difference = b.errors_5xx / b.invocations - a.errors_5xx / a.invocations
        z = (difference - theta0) / math.sqrt(variance) if variance > 0 else 0.0
        ratio = _p99_ratio(seen)
        if z > stats.norm.ppf(1 - settings.alpha):
            return StageEnd(GateOutcome.FAIL, minute, b.invocations, a, "errors")
        if ratio is not None and ratio > settings.p99_latency_max_ratio:
            return StageEnd(GateOutcome.FAIL, minute, b.invocations, a, "latency")
        if not reached.size:
            return StageEnd(GateOutcome.INCONCLUSIVE, minute, b.invocations, a, "undecided")
        return StageEnd(GateOutcome.PASS, minute, b.invocations, a)

    return run_stage


def kayenta_policy(catalog: ModelCatalog, schedule: Schedule) -> StagePolicy:
    """Kayenta's Mann-Whitney judge over one fixed bake: per-minute error rates and per-minute p99, challenger
    greater than champion, each at alpha/2; at 100 % the per-minute values of the champion's last shared stage."""
    minutes = schedule.bake
    last_shared: dict[int, tuple[Array, Array]] = {}

    def per_minute(cumulative: Array, run: int) -> Array:
        return np.diff(cumulative[run, :minutes], prepend=0)

    def run_stage(traffic: StageTraffic, run: int, reference: Reference, stage: int) -> StageEnd:
        alpha = gate_settings(catalog, stage).alpha / 2
        n_b, x_b = per_minute(traffic.n_b, run), per_minute(traffic.x_b, run)
        rate_b, p99_b = x_b / np.maximum(n_b, 1), traffic.minute_p99_b[run, :minutes]
        if traffic.share < 1:
            n_a, x_a = per_minute(traffic.n_a, run), per_minute(traffic.x_a, run)
            rate_a, p99_a = x_a / np.maximum(n_a, 1), traffic.minute_p99_a[run, :minutes]
            last_shared[run] = (rate_a, p99_a)
        else:
            rate_a, p99_a = last_shared[run]
        failed = [
            what
            for what, b, a in (("errors", rate_b, rate_a), ("latency", p99_b, p99_a))
            if stats.mannwhitneyu(b[~np.isnan(b)], a[~np.isnan(a)], alternative="greater").pvalue < alpha
        ]
        seen = observation(traffic, run, minutes, reference)
        outcome = GateOutcome.FAIL if failed else GateOutcome.PASS
        return StageEnd(outcome, minutes, seen.challenger.invocations, seen.champion, "+".join(failed))

    return run_stage


def run_rollouts(traffic: list[StageTraffic], policy: StagePolicy, runs: int) -> list[Rollout]:
    results = []
    for run in range(runs):
        reference = Reference()
        requests, minutes, stage_minutes = 0, DEPLOY_MINUTES, []
        outcome, stopped, why = "PROMOTED", None, ""
        for stage, stage_traffic in enumerate(traffic):
            minutes += SHIFT_MINUTES
            end = policy(stage_traffic, run, reference, stage)
            requests += end.challenger_requests
            minutes += end.minute
            stage_minutes.append(end.minute)
            if end.outcome is not GateOutcome.PASS:
                outcome, stopped, why = "ROLLED_BACK", stage, end.why
                break
            if stage_traffic.share < 1 and end.champion is not None:
                previous = reference.metrics.model_dump(mode="json") if reference.metrics is not None else None
                reference = Reference(champion_reference(previous, end.champion))
        minutes += PROMOTE_MINUTES if outcome == "PROMOTED" else ROLLBACK_MINUTES
        results.append(Rollout(outcome, stopped, why, requests, minutes, stage_minutes))
    return results


def summarize(results: list[Rollout], hosting_usd_per_hour: float, fixed_usd: float) -> dict[str, Any]:
    runs = len(results)
    promoted = [r for r in results if r.outcome == "PROMOTED"]
    stopped = [r for r in results if r.outcome == "ROLLED_BACK"]
    hours = np.array([r.minutes / 60 for r in results])

    def stats_of(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"mean": None, "p50": None, "p90": None}
        array = np.asarray(values, dtype=float)
        return {
            "mean": round(float(array.mean()), 1),
            "p50": round(float(np.percentile(array, 50)), 1),
            "p90": round(float(np.percentile(array, 90)), 1),
        }

    by_stage = {str(stage + 1): sum(1 for r in stopped if r.stopped_stage == stage) / runs for stage in range(4)}
    return {
        "promoted_through_all_stages": len(promoted) / runs,
        "rolled_back": len(stopped) / runs,
        "rolled_back_at_stage": by_stage,
        "rolled_back_because": {
            why: sum(1 for r in stopped if r.why == why) / runs for why in sorted({r.why for r in stopped})
        },
        "stopped_at_1pct": by_stage["1"],
        "challenger_requests_to_stop": stats_of([r.challenger_requests for r in stopped]),
        "minutes_to_full_promotion": stats_of([r.minutes for r in promoted]),
        "minutes_per_stage_when_promoted": [
            round(float(np.mean([r.stage_minutes[s] for r in promoted])), 1) if promoted else None for s in range(4)
        ],
        "challenger_instance_hours": round(float(hours.mean()), 3),
        "aws_cost_usd_per_promotion": round(fixed_usd + float(hours.mean()) * hosting_usd_per_hour, 4),
    }


def orchestration_cost() -> tuple[float | None, str]:
    """The orchestration cost of one promotion as bench/bench_cost.py last measured it on a local run."""
    path = ROOT / "bench" / "results" / "cost.json"
    try:
        measured = json.loads(path.read_text())["per_promotion_usd"]["measured"]
    except (OSError, KeyError, ValueError):
        return None, f"{path.relative_to(ROOT)} missing: run `python -m bench cost`"
    return float(measured), f"{path.relative_to(ROOT)} per_promotion_usd.measured"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--catalog", type=Path, default=ROOT / "models" / "fraud-detection.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gate.json")
    args = parser.parse_args()
    started = time.perf_counter()
    catalog = load_catalog(args.catalog)
    rollout = catalog.rollout
    assert rollout is not None and len(rollout.stages) == 4, "the bench follows a four-stage rollout"
    schedule = Schedule.from_catalog(catalog)
    fast = Schedule.from_catalog(catalog, look_minutes=5)
    orchestration, orchestration_source = orchestration_cost()
    hourly = SAGEMAKER_HOURLY
    jobs_usd = hourly["training"][catalog.training.instance_type] * catalog.training.max_runtime_seconds / 3600
    if catalog.comparison is not None:
        jobs_usd += (
            hourly["processing"][catalog.comparison.instance_type] * catalog.comparison.max_runtime_seconds / 3600
        )
    hosting = hourly["hosting"][rollout.instance_type] * rollout.initial_instance_count
    fixed_usd = jobs_usd + (orchestration or 0.0)
    policies: dict[str, tuple[StagePolicy, Schedule]] = {
        "gate": (gate_policy(catalog, schedule), schedule),
        "gate_looks_every_5_min": (gate_policy(catalog, fast), fast),
        "previous_gate": (previous_gate_policy(catalog, schedule), schedule),
        "fixed_horizon": (fixed_horizon_policy(catalog, schedule), schedule),
        "kayenta_mann_whitney": (kayenta_policy(catalog, schedule), schedule),
    }
    scenarios: dict[str, dict[str, Any]] = {}
    for index, (name, (p_b, latency_factor)) in enumerate(SCENARIOS.items()):
        rng = np.random.default_rng([args.seed, index])
        traffic = [
            simulate_stage(rng, args.runs, schedule.longest, percent / 100, p_b, latency_factor)
            for percent in rollout.stages
        ]
        scenarios[name] = {
            "challenger_error_rate": p_b,
            "challenger_latency_factor": latency_factor,
            **{
                policy: summarize(run_rollouts(traffic, run_stage, args.runs), hosting, fixed_usd)
                for policy, (run_stage, _) in policies.items()
            },
        }
        print(f"{name}: done after {time.perf_counter() - started:.0f} s", flush=True)
    first = gate_settings(catalog, 0)
    theta0, delta = error_rate_margins(first, BASE_ERROR_RATE)
    fixed_2x = fixed_horizon_n(BASE_ERROR_RATE, theta0, delta, first.alpha, 1 - first.beta, rollout.stages[0] / 100)
    aa, regression, better = scenarios["aa"]["gate"], scenarios["errors_2x"]["gate"], scenarios["better_20pct"]
    report = {
        "benchmark": "online A/B gate over whole four-stage rollouts, beside the previous gate, a fixed-horizon "
        "test and a Kayenta-style Mann-Whitney window at the same alpha and power",
        "setup": {
            "runs": args.runs,
            "seed": args.seed,
            "catalog": str(args.catalog.relative_to(ROOT)),
            "stages_percent": rollout.stages,
            "schedule_minutes": schedule.__dict__,
            "requests_per_minute": REQUESTS_PER_MINUTE,
            "champion_error_rate": BASE_ERROR_RATE,
            "latency_ms": {"median": MEDIAN_MS, "p99": P99_MS, "distribution": "log-normal"},
            "gate_settings_per_stage": [gate_settings(catalog, s).model_dump() for s in range(len(rollout.stages))],
            "endpoint_change_minutes": {
                "deploy": DEPLOY_MINUTES,
                "shift": SHIFT_MINUTES,
                "promote": PROMOTE_MINUTES,
                "rollback": ROLLBACK_MINUTES,
            },
            "prices": {
                "price_table_date": PRICE_TABLE_DATE,
                "hosting_usd_per_hour": hosting,
                "jobs_usd_upper_bound": round(jobs_usd, 4),
                "orchestration_usd": orchestration,
                "orchestration_source": orchestration_source,
            },
        },
        "summary": {
            "aa_promoted_through_all_stages": aa["promoted_through_all_stages"],
            "aa_rolled_back": aa["rolled_back"],
            "regression_2x_stopped_at_1pct": regression["stopped_at_1pct"],
            "regression_2x_expected_requests": regression["challenger_requests_to_stop"]["mean"],
            "regression_2x_p90_requests": regression["challenger_requests_to_stop"]["p90"],
            "fixed_horizon_requests_2x": fixed_2x,
            "fixed_horizon_2x_stopped_at_1pct": scenarios["errors_2x"]["fixed_horizon"]["stopped_at_1pct"],
            "better_20pct_minutes_to_full_promotion": better["gate"]["minutes_to_full_promotion"]["mean"],
            "better_20pct_minutes_previous_gate": better["previous_gate"]["minutes_to_full_promotion"]["mean"],
            "aa_challenger_instance_hours": aa["challenger_instance_hours"],
            "aa_challenger_instance_hours_previous_gate": scenarios["aa"]["previous_gate"]["challenger_instance_hours"],
            "aa_aws_cost_usd_per_promotion": aa["aws_cost_usd_per_promotion"],
            "aa_aws_cost_usd_previous_gate": scenarios["aa"]["previous_gate"]["aws_cost_usd_per_promotion"],
            "orchestration_cost_usd_per_promotion": orchestration,
        },
        "scenarios": scenarios,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
