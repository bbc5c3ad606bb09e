"""promotion.result.cost (what a running promotion cost so far) and bench/cost_model.py (a whole run): counting
from an execution history, pricing requests and usage, polling loops, SageMaker."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.cost_model import (
    PRICES,
    SAGEMAKER_HOURLY,
    PollLoop,
    Usage,
    find_poll_loops,
    price_usage,
    request_units,
    sagemaker_estimate,
)
from promotion.result.cost import (
    PRICE_TABLE_DATE,
    LambdaRun,
    execution_history,
    orchestration_cost_so_far,
    summarize_history,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ev(kind: str, at_ms: int, **details: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "timestamp": T0 + timedelta(milliseconds=at_ms)}
    if details:
        key = {
            "TaskStateEntered": "stateEnteredEventDetails",
            "ChoiceStateEntered": "stateEnteredEventDetails",
            "WaitStateEntered": "stateEnteredEventDetails",
            "FailStateEntered": "stateEnteredEventDetails",
            "SucceedStateEntered": "stateEnteredEventDetails",
            "LambdaFunctionScheduled": "lambdaFunctionScheduledEventDetails",
            "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
            "TaskScheduled": "taskScheduledEventDetails",
            "TaskSubmitted": "taskSubmittedEventDetails",
            "TaskSucceeded": "taskSucceededEventDetails",
        }[kind]
        event[key] = details
    return event


def lambda_task(state: str, start: int, ms: int, *, fail: str | None = None) -> list[dict[str, Any]]:
    end = ("LambdaFunctionFailed", {"error": fail, "cause": "{}"}) if fail else ("LambdaFunctionSucceeded", {})
    return [
        ev("LambdaFunctionScheduled", start, resource=f"arn:aws:lambda:us-east-1:1:function:{state}"),
        ev("LambdaFunctionStarted", start),
        ev(end[0], start + ms, **end[1]),
    ]


def history_with_a_retry_and_a_caught_failure() -> list[dict[str, Any]]:
    """ClaimPromotion; AwaitApproval (callback); WriteConfig fails once, is retried and succeeds; TriggerPipeline
    fails for good (caught); Rollback; PublishResult; Outcome; NotPromoted."""
    return [
        ev("ExecutionStarted", 0),
        ev("TaskStateEntered", 0, name="ClaimPromotion"),
        *lambda_task("ClaimPromotion", 1, 100),
        ev("TaskStateExited", 102),
        ev("TaskStateEntered", 103, name="AwaitApproval"),
        ev("TaskScheduled", 104, resourceType="lambda", resource="invoke.waitForTaskToken"),
        ev("TaskStarted", 104),
        ev("TaskSubmitted", 154, resourceType="lambda", resource="invoke.waitForTaskToken"),
        ev("TaskSucceeded", 3_600_000, resourceType="lambda", resource="invoke.waitForTaskToken"),
        ev("TaskStateExited", 3_600_001),
        ev("TaskStateEntered", 3_600_002, name="WriteConfig"),
        *lambda_task("WriteConfig", 3_600_003, 20, fail="TransientAwsError"),
        *lambda_task("WriteConfig", 3_602_003, 30),
        ev("TaskStateExited", 3_602_040),
        ev("TaskStateEntered", 3_602_041, name="TriggerPipeline"),
        *lambda_task("TriggerPipeline", 3_602_042, 5, fail="PipelineFailed"),
        ev("TaskStateExited", 3_602_050),
        ev("TaskStateEntered", 3_602_051, name="Rollback"),
        *lambda_task("Rollback", 3_602_052, 40),
        ev("TaskStateExited", 3_602_100),
        ev("TaskStateEntered", 3_602_101, name="PublishResult"),
        *lambda_task("PublishResult", 3_602_102, 50),
        ev("TaskStateExited", 3_602_160),
        ev("ChoiceStateEntered", 3_602_161, name="Outcome"),
        ev("ChoiceStateExited", 3_602_162),
        ev("FailStateEntered", 3_602_163, name="NotPromoted"),
        ev("ExecutionFailed", 3_602_164),
    ]


def test_transitions_are_states_entered_plus_retries() -> None:
    summary = summarize_history(history_with_a_retry_and_a_caught_failure())
    assert summary.states_entered == 8
    assert summary.retries == 1
    assert summary.state_transitions == 9
    assert summary.entries["WriteConfig"] == 1


def test_lambda_time_excludes_the_callback_wait() -> None:
    summary = summarize_history(history_with_a_retry_and_a_caught_failure())
    seconds = {(task.state, task.failed): task.seconds for task in summary.lambda_tasks}
    # AwaitApproval: scheduled -> submitted (the invoke), not the hour's wait for the token.
    assert seconds[("AwaitApproval", False)] == pytest.approx(0.050, abs=1e-6)
    assert len(summary.lambda_tasks) == 7
    assert sum(task.seconds for task in summary.lambda_tasks) == pytest.approx(0.295, abs=1e-5)


def test_failed_states_are_those_whose_last_attempt_failed() -> None:
    summary = summarize_history(history_with_a_retry_and_a_caught_failure())
    assert [task.state for task in summary.failed_tasks] == ["WriteConfig", "TriggerPipeline"]
    assert summary.failed_states == ["TriggerPipeline"]  # WriteConfig's retry succeeded


def test_history_timestamps_may_be_iso_strings() -> None:
    history = [
        {**event, "timestamp": event["timestamp"].isoformat()} for event in history_with_a_retry_and_a_caught_failure()
    ]
    assert summarize_history(history).lambda_tasks[0].seconds == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize(
    ("operation", "price"),
    [
        ("PutObject", "s3.put_tier_request"),
        ("CopyObject", "s3.put_tier_request"),
        ("ListObjectsV2", "s3.put_tier_request"),
        ("GetObject", "s3.get_tier_request"),
        ("HeadObject", "s3.get_tier_request"),
    ],
)
def test_s3_requests_are_priced_by_tier(operation: str, price: str) -> None:
    assert request_units("s3", operation, {}, {}) == {price: 1}


def test_s3_deletes_and_free_apis_cost_nothing() -> None:
    assert request_units("s3", "DeleteObject", {}, {}) == {}
    assert request_units("sagemaker", "DescribeTrainingJob", {}, {}) == {}
    assert request_units("stepfunctions", "SendTaskSuccess", {}, {}) == {}


def test_ssm_standard_parameters_are_free_but_counted() -> None:
    assert request_units("ssm", "PutParameter", {"Name": "/m/hyperparameters/eta", "Value": "0.1"}, {}) == {
        "ssm.standard_api_call": 1
    }
    assert PRICES["ssm.standard_api_call"].unit_price == 0.0
    assert "free" in PRICES["ssm.standard_api_call"].note


def test_dynamodb_writes_are_one_unit_per_kilobyte() -> None:
    small = {"Item": {"pk": {"S": "MODEL#m"}, "sk": {"S": "LOCK"}}}
    assert request_units("dynamodb", "PutItem", small, {}) == {"dynamodb.write_request_unit": 1}
    large = {"Item": {"pk": {"S": "x" * 2500}}}
    assert request_units("dynamodb", "PutItem", large, {}) == {"dynamodb.write_request_unit": 3}
    update = {"Key": {"pk": {"S": "a"}}, "ExpressionAttributeValues": {":v": {"S": "b"}}}
    assert request_units("dynamodb", "UpdateItem", update, {}) == {"dynamodb.write_request_unit": 1}
    transaction = {"TransactItems": [{"Put": small}, {"Update": update}]}
    assert request_units("dynamodb", "TransactWriteItems", transaction, {}) == {"dynamodb.write_request_unit": 4}


def test_dynamodb_reads_depend_on_consistency_and_size() -> None:
    item = {"Item": {"pk": {"S": "a"}}}
    assert request_units("dynamodb", "GetItem", {"ConsistentRead": True}, item) == {"dynamodb.read_request_unit": 1}
    assert request_units("dynamodb", "GetItem", {}, item) == {"dynamodb.read_request_unit": 0.5}
    many = {"Items": [{"pk": {"S": "x" * 3000}}, {"pk": {"S": "y" * 3000}}]}
    assert request_units("dynamodb", "Query", {}, many) == {"dynamodb.read_request_unit": 1.0}  # 2 x 4 KB, halved


def test_events_and_publishes_are_per_64_kb_chunk() -> None:
    entries = {"Entries": [{"Detail": "{}"}, {"Detail": "x" * (70 * 1024)}]}
    assert request_units("events", "PutEvents", entries, {}) == {"eventbridge.custom_event": 3}
    assert request_units("sns", "Publish", {"Message": "hello"}, {}) == {"sns.publish": 1, "kms.request": 1}


def test_metric_reads_are_priced_per_metric_requested() -> None:
    queries = {"MetricDataQueries": [{"MetricStat": {}}, {"MetricStat": {}}, {"Expression": "m1/m2"}]}
    assert request_units("cloudwatch", "GetMetricData", queries, {}) == {"cloudwatch.metric_requested": 2}


def test_lambda_bills_gb_seconds_rounded_up_to_the_millisecond() -> None:
    run = LambdaRun("f", 100.2, 256)
    assert run.gb_seconds == pytest.approx(0.101 * 0.25)


def test_price_usage_adds_line_items() -> None:
    usage = Usage(
        state_transitions=40,
        lambda_runs=[LambdaRun("f", 1000, 1024)] * 2,
        units={"s3.put_tier_request": 2, "ssm.standard_api_call": 7},
        log_bytes=1024**3 // 1000,
        traces=1,
    )
    report = price_usage(usage)
    expected = 40 * 0.025 / 1000 + 2 * 0.20 / 1e6 + 2 * 0.0000166667 + 2 * 0.005 / 1000 + 0.0 + 0.50 / 1000 + 5.00 / 1e6
    assert report.total == pytest.approx(expected, rel=1e-3)
    by_key = {item.key: item for item in report.items}
    assert by_key["ssm.standard_api_call"].cost == 0.0  # listed, free, with its note
    assert report.by_service()["stepfunctions"] == pytest.approx(0.001)
    document = report.as_dict()
    assert document["total_usd"] == pytest.approx(expected, rel=1e-3)
    assert {item["price"] for item in document["items"]} == set(by_key)


def test_every_price_names_its_source_and_the_table_is_dated() -> None:
    assert datetime.fromisoformat(PRICE_TABLE_DATE)
    for key, price in PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/"), key
        assert price.per > 0 and price.amount >= 0, key


POLLING_DEFINITION: dict[str, Any] = {
    "StartAt": "TriggerPipeline",
    "States": {
        "ClaimPromotion": {"Type": "Task", "Next": "ClaimOutcome"},
        "ClaimOutcome": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.s", "StringEquals": "WAIT", "Next": "WaitForModelLock"}],
            "Default": "TriggerPipeline",
        },
        "WaitForModelLock": {"Type": "Wait", "Seconds": 300, "Next": "ClaimPromotion"},
        "TriggerPipeline": {"Type": "Task", "Next": "WaitForPipeline", "Catch": [{"Next": "Rollback"}]},
        "WaitForPipeline": {"Type": "Wait", "Seconds": 60, "Next": "CheckPipeline"},
        "CheckPipeline": {"Type": "Task", "Next": "PipelineStatus", "Catch": [{"Next": "Rollback"}]},
        "PipelineStatus": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.p", "StringEquals": "Completed", "Next": "Done"}],
            "Default": "WaitForPipeline",
        },
        "Bake": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Look": {"Type": "Wait", "SecondsPath": "$.rollout.look_seconds", "Next": "EvaluateStage"},
        "EvaluateStage": {"Type": "Task", "Next": "StageVerdict"},
        "StageVerdict": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.v", "StringEquals": "BAKING", "Next": "Look"}],
            "Default": "Done",
        },
        "Rollback": {"Type": "Task", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def test_poll_loops_are_cycles_through_a_wait_state() -> None:
    loops = {loop.wait_state: loop for loop in find_poll_loops(POLLING_DEFINITION)}
    assert set(loops) == {"WaitForModelLock", "WaitForPipeline", "Look"}  # Bake is a wait, not a loop
    assert loops["WaitForPipeline"] == PollLoop(
        "WaitForPipeline", 60, ("WaitForPipeline", "CheckPipeline", "PipelineStatus")
    )
    assert loops["WaitForModelLock"].states == ("WaitForModelLock", "ClaimPromotion", "ClaimOutcome")
    assert loops["Look"] == PollLoop("Look", None, ("Look", "EvaluateStage", "StageVerdict"))
    with pytest.raises(ValueError, match="time from the document"):
        loops["Look"].transitions_for(3600)


def test_polling_an_hour_long_job_every_minute_costs_180_transitions() -> None:
    loop = PollLoop("WaitForPipeline", 60, ("WaitForPipeline", "CheckPipeline", "PipelineStatus"))
    assert loop.transitions_for(3600) == 180
    assert loop.transitions_for(0) == 3  # at least one turn
    assert loop.transitions_for(61) == 6


def test_sagemaker_estimates_use_the_recorded_hourly_price() -> None:
    training = sagemaker_estimate("training", "training", "ml.m5.xlarge", 2, 0.5)
    assert training.cost == pytest.approx(SAGEMAKER_HOURLY["training"]["ml.m5.xlarge"] * 2 * 0.5)
    unknown = sagemaker_estimate("x", "hosting", "ml.p5.48xlarge", 1, 1)
    assert unknown.cost is None
    assert "no price recorded" in unknown.as_dict()["note"]


def test_orchestration_cost_so_far_is_what_a_running_execution_can_know() -> None:
    history = history_with_a_retry_and_a_caught_failure()
    cost = orchestration_cost_so_far(history, memory_mb=256)
    assert cost["state transitions so far"] == 9
    assert cost["Lambda invocations so far"] == 7
    seconds = sum(math.ceil(task.seconds * 1000) / 1000 for task in summarize_history(history).lambda_tasks)
    expected = 9 * 0.025 / 1000 + 7 * 0.20 / 1e6 + seconds * 0.25 * 0.0000166667
    assert cost["orchestration cost so far (USD)"] == pytest.approx(expected, abs=1e-6)
    assert "S3" in cost["not included"]
    assert all(isinstance(value, (int, float, str)) for value in cost.values())  # flat: report.html renders it


class _PagedHistory:
    """A Step Functions client answering GetExecutionHistory in pages of two events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.calls: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        start = int(kwargs.get("nextToken", 0))
        page: dict[str, Any] = {"events": self.events[start : start + 2]}
        if start + 2 < len(self.events):
            page["nextToken"] = str(start + 2)
        return page


def test_execution_history_reads_every_page_without_execution_data() -> None:
    history = history_with_a_retry_and_a_caught_failure()
    client = _PagedHistory(history)
    assert execution_history(client, "arn:execution") == history
    assert len(client.calls) == math.ceil(len(history) / 2)
    assert all(call["executionArn"] == "arn:execution" for call in client.calls)
    assert all(call["includeExecutionData"] is False for call in client.calls)
