"""The A/B rollout end to end: live traffic (the local simulator) through every stage, gated on the endpoint's
per-variant CloudWatch metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import event, runtime_with, world


def test_a_good_challenger_takes_every_stage_and_becomes_the_only_variant(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    rollout = result.output["rollout"]
    passed = {look["challenger_percent"] for look in rollout["history"] if look["outcome"] == "PASS"}
    assert passed == {1.0, 10.0, 50.0, 100.0}
    after = result.production_after
    assert after is not None
    assert list(after.endpoint_weights) == [rollout["challenger_variant"]]
    assert after.endpoint_weights[rollout["challenger_variant"]] == 1.0
    assert result.report is not None
    stages = json.loads(Path(result.report["json"]).read_text())["rollout"]["history"]
    assert {"champion_requests", "challenger_requests", "always_valid_p_value", "cs_upper", "outcome"} <= set(stages[0])


def test_each_stage_ends_at_the_first_look_that_rules_the_harm_out(synthesized: Path, tmp_path: Path) -> None:
    """Bakes follow the evidence: a stage passes at the first look after its minimum bake at which the upper bound
    is below the harm that stage must rule out (2x at 1 %, then 1.5x, 1.33x, 1.25x), not at the end of its bake."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    rollout = result.output["rollout"]
    history = rollout["history"]
    passes = [look for look in history if look["outcome"] == "PASS"]
    assert [look["stage"] for look in passes] == [1, 2, 3, 4]
    for look in passes:
        assert look["cs_upper"] < look["pass_margin"]
        assert look["baked_minutes"] >= 10  # the catalog's minimum bake
        earlier = [h for h in history if h["stage"] == look["stage"] and h["look"] < look["look"]]
        assert all(h["outcome"] == "INCONCLUSIVE" for h in earlier)
    # The later stages rule out smaller harms, yet with ten times the traffic one or two looks (15 minutes each)
    # are enough where the 1 % stage needs three.
    margins = [look["pass_margin"] for look in passes]
    assert margins[0] > margins[1] >= margins[2] >= margins[3]
    assert all(look["look"] <= 2 for look in passes[1:])
    assert passes[0]["look"] > max(look["look"] for look in passes[2:])
    assert len(history) < rollout["looks_per_stage"] * len(passes)  # fewer looks than fixed one-hour bakes


@pytest.mark.parametrize(
    ("scenario", "outcome", "fragment"),
    [
        ("worse-errors", "FAIL", "error rate is worse"),
        ("worse-latency", "FAIL", "p99"),
        ("skewed-split", "INVALID", "Sample-ratio mismatch"),
        ("no-traffic", "INCONCLUSIVE", "bake extensions"),
    ],
)
def test_a_bad_stage_rolls_everything_back(
    synthesized: Path, tmp_path: Path, scenario: str, outcome: str, fragment: str
) -> None:
    with runtime_with(synthesized, tmp_path, world(), scenario=scenario) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.status == "FAILED"
    assert result.error == "ROLLED_BACK", result.cause
    rollout = result.output["rollout"]
    last = rollout["history"][-1]
    assert last["stage"] == 1  # pulled at the first stage
    assert last["outcome"] == outcome
    assert fragment in rollout["reason"]
    assert result.production_after == result.production_before  # endpoint weights, parameters, config
    before = result.production_before
    assert before is not None
    assert len(before.endpoint_weights) == 1  # the champion alone, at 100 %
    assert result.output["rollback"]["endpoint_action"].startswith("endpoint ")
