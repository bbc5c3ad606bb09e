"""SageMaker's state-change events, which moto 5.2.5 does not put: a training or processing job that ends, an
endpoint that starts or finishes a change.

SageMaker puts them on the account's default bus ("Events that Amazon SageMaker AI sends to Amazon EventBridge"):
`SageMaker Training Job State Change` and `SageMaker Processing Job State Change` carry the job as its Describe*
call answers (TrainingJobStatus / ProcessingJobStatus: Completed, Failed, Stopped ...); `SageMaker Endpoint State
Change` carries the endpoint's name, ARN, config, variants and `EndpointStatus` spelled in upper case with
underscores (IN_SERVICE, UPDATING, CREATING, FAILED ...), unlike DescribeEndpoint's `InService`. The rules the stack
synthesized decide, with moto's own pattern matcher, which of them reach a target (local/events_bridge.py), and a
Lambda target runs asynchronously after the call that caused the change returned, as EventBridge delivers.

How they are delivered is the running runtime's `EventDelivery`: every event once (the default), some kinds never
(an event lost: the waiting step times out), or each several times (SageMaker may send multiple events per state
change); `sent` records each event put.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.events.models import events_backends

from local.hooks import Hooks

TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
PROCESSING_JOB_STATE_CHANGE = "SageMaker Processing Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def event_status(status: str) -> str:
    """DescribeEndpoint's status as the endpoint's event spells it: InService -> IN_SERVICE."""
    return _WORD.sub("_", status).upper()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _account_region(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return parts[4], parts[3]


@dataclass
class EventDelivery:
    """How SageMaker's events reach the default bus while a runtime runs."""

    lost: frozenset[str] = frozenset()  # detail types whose events never arrive
    copies: int = 1  # how many times each event arrives
    sent: list[dict[str, Any]] = field(default_factory=list)  # every event put: detail-type, resource, status


HOOKS: Hooks[EventDelivery] = Hooks(lambda originals: originals.setdefault("installed", True))


def put(detail_type: str, arn: str, detail: dict[str, Any]) -> None:
    """One SageMaker event on the default bus of the resource's account and region (as the delivery says)."""
    delivery = HOOKS.current or EventDelivery()
    status = next((str(value) for key, value in detail.items() if key.endswith("Status")), None)
    delivery.sent.append({"detail-type": detail_type, "resource": arn, "status": status})
    if detail_type in delivery.lost:
        return
    account, region = _account_region(arn)
    entry = {
        "Source": "aws.sagemaker",
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=_json_default),
        "Resources": [arn],
        "EventBusName": "default",
    }
    for _ in range(max(1, delivery.copies)):
        events_backends[account][region].put_events([entry])


def training_job_changed(job: Any) -> None:
    detail = dict(job.response_object)
    detail.setdefault("Tags", {})
    put(TRAINING_JOB_STATE_CHANGE, job.arn, detail)


def processing_job_changed(job: Any) -> None:
    detail = dict(job.response_object)
    detail.setdefault("Tags", {})
    put(PROCESSING_JOB_STATE_CHANGE, job.arn, detail)


TUNING_JOB_STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"


def tuning_job_changed(job: Any) -> None:
    """As SageMaker sends it (shared/events/tuning-job-completed.json): the job's description without its best
    training job (which must be looked up), its tags as a map."""
    detail = {
        key: value
        for key, value in job.describe().items()
        if value is not None and key not in ("BestTrainingJob", "OverallBestTrainingJob")
    }
    detail["Tags"] = {tag["Key"]: tag["Value"] for tag in job.tags or []}
    put(TUNING_JOB_STATE_CHANGE, job.arn, detail)


def endpoint_changed(endpoint: Any) -> None:
    detail = {
        "EndpointName": endpoint.endpoint_name,
        "EndpointArn": endpoint.arn,
        "EndpointConfigName": endpoint.endpoint_config_name,
        "ProductionVariants": [
            {
                key: variant[key]
                for key in ("VariantName", "CurrentWeight", "DesiredWeight", "CurrentInstanceCount")
                if key in variant
            }
            for variant in endpoint.production_variants
        ],
        "EndpointStatus": event_status(str(endpoint.endpoint_status)),
        "CreationTime": endpoint.creation_time,
        "LastModifiedTime": endpoint.last_modified_time,
        "Tags": {},
    }
    if getattr(endpoint, "failure_reason", None):
        detail["FailureReason"] = endpoint.failure_reason
    put(ENDPOINT_STATE_CHANGE, endpoint.arn, detail)
