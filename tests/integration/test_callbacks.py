"""Steps that wait for SageMaker by callback (promotion.jobs.callbacks), over moto's DynamoDB: a waiting task is
answered
once, only when SageMaker's own state says the work ended, whatever events arrive and in whatever number."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from promotion.contract.state import ClaimedPromotion, Pipeline, Rollout
from promotion.core.errors import TransientAwsError
from promotion.jobs.callbacks import (
    SageMakerStateChange,
    Waiting,
    WaitKind,
    await_change,
    record_key,
    register,
    registered,
    resume,
    settle,
)
from tests.conftest import TABLE
from tests.fakes import RecordingStepFunctions, WorldSageMaker

JOB = "fraud-detection-20261120-140541-481646"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"
CLAIM = ClaimedPromotion(
    status="CLAIMED",
    execution_name="exec-1",
    execution_arn="arn:aws:states:us-east-1:123456789012:execution:promotion:exec-1",
    model="fraud-detection",
    release_id="20261120-140541-481646",
    tuning_job_name="fraud-xgb-tuning-0042",
    tuning_job_arn="arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/fraud-xgb-tuning-0042",
    event_time=datetime(2026, 11, 20, tzinfo=UTC),
)


def training_world(status: str, reason: str | None = None) -> WorldSageMaker:
    job: dict[str, Any] = {"TrainingJobName": JOB, "TrainingJobArn": JOB_ARN, "TrainingJobStatus": status}
    if reason is not None:
        job["FailureReason"] = reason
    return WorldSageMaker({"DescribeTrainingJob": {JOB: job}})


def started(token: str = "token-1") -> tuple[Waiting, Pipeline]:
    """TriggerPipeline's result right after CreateTrainingJob, and the wait it registers."""
    result = Pipeline(training_job_name=JOB, training_job_arn=JOB_ARN, status="InProgress")
    waiting = Waiting(
        kind=WaitKind.TRAINING_JOB,
        resource=JOB,
        step="TriggerPipeline",
        task_token=token,
        claim=CLAIM,
        section=result.model_dump(mode="json"),
    )
    return waiting, result


def training_event(status: str, name: str = JOB) -> dict[str, Any]:
    """SageMaker's event, as its documentation shows it (the detail is the job as DescribeTrainingJob answers)."""
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-20T14:30:00Z",
        "region": "us-east-1",
        "resources": [JOB_ARN],
        "detail": {"TrainingJobName": name, "TrainingJobArn": JOB_ARN, "TrainingJobStatus": status},
    }


def begin(aws: dict[str, Any], sagemaker: Any, sfn: RecordingStepFunctions, token: str = "token-1") -> Any:
    waiting, result = started(token)
    return await_change(aws["dynamodb"], sfn, sagemaker, aws["s3"], table=TABLE, waiting=waiting, result=result)


def on_event(aws: dict[str, Any], sagemaker: Any, sfn: RecordingStepFunctions, event: Any) -> Any:
    return resume(aws["dynamodb"], sfn, sagemaker, aws["s3"], table=TABLE, event=event)


def test_a_running_job_is_registered_and_its_completion_event_answers_the_task_once(aws: dict[str, Any]) -> None:
    sfn = RecordingStepFunctions()
    assert begin(aws, training_world("InProgress"), sfn).action == "WAITING"
    assert sfn.calls == []
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is not None
    done = training_world("Completed")
    assert on_event(aws, done, sfn, training_event("Completed")).action == "COMPLETED"
    # SageMaker may send several events per state change: the task is answered once.
    assert on_event(aws, done, sfn, training_event("Completed")).action == "IGNORED"
    ((kind, call),) = sfn.calls
    assert kind == "success" and call["taskToken"] == "token-1"
    output = Pipeline.model_validate_json(call["output"])
    assert (output.status, output.polls) == ("Completed", 1)
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is None


def test_an_event_is_never_trusted_sagemaker_is_asked(aws: dict[str, Any]) -> None:
    """A Completed event (a duplicate from an earlier attempt, or anything put on the bus) while SageMaker says the
    job still runs answers nothing: the check reads DescribeTrainingJob, not the event."""
    sfn = RecordingStepFunctions()
    running = training_world("InProgress")
    begin(aws, running, sfn)
    assert on_event(aws, running, sfn, training_event("Completed")).action == "WAITING"
    assert sfn.calls == []
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is not None


def test_a_failed_job_fails_the_task_with_the_steps_error_and_a_lambda_style_cause(aws: dict[str, Any]) -> None:
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    failed = training_world("Failed", "AlgorithmError: no .csv file in train")
    assert on_event(aws, failed, sfn, training_event("Failed")).action == "FAILED"
    ((kind, call),) = sfn.calls
    assert (kind, call["error"]) == ("failure", "PipelineFailed")
    cause = json.loads(call["cause"])
    assert cause["errorType"] == "PipelineFailed"
    assert "AlgorithmError: no .csv file in train" in cause["errorMessage"]
    assert f"streams {JOB}/*" in cause["errorMessage"]  # where its log is


def test_a_job_already_ended_when_the_step_checks_is_answered_by_the_step(aws: dict[str, Any]) -> None:
    """A retried step adopts its job, or SageMaker's event came before the token was kept: the step's own check."""
    sfn = RecordingStepFunctions()
    assert begin(aws, training_world("Completed"), sfn).action == "COMPLETED"
    assert [kind for kind, _ in sfn.calls] == ["success"]
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is None


def test_a_retried_step_replaces_its_own_wait_and_the_old_token_is_never_answered(aws: dict[str, Any]) -> None:
    sfn = RecordingStepFunctions()
    running = training_world("InProgress")
    begin(aws, running, sfn, token="attempt-1")
    begin(aws, running, sfn, token="attempt-2")  # Step Functions retried the task: a new token
    on_event(aws, training_world("Completed"), sfn, training_event("Completed"))
    assert [call["taskToken"] for _, call in sfn.calls] == ["attempt-2"]


def test_a_task_that_no_longer_waits_is_not_answered_and_its_record_is_gone(aws: dict[str, Any]) -> None:
    """The wait timed out (the promotion rolled back) before the event came: SendTaskSuccess answers TaskTimedOut."""
    sfn = RecordingStepFunctions(expired={"token-1"})
    begin(aws, training_world("InProgress"), sfn)
    assert on_event(aws, training_world("Completed"), sfn, training_event("Completed")).action == "IGNORED"
    assert sfn.calls == []
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is None


def test_only_the_holder_of_the_record_answers(aws: dict[str, Any]) -> None:
    """Two answerers racing (the step's own check and the event): the conditional delete lets one through."""
    sfn = RecordingStepFunctions()
    waiting, _ = started()
    begin(aws, training_world("InProgress"), sfn)
    done = Pipeline(training_job_name=JOB, training_job_arn=JOB_ARN, status="Completed")
    assert settle(aws["dynamodb"], sfn, TABLE, waiting, done) is True
    assert settle(aws["dynamodb"], sfn, TABLE, waiting, done) is False
    stale = waiting.model_copy(update={"task_token": "someone-else"})
    begin(aws, training_world("InProgress"), sfn, token="token-2")
    assert settle(aws["dynamodb"], sfn, TABLE, stale, done) is False  # holds another token
    assert [call["taskToken"] for _, call in sfn.calls] == ["token-1"]


@pytest.mark.parametrize(
    "event",
    [
        training_event("Completed", name="another-teams-job"),  # nothing waits for it
        {**training_event("Completed"), "detail-type": "SageMaker Model State Change"},
        {**training_event("Completed"), "detail": {"TrainingJobStatus": "Completed"}},  # no name
    ],
)
def test_events_nothing_waits_for_are_ignored(aws: dict[str, Any], event: dict[str, Any]) -> None:
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    assert on_event(aws, training_world("Completed"), sfn, event).action == "IGNORED"
    assert sfn.calls == []


@pytest.mark.parametrize("event", [None, "text", {"detail": {}}, {"detail-type": "x"}])
def test_a_malformed_event_is_refused_by_name(event: Any) -> None:
    with pytest.raises(ValueError, match="not an EventBridge event"):
        SageMakerStateChange.parse(event)


def test_an_endpoint_wait_completes_with_the_rollout_once_the_endpoint_serves_what_was_asked(
    aws: dict[str, Any],
) -> None:
    """An endpoint's event spells its status IN_SERVICE; the check compares the served config and weights."""
    sagemaker = aws["sagemaker"]
    sagemaker.create_model(
        ModelName="m", PrimaryContainer={"Image": "image"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r"
    )
    variants = [
        {
            "VariantName": "v",
            "ModelName": "m",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
        }
    ]
    sagemaker.create_endpoint_config(EndpointConfigName="config-b", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName="fraud-detection-prod", EndpointConfigName="config-b")
    asked = Rollout(
        action="WAIT_ENDPOINT",
        then="DONE",
        endpoint_name="fraud-detection-prod",
        expected_config="config-b",
        weights={"v": 1.0},
    )
    waiting = Waiting(
        kind=WaitKind.ENDPOINT,
        resource="fraud-detection-prod",
        step="PromoteChallenger",
        task_token="token-e",
        claim=CLAIM,
        section=asked.model_dump(mode="json"),
    )
    sfn = RecordingStepFunctions()
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            **record_key(WaitKind.ENDPOINT, "fraud-detection-prod"),
            "task_token": {"S": "token-e"},
            "waiting": {"S": waiting.model_dump_json()},
        },
    )
    event = {
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "detail": {"EndpointName": "fraud-detection-prod", "EndpointStatus": "IN_SERVICE"},
    }
    assert on_event(aws, sagemaker, sfn, event).action == "COMPLETED"
    ((kind, call),) = sfn.calls
    assert kind == "success"
    assert Rollout.model_validate_json(call["output"]).action == "DONE"
    # Another change served something else (a person's update, a failed one): the task fails, naming both.
    elsewhere = waiting.model_copy(
        update={
            "task_token": "token-f",
            "section": asked.model_copy(update={"expected_config": "config-c"}).model_dump(),
        }
    )
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            **record_key(WaitKind.ENDPOINT, "fraud-detection-prod"),
            "task_token": {"S": "token-f"},
            "waiting": {"S": elsewhere.model_dump_json()},
        },
    )
    assert on_event(aws, sagemaker, sfn, event).action == "FAILED"
    kind, call = sfn.calls[-1]
    assert (kind, call["error"]) == ("failure", "EndpointUpdateFailed")
    assert "not the requested config-c" in json.loads(call["cause"])["errorMessage"]


class ThrottledSageMaker:
    """SageMaker answering ThrottlingException, as it does under load (moto never throttles)."""

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {}},
            "DescribeTrainingJob",
        )


class UnreachableStepFunctions(RecordingStepFunctions):
    """Step Functions throttling SendTaskSuccess: the answer could not be sent."""

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendTaskSuccess")


def test_an_accident_while_checking_is_raised_for_a_retry_and_fails_nothing(aws: dict[str, Any]) -> None:
    """SageMaker throttled the look: not a verdict on the job. The event is retried by Lambda (then kept in the
    dead-letter queue); the task is not failed and its wait stays registered."""
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    with pytest.raises(ClientError):
        on_event(aws, ThrottledSageMaker(), sfn, training_event("Completed"))
    assert sfn.calls == []
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is not None


def test_a_fault_retrying_cannot_fix_fails_the_step_at_once(aws: dict[str, Any]) -> None:
    """SageMaker does not know the job (or access is denied): waiting for the timeout would only delay the
    rollback, so the task fails now with the error's name."""
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    assert on_event(aws, WorldSageMaker({"DescribeTrainingJob": {}}), sfn, training_event("Completed")).action == (
        "FAILED"
    )
    ((kind, call),) = sfn.calls
    assert (kind, call["error"]) == ("failure", "ClientError")
    assert "Could not find training job" in json.loads(call["cause"])["errorMessage"]


def test_an_answer_that_cannot_be_sent_is_kept_for_the_retry(aws: dict[str, Any]) -> None:
    """The record is taken before the answer is sent; if Step Functions throttles the answer, the record is put
    back, so Lambda's retry of the event answers the task instead of finding nothing to answer."""
    begin(aws, training_world("InProgress"), RecordingStepFunctions())
    with pytest.raises(ClientError):
        on_event(aws, training_world("Completed"), UnreachableStepFunctions(), training_event("Completed"))
    assert registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB) is not None
    sfn = RecordingStepFunctions()
    assert on_event(aws, training_world("Completed"), sfn, training_event("Completed")).action == "COMPLETED"
    assert [call["taskToken"] for _, call in sfn.calls] == ["token-1"]


def test_an_event_sagemakers_describe_does_not_show_yet_is_retried_an_old_one_is_not(aws: dict[str, Any]) -> None:
    """SageMaker's event says the job ended after the step began waiting, but DescribeTrainingJob still says it
    runs: the event is raised for Lambda's retry rather than spent. A repeat of an older event is not."""
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    fresh = {**training_event("Completed"), "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with pytest.raises(TransientAwsError, match="does not show it yet"):
        on_event(aws, training_world("InProgress"), sfn, fresh)
    assert on_event(aws, training_world("InProgress"), sfn, training_event("Completed")).action == "WAITING"
    assert sfn.calls == []


def test_a_late_write_of_an_earlier_attempt_never_replaces_a_later_ones(aws: dict[str, Any]) -> None:
    """Step Functions retried the step while its first invocation still ran: whichever writes last, the token of
    the later attempt (the one the task waits on) is kept."""
    later, _ = started("attempt-1")
    earlier, _ = started("attempt-0")
    assert register(aws["dynamodb"], TABLE, later.model_copy(update={"attempt": 1})) is True
    assert register(aws["dynamodb"], TABLE, earlier) is False
    kept = registered(aws["dynamodb"], TABLE, WaitKind.TRAINING_JOB, JOB)
    assert kept is not None and kept.task_token == "attempt-1"
    # The next promotion's step (another execution) replaces it whatever its attempt.
    other_claim = CLAIM.model_copy(update={"execution_arn": CLAIM.execution_arn + "-next"})
    assert register(aws["dynamodb"], TABLE, earlier.model_copy(update={"claim": other_claim})) is True


def test_the_answer_names_the_promotion_it_concerns(aws: dict[str, Any]) -> None:
    """ResumeWaitingStep's log line carries the model, release and execution of the step it answered."""
    sfn = RecordingStepFunctions()
    begin(aws, training_world("InProgress"), sfn)
    answer = on_event(aws, training_world("Completed"), sfn, training_event("Completed"))
    assert (answer.model, answer.release_id, answer.execution_name, answer.step) == (
        "fraud-detection",
        CLAIM.release_id,
        "exec-1",
        "TriggerPipeline",
    )
