"""Steps that wait for SageMaker by callback, not by polling: a training job, a comparison job, an endpoint change.

A polling loop costs three state transitions a minute for as long as SageMaker works (an hour's training job: 180),
which is most of a promotion's orchestration cost. Instead, the step that starts the work (CheckDataQuality,
TriggerPipeline, CompareWithChampion, DeployChallenger, ShiftTraffic, PromoteChallenger) runs as a
`.waitForTaskToken` task:

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
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promotion.claim.store import condition_held
from promotion.contract.state import ClaimedPromotion, Comparison, DataQuality, Pipeline, Rollout, RolloutAction
from promotion.core.errors import TASK_GONE_CODES, EndpointBusy, TransientAwsError, aws_error_code
from promotion.core.retry import is_transient, with_backoff
from promotion.jobs.comparison import check_comparison
from promotion.jobs.data_quality import check_data_quality
from promotion.jobs.training import check_pipeline
from promotion.rollout.steps import EndpointUpdateFailed, check_endpoint

DATA_QUALITY_STEP = "CheckDataQuality"  # the processing job it waits for is the data-quality gate's
# What a job's wait allows beyond its MaxRuntimeInSeconds: SageMaker's start-up (instances, image pull) and upload.
CALLBACK_MARGIN_SECONDS = 3600
# An endpoint change (new instances for a new config; a weight change takes seconds) that SageMaker has not
# announced within two hours is not coming: the step fails and the promotion rolls back.
ENDPOINT_WAIT_SECONDS = 2 * 3600
# New weights take SageMaker seconds to a minute; meanwhile the challenger serves traffic no look judges, so a weight
# change that was not announced within half an hour fails ShiftTraffic (and the promotion rolls back).
WEIGHTS_WAIT_SECONDS = 1800
# Event times are whole seconds: an event of the change a step waits for may carry a time just before its record's.
EVENT_CLOCK_SKEW = timedelta(seconds=5)
# A record outlives any wait: the longest callback timeout (the training job's) is the catalog's max runtime.
RECORD_TTL_SECONDS = 30 * 86400


def is_accident(error: BaseException) -> bool:
    """An error worth another try (throttling, a 5xx, no connection, the domain's transient errors), as opposed to
    a verdict on the work (a failed job, an update that did not take) or a fault that retrying cannot fix (access
    denied, a missing report, a bug): those fail the waiting step at once, so the promotion rolls back now rather
    than at its timeout."""
    if isinstance(error, (TransientAwsError, EndpointBusy, BotoCoreError)):
        return True
    return isinstance(error, ClientError) and is_transient(error)


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
    time: datetime | None = None  # when SageMaker saw the change (the event's `time`)

    @classmethod
    def parse(cls, event: Any) -> SageMakerStateChange:
        if not isinstance(event, dict):
            raise ValueError(f"not an EventBridge event: {type(event).__name__}")
        try:
            return cls(detail_type=event["detail-type"], detail=event["detail"], time=event.get("time"))
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
    # Step Functions' retry count of the step ($$.State.RetryCount): a late write of an earlier attempt's token must
    # not replace a later attempt's, or the task that waits would never be answered.
    attempt: int = 0
    registered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def record_key(kind: WaitKind, resource: str) -> dict[str, Any]:
    """One waiting task per resource: a model's promotions run one at a time (its lock), and a retried step
    replaces its own earlier record."""
    return {"pk": {"S": f"WAIT#{kind.value}#{resource}"}, "sk": {"S": "TASK"}}


def decided(kind: WaitKind, section: BaseModel) -> bool:
    """Whether a step's result ends its wait (the state machine goes on with it)."""
    if isinstance(section, Pipeline):
        return section.status == "Completed"
    if isinstance(section, (Comparison, DataQuality)):
        return section.decision is not None
    if isinstance(section, Rollout):
        return section.action != RolloutAction.WAIT_ENDPOINT
    raise TypeError(f"a {kind.value} wait has no result of type {type(section).__name__}")


def check(waiting: Waiting, sagemaker: Any, s3: Any) -> BaseModel:
    """Where the work stands, from SageMaker, on the registered result: raises the domain errors that fail the step
    (PipelineFailed, ComparisonFailed, DataQualityFailed, EndpointUpdateFailed)."""
    if waiting.kind is WaitKind.TRAINING_JOB:
        return check_pipeline(sagemaker, Pipeline.model_validate(waiting.section))
    if waiting.kind is WaitKind.PROCESSING_JOB and waiting.step == DATA_QUALITY_STEP:
        return check_data_quality(sagemaker, s3, DataQuality.model_validate(waiting.section))
    if waiting.kind is WaitKind.PROCESSING_JOB:
        return check_comparison(sagemaker, s3, Comparison.model_validate(waiting.section))
    return check_endpoint(sagemaker, Rollout.model_validate(waiting.section))


def register(dynamodb: Any, table: str, waiting: Waiting, *, only_if_absent: bool = False) -> bool:
    """Keep the waiting task's token; False when a later attempt of the same execution's step already has (or, with
    `only_if_absent`, anyone has: putting a record back that another answerer may since have replaced)."""
    expires_at = int(time.time()) + RECORD_TTL_SECONDS
    condition = (
        "attribute_not_exists(pk)"
        if only_if_absent
        else "attribute_not_exists(pk) OR execution_arn <> :execution OR attempt <= :attempt"
    )
    values = (
        {}
        if only_if_absent
        else {
            ":execution": {"S": waiting.claim.execution_arn},
            ":attempt": {"N": str(waiting.attempt)},
        }
    )
    return condition_held(
        dynamodb.put_item,
        TableName=table,
        Item={
            **record_key(waiting.kind, waiting.resource),
            "task_token": {"S": waiting.task_token},
            "waiting": {"S": waiting.model_dump_json()},
            "execution_arn": {"S": waiting.claim.execution_arn},
            "attempt": {"N": str(waiting.attempt)},
            "expires_at": {"N": str(expires_at)},
        },
        ConditionExpression=condition,
        **({"ExpressionAttributeValues": values} if values else {}),
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
    someone else already did or the task no longer waits. The record is taken first (so one answerer sends); if
    the answer cannot be sent for a reason that may pass, the record is put back before the error is raised, so
    a retry of the event (or of the step) can still answer."""
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
    except (ClientError, BotoCoreError) as error:
        if aws_error_code(error) in TASK_GONE_CODES:
            return False
        register(dynamodb, table, waiting, only_if_absent=True)
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
    # The work has started: from here an accident must not fail the step (its retry would start the work again on
    # top of the first), so each call is retried in place, and a look that still fails is left to the event.
    if not with_backoff(lambda: register(dynamodb, table, waiting), attempts=4):
        return Resumed(action="IGNORED", reason="a later attempt of the step waits instead", **_where(waiting))
    try:
        current = with_backoff(lambda: check(waiting, sagemaker, s3), attempts=3)
    except EndpointUpdateFailed:
        # Right after the call, DescribeEndpoint may not show the change yet: SageMaker's event decides.
        return Resumed(action="WAITING", reason="the endpoint does not show the change yet", **_where(waiting))
    except Exception as failure:
        if is_accident(failure):
            return Resumed(action="WAITING", reason=f"could not look yet: {failure}", **_where(waiting))
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
    except Exception as failure:
        if is_accident(failure):
            raise  # Lambda's asynchronous retries run the event again, then its dead-letter queue keeps it
        if settle(dynamodb, stepfunctions, table, waiting, failure):
            return Resumed(action="FAILED", reason=str(failure), **_where(waiting))
        return Resumed(action="IGNORED", reason="already answered", **_where(waiting))
    if not decided(kind, current):
        if change.time is not None and change.time >= waiting.registered_at - EVENT_CLOCK_SKEW:
            # SageMaker says the change settled after the step began waiting, but its Describe* does not show it
            # yet: raised, so Lambda's asynchronous retry looks again (a minute, then two) rather than the event
            # being spent and the step left to its timeout. An older event (a repeat from an earlier change) is not.
            raise TransientAwsError(
                f"{kind.value} {name}: SageMaker's event says it settled, its Describe call does not show it yet"
            )
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
