"""What one promotion costs, priced from what a run actually did. Pure Python: no AWS calls, no boto3.

Inputs are counts a run leaves behind: the execution history (state transitions, retries, Lambda tasks and their
times), the Lambda invocations (duration x memory) and the AWS requests the handlers made (each priced by what the
service bills: DynamoDB request units, S3 request tiers, EventBridge events, SNS publishes, ...). `price_usage`
turns them into line items with the unit price and its source. SageMaker compute (training job, comparison job,
endpoint hours of the challenger variant during the rollout) is priced apart, as an estimate from the catalog's
instance types and run times (`sagemaker_estimate`): it is larger than everything else together by orders of
magnitude and is not what the orchestration's budget is about.

Prices: us-east-1, on-demand list prices, without free tiers (a promotion's marginal cost), recorded on
PRICE_TABLE_DATE from AWS's public pricing pages (each entry names its page). They are constants, not fetched:
re-check them before using a figure for a budget decision.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PRICE_TABLE_DATE = "2026-11-23"
REGION = "us-east-1"
BUDGET_PER_PROMOTION_USD = 0.002

KB = 1024
EVENT_CHUNK_BYTES = 64 * KB  # EventBridge and SNS bill per 64 KB chunk of a payload
GB = 1024**3


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


PRICES: dict[str, Price] = {
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
    "dynamodb.write_request_unit": Price(
        0.625,
        1_000_000,
        "write request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "on-demand (price since 2024-11-01); 1 WRU per 1 KB written, 2 in a transaction",
    ),
    "dynamodb.read_request_unit": Price(
        0.125,
        1_000_000,
        "read request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "on-demand; 1 RRU per 4 KB strongly consistent, half that eventually consistent",
    ),
    "s3.put_tier_request": Price(
        0.005, 1_000, "PUT/COPY/POST/LIST request", "https://aws.amazon.com/s3/pricing/", "S3 Standard"
    ),
    "s3.get_tier_request": Price(
        0.0004, 1_000, "GET/HEAD/other request", "https://aws.amazon.com/s3/pricing/", "S3 Standard; DELETE is free"
    ),
    "ssm.standard_api_call": Price(
        0.0,
        1,
        "API call",
        "https://aws.amazon.com/systems-manager/pricing/",
        "standard parameters at standard throughput are free (higher throughput: $0.05 per 10,000 calls)",
    ),
    "eventbridge.custom_event": Price(
        1.00,
        1_000_000,
        "custom event (64 KB chunk)",
        "https://aws.amazon.com/eventbridge/pricing/",
        "events put on a bus by the product or an approver; AWS service events (SageMaker's) are free",
    ),
    "sns.publish": Price(
        0.50,
        1_000_000,
        "publish (64 KB chunk)",
        "https://aws.amazon.com/sns/pricing/",
        "standard topic; deliveries priced per subscriber (email $2.00 per 100,000; SQS/Lambda free)",
    ),
    "kms.request": Price(
        0.03,
        10_000,
        "request",
        "https://aws.amazon.com/kms/pricing/",
        "upper bound: one data-key request per publish to the encrypted topic (SNS caches data keys)",
    ),
    "cloudwatch.metric_requested": Price(
        0.01,
        1_000,
        "metric requested (GetMetricData)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "the rollout gate reads per-variant metrics",
    ),
    "cloudwatch.api_request": Price(
        0.01, 1_000, "request (PutMetricData, GetMetricStatistics, ...)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "logs.ingestion_gb": Price(
        0.50,
        1,
        "GB ingested",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Lambda logs and the state machine's execution log (level ALL, with execution data)",
    ),
    "xray.trace": Price(5.00, 1_000_000, "trace recorded", "https://aws.amazon.com/xray/pricing/"),
}

# SageMaker on-demand, us-east-1, US dollars per instance-hour (https://aws.amazon.com/sagemaker/pricing/).
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

# Requests that are billed per request in the S3 PUT tier; every other S3 request except DELETE is GET tier.
_S3_PUT_TIER = {
    "PutObject",
    "CopyObject",
    "PostObject",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListBuckets",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "PutObjectTagging",
    "PutBucketVersioning",
}
_S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_DYNAMODB_READS = {"GetItem", "Query", "Scan"}


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


# -- AWS requests ------------------------------------------------------------------------------------------------
def _size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")).encode()) if value is not None else 0


def _chunks(size: int, chunk: int) -> int:
    return max(1, math.ceil(size / chunk))


def request_units(service: str, operation: str, params: Mapping[str, Any], response: Any) -> dict[str, float]:
    """What one AWS request bills, as {price key: quantity}. `service` is botocore's service name (`s3`,
    `dynamodb`, `events`, ...); `params` the API parameters; `response` the parsed response (sizes of reads)."""
    service = service.lower()
    if service == "dynamodb":
        return _dynamodb_units(operation, params, response)
    if service == "s3":
        if operation in _S3_FREE:
            return {}
        return {"s3.put_tier_request" if operation in _S3_PUT_TIER else "s3.get_tier_request": 1}
    if service == "ssm":
        return {"ssm.standard_api_call": 1}
    if service == "events" and operation == "PutEvents":
        entries = list(params.get("Entries") or [])
        return {"eventbridge.custom_event": sum(_chunks(_size(entry), EVENT_CHUNK_BYTES) for entry in entries)}
    if service == "sns" and operation == "Publish":
        return {"sns.publish": _chunks(_size(params.get("Message", "")), EVENT_CHUNK_BYTES), "kms.request": 1}
    if service == "sns" and operation == "PublishBatch":
        entries = list(params.get("PublishBatchRequestEntries") or [])
        publishes = sum(_chunks(_size(entry.get("Message", "")), EVENT_CHUNK_BYTES) for entry in entries)
        return {"sns.publish": publishes, "kms.request": 1}
    if service == "cloudwatch":
        if operation == "GetMetricData":
            queries = list(params.get("MetricDataQueries") or [])
            return {"cloudwatch.metric_requested": sum(1 for query in queries if "MetricStat" in query) or 1}
        if operation in {"PutMetricData", "GetMetricStatistics", "ListMetrics"}:
            return {"cloudwatch.api_request": 1}
    # Step Functions, SageMaker, STS, Lambda control-plane ... API requests: no per-request charge.
    return {}


def _dynamodb_units(operation: str, params: Mapping[str, Any], response: Any) -> dict[str, float]:
    response = response if isinstance(response, Mapping) else {}
    if operation in _DYNAMODB_WRITES:
        written = params.get("Item") or {**params.get("Key", {}), **params.get("ExpressionAttributeValues", {})}
        return {"dynamodb.write_request_unit": _chunks(_size(written), KB)}
    if operation == "TransactWriteItems":
        transact = 0
        for item in params.get("TransactItems") or []:
            action: Mapping[str, Any] = next(iter(item.values()), {}) if isinstance(item, Mapping) else {}
            written = action.get("Item") or {**action.get("Key", {}), **action.get("ExpressionAttributeValues", {})}
            transact += 2 * _chunks(_size(written), KB)
        return {"dynamodb.write_request_unit": transact}
    if operation == "BatchWriteItem":
        batch = sum(
            _chunks(_size(request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {})), KB)
            for requests in (params.get("RequestItems") or {}).values()
            for request in requests
        )
        return {"dynamodb.write_request_unit": batch}
    if operation in _DYNAMODB_READS:
        consistent = bool(params.get("ConsistentRead"))
        read = response.get("Item") if operation == "GetItem" else response.get("Items")
        return {"dynamodb.read_request_unit": _chunks(_size(read), 4 * KB) * (1.0 if consistent else 0.5)}
    if operation == "TransactGetItems":
        return {"dynamodb.read_request_unit": 2 * max(1, len(params.get("TransactItems") or []))}
    if operation == "BatchGetItem":
        items = [item for items in (response.get("Responses") or {}).values() for item in items]
        return {"dynamodb.read_request_unit": 0.5 * sum(_chunks(_size(item), 4 * KB) for item in items) or 0.5}
    return {}


# -- pricing -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LambdaRun:
    """One invocation: billed duration (ms, rounded up to 1 ms) x memory."""

    function: str
    duration_ms: float
    memory_mb: int

    @property
    def gb_seconds(self) -> float:
        return math.ceil(self.duration_ms) / 1000 * self.memory_mb / 1024


@dataclass
class Usage:
    """Everything one promotion used that is billed per use."""

    state_transitions: int = 0
    lambda_runs: list[LambdaRun] = field(default_factory=list)
    units: dict[str, float] = field(default_factory=dict)  # price key -> quantity (requests, events, units)
    log_bytes: int = 0
    traces: int = 0

    def add_request(self, service: str, operation: str, params: Mapping[str, Any], response: Any) -> None:
        for key, quantity in request_units(service, operation, params, response).items():
            self.units[key] = self.units.get(key, 0.0) + quantity


@dataclass(frozen=True)
class LineItem:
    key: str
    quantity: float
    unit: str
    unit_price: float
    cost: float
    note: str = ""


@dataclass(frozen=True)
class CostReport:
    items: list[LineItem]

    @property
    def total(self) -> float:
        return sum(item.cost for item in self.items)

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in self.items:
            service = item.key.split(".", 1)[0]
            totals[service] = totals.get(service, 0.0) + item.cost
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_usd": round(self.total, 8),
            "by_service_usd": {name: round(cost, 8) for name, cost in sorted(self.by_service().items())},
            "items": [
                {
                    "price": item.key,
                    "quantity": round(item.quantity, 4),
                    "unit": item.unit,
                    "unit_price_usd": item.unit_price,
                    "cost_usd": round(item.cost, 8),
                    **({"note": item.note} if item.note else {}),
                }
                for item in self.items
            ],
        }


def _item(key: str, quantity: float, prices: Mapping[str, Price]) -> LineItem:
    price = prices[key]
    return LineItem(key, quantity, price.unit, price.unit_price, quantity * price.unit_price, price.note)


def price_usage(usage: Usage, prices: Mapping[str, Price] = PRICES) -> CostReport:
    """Line items for one promotion's usage (zero-quantity items left out, free ones kept with their note)."""
    items = [_item("stepfunctions.state_transition", usage.state_transitions, prices)]
    if usage.lambda_runs:
        items.append(_item("lambda.request", len(usage.lambda_runs), prices))
        items.append(_item("lambda.gb_second", sum(run.gb_seconds for run in usage.lambda_runs), prices))
    items.extend(_item(key, quantity, prices) for key, quantity in sorted(usage.units.items()) if quantity)
    if usage.log_bytes:
        items.append(_item("logs.ingestion_gb", usage.log_bytes / GB, prices))
    if usage.traces:
        items.append(_item("xray.trace", usage.traces, prices))
    return CostReport(items)


# -- polling loops ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollLoop:
    """A cycle of the state machine through a Wait state: each turn costs len(states) transitions. `wait_seconds`
    is None when the Wait reads its time from the document (SecondsPath, e.g. the rollout's look interval)."""

    wait_state: str
    wait_seconds: int | None
    states: tuple[str, ...]

    def transitions_for(self, runtime_seconds: float) -> int:
        """Transitions spent polling a job that runs `runtime_seconds` (at least one turn)."""
        if self.wait_seconds is None:
            raise ValueError(f"{self.wait_state} waits for a time from the document: give the number of turns")
        return max(1, math.ceil(runtime_seconds / self.wait_seconds)) * len(self.states)


def _successors(state: Mapping[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    if "Default" in state:
        found.append(state["Default"])
    return found  # Catch targets are failure paths, not loops


def find_poll_loops(definition: Mapping[str, Any]) -> list[PollLoop]:
    """Every shortest cycle from a Wait state back to itself, in the top-level states."""
    states: Mapping[str, Mapping[str, Any]] = definition.get("States", {})
    loops: list[PollLoop] = []
    for name, state in states.items():
        if state.get("Type") != "Wait":
            continue
        paths: dict[str, tuple[str, ...]] = {name: (name,)}
        frontier = [name]
        cycle: tuple[str, ...] | None = None
        while frontier and cycle is None:
            following: list[str] = []
            for current in frontier:
                for successor in _successors(states.get(current, {})):
                    if successor == name:
                        cycle = paths[current]
                        break
                    if successor not in paths and successor in states:
                        paths[successor] = (*paths[current], successor)
                        following.append(successor)
                if cycle is not None:
                    break
            frontier = following
        # A polling loop waits once per turn; a longer cycle through other Waits is the flow itself (the rollout
        # from one new endpoint config to the next), not a poll.
        if cycle is not None and sum(1 for member in cycle if states[member].get("Type") == "Wait") == 1:
            seconds = state.get("Seconds")
            loops.append(PollLoop(name, int(seconds) if isinstance(seconds, int) else None, cycle))
    return loops


# -- SageMaker, priced apart -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComputeEstimate:
    what: str
    kind: str  # training | processing | hosting
    instance_type: str
    instance_count: int
    hours: float
    hourly_usd: float | None

    @property
    def cost(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * self.instance_count * self.hours

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "kind": self.kind,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "hours": round(self.hours, 4),
            "hourly_usd": self.hourly_usd,
            "cost_usd": None if self.cost is None else round(self.cost, 4),
            **({} if self.hourly_usd is not None else {"note": f"no price recorded for {self.instance_type}"}),
        }


def sagemaker_estimate(what: str, kind: str, instance_type: str, instance_count: int, hours: float) -> ComputeEstimate:
    return ComputeEstimate(what, kind, instance_type, instance_count, hours, SAGEMAKER_HOURLY[kind].get(instance_type))


def compute_total(estimates: Iterable[ComputeEstimate]) -> float:
    return sum(estimate.cost or 0.0 for estimate in estimates)


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
    history: Sequence[Mapping[str, Any]], memory_mb: int, prices: Mapping[str, Price] = PRICES
) -> dict[str, Any]:
    """For the decision report, computed inside PublishResult from its own execution's history: the state
    transitions and Lambda time so far (Lambda time from the history's timestamps, an upper bound of the billed
    duration). Requests to S3, DynamoDB, EventBridge and SNS are not in the history and not counted here; the
    bench (bench/bench_cost.py) measures them for a whole run. SageMaker compute is not included."""
    summary = summarize_history(history)
    runs = [LambdaRun(task.state, task.seconds * 1000, memory_mb) for task in summary.lambda_tasks]
    report = price_usage(Usage(state_transitions=summary.state_transitions, lambda_runs=runs), prices)
    return {
        "state transitions so far": summary.state_transitions,
        "Lambda invocations so far": len(runs),
        "Lambda GB-seconds (upper bound)": round(sum(run.gb_seconds for run in runs), 4),
        "orchestration cost so far (USD)": round(report.total, 6),
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
