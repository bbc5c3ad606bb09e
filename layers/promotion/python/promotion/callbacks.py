"""Steps that wait for SageMaker by callback, not by polling: a training job, a comparison job, an endpoint change.

A polling loop costs three state transitions a minute for as long as SageMaker works (an hour's training job: 180),
which is most of a promotion's orchestration cost. Instead, the step that starts the work (TriggerPipeline,
CompareWithChampion, DeployChallenger, ShiftTraffic, PromoteChallenger) runs as a `.waitForTaskToken` task:

1. it starts the work, then registers the task token under the resource's name (`register`), with what the
   check needs (the claim and the step's own result);
2. it checks once at once (`check`): a retried step may find the work already done, or a SageMaker event may have
   come before the token was registered; if decided, it completes the task itself;
3. otherwise SageMaker's state-change event (default bus, `WAITED_EVENTS`) reaches the ResumeWaitingStep function,
   which runs the same check on the registered record (`resume`) and, once decided, completes the task.

Whoever completes it first wins: `settle` deletes the record on the condition that it still holds that token, so a
task is answered once, whatever the number of events (SageMaker may send several per state change). The event is
never trusted: the check asks SageMaker (pipeline.check_pipeline, comparison.check_comparison,
rollout.check_endpoint: the job's status and verdict, the endpoint serving the config and weights asked for). A
failure it finds (a failed job, an endpoint update that did not take) becomes SendTaskFailure with the domain
error's name and a Lambda-style cause, so the state machine's Catch rolls back exactly as for a failed Lambda. An
event that never comes is caught by the task's timeout (the job's max run time plus CALLBACK_MARGIN_SECONDS,
ENDPOINT_WAIT_SECONDS for an endpoint change), and the promotion rolls back.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from promotion.claims import condition_held
from promotion.comparison import check_comparison
from promotion.errors import EndpointBusy, PromotionError, TransientAwsError
from promotion.models import ClaimedPromotion, Comparison, Pipeline, Rollout
from promotion.pipeline import check_pipeline
from promotion.rollout import check_endpoint

# What a job's wait allows beyond its MaxRuntimeInSeconds: SageMaker's start-up (instances, image pull) and upload.
CALLBACK_MARGIN_SECONDS = 3600
# An endpoint change (new instances for a new config; a weight change takes seconds) that SageMaker has not
# announced within two hours is not coming: the step fails and the promotion rolls back.
ENDPOINT_WAIT_SECONDS = 2 * 3600
# A record outlives any wait: the longest callback timeout (the training job's) is the catalog's max runtime.
RECORD_TTL_SECONDS = 30 * 86400
# SendTaskSuccess/Failure answer these when the task no longer waits (it timed out, the execution ended).
TASK_GONE_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# What the check raises that is not the work's outcome: an accident to retry, not a reason to fail the step. These,
# AWS's own errors (ClientError, BotoCoreError) and anything unexpected (a bug) are raised: the step that checks
# fails and is retried, the event is retried by Lambda and lands in the dead-letter queue; the wait stays
# registered until its timeout. Only the domain's verdicts on the work (PipelineFailed, ComparisonFailed,
# EndpointUpdateFailed ...) fail the waiting task.
RETRIED_ERRORS: tuple[type[PromotionError], ...] = (TransientAwsError, EndpointBusy)


class WaitKind(StrEnum):
    TRAINING_JOB = "training-job"
    PROCESSING_JOB = "processing-job"
    ENDPOINT = "endpoint"


class WaitedEvent(BaseModel):
    """How one of SageMaker's state-change events names its resource, and the statuses worth a check."""

    model_config = ConfigDict(frozen=True)

    kind: WaitKind
    name_field: str
    status_field: str
    statuses: tuple[str, ...]


# detail-type -> what it says ("Events that Amazon SageMaker AI sends to Amazon EventBridge"). Only settled statuses
# are delivered (the rules' patterns filter on them): a training job also sends an event per secondary status.
WAITED_EVENTS: dict[str, WaitedEvent] = {
    "SageMaker Training Job State Change": WaitedEvent(
        kind=WaitKind.TRAINING_JOB,
        name_field="TrainingJobName",
        status_field="TrainingJobStatus",
        statuses=("Completed", "Failed", "Stopped"),
    ),
    "SageMaker Processing Job State Change": WaitedEvent(
        kind=WaitKind.PROCESSING_JOB,
        name_field="ProcessingJobName",
        status_field="ProcessingJobStatus",
        statuses=("Completed", "Failed", "Stopped"),
    ),
    # The endpoint's event spells its status in upper case with underscores (IN_SERVICE, as SageMaker's guide shows
    # it), unlike DescribeEndpoint (InService). The rule takes both spellings: an event its pattern missed would
    # leave the step waiting until its timeout, and the check never reads the event's status anyway.
    "SageMaker Endpoint State Change": WaitedEvent(
        kind=WaitKind.ENDPOINT,
        name_field="EndpointName",
        status_field="EndpointStatus",
        statuses=(
            "IN_SERVICE",
            "FAILED",
            "OUT_OF_SERVICE",
            "UPDATE_ROLLBACK_FAILED",
            "InService",
            "Failed",
            "OutOfService",
            "UpdateRollbackFailed",
        ),
    ),
}


class SageMakerStateChange(BaseModel):
    """The part of a SageMaker state-change event the product reads: which resource changed."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    detail_type: str
    detail: dict[str, Any]

    @classmethod
    def parse(cls, event: Any) -> SageMakerStateChange:
        if not isinstance(event, dict):
            raise ValueError(f"not an EventBridge event: {type(event).__name__}")
        try:
            return cls(detail_type=event["detail-type"], detail=event["detail"])
        except (KeyError, ValidationError) as error:
            raise ValueError(f"not an EventBridge event with detail-type and detail: {error}") from None

    def resource(self) -> tuple[WaitKind, str] | None:
        """(kind, resource name), or None for an event the product does not wait for."""
        waited = WAITED_EVENTS.get(self.detail_type)
        name = self.detail.get(waited.name_field) if waited is not None else None
        if waited is None or not isinstance(name, str) or not name:
            return None
        return waited.kind, name


class Waiting(BaseModel):
    """A task waiting for a SageMaker resource: its token and what the check needs."""

    model_config = ConfigDict(frozen=True)

    kind: WaitKind
    resource: str
    step: str
    task_token: str
    claim: ClaimedPromotion
    section: dict[str, Any]


def record_key(kind: WaitKind, resource: str) -> dict[str, Any]:
    """One waiting task per resource: a model's promotions run one at a time (its lock), and a retried step
    replaces its own earlier record."""
    return {"pk": {"S": f"WAIT#{kind.value}#{resource}"}, "sk": {"S": "TASK"}}


def decided(kind: WaitKind, section: BaseModel) -> bool:
    """Whether a step's result ends its wait (the state machine goes on with it)."""
    if isinstance(section, Pipeline):
        return section.status == "Completed"
    if isinstance(section, Comparison):
        return section.decision is not None
    if isinstance(section, Rollout):
        return section.action != "WAIT_ENDPOINT"
    raise TypeError(f"a {kind.value} wait has no result of type {type(section).__name__}")


def check(waiting: Waiting, sagemaker: Any, s3: Any) -> BaseModel:
    """Where the work stands, from SageMaker, on the registered result: raises the domain errors that fail the step
    (PipelineFailed, ComparisonFailed, EndpointUpdateFailed)."""
    if waiting.kind is WaitKind.TRAINING_JOB:
        return check_pipeline(sagemaker, Pipeline.model_validate(waiting.section))
    if waiting.kind is WaitKind.PROCESSING_JOB:
        return check_comparison(sagemaker, s3, Comparison.model_validate(waiting.section))
    return check_endpoint(sagemaker, Rollout.model_validate(waiting.section))


def register(dynamodb: Any, table: str, waiting: Waiting, now: float | None = None) -> None:
    expires_at = int(now if now is not None else time.time()) + RECORD_TTL_SECONDS
    dynamodb.put_item(
        TableName=table,
        Item={
            **record_key(waiting.kind, waiting.resource),
            "task_token": {"S": waiting.task_token},
            "waiting": {"S": waiting.model_dump_json()},
            "execution_arn": {"S": waiting.claim.execution_arn},
            "expires_at": {"N": str(expires_at)},
        },
    )


def registered(dynamodb: Any, table: str, kind: WaitKind, resource: str) -> Waiting | None:
    item = dynamodb.get_item(TableName=table, Key=record_key(kind, resource), ConsistentRead=True).get("Item")
    if item is None:
        return None
    return Waiting.model_validate_json(item["waiting"]["S"])


def failure_cause(error: Exception) -> str:
    """The cause a failed Lambda task carries (Lambda's error payload), so Rollback and the decision report read a
    callback's failure as they read a step's."""
    return json.dumps({"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []})


def settle(dynamodb: Any, stepfunctions: Any, table: str, waiting: Waiting, outcome: BaseModel | Exception) -> bool:
    """Complete the waiting task with `outcome` (a result, or the error that fails the task), once: False when
    someone else already did or the task no longer waits."""
    claimed = condition_held(
        dynamodb.delete_item,
        TableName=table,
        Key=record_key(waiting.kind, waiting.resource),
        ConditionExpression="task_token = :token",
        ExpressionAttributeValues={":token": {"S": waiting.task_token}},
    )
    if not claimed:
        return False
    try:
        if isinstance(outcome, Exception):
            stepfunctions.send_task_failure(
                taskToken=waiting.task_token, error=type(outcome).__name__, cause=failure_cause(outcome)
            )
        else:
            stepfunctions.send_task_success(taskToken=waiting.task_token, output=outcome.model_dump_json())
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in TASK_GONE_CODES:
            return False
        raise
    return True


class Resumed(BaseModel):
    """What ResumeWaitingStep did with one event (its return value and log line): the promotion it concerned, when
    a step waited for it."""

    action: str
    reason: str
    kind: str | None = None
    resource: str | None = None
    step: str | None = None
    model: str | None = None
    release_id: str | None = None
    execution_name: str | None = None


def await_change(
    dynamodb: Any,
    stepfunctions: Any,
    sagemaker: Any,
    s3: Any,
    *,
    table: str,
    waiting: Waiting,
    result: BaseModel,
) -> Resumed:
    """Called by the step that started the work, with its result: complete the task now if that result already
    decides, else register the token and check once (the work may be done already)."""
    if decided(waiting.kind, result):
        settle_now(stepfunctions, waiting, result)
        return Resumed(action="COMPLETED", reason="the step's own result decides", **_where(waiting))
    register(dynamodb, table, waiting)
    try:
        current = check(waiting, sagemaker, s3)
    except PromotionError as failure:
        if isinstance(failure, RETRIED_ERRORS):
            raise
        settle(dynamodb, stepfunctions, table, waiting, failure)
        return Resumed(action="FAILED", reason=str(failure), **_where(waiting))
    if decided(waiting.kind, current) and settle(dynamodb, stepfunctions, table, waiting, current):
        return Resumed(action="COMPLETED", reason="already done when checked", **_where(waiting))
    return Resumed(action="WAITING", reason=f"waiting for SageMaker's {waiting.kind.value} event", **_where(waiting))


def settle_now(stepfunctions: Any, waiting: Waiting, result: BaseModel) -> None:
    """Complete the task with a result that needs no wait (nothing was registered)."""
    stepfunctions.send_task_success(taskToken=waiting.task_token, output=result.model_dump_json())


def resume(
    dynamodb: Any,
    stepfunctions: Any,
    sagemaker: Any,
    s3: Any,
    *,
    table: str,
    event: Any,
) -> Resumed:
    """ResumeWaitingStep: a SageMaker state-change event; completes the task waiting for that resource once the
    check decides. Events for resources nothing waits for are ignored (every job and endpoint of the account whose
    name matches the rules' prefixes reaches here)."""
    change = SageMakerStateChange.parse(event)
    resource = change.resource()
    if resource is None:
        return Resumed(action="IGNORED", reason=f"not an event the product waits for: {change.detail_type}")
    kind, name = resource
    waiting = registered(dynamodb, table, kind, name)
    if waiting is None:
        return Resumed(action="IGNORED", reason="no step waits for it", kind=kind.value, resource=name)
    try:
        current = check(waiting, sagemaker, s3)
    except PromotionError as failure:
        if isinstance(failure, RETRIED_ERRORS):
            raise
        if settle(dynamodb, stepfunctions, table, waiting, failure):
            return Resumed(action="FAILED", reason=str(failure), **_where(waiting))
        return Resumed(action="IGNORED", reason="already answered", **_where(waiting))
    if not decided(kind, current):
        return Resumed(action="WAITING", reason="not settled yet", **_where(waiting))
    if settle(dynamodb, stepfunctions, table, waiting, current):
        return Resumed(action="COMPLETED", reason="settled", **_where(waiting))
    return Resumed(action="IGNORED", reason="already answered", **_where(waiting))


def _where(waiting: Waiting) -> dict[str, str]:
    claim = waiting.claim
    return {
        "kind": waiting.kind.value,
        "resource": waiting.resource,
        "step": waiting.step,
        "model": claim.model,
        "release_id": claim.release_id,
        "execution_name": claim.execution_name,
    }
