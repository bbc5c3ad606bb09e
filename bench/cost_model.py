"""What one whole promotion costs, priced from what a local run actually did: the bench's side of the price table.

Inputs are counts a run leaves behind: the execution history (state transitions, retries, Lambda tasks and their
times), the Lambda invocations (duration x memory) and the AWS requests the handlers made (each priced by what the
service bills: DynamoDB request units, S3 request tiers, EventBridge events, SNS publishes, ...). `price_usage`
turns them into line items with the unit price and its source. SageMaker compute (training job, comparison job,
endpoint hours of the challenger variant during the rollout) is priced apart, as an estimate from the catalog's
instance types and run times (`sagemaker_estimate`): it is larger than everything else together by orders of
magnitude and is not what the orchestration's budget is about.

Prices: us-east-1, on-demand list prices, without free tiers (a promotion's marginal cost), recorded on
PRICE_TABLE_DATE from AWS's public pricing pages (each entry names its page). They are constants, not fetched:
re-check them before using a figure for a budget decision. The orchestration's own prices (transitions, Lambda)
are the layer's (promotion.result.cost), which PublishResult uses for the decision report; this module adds the
rest. Nothing here ships in the Lambda layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from promotion.result.cost import ORCHESTRATION_PRICES, SAGEMAKER_HOURLY, LambdaRun, Price

BUDGET_PER_PROMOTION_USD = 0.002

KB = 1024
EVENT_CHUNK_BYTES = 64 * KB  # EventBridge and SNS bill per 64 KB chunk of a payload
GB = 1024**3

PRICES: dict[str, Price] = {
    **ORCHESTRATION_PRICES,
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
