"""What a running promotion has cost so far, from its own execution history: PublishResult puts it in the decision
report. Pure Python apart from one paginated GetExecutionHistory call.

The history shows state transitions, retries and each Lambda task's time; they are priced with the dated list
prices below (us-east-1, on-demand, without free tiers: a promotion's marginal cost). The bench
(bench/cost_model.py) extends the same table with every other service a promotion bills and prices a whole run,
SageMaker compute apart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PRICE_TABLE_DATE = "2026-11-23"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    """`amount` US dollars per `per` units of `unit`."""

    amount: float
    per: float
    unit: str
    source: str
    note: str = ""

    @property
    def unit_price(self) -> float:
        return self.amount / self.per


# What orchestration bills: the state machine's transitions and the Lambda steps. Each entry names its page.
ORCHESTRATION_PRICES: dict[str, Price] = {
    "stepfunctions.state_transition": Price(
        0.025,
        1_000,
        "state transition",
        "https://aws.amazon.com/step-functions/pricing/",
        "Standard workflows; every state entered and every retry counts",
    ),
    "lambda.gb_second": Price(
        0.0000166667, 1, "GB-second", "https://aws.amazon.com/lambda/pricing/", "x86, first pricing tier"
    ),
    "lambda.request": Price(0.20, 1_000_000, "request", "https://aws.amazon.com/lambda/pricing/"),
}


# SageMaker on-demand, us-east-1, US dollars per instance-hour (https://aws.amazon.com/sagemaker/pricing/, as of
# PRICE_TABLE_DATE): `promote plan` and the bench price the jobs and the challenger's variant with it.
SAGEMAKER_HOURLY: dict[str, dict[str, float]] = {
    "training": {
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.m5.4xlarge": 0.922,
        "ml.c5.xlarge": 0.204,
        "ml.c5.2xlarge": 0.408,
    },
    "processing": {
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.m5.4xlarge": 0.922,
        "ml.c5.xlarge": 0.204,
        "ml.c5.2xlarge": 0.408,
    },
    "hosting": {
        "ml.t2.medium": 0.056,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.c5.large": 0.102,
        "ml.c5.xlarge": 0.204,
    },
}


# -- the execution history ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LambdaTask:
    """One Lambda run as the execution history shows it (scheduled -> ended)."""

    state: str
    seconds: float
    failed: bool
    error: str | None = None


@dataclass(frozen=True)
class HistorySummary:
    """What the execution history says about billing, and where the execution failed."""

    states_entered: int
    retries: int
    entries: dict[str, int]
    lambda_tasks: list[LambdaTask]
    failed_tasks: list[LambdaTask]  # every failed attempt, retried ones included
    failed_states: list[str]  # states whose last attempt failed: what a Catch (e.g. -> Rollback) caught

    @property
    def state_transitions(self) -> int:
        """Step Functions bills every state entered and every retry of a state."""
        return self.states_entered + self.retries


_SCHEDULED = {"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"}
_ENDED = {
    "LambdaFunctionSucceeded": False,
    "LambdaFunctionFailed": True,
    "LambdaFunctionTimedOut": True,
    "LambdaFunctionScheduleFailed": True,
    "LambdaFunctionStartFailed": True,
    "TaskSubmitted": False,  # a .waitForTaskToken invoke returned; the wait that follows is not Lambda time
    "TaskSucceeded": False,
    "TaskFailed": True,
    "TaskTimedOut": True,
}


def _time(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def summarize_history(history: Sequence[Mapping[str, Any]]) -> HistorySummary:
    """Walk GetExecutionHistory's events (oldest first): states entered, retries (a task scheduled again within
    one state entry), each Lambda task's time, and the states whose task failed for good."""
    entries: Counter[str] = Counter()
    retries = 0
    tasks: list[LambdaTask] = []
    failed_states: list[str] = []
    state: str | None = None
    attempts = 0
    scheduled_at: float | None = None
    resource = ""
    last_failed = False
    for event in history:
        kind = str(event.get("type", ""))
        details = _details(event)
        if kind.endswith("StateEntered") or (kind.startswith("Execution") and kind != "ExecutionStarted"):
            if last_failed and state:
                failed_states.append(state)
            last_failed = False
        if kind.endswith("StateEntered"):
            state = str(details.get("name", ""))
            entries[state] += 1
            attempts = 0
        elif kind in _SCHEDULED:
            attempts += 1
            if attempts > 1:
                retries += 1
            scheduled_at = _time(event["timestamp"])
            resource = str(details.get("resource", ""))
        elif kind in _ENDED and scheduled_at is not None:
            # TaskSucceeded after TaskSubmitted is the end of a callback wait, not of an invocation.
            is_lambda = kind.startswith("LambdaFunction") or "lambda" in str(details.get("resourceType", resource))
            last_failed = _ENDED[kind]
            if is_lambda:
                failed = _ENDED[kind]
                tasks.append(
                    LambdaTask(
                        state=state or "",
                        seconds=max(0.0, _time(event["timestamp"]) - scheduled_at),
                        failed=failed,
                        error=str(details.get("error")) if failed and details.get("error") else None,
                    )
                )
            scheduled_at = None
    return HistorySummary(
        states_entered=sum(entries.values()),
        retries=retries,
        entries=dict(entries),
        lambda_tasks=tasks,
        failed_tasks=[task for task in tasks if task.failed],
        failed_states=failed_states,
    )


@dataclass(frozen=True)
class LambdaRun:
    """One invocation: billed duration (ms, rounded up to 1 ms) x memory."""

    function: str
    duration_ms: float
    memory_mb: int

    @property
    def gb_seconds(self) -> float:
        return math.ceil(self.duration_ms) / 1000 * self.memory_mb / 1024


# -- what a running execution can know about itself ----------------------------------------------------------------
def execution_history(stepfunctions: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of one execution, oldest first (GetExecutionHistory, paginated). `stepfunctions` is a boto3
    client; needs states:GetExecutionHistory on the execution."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = stepfunctions.get_execution_history(
            executionArn=execution_arn,
            maxResults=1000,
            includeExecutionData=False,
            **({"nextToken": token} if token else {}),
        )
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token:
            return events


def orchestration_cost_so_far(
    history: Sequence[Mapping[str, Any]], memory_mb: int, prices: Mapping[str, Price] = ORCHESTRATION_PRICES
) -> dict[str, Any]:
    """For the decision report, computed inside PublishResult from its own execution's history: the state
    transitions and Lambda time so far (Lambda time from the history's timestamps, an upper bound of the billed
    duration). Requests to S3, DynamoDB, EventBridge and SNS are not in the history and not counted here; the
    bench (bench/bench_cost.py) measures them for a whole run. SageMaker compute is not included."""
    summary = summarize_history(history)
    runs = [LambdaRun(task.state, task.seconds * 1000, memory_mb) for task in summary.lambda_tasks]
    gb_seconds = sum(run.gb_seconds for run in runs)
    total = (
        summary.state_transitions * prices["stepfunctions.state_transition"].unit_price
        + len(runs) * prices["lambda.request"].unit_price
        + gb_seconds * prices["lambda.gb_second"].unit_price
    )
    return {
        "state transitions so far": summary.state_transitions,
        "Lambda invocations so far": len(runs),
        "Lambda GB-seconds (upper bound)": round(gb_seconds, 4),
        "orchestration cost so far (USD)": round(total, 6),
        "not included": "S3/DynamoDB/EventBridge/SNS requests, logs, SageMaker compute",
        "price table": f"{REGION} list prices recorded {PRICE_TABLE_DATE}",
    }


def execution_facts(stepfunctions: Any, execution_arn: str, memory_mb: int) -> tuple[str | None, dict[str, Any] | None]:
    """What the execution's own history says for its report: the state that failed last and the orchestration cost
    so far. A history that cannot be read yields (None, None): it must never stop PublishResult."""
    from botocore.exceptions import BotoCoreError, ClientError

    from promotion.core.errors import TransientAwsError
    from promotion.core.observability import logger
    from promotion.core.retry import with_backoff

    try:
        history = with_backoff(lambda: execution_history(stepfunctions, execution_arn), attempts=4)
    except (ClientError, BotoCoreError, TransientAwsError) as error:
        logger.warning("no execution history: no failed state or cost in the report", extra={"error": str(error)})
        return None, None
    failed = summarize_history(history).failed_states
    return (failed[-1] if failed else None), orchestration_cost_so_far(history, memory_mb)
