"""Fakes for the few calls moto cannot answer with chosen values in a domain test: SageMaker's describe calls
(the local runtime seeds moto's backend instead; domain tests only need the answers) and a recording Step
Functions task-token client."""

from __future__ import annotations

import copy
from typing import Any

from botocore.exceptions import ClientError


def _not_found(operation: str, what: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": f"Could not find {what}"}}, operation)


class WorldSageMaker:
    """Answers DescribeHyperParameterTuningJob / DescribeTrainingJob from a world document (like world.json)."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.world = copy.deepcopy(world)

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        jobs = self.world.get("DescribeHyperParameterTuningJob", {})
        if HyperParameterTuningJobName not in jobs:
            raise _not_found("DescribeHyperParameterTuningJob", f"tuning job {HyperParameterTuningJobName}")
        return copy.deepcopy(jobs[HyperParameterTuningJobName])

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        jobs = self.world.get("DescribeTrainingJob", {})
        if TrainingJobName not in jobs:
            raise _not_found("DescribeTrainingJob", f"training job {TrainingJobName}")
        return copy.deepcopy(jobs[TrainingJobName])


class RecordingStepFunctions:
    """Records SendTaskSuccess / SendTaskFailure; `expired` tokens answer TaskTimedOut like Step Functions."""

    def __init__(self, expired: set[str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.expired = expired or set()

    def _check(self, operation: str, token: str) -> None:
        if token in self.expired:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, operation)

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        self._check("SendTaskSuccess", taskToken)
        self.calls.append(("success", {"taskToken": taskToken, "output": output}))
        return {}

    def send_task_failure(self, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self._check("SendTaskFailure", taskToken)
        self.calls.append(("failure", {"taskToken": taskToken, "error": error, "cause": cause}))
        return {}
