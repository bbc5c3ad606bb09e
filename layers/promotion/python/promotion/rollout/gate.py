"""Online A/B gate of one rollout stage: may the challenger get more of the live endpoint's traffic?

Each stage (1% -> 10% -> 50% -> 100%) is judged on the endpoint's CloudWatch per-variant metrics, challenger against
the concurrent champion, and the orchestrator looks again every few minutes while the stage bakes. Three checks:

* Sample-ratio mismatch (SRM): a chi-square goodness-of-fit test of the observed split against the weights we set.
  A mismatch means routing or metrics are broken, so no comparison can be trusted: INVALID. Because the test is
  re-run at every look, look k spends srm_alpha * 6 / (pi^2 k^2) (these sum to srm_alpha), so the chance of a false
  INVALID over the whole stage stays below srm_alpha however many looks are taken.
* Error rate (5XX by default): two one-sided mixture sequential probability ratio tests (mSPRT, Johari, Pekelis &
  Walsh, "Always valid inference", 2017/2022) on the difference of the two error rates, normal approximation,
  half-normal mixing distribution. The FAIL side asks "worse than the tolerance?" at level alpha, the PASS side "better
  than the harm this stage must rule out?" at level beta. Both give anytime-valid confidence bounds, so the stage ends
  at the first look that decides either way, however often and whenever the orchestrator looks; a fixed-horizon
  z-test looked at repeatedly does not hold its level.
* p99 model latency: the challenger/champion ratio against a limit (CloudWatch gives percentiles, not samples, so this
  is a threshold rule, applied only with enough requests for the p99 to mean something).

4XX responses are client errors (malformed payloads, throttling against the variant's own capacity): they are
reported (rates, pooled z) but not gated by default, because their level is set by callers and capacity rather than by
the model. `count_4xx_as_errors` folds them into the gated error count, e.g. when the challenger's container validates
inputs differently from the champion's.

Pure Python (`math` only): the module runs in a Lambda whose layer must stay small.

The tests at one look, from cumulative counts x/n per variant (A = champion, B = challenger):

    d             = x_B/n_B - x_A/n_A                     estimated difference (challenger - champion)
    V(theta0)     = variance of d at the rates that maximise the likelihood under "difference = theta0"
                    (Farrington-Manning / Miettinen-Nurminen constrained MLE; for theta0 = 0 the pooled rate)
    c             = (1/n_A + 1/n_B)/2                     continuity correction
    L+(e, V)      = 2 sqrt(V/(V+tau^2)) exp(x^2/2) Phi(x), x = e tau / sqrt(V (V+tau^2))   one-sided mixture
    harm(theta0)  = L+(d - theta0 - c, V(theta0))         evidence that the difference is above theta0
    safe(theta0)  = L+(theta0 - d - c, V(theta0))         evidence that it is below theta0
    lower_t       = max(lower_{t-1}, inf{theta : harm_t(theta) < 1/alpha})   running lower bound: FAIL above tolerance
    upper_t       = min(upper_{t-1}, sup{theta : safe_t(theta) < 1/beta})    running upper bound: PASS below PASS bound
    p_t           = min(p_{t-1}, 1/Lambda_t(0))          two-sided always-valid p-value of "no difference" (reported)

With a fixed split inside a stage, d is (asymptotically) a Brownian motion in information time 1/V, so each mixture is
a nonnegative martingale under its theta0 and Ville's inequality bounds by alpha (beta) the chance that the lower
(upper) bound ever passes the true difference. Johari et al. write the two-sided mixture for equal arms
(V = 2 sigma^2/n); with V it is the same formula for unequal arms, and the half-normal mixture is its one-sided form
(closed form in one_sided_log_lr). Taking V under each tested theta0 (a score-type test, like the Miettinen-Nurminen
interval) rather than at the estimate matters at the 1% stage, where the challenger has few errors: a plug-in
variance shrinks whenever the challenger happens to show few errors and then over-rejects on that side.

Why not a group-sequential design (alpha/beta spending over planned looks)? Its boundaries assume looks at planned
information fractions of a planned maximum; here the information per look follows the endpoint's traffic, which the
catalog does not know, and operators may pause or extend a stage. Error spending (Lan-DeMets) copes with unplanned
look times but needs the maximum information fixed in advance and recursive numerical integration at every look;
the mixture tests need neither and stop with fewer requests than the fixed-horizon test at the same alpha and power
(bench/bench_gate.py measures both).

Why not pool evidence across stages? Within a stage the split is fixed, so the difference process is one Brownian
motion; across stages the split changes and with it the variance per request and any time-of-day drift between the
variants' traffic, so each stage starts a fresh test, which is what keeps its guarantee exact. Over a four-stage
rollout the chance of any false rollback is at most 4 * (alpha + srm_alpha), and far less in practice because the
FAIL side is tested at the tolerance, not at zero (bench/bench_gate.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FAIL_TOLERANCE_RATIO",
    "ErrorRateTest",
    "GateOutcome",
    "GateSettings",
    "LatencyCheck",
    "SequentialState",
    "SrmCheck",
    "StageObservation",
    "StageVerdict",
    "VariantMetrics",
    "VariantSummary",
    "chi_square_sf_1dof",
    "constrained_rates",
    "continuity_correction",
    "error_rate_margins",
    "evaluate_stage",
    "first_step",
    "harm_log_lr",
    "log_normal_cdf",
    "lower_confidence_bound",
    "msprt_log_likelihood_ratio",
    "msprt_log_lr_at",
    "one_sided_log_lr",
    "pooled_variance",
    "restricted_variance",
    "safety_log_lr",
    "srm_alpha_for_look",
    "srm_chi_square",
    "two_proportion_z",
    "upper_confidence_bound",
]

FAIL_TOLERANCE_RATIO = 1.1
"""The challenger/champion error-rate ratio a stage tolerates before it may FAIL; a PASS bound must lie above it."""

SRM_MIN_EXPECTED = 50.0
"""The SRM check waits for 50 expected requests per variant: the usual "five" leaves the chi-square tail, where the
check works (p ~ 1e-4), about three times too light against the exact binomial; from ~50 on it is calibrated."""


class _Frozen(BaseModel):
    """Immutable, JSON-friendly, no NaN/inf: the verdict goes into the execution document and the decision report."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class GateOutcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    INVALID = "INVALID"


class VariantMetrics(_Frozen):
    """One variant's CloudWatch numbers, cumulative since the stage's traffic shift.

    Sum of Invocations, Invocation5XXErrors and Invocation4XXErrors; ModelLatency p50/p99 converted from
    microseconds to milliseconds (None when CloudWatch has no datapoint).
    """

    invocations: int = Field(ge=0)
    errors_5xx: int = Field(default=0, ge=0)
    errors_4xx: int = Field(default=0, ge=0)
    latency_p50_ms: float | None = Field(default=None, ge=0)
    latency_p99_ms: float | None = Field(default=None, ge=0)


class StageObservation(_Frozen):
    """What the orchestrator saw so far in this stage.

    At the 100% stage the champion gets no traffic: pass the champion's numbers from a reference window (e.g. its
    last concurrent stage) and the SRM check is skipped.
    """

    challenger_share: float = Field(gt=0, le=1, description="challenger's expected share of requests, e.g. 0.01")
    champion: VariantMetrics
    challenger: VariantMetrics


class GateSettings(_Frozen):
    """Gate thresholds; the defaults suit a model whose endpoint answers a few thousand requests a minute."""

    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="FAIL side: the chance, over all looks of a stage, that a challenger within the tolerance is "
        "failed (the anytime-valid lower bound's level); a harmless challenger is failed far less often",
    )
    beta: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="PASS side: the chance, over all looks of a stage, that a challenger exactly as harmful as the "
        "PASS bound passes the stage (the anytime-valid upper bound's level); a worse one passes less often",
    )
    tau: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="sd of the mSPRT's normal mixing distribution of the error-rate difference: about the size "
        "of regression to catch fastest (0.01 = 1 pp); larger catches big breaks sooner, small drifts later",
    )
    error_rate_abs_tolerance: float = Field(
        default=0.0005,
        ge=0,
        lt=1,
        description="FAIL tolerance: excess error rate always tolerated (0.0005 = 0.05 pp)",
    )
    error_rate_max_ratio: float = Field(
        default=FAIL_TOLERANCE_RATIO,
        ge=1,
        description="FAIL tolerance: tolerated challenger/champion error-rate ratio; the tolerance is the larger "
        "of the two, max(abs, (ratio-1) * champion rate)",
    )
    pass_abs_excess: float = Field(
        default=0.005,
        ge=0,
        lt=1,
        description="PASS bound: a stage passes once harm beyond max(pass_abs_excess, (pass_max_ratio-1) * "
        "champion rate) is ruled out; equal to the FAIL tolerance = strict non-inferiority at every stage",
    )
    pass_max_ratio: float = Field(default=2.0, ge=1)
    p99_latency_max_ratio: float = Field(default=1.5, ge=1)
    min_challenger_requests: int = Field(default=200, ge=1, description="for PASS and for the latency check")
    min_champion_requests: int = Field(default=200, ge=1, description="for PASS and for the latency check")
    min_latency_requests: int = Field(
        default=1000,
        ge=1,
        description="requests each variant needs before their p99s are compared (to FAIL or to PASS): a p99 of n "
        "requests rests on the slowest n/100 of them, and with fewer than about ten the ratio of two p99s moves by "
        "a third from look to look, which repeated looks would turn into false rollbacks",
    )
    min_errors_to_fail: int = Field(
        default=5,
        ge=1,
        description="challenger errors before the error-rate test may FAIL: below about five events the normal "
        "approximation is unreliable (2 errors in 60 requests against a 0.1% champion give z = 6.8 for a 0.2% event)",
    )
    srm_alpha: float = Field(default=0.001, gt=0, lt=1, description="false INVALID rate over all looks of a stage")
    count_4xx_as_errors: bool = Field(
        default=False, description="gate on 5XX+4XX instead of 5XX only (4XX are reported either way)"
    )

    @model_validator(mode="after")
    def _pass_bound_not_below_tolerance(self) -> GateSettings:
        """A PASS bound tighter than the FAIL tolerance would let one look both FAIL and be asked to PASS."""
        if self.pass_abs_excess < self.error_rate_abs_tolerance or self.pass_max_ratio < self.error_rate_max_ratio:
            raise ValueError("the PASS bound (pass_abs_excess, pass_max_ratio) must not be below the FAIL tolerance")
        return self


class SequentialState(_Frozen):
    """What one look hands to the next look of the same stage: the running minimum p-value and running CS."""

    looks: int = Field(ge=0)
    champion_invocations: int = Field(ge=0)
    challenger_invocations: int = Field(ge=0)
    always_valid_p_value: float = Field(ge=0, le=1)
    cs_lower: float = Field(ge=-1, le=1)
    cs_upper: float = Field(ge=-1, le=1)


class VariantSummary(_Frozen):
    invocations: int
    errors_5xx: int
    errors_4xx: int
    error_rate_5xx: float | None
    error_rate_4xx: float | None
    error_rate: float | None = Field(description="the rate the gate compares (5XX, or 5XX+4XX)")
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class SrmCheck(_Frozen):
    checked: bool
    expected_challenger_share: float
    observed_challenger_share: float | None
    chi_square: float | None
    p_value: float | None = Field(description="this look's chi-square p-value")
    alpha: float = Field(description="srm_alpha, spent over all looks of the stage")
    alpha_this_look: float = Field(description="srm_alpha * 6 / (pi^2 look^2): INVALID when p_value is below it")


class ErrorRateTest(_Frozen):
    """mSPRT on (challenger - champion) error rate; z and its p-value are the fixed-horizon reference only."""

    evaluable: bool
    errors_counted: str
    difference: float | None
    fail_margin: float | None = Field(description="FAIL when cs_lower is above it (tolerated excess)")
    pass_margin: float | None = Field(description="PASS needs cs_upper below it (largest harm to rule out)")
    variance: float | None = Field(description="pooled variance of the difference under H0: no difference")
    z_statistic: float | None = Field(
        description="pooled two-proportion z, positive = challenger worse (the mSPRT uses it continuity-corrected)"
    )
    fixed_horizon_p_value: float | None = Field(description="two-sided; NOT valid under repeated looks")
    log_likelihood_ratio: float | None = Field(
        description="log Lambda of this look for H0: no difference (None when no error was seen at all)"
    )
    always_valid_p_value: float = Field(description="two-sided, of 'no difference' (reported, not gated)")
    cs_lower: float = Field(description="running lower confidence bound at level alpha (FAIL above the tolerance)")
    cs_upper: float = Field(description="running upper confidence bound at level beta (PASS below the PASS bound)")
    cs_restarted: bool = Field(default=False, description="running bounds crossed; restarted here")
    alpha: float
    beta: float = 0.01
    tau: float
    difference_4xx: float | None
    z_statistic_4xx: float | None


class LatencyCheck(_Frozen):
    checked: bool
    p50_ratio: float | None
    p99_ratio: float | None
    limit: float


class StageVerdict(_Frozen):
    outcome: GateOutcome
    reason: str
    final_look: bool
    look: int
    champion: VariantSummary
    challenger: VariantSummary
    srm: SrmCheck | None
    error_rate: ErrorRateTest | None
    latency: LatencyCheck | None
    warnings: tuple[str, ...] = ()
    state: SequentialState
    settings: GateSettings


# ---------------------------------------------------------------------------------------------------------------
# Statistics (plain functions, so tests can compare them with scipy/statsmodels).


def chi_square_sf_1dof(statistic: float) -> float:
    """P(chi2_1 > x) = P(|Z| > sqrt(x)) = erfc(sqrt(x/2)): exact for one degree of freedom, no scipy needed."""
    if statistic <= 0:
        return 1.0
    return math.erfc(math.sqrt(statistic / 2.0))


def srm_chi_square(
    champion_invocations: int, challenger_invocations: int, challenger_share: float
) -> tuple[float, float]:
    """Pearson chi-square of the observed split against the expected one; returns (statistic, p-value)."""
    if not 0 < challenger_share < 1:
        raise ValueError("the SRM check needs an expected challenger share strictly between 0 and 1")
    total = champion_invocations + challenger_invocations
    if total <= 0:
        raise ValueError("the SRM check needs at least one request")
    expected_b = total * challenger_share
    expected_a = total - expected_b
    statistic = (challenger_invocations - expected_b) ** 2 / expected_b + (
        champion_invocations - expected_a
    ) ** 2 / expected_a
    return statistic, chi_square_sf_1dof(statistic)


def two_proportion_z(x_champion: int, n_champion: int, x_challenger: int, n_challenger: int) -> float:
    """Pooled two-proportion z of challenger minus champion (what statsmodels' proportions_ztest computes)."""
    if n_champion <= 0 or n_challenger <= 0:
        raise ValueError("both variants need requests")
    pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
    difference = x_challenger / n_challenger - x_champion / n_champion
    variance = pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger)
    if variance <= 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / math.sqrt(variance)


def pooled_variance(x_champion: int, n_champion: int, x_challenger: int, n_challenger: int) -> float:
    """Variance of the rate difference when both variants share one rate (H0: no difference), estimated pooled."""
    pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
    return pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger)


def constrained_rates(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, theta0: float
) -> tuple[float, float]:
    """Maximum-likelihood (champion, challenger) rates under the constraint challenger - champion = theta0.

    Closed-form root of the score equation's cubic (Miettinen & Nurminen 1985; Farrington & Manning 1990), checked
    against a numerical MLE in the tests. (statsmodels 0.15's score_test_proportions_2indep has x_0 where n_0 belongs
    in the linear coefficient, statsmodels issue #10269, so it only agrees at theta0 = 0.) Evaluating the variance
    at the hypothesised difference rather than at the estimate keeps the test honest with few errors: a challenger
    that happens to show 0 errors does not get a variance of 0.
    """
    if theta0 == 0:
        pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
        return pooled, pooled
    n, x = n_champion + n_challenger, x_champion + x_challenger
    t2 = (n_challenger + 2 * n_champion) * theta0 - n - x
    t1 = (n_champion * theta0 - n - 2 * x_champion) * theta0 + x
    t0 = x_champion * theta0 * (1 - theta0)
    v = t2 / (3 * n)
    q = v**3 - t1 * t2 / (6 * n**2) + t0 / (2 * n)
    p = math.copysign(math.sqrt(max(v * v - t1 / (3 * n), 0.0)), q)
    if p == 0:
        rate_a = -v
    else:
        angle = (math.pi + math.acos(max(-1.0, min(1.0, q / p**3)))) / 3
        rate_a = 2 * p * math.cos(angle) - v
    rate_a = min(max(rate_a, 0.0, -theta0), 1.0, 1.0 - theta0)
    return rate_a, rate_a + theta0


def restricted_variance(x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, theta0: float) -> float:
    """Variance of the rate difference at the constrained MLE for H0: challenger - champion = theta0."""
    rate_a, rate_b = constrained_rates(x_champion, n_champion, x_challenger, n_challenger, theta0)
    return rate_a * (1 - rate_a) / n_champion + rate_b * (1 - rate_b) / n_challenger


def continuity_correction(n_champion: int, n_challenger: int) -> float:
    """Half a count per variant, c = (1/n_A + 1/n_B)/2 (Fleiss): error counts are discrete, the normal is not.

    At the 1% stage against a 0.1% champion the challenger sees a handful of errors an hour, and the tail of such a
    count is far heavier than the normal one (5 errors when 1.2 are expected: 0.8% exact, 0.03% by the normal).
    Shrinking the deviation by c brings the A/A false-FAIL rate there back under alpha; at thousands of requests c is
    a few thousandths of a percentage point.
    """
    return 0.5 * (1 / n_champion + 1 / n_challenger)


def msprt_log_likelihood_ratio(difference: float, variance: float, tau: float, theta0: float = 0.0) -> float:
    """Log Lambda of the normal-mixture SPRT for H0: diff = theta0 (log space: Lambda overflows on large samples).

    A zero variance (no error at all, or a rate pinned at 0 or 1) carries no evidence when the estimate sits on
    theta0 (-inf) and conclusive evidence otherwise (+inf).
    """
    if variance <= 0:
        return -math.inf if difference == theta0 else math.inf
    tau2 = tau * tau
    total = variance + tau2
    return 0.5 * math.log(variance / total) + tau2 * (difference - theta0) ** 2 / (2 * variance * total)


def msprt_log_lr_at(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, theta0: float
) -> float:
    """Log Lambda for H0: challenger - champion = theta0: variance under that H0, continuity-corrected deviation."""
    deviation = x_challenger / n_challenger - x_champion / n_champion - theta0
    corrected = math.copysign(max(0.0, abs(deviation) - continuity_correction(n_champion, n_challenger)), deviation)
    variance = restricted_variance(x_champion, n_champion, x_challenger, n_challenger, theta0)
    return msprt_log_likelihood_ratio(theta0 + corrected, variance, tau, theta0)


CS_RESOLUTION = 1e-7
"""Bisection stops when a confidence bound is known to 1e-7 (0.00001 pp); the reported bound is the outer end."""


def log_normal_cdf(x: float) -> float:
    """log Phi(x), accurate in the far left tail where Phi itself underflows (Mills-ratio series below -20)."""
    if x > -20:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2)))
    return -x * x / 2 - math.log(-x) - 0.5 * math.log(2 * math.pi) + math.log1p(-1 / x**2 + 3 / x**4)


def one_sided_log_lr(deviation: float, variance: float, tau: float) -> float:
    """log Lambda+ of the one-sided normal mixture: alternatives only on the side `deviation` points to.

    With the half-normal mixing density 2 phi(theta/tau)/tau on theta > 0 (theta measured from theta0), the mixture
    of likelihood ratios exp(theta S - theta^2 I / 2), S = e/V, I = 1/V, integrates in closed form to

        Lambda+ = 2 sqrt(V/(V+tau^2)) exp(x^2/2) Phi(x),   x = e tau / sqrt(V (V+tau^2)).

    It is a nonnegative martingale under theta0 like the two-sided mixture (Ville: P(ever >= 1/a) <= a), and about
    twice as large on the tested side, so a one-sided question is answered with ~log 2 less evidence. A deviation on
    the other side gives Lambda+ < 1 (no evidence).
    """
    if variance <= 0:
        return math.inf if deviation > 0 else -math.inf
    total = variance + tau * tau
    x = deviation * tau / math.sqrt(variance * total)
    return math.log(2) + 0.5 * math.log(variance / total) + x * x / 2 + log_normal_cdf(x)


def _one_sided_at(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, theta0: float, side: float
) -> float:
    """Evidence that challenger - champion error rate lies beyond theta0 on `side` (+1 above, -1 below): the
    one-sided mixture, variance under theta0, deviation shortened by the continuity correction."""
    deviation = side * (x_challenger / n_challenger - x_champion / n_champion - theta0)
    variance = restricted_variance(x_champion, n_champion, x_challenger, n_challenger, theta0)
    return one_sided_log_lr(deviation - continuity_correction(n_champion, n_challenger), variance, tau)


def harm_log_lr(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, theta0: float
) -> float:
    """Evidence that challenger - champion error rate is above theta0."""
    return _one_sided_at(x_champion, n_champion, x_challenger, n_challenger, tau, theta0, 1.0)


def safety_log_lr(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, theta0: float
) -> float:
    """Evidence that challenger - champion error rate is below theta0 (the mirror of harm_log_lr)."""
    return _one_sided_at(x_champion, n_champion, x_challenger, n_challenger, tau, theta0, -1.0)


def _edge(log_lr: Callable[[float], float], threshold: float, start: float, direction: float, step: float) -> float:
    """Where {theta : log_lr(theta) < threshold} ends, walking from `start` (inside) towards `direction` (+1/-1):
    doubling steps until the evidence reaches the threshold, then bisection; the outer end, or +-1 if never."""
    edge, inside = direction, start
    while True:
        candidate = start + direction * step
        if direction * (candidate - edge) >= 0:
            candidate = edge
        if log_lr(candidate) >= threshold:
            outside = candidate
            break
        if candidate == edge:
            return edge
        inside, step = candidate, step * 2
    while abs(outside - inside) > CS_RESOLUTION:
        middle = (inside + outside) / 2
        if log_lr(middle) >= threshold:
            outside = middle
        else:
            inside = middle
    return outside


def first_step(x_champion: int, n_champion: int, x_challenger: int, n_challenger: int) -> float:
    """The first step of a bound's search: the Wald standard error of the difference (at least 0.01 pp)."""
    difference = x_challenger / n_challenger - x_champion / n_champion
    wald = restricted_variance(x_champion, n_champion, x_challenger, n_challenger, difference)
    return max(math.sqrt(wald), 1e-4)


def _confidence_bound(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, level: float, side: float
) -> float:
    """Where the one-sided evidence against theta reaches 1/level, walking from the estimate away from it on `side`:
    the upper bound for side +1, the lower bound for side -1."""
    return _edge(
        lambda theta: _one_sided_at(x_champion, n_champion, x_challenger, n_challenger, tau, theta, -side),
        math.log(1 / level),
        x_challenger / n_challenger - x_champion / n_champion,
        side,
        first_step(x_champion, n_champion, x_challenger, n_challenger),
    )


def lower_confidence_bound(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, alpha: float
) -> float:
    """This look's lower confidence bound of (challenger - champion) error rate at level alpha, anytime-valid:
    every theta below it has harm evidence >= 1/alpha, so the chance that it ever exceeds the true difference is
    <= alpha however often one looks. FAIL compares it with the tolerance."""
    return _confidence_bound(x_champion, n_champion, x_challenger, n_challenger, tau, alpha, -1.0)


def upper_confidence_bound(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, tau: float, beta: float
) -> float:
    """This look's upper confidence bound at level beta (anytime-valid): PASS compares it with the harm to rule
    out, so a challenger exactly that harmful passes with chance <= beta."""
    return _confidence_bound(x_champion, n_champion, x_challenger, n_challenger, tau, beta, 1.0)


def error_rate_margins(settings: GateSettings, champion_rate: float) -> tuple[float, float]:
    """(FAIL tolerance, PASS bound) of the error-rate excess at this champion rate: the larger of each absolute
    floor and its ratio's excess over the champion."""
    fail = max(settings.error_rate_abs_tolerance, (settings.error_rate_max_ratio - 1) * champion_rate)
    harm = max(settings.pass_abs_excess, (settings.pass_max_ratio - 1) * champion_rate)
    return fail, harm


# ---------------------------------------------------------------------------------------------------------------
# The gate.


def _rate(count: int, n: int) -> float | None:
    return count / n if n > 0 else None


def _summary(metrics: VariantMetrics, count_4xx: bool) -> VariantSummary:
    gated = metrics.errors_5xx + (metrics.errors_4xx if count_4xx else 0)
    return VariantSummary(
        invocations=metrics.invocations,
        errors_5xx=metrics.errors_5xx,
        errors_4xx=metrics.errors_4xx,
        error_rate_5xx=_rate(metrics.errors_5xx, metrics.invocations),
        error_rate_4xx=_rate(metrics.errors_4xx, metrics.invocations),
        error_rate=_rate(gated, metrics.invocations),
        latency_p50_ms=metrics.latency_p50_ms,
        latency_p99_ms=metrics.latency_p99_ms,
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _pp(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def _inconsistency(observation: StageObservation, prior: SequentialState | None) -> str | None:
    """Counts that cannot come from one cumulative CloudWatch window make every number below meaningless."""
    for name, metrics in (("champion", observation.champion), ("challenger", observation.challenger)):
        if metrics.errors_5xx + metrics.errors_4xx > metrics.invocations:
            return (
                f"The {name}'s metrics are inconsistent ({metrics.errors_5xx} 5XX + {metrics.errors_4xx} 4XX errors "
                f"for {metrics.invocations} invocations), so the stage cannot be judged."
            )
    if prior is not None and (
        observation.champion.invocations < prior.champion_invocations
        or observation.challenger.invocations < prior.challenger_invocations
    ):
        return (
            "Invocation counts went down since the previous look, so the metrics are not cumulative over the stage "
            "and the sequential test cannot continue."
        )
    return None


def srm_alpha_for_look(srm_alpha: float, look: int) -> float:
    """Alpha spent at look k: srm_alpha * 6/(pi^2 k^2); the sum over k = 1, 2, ... is srm_alpha (union bound)."""
    if look < 1:
        raise ValueError("looks are numbered from 1")
    return srm_alpha * 6 / (math.pi**2 * look**2)


def _srm(observation: StageObservation, settings: GateSettings, look: int) -> SrmCheck:
    n_a, n_b = observation.champion.invocations, observation.challenger.invocations
    total = n_a + n_b
    share = observation.challenger_share
    observed = n_b / total if total > 0 else None
    applicable = share < 1 and total > 0 and min(total * share, total * (1 - share)) >= SRM_MIN_EXPECTED
    statistic, p_value = srm_chi_square(n_a, n_b, share) if applicable else (None, None)
    return SrmCheck(
        checked=applicable,
        expected_challenger_share=share,
        observed_challenger_share=observed,
        chi_square=statistic,
        p_value=p_value,
        alpha=settings.srm_alpha,
        alpha_this_look=srm_alpha_for_look(settings.srm_alpha, look),
    )


def _error_rate_test(
    champion: VariantSummary,
    challenger: VariantSummary,
    settings: GateSettings,
    prior: SequentialState | None,
) -> ErrorRateTest:
    prior_p = prior.always_valid_p_value if prior is not None else 1.0
    prior_lower = prior.cs_lower if prior is not None else -1.0
    prior_upper = prior.cs_upper if prior is not None else 1.0
    n_a, n_b = champion.invocations, challenger.invocations
    extra_a = champion.errors_4xx if settings.count_4xx_as_errors else 0
    extra_b = challenger.errors_4xx if settings.count_4xx_as_errors else 0
    x_a, x_b = champion.errors_5xx + extra_a, challenger.errors_5xx + extra_b
    counted = "5XX+4XX" if settings.count_4xx_as_errors else "5XX"
    if n_a == 0 or n_b == 0:
        return ErrorRateTest(
            evaluable=False,
            errors_counted=counted,
            difference=None,
            fail_margin=None,
            pass_margin=None,
            variance=None,
            z_statistic=None,
            fixed_horizon_p_value=None,
            log_likelihood_ratio=None,
            always_valid_p_value=prior_p,
            cs_lower=prior_lower,
            cs_upper=prior_upper,
            alpha=settings.alpha,
            beta=settings.beta,
            tau=settings.tau,
            difference_4xx=None,
            z_statistic_4xx=None,
        )
    rate_a, rate_b = x_a / n_a, x_b / n_b
    difference = rate_b - rate_a
    fail_margin, pass_margin = error_rate_margins(settings, rate_a)
    variance = pooled_variance(x_a, n_a, x_b, n_b)
    log_lr = msprt_log_lr_at(x_a, n_a, x_b, n_b, settings.tau, 0.0)
    p_value = min(prior_p, math.exp(-max(0.0, log_lr)))
    look_lower = lower_confidence_bound(x_a, n_a, x_b, n_b, settings.tau, settings.alpha)
    look_upper = upper_confidence_bound(x_a, n_a, x_b, n_b, settings.tau, settings.beta)
    lower, upper = max(prior_lower, look_lower), min(prior_upper, look_upper)
    restarted = lower > upper
    if restarted:
        # Running intersection went empty: the data moved in a way a fixed split cannot explain. Start afresh
        # from this look's CS rather than report an empty interval (evaluate_stage adds a warning).
        lower, upper = look_lower, look_upper
    z = two_proportion_z(x_a, n_a, x_b, n_b)
    fixed_p = math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else 0.0
    z_4xx = two_proportion_z(champion.errors_4xx, n_a, challenger.errors_4xx, n_b)
    return ErrorRateTest(
        evaluable=True,
        errors_counted=counted,
        difference=difference,
        fail_margin=fail_margin,
        pass_margin=pass_margin,
        variance=variance,
        z_statistic=z if math.isfinite(z) else None,
        fixed_horizon_p_value=fixed_p,
        log_likelihood_ratio=log_lr if math.isfinite(log_lr) else None,
        always_valid_p_value=p_value,
        cs_lower=lower,
        cs_upper=upper,
        cs_restarted=restarted,
        alpha=settings.alpha,
        beta=settings.beta,
        tau=settings.tau,
        difference_4xx=challenger.errors_4xx / n_b - champion.errors_4xx / n_a,
        z_statistic_4xx=z_4xx if math.isfinite(z_4xx) else None,
    )


def _latency(champion: VariantSummary, challenger: VariantSummary, settings: GateSettings) -> LatencyCheck:
    def ratio(b: float | None, a: float | None) -> float | None:
        return b / a if a is not None and b is not None and a > 0 else None

    p99_ratio = ratio(challenger.latency_p99_ms, champion.latency_p99_ms)
    enough = min(challenger.invocations, champion.invocations) >= max(
        settings.min_latency_requests, settings.min_challenger_requests, settings.min_champion_requests
    )
    return LatencyCheck(
        checked=enough and p99_ratio is not None,
        p50_ratio=ratio(challenger.latency_p50_ms, champion.latency_p50_ms),
        p99_ratio=p99_ratio,
        limit=settings.p99_latency_max_ratio,
    )


def evaluate_stage(
    observation: StageObservation,
    settings: GateSettings,
    final_look: bool,
    prior: SequentialState | None = None,
    may_pass: bool = True,
) -> StageVerdict:
    """Judge one look at a stage; pass the previous look's `verdict.state` as `prior` (None on the stage's first look).

    `final_look`: the stage's longest bake is over (an undecided stage is INCONCLUSIVE for good). `may_pass`: the
    stage's minimum bake is over, so it may PASS at this look (before it, only FAIL and INVALID can end it).

    Rules, first match wins:
      INVALID       counts inconsistent (errors > invocations, or counts lower than at the previous look), or
                    sample-ratio mismatch: chi-square p < srm_alpha * 6/(pi^2 look^2) (checked when both expected
                    counts are >= 50 and the challenger's share is below 100%).
      INCONCLUSIVE  no request at all yet.
      FAIL          error rate: challenger has >= min_errors_to_fail errors and the running lower confidence bound
                    (level alpha) of (challenger - champion) error rate is above the FAIL tolerance
                    max(error_rate_abs_tolerance, (error_rate_max_ratio - 1) * champion rate), i.e. the always-valid
                    evidence says the challenger is worse by more than tolerated (checked at every look).
      FAIL          latency: both variants have min_latency_requests and p99 challenger/champion > limit.
      PASS          the minimum bake is over (`may_pass`), enough requests, p99 ratio within the limit, and the
                    running upper confidence bound (level beta) is below the PASS bound
                    max(pass_abs_excess, (pass_max_ratio - 1) * champion rate): the harm is ruled out. At any look:
                    the bound is anytime-valid, so deciding early costs no error (the bake ends with the evidence).
      INCONCLUSIVE  otherwise; at the final look with the reason (too few requests, no p99, or the upper bound
                    still above the PASS bound), before it "keeps baking".

    Each side is a one-sided normal-mixture sequential test (one_sided_log_lr) at its own level: alpha bounds false
    FAILs of a tolerable challenger, beta false PASSes of a challenger as bad as the PASS bound, both over every
    look, planned or not (an operator's pause, an extended bake), because the bounds hold at any stopping time.

    Why two margins: a stage can only rule out harms its traffic can see. With the defaults a stage fails on
    convincing harm beyond +10% (or +0.05 pp) and passes once a doubling (or +0.5 pp) is ruled out; what lies between
    is re-examined by the next stage with ten times the traffic. Set the PASS bound equal to the FAIL tolerance for
    strict non-inferiority at every stage (then the small stages need far longer bakes).
    """
    count_4xx = settings.count_4xx_as_errors
    champion = _summary(observation.champion, count_4xx)
    challenger = _summary(observation.challenger, count_4xx)
    look = (prior.looks if prior is not None else 0) + 1
    warnings: list[str] = []

    def verdict(
        outcome: GateOutcome,
        reason: str,
        srm: SrmCheck | None = None,
        errors: ErrorRateTest | None = None,
        latency: LatencyCheck | None = None,
    ) -> StageVerdict:
        if errors is not None:
            state = SequentialState(
                looks=look,
                champion_invocations=champion.invocations,
                challenger_invocations=challenger.invocations,
                always_valid_p_value=errors.always_valid_p_value,
                cs_lower=errors.cs_lower,
                cs_upper=errors.cs_upper,
            )
        else:
            state = prior or SequentialState(
                looks=0,
                champion_invocations=0,
                challenger_invocations=0,
                always_valid_p_value=1.0,
                cs_lower=-1.0,
                cs_upper=1.0,
            )
        return StageVerdict(
            outcome=outcome,
            reason=reason,
            final_look=final_look,
            look=look,
            champion=champion,
            challenger=challenger,
            srm=srm,
            error_rate=errors,
            latency=latency,
            warnings=tuple(warnings),
            state=state,
            settings=settings,
        )

    problem = _inconsistency(observation, prior)
    if problem is not None:
        return verdict(GateOutcome.INVALID, problem)

    for name, metrics in (("champion", champion), ("challenger", challenger)):
        p50, p99 = metrics.latency_p50_ms, metrics.latency_p99_ms
        if p50 is not None and p99 is not None and p50 > p99:
            warnings.append(f"The {name}'s p50 latency ({p50:g} ms) is above its p99 ({p99:g} ms).")

    srm = _srm(observation, settings, look)
    errors = _error_rate_test(champion, challenger, settings, prior)
    latency = _latency(champion, challenger, settings)
    if errors.cs_restarted:
        warnings.append("The running confidence sequence went empty and was restarted from this look.")
    n_a, n_b = champion.invocations, challenger.invocations
    x_b = challenger.errors_5xx + (challenger.errors_4xx if count_4xx else 0)

    def finish(outcome: GateOutcome, reason: str) -> StageVerdict:
        return verdict(outcome, reason, srm, errors, latency)

    if srm.checked and srm.p_value is not None and srm.p_value < srm.alpha_this_look:
        return finish(
            GateOutcome.INVALID,
            f"Sample-ratio mismatch: the challenger got {_pct(srm.observed_challenger_share)} of {n_a + n_b:,} "
            f"requests instead of {_pct(srm.expected_challenger_share)} (chi-square {srm.chi_square:.1f}, "
            f"p = {srm.p_value:.2g} < {srm.alpha_this_look:.2g} at look {look}), so routing or metrics "
            "cannot be trusted.",
        )
    if n_a + n_b == 0:
        return finish(GateOutcome.INCONCLUSIVE, "No requests reached either variant yet.")

    diff_text = ""
    if errors.evaluable and errors.fail_margin is not None and errors.pass_margin is not None:
        diff_text = (
            f"challenger {errors.errors_counted} rate {_pct(challenger.error_rate)} vs champion "
            f"{_pct(champion.error_rate)} ({n_b:,} vs {n_a:,} requests); the difference is at least "
            f"{_pp(errors.cs_lower)} ({1 - settings.alpha:.0%} anytime-valid bound; FAIL above "
            f"{_pp(errors.fail_margin)}) and at most {_pp(errors.cs_upper)} ({1 - settings.beta:.0%} bound; PASS "
            f"below {_pp(errors.pass_margin)})"
        )
        if x_b >= settings.min_errors_to_fail and errors.cs_lower > errors.fail_margin:
            return finish(
                GateOutcome.FAIL,
                f"The challenger's error rate is worse than the champion's by more than the tolerance: {diff_text}.",
            )
    if latency.checked and latency.p99_ratio is not None and latency.p99_ratio > latency.limit:
        return finish(
            GateOutcome.FAIL,
            f"The challenger's p99 latency is {latency.p99_ratio:.2f}x the champion's "
            f"({challenger.latency_p99_ms:g} ms vs {champion.latency_p99_ms:g} ms), "
            f"above the {latency.limit:g}x limit.",
        )
    blocker: str | None = None
    if n_b < settings.min_challenger_requests or n_a < settings.min_champion_requests:
        blocker = (
            f"Too few requests to decide: challenger {n_b:,} (needs {settings.min_challenger_requests:,}), "
            f"champion {n_a:,} (needs {settings.min_champion_requests:,})."
        )
    elif latency.p99_ratio is None:
        blocker = "No p99 latency to compare for both variants, so the stage cannot pass."
    elif errors.pass_margin is None or errors.cs_upper >= errors.pass_margin:
        blocker = f"The upper confidence bound is still above the PASS bound, so harm is not ruled out: {diff_text}."
    elif not latency.checked:
        blocker = (
            f"Too few requests to compare p99 latencies: {min(n_a, n_b):,} for the variant with fewer, needs "
            f"{settings.min_latency_requests:,}."
        )
    elif not may_pass:
        blocker = "No harm, but the stage's minimum bake is not over."
    if blocker is None:
        return finish(
            GateOutcome.PASS,
            f"No harm: {diff_text}; p99 latency ratio {latency.p99_ratio:.2f}x within {latency.limit:g}x.",
        )
    if not final_look:
        return finish(GateOutcome.INCONCLUSIVE, f"No harm shown so far; the stage keeps baking. {blocker}")
    return finish(GateOutcome.INCONCLUSIVE, blocker)
