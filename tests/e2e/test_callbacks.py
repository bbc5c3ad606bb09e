"""The synthesized state machine waits for SageMaker by callback: the training job, the comparison job and every
endpoint change are each one `.waitForTaskToken` task that SageMaker's state-change event completes (through the
stack's rules and ResumeWaitingStep), with no polling loop; a lost event times the wait out and rolls back, and
repeated events answer each wait once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local.runtime import LocalRuntime
from local.sagemaker_events import (
    ENDPOINT_STATE_CHANGE,
    PROCESSING_JOB_STATE_CHANGE,
    TRAINING_JOB_STATE_CHANGE,
    EventDelivery,
)
from local.sfn_bridge import TimeCompression
from tests.e2e.conftest import event, runtime_with, world

WAITING_STEPS = ("TriggerPipeline", "CompareWithChampion", "DeployChallenger", "ShiftTraffic", "PromoteChallenger")


def resumed(runtime: LocalRuntime) -> list[dict[str, Any]]:
    """What ResumeWaitingStep did with each SageMaker event it was given."""
    assert runtime.lambdas is not None
    return [
        invocation.result
        for invocation in runtime.lambdas.invocations
        if invocation.function == "functionsresumewaitingstepfunction" and invocation.result is not None
    ]


def test_every_wait_is_one_task_completed_by_sagemakers_event(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        result = runtime.run(event(), seed=True)
        assert result.execution_arn is not None
        history = runtime.history(result.execution_arn)
        answers = resumed(runtime)
    assert result.outcome == "PROMOTED", result.cause
    names = [state.name for state in result.states]
    assert not {"WaitForPipeline", "WaitForComparison", "WaitForEndpoint", "CheckEndpoint"} & set(names)
    shifts = names.count("ShiftTraffic")
    assert shifts == 4
    # Each waiting step was submitted and succeeded once: no retries, no polls.
    submitted = [e for e in history if e["type"] == "TaskSubmitted"]
    succeeded = [e for e in history if e["type"] == "TaskSucceeded"]
    # approval, jobs (data quality, training, comparison), deploy, shifts, promote
    assert len(submitted) == len(succeeded) == 1 + 3 + shifts + 1 + 1
    # SageMaker's events answered the jobs and every endpoint change: the steps waited for them.
    completed = [answer for answer in answers if answer["action"] == "COMPLETED"]
    assert sorted(answer["step"] for answer in completed) == sorted(
        [
            "CheckDataQuality",
            "TriggerPipeline",
            "CompareWithChampion",
            "DeployChallenger",
            *["ShiftTraffic"] * shifts,
            "PromoteChallenger",
        ]
    )
    # Every other event (the champion's endpoint as it was seeded, the rollout's last config) found no wait.
    assert all(answer["action"] in ("COMPLETED", "IGNORED") for answer in answers)
    rollout = result.output["rollout"]
    assert rollout["action"] == "DONE"
    assert [look["stage"] for look in rollout["history"] if look["outcome"] == "PASS"] == [1, 2, 3, 4]


def test_a_lost_event_times_the_wait_out_and_rolls_back(synthesized: Path, tmp_path: Path) -> None:
    """The training job's event never arrives (a rule disabled, a target that kept failing): the wait's timeout (the
    job's max run time plus an hour, compressed here) fails TriggerPipeline, and production comes back as it was."""
    with runtime_with(
        synthesized,
        tmp_path,
        world(),
        scenario="good",
        event_delivery=EventDelivery(lost=frozenset({TRAINING_JOB_STATE_CHANGE})),
        time_compression=TimeCompression(callback_timeout_factor=0.0, callback_timeout_max_s=2),
    ) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.error == "ROLLED_BACK", result.cause
    assert result.output["error"]["Error"] == "States.Timeout"
    names = [state.name for state in result.states]
    assert names[names.index("TriggerPipeline") + 1] == "Rollback"
    assert "CompareWithChampion" not in names
    assert result.production_after == result.production_before


def test_repeated_events_answer_each_wait_once(synthesized: Path, tmp_path: Path) -> None:
    """SageMaker may send several events for one state change: every one reaches ResumeWaitingStep, one answers."""
    delivery = EventDelivery(copies=3)
    with runtime_with(synthesized, tmp_path, world(), scenario="good", event_delivery=delivery) as runtime:
        result = runtime.run(event(), seed=True)
        answers = resumed(runtime)
    assert result.outcome == "PROMOTED", result.cause
    completed = [answer for answer in answers if answer["action"] == "COMPLETED"]
    assert len(completed) == 9  # data quality, training, comparison, deploy, four shifts, promote
    for answer in completed:  # the two other copies of the event that answered found no wait left
        copies = [a for a in answers if a.get("resource") == answer["resource"] and a["action"] == "IGNORED"]
        assert len(copies) >= 2, answer


def test_an_endpoint_update_that_fails_fails_its_step_by_sagemakers_event(synthesized: Path, tmp_path: Path) -> None:
    """SageMaker leaves the endpoint InService on its old config, with a FailureReason: the event's check fails the
    waiting task with EndpointUpdateFailed and the promotion rolls back."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        assert runtime.traffic is not None
        runtime.traffic.lifecycle.fail_next_update("fraud-detection-prod", "Insufficient capacity for ml.m5.large")
        result = runtime.run(event(), seed=True)
        answers = resumed(runtime)
    assert result.error == "ROLLED_BACK", result.cause
    assert result.output["error"]["Error"] == "EndpointUpdateFailed"
    assert "Insufficient capacity for ml.m5.large" in result.output["error"]["Cause"]
    assert [a["step"] for a in answers if a["action"] == "FAILED"] == ["DeployChallenger"]
    assert result.production_after == result.production_before


def test_the_events_are_sagemakers(synthesized: Path, tmp_path: Path) -> None:
    """What the rules match is what SageMaker puts: its detail types and the endpoint's upper-case status; the
    rules let through only settled statuses (a training job also announces each secondary status)."""
    delivery = EventDelivery()
    with runtime_with(synthesized, tmp_path, world(), scenario="good", event_delivery=delivery) as runtime:
        result = runtime.run(event(), seed=True)
        answers = resumed(runtime)
    assert result.outcome == "PROMOTED", result.cause
    statuses: dict[str, set[str]] = {}
    for sent in delivery.sent:
        statuses.setdefault(sent["detail-type"], set()).add(str(sent["status"]))
    assert statuses[TRAINING_JOB_STATE_CHANGE] == {"InProgress", "Completed"}
    assert statuses[PROCESSING_JOB_STATE_CHANGE] == {"InProgress", "Completed"}
    assert {"CREATING", "UPDATING", "IN_SERVICE"} <= statuses[ENDPOINT_STATE_CHANGE]
    settled = [s for s in delivery.sent if s["status"] in ("Completed", "IN_SERVICE")]
    assert len(answers) == len(settled)  # InProgress, CREATING and UPDATING never reached the function
