"""Fakes for the few calls moto cannot answer with chosen values in a domain test: SageMaker's describe calls
(the local runtime seeds moto's backend instead; domain tests only need the answers) and a recording Step
Functions task-token client."""

from __future__ import annotations

import copy
from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters


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
    """Records SendTaskSuccess / SendTaskFailure; `expired` tokens answer TaskTimedOut like Step Functions. Each
    request is first checked against the Step Functions API's own shapes (botocore's parameter validation, as a
    real client does before sending), so a missing token or an oversized output fails here as it would there."""

    _SHAPES = boto3.session.Session().client("stepfunctions", region_name="us-east-1").meta.service_model

    def __init__(self, expired: set[str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.expired = expired or set()

    def _expire(self, operation: str, token: str) -> None:
        if token in self.expired:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, operation)

    def send_task_success(self, **request: Any) -> dict[str, Any]:
        validate_parameters(request, self._SHAPES.operation_model("SendTaskSuccess").input_shape)
        self._expire("SendTaskSuccess", request["taskToken"])
        self.calls.append(("success", request))
        return {}

    def send_task_failure(self, **request: Any) -> dict[str, Any]:
        validate_parameters(request, self._SHAPES.operation_model("SendTaskFailure").input_shape)
        self._expire("SendTaskFailure", request["taskToken"])
        self.calls.append(("failure", request))
        return {}


class StronglyConsistentReads:
    """moto's DynamoDB: every read it answers is up to date, which DynamoDB promises only to a read that asks for it
    (`ConsistentRead=True`; the default is eventually consistent). Claims, locks, approvals and audit records are
    decided on what is read, so a stale read can let two promotions hold one lock. This proxy refuses any read that
    does not ask, which no moto test could otherwise see."""

    READS = frozenset({"get_item", "query", "scan"})

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    @staticmethod
    def _require_consistent(operation: str, request: dict[str, Any]) -> None:
        if request.get("ConsistentRead") is not True:
            raise AssertionError(f"{operation} on {request.get('TableName')} without ConsistentRead=True")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._dynamodb, name)
        if name in self.READS:

            def read(**request: Any) -> Any:
                self._require_consistent(name, request)
                return attribute(**request)

            return read
        if name == "get_paginator":
            return lambda operation: _ConsistentPaginator(attribute(operation), operation, self._require_consistent)
        return attribute


class _ConsistentPaginator:
    def __init__(self, paginator: Any, operation: str, check: Any) -> None:
        self._paginator = paginator
        self._operation = operation
        self._check = check

    def paginate(self, **request: Any) -> Any:
        if self._operation in StronglyConsistentReads.READS:
            self._check(self._operation, request)
        return self._paginator.paginate(**request)


class Unattributed:
    """moto's SageMaker, except that DescribeModelPackage leaves out who changed the package (`dropped`: both
    LastModifiedBy and CreatedBy, a change SageMaker attributes to nobody; only LastModifiedBy, a package nobody
    changed since its creation)."""

    def __init__(self, sagemaker: Any, dropped: tuple[str, ...] = ("LastModifiedBy", "CreatedBy")) -> None:
        self._sagemaker = sagemaker
        self._dropped = dropped

    def describe_model_package(self, **request: Any) -> Any:
        described = dict(self._sagemaker.describe_model_package(**request))
        for field in self._dropped:
            described.pop(field, None)
        return described

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sagemaker, name)
