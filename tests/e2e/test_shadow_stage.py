"""The shadow stage end to end: before any caller is served by the challenger, SageMaker sends it a copy of the live
requests as the endpoint's shadow variant, and the gate judges its errors and latency against the champion's on the
same requests. A worse challenger is rolled back from there; a good one goes on to the live stages."""

from __future__ import annotations

from pathlib import Path

from local.reporting import RunResult
from tests.e2e.conftest import event
from tests.e2e.test_flood import SHADOW_MODEL, held_runtime


def run_shadowed(tmp_path: Path, scenario: str) -> tuple[RunResult, list[str]]:
    """A promotion of the model with a shadow stage (the shared event, tagged for it); and the AWS actions its
    steps were authorized for."""
    document = event()
    document["detail"]["Tags"]["promotion:model"] = SHADOW_MODEL
    runtime = held_runtime(tmp_path, scenario=scenario)
    with runtime:
        result = runtime.run(document, seed=True)
        assert runtime.iam is not None
        actions = [record.request.action for record in runtime.iam.enforcer.records if record.decision.allowed]
    return result, actions


def test_a_shadow_stage_fails_a_worse_challenger_before_it_serves_any_request(tmp_path: Path) -> None:
    result, actions = run_shadowed(tmp_path, "worse-errors")
    assert result.error == "ROLLED_BACK", result.cause
    history = result.output["rollout"]["history"]
    assert {look["stage"] for look in history} == {0} and history[-1]["outcome"] == "FAIL"
    assert history[-1]["challenger_requests"] > 0  # it was judged on copies of real requests
    assert "shadow stage (100 % of requests copied) FAIL" in str(result.cause)
    # It never became a production variant: no stage's weights were asked for, ShiftTraffic never ran.
    assert "sagemaker:UpdateEndpointWeightsAndCapacities" not in actions
    assert "ShiftTraffic" not in {state.name for state in result.states}
    assert result.production_after == result.production_before


def test_a_good_challenger_passes_its_shadow_stage_then_serves_stage_by_stage(tmp_path: Path) -> None:
    result, _ = run_shadowed(tmp_path, "good")
    assert result.outcome == "PROMOTED", result.cause
    stages = [look["stage"] for look in result.output["rollout"]["history"]]
    assert stages[0] == 0 and sorted(set(stages)) == [0, 1, 2]  # shadow, then 50 % and 100 %
    assert result.production_after is not None
    assert result.production_after.endpoint_weights == {result.output["rollout"]["challenger_variant"]: 1.0}
