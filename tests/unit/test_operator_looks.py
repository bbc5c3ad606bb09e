"""EvaluateStage with an operator's say: what a pending request or a hold's answer does to one look, and what it
never overrides (a failing guardrail)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import OperatorDecision, Rollout, RolloutAction
from promotion.rollout.control import ControlRequest, OperatorRequest
from promotion.rollout.steps import evaluate_rollout_stage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OMAR = OperatorRequest(
    action=ControlRequest.PAUSE,
    by="Omar Haddad",
    identity="arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com",
    reason="checking",
    at=NOW,
)
TRAFFIC = {
    "good": {"champ": (990_000, 9_900, 40_000.0), "chal": (10_000, 100, 40_000.0)},
    "bad": {"champ": (990_000, 9_900, 40_000.0), "chal": (10_000, 1_000, 40_000.0)},
    "none": {"champ": (0, 0, None), "chal": (0, 0, None)},
}


class StageMetrics:
    """GetMetricData's answer for the two variants: (invocations, 5XX errors, p99 ModelLatency in microseconds)."""

    def __init__(self, traffic: str) -> None:
        self.traffic = TRAFFIC[traffic]

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        results = []
        for query in MetricDataQueries:
            stat = query["MetricStat"]
            variant = next(d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == "VariantName")
            invocations, errors, p99 = self.traffic[variant]
            value = {"invocations": invocations, "errors5xx": errors, "p99": p99, "errors4xx": 0}[query["Id"]]
            results.append({"Id": query["Id"], "Values": [] if value is None else [value]})
        return {"MetricDataResults": results}


def stage(catalog: ModelCatalog, **changes: Any) -> Rollout:
    """The first stage (1 %), baked an hour: its last look (no extensions left)."""
    rollout = Rollout(
        action=RolloutAction.BAKE,
        endpoint_name="fraud-detection-prod",
        champion_variant="champ",
        challenger_variant="chal",
        stages=[1, 10, 50, 100],
        weights={"champ": 0.99, "chal": 0.01},
        stage_started_at=NOW - timedelta(minutes=60),
        looks_per_stage=4,
        looks=11,  # 4 looks and 2 extensions of 4: the next is the last
        extensions=2,
    )
    return rollout.model_copy(update=changes)


def look(catalog: ModelCatalog, traffic: str, **options: Any) -> Rollout:
    rollout = options.pop("rollout", None) or stage(catalog)
    return evaluate_rollout_stage(StageMetrics(traffic), catalog, rollout, NOW, **options)


def with_hold(catalog: ModelCatalog, **settings: Any) -> ModelCatalog:
    assert catalog.rollout is not None
    rollout = catalog.rollout.model_copy(update=settings)
    return catalog.model_copy(update={"rollout": rollout})


def test_without_an_operator_the_gate_decides(catalog: ModelCatalog) -> None:
    assert look(catalog, "good").action == RolloutAction.NEXT_STAGE
    assert look(catalog, "bad").action == RolloutAction.ROLLBACK
    assert look(catalog, "none").action == RolloutAction.ROLLBACK  # inconclusive past its extensions


def test_an_abort_rolls_back_without_a_look(catalog: ModelCatalog) -> None:
    aborted = look(catalog, "good", request=OMAR.__class__(**{**OMAR.__dict__, "action": ControlRequest.ABORT}))
    assert aborted.action == RolloutAction.ROLLBACK
    assert aborted.reason.startswith("stage 1 (1 %): abort by Omar Haddad")
    assert aborted.history == [] and aborted.looks == 11


def test_a_pause_holds_the_stage_even_when_it_would_pass(catalog: ModelCatalog) -> None:
    paused = look(catalog, "good", request=OMAR)
    assert (paused.action, paused.hold, paused.stage_index) == (RolloutAction.HOLD, "paused", 0)
    assert paused.hold_seconds == 24 * 3600  # the catalog's default hold_hours
    assert paused.weights == {"champ": 0.99, "chal": 0.01} and paused.reference_champion is None
    assert paused.history[-1].operator == paused.reason
    assert paused.reason.startswith("stage 1 (1 %) paused by Omar Haddad") and "checking" in paused.reason


def test_a_failing_guardrail_wins_over_any_request(catalog: ModelCatalog) -> None:
    for action in (ControlRequest.PAUSE, ControlRequest.PROMOTE_NOW):
        request = OperatorRequest(**{**OMAR.__dict__, "action": action})
        verdict = look(catalog, "bad", request=request)
        assert verdict.action == RolloutAction.ROLLBACK, action
        assert f"the {action.command} by Omar Haddad" in verdict.reason and "not carried out" in verdict.reason


def test_promote_now_promotes_from_any_stage_when_the_look_holds(catalog: ModelCatalog) -> None:
    request = OperatorRequest(**{**OMAR.__dict__, "action": ControlRequest.PROMOTE_NOW})
    for traffic in ("good", "none"):  # a PASS or an undecided look: no harm shown
        promoted = look(catalog, traffic, request=request)
        assert promoted.action == RolloutAction.PROMOTE and promoted.stage_index == 0, traffic
        assert "promoted now by Omar Haddad" in promoted.reason


def test_a_resumed_paused_stage_goes_on_where_its_gate_stopped(catalog: ModelCatalog) -> None:
    answer = OperatorDecision(decision="resume", by="Omar Haddad", identity="arn:x", reason="ok", at=NOW)
    rollout = stage(catalog, action=RolloutAction.HOLD, hold="paused", hold_seconds=60, operator=answer, looks=1)
    resumed = look(catalog, "none", rollout=rollout)
    assert resumed.action == RolloutAction.BAKE and resumed.looks == 2  # not final yet: the gate goes on
    assert (resumed.operator, resumed.hold, resumed.hold_seconds) == (None, None, None)  # applied once
    assert resumed.reason.startswith("stage 1 (1 %) resumed by Omar Haddad")


@pytest.mark.parametrize("decision", ["resume", "expired"])
def test_an_inconclusive_stage_an_operator_accepts_goes_to_the_next_stage(catalog: ModelCatalog, decision: str) -> None:
    held_catalog = with_hold(catalog, on_inconclusive="hold", on_hold_expiry="continue")
    answer = OperatorDecision(decision=decision, by="Omar Haddad", reason="fine")  # type: ignore[arg-type]
    rollout = stage(catalog, action=RolloutAction.HOLD, hold="inconclusive", hold_seconds=60, operator=answer)
    accepted = look(held_catalog, "none", rollout=rollout)
    assert (accepted.action, accepted.stage_index) == (RolloutAction.NEXT_STAGE, 1)
    assert "accepted although inconclusive" in accepted.reason
    assert accepted.reference_champion is not None


def test_a_hold_that_expires_rolls_back_by_default(catalog: ModelCatalog) -> None:
    answer = OperatorDecision(decision="expired")
    rollout = stage(catalog, action=RolloutAction.HOLD, hold="paused", hold_seconds=60, operator=answer)
    expired = look(catalog, "good", rollout=rollout)
    assert expired.action == RolloutAction.ROLLBACK
    assert expired.reason == (
        "no operator answered within 24 h of the rollout being held (paused): on_hold_expiry rollback"
    )


def test_an_inconclusive_last_look_holds_when_the_catalog_says_so(catalog: ModelCatalog) -> None:
    held = look(with_hold(catalog, on_inconclusive="hold", hold_hours=2), "none")
    assert (held.action, held.hold, held.hold_seconds) == (RolloutAction.HOLD, "inconclusive", 7200)
    assert "held for an operator" in held.reason


def test_a_shadow_stage_is_judged_on_the_copied_share_and_passes_to_the_first_live_stage(catalog: ModelCatalog) -> None:
    """The shadow gets a copy of every request: its share of both variants' requests is one half, and a PASS leads
    to the first live stage (ShiftTraffic puts the A/B config on first), not to the second."""
    copied = {"champ": (990_000, 9_900, 40_000.0), "chal": (990_000, 9_900, 40_000.0)}
    TRAFFIC["copied"] = copied
    rollout = stage(catalog, phase="shadow", shadow_share=1.0, weights={"champ": 1.0})
    verdict = look(catalog, "copied", rollout=rollout)
    assert (verdict.action, verdict.stage_index, verdict.phase) == (RolloutAction.NEXT_STAGE, 0, "shadow")
    assert verdict.history[-1].stage == 0 and verdict.history[-1].challenger_percent == 0
    worse = {"champ": (990_000, 9_900, 40_000.0), "chal": (990_000, 99_000, 40_000.0)}
    TRAFFIC["worse-copied"] = worse
    failed = look(catalog, "worse-copied", rollout=rollout)
    assert failed.action == RolloutAction.ROLLBACK and failed.reason.startswith(
        "shadow stage (100 % of requests copied) FAIL"
    )
