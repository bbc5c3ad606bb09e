"""A step given an execution document without a section it needs (an execution started by hand with another input,
an edited output) refuses with StepInputInvalid naming what is missing, and writes nothing: the named error with a
readable cause is what the execution shows, where an `assert` used to fail without a message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.runtime import LocalRuntime
from tests.e2e.conftest import event

MODEL = "fraud-detection"
# step -> (section removed, the path the error names)
CASES = {
    "ShiftTraffic": ("rollout", "$.rollout"),
    "EvaluateStage": ("rollout", "$.rollout"),
    "PromoteChallenger": ("rollout", "$.rollout"),
    "DeployChallenger": ("pipeline", "$.pipeline"),
    "CompareWithChampion": ("pipeline", "$.pipeline"),
    "WriteParameters": ("validation", "$.validation"),
    "TriggerPipeline": ("validation", "$.validation"),
}
# `.waitForTaskToken` steps: the document comes as `state`, beside the task token (promotion.jobs.callbacks).
CALLBACK_STEPS = {"ShiftTraffic", "PromoteChallenger", "DeployChallenger", "CompareWithChampion", "TriggerPipeline"}


def _function(runtime: LocalRuntime, state: str) -> str:
    assert runtime.world is not None
    by_id = {spec.logical_id: spec.name for spec in runtime.world.functions.values()}
    return by_id[runtime.lambda_states()[state]]


def test_a_step_without_the_section_it_needs_refuses_by_name_and_writes_nothing(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    document: dict[str, Any] = result.output
    before = runtime.production_snapshot(MODEL)
    for step, (section, path) in CASES.items():
        broken = copy.deepcopy(document)
        broken.pop(section)
        payload = {"state": broken, "task_token": "token"} if step in CALLBACK_STEPS else broken
        output, error = runtime.lambdas.invoke(_function(runtime, step), payload)
        assert output is None and error is not None, step
        assert error["errorType"] == "StepInputInvalid", (step, error)
        assert f"{step} cannot run on this execution document: {path}: Field required" in error["errorMessage"]
    # A field inside a section an earlier step fills: named by its path too.
    rollout = copy.deepcopy(document)
    rollout["rollout"]["stage_started_at"] = None
    _, error = runtime.lambdas.invoke(_function(runtime, "EvaluateStage"), rollout)
    assert error is not None and error["errorType"] == "StepInputInvalid"
    assert "$.rollout.stage_started_at is missing" in error["errorMessage"]
    # A waiting step invoked without its task token (by hand, or by another integration pattern) refuses too.
    _, error = runtime.lambdas.invoke(_function(runtime, "ShiftTraffic"), {"state": document})
    assert error is not None and error["errorType"] == "StepInputInvalid"
    assert "ShiftTraffic cannot run on this execution document: $.task_token: Field required" in error["errorMessage"]
    assert runtime.production_snapshot(MODEL) == before


@pytest.mark.parametrize("claim_field", ["model", "release_id", "tuning_job_name"])
def test_a_claim_without_its_identity_is_refused_before_anything_is_read(
    runtime: LocalRuntime, claim_field: str
) -> None:
    result = runtime.run(event(), seed=True)
    document = copy.deepcopy(result.output)
    document["claim"][claim_field] = None
    _, error = runtime.lambdas.invoke(_function(runtime, "BackupProduction"), document)
    assert error is not None and error["errorType"] == "StepInputInvalid"
    assert f"$.claim.{claim_field}" in error["errorMessage"]
