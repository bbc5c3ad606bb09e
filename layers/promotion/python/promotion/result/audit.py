"""The audit trail: one record per promotion that reached a decision, in DynamoDB beside the claims and locks.

Item `MODEL#<model>` / `RELEASE#<release id>`: who approved, when, what (hyperparameters, metrics), from which tuning
job, the previous release and the outcome. Operators' tools list it (`promote status`, `promote history`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from promotion.claim.store import query_partition
from promotion.contract.hyperparameters import HyperparameterValue
from promotion.core.errors import AuditRecordExists, aws_error_code


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    release_id: str
    outcome: str
    reason: str
    recorded_at: datetime
    execution_arn: str
    tuning_job_name: str | None = None
    tuning_job_arn: str | None = None
    training_job_name: str | None = None
    approved_by: str | None = None
    approved_by_identity: str | None = None  # the IAM identity AWS recorded for the approval
    approved_at: datetime | None = None
    approval_comment: str = ""
    model_package_arn: str | None = None
    hyperparameters: dict[str, HyperparameterValue] = {}
    metrics: dict[str, float] = {}
    previous_release_id: str | None = None
    report_key: str | None = None
    # The model the production pipeline trained for this release (the champion artifact of the next comparison).
    production_model_url: str | None = None
    # Operators' requests to the rollout (pause, resume, abort, promote-now), with who, when, why and the outcome.
    interventions: list[dict[str, str]] = []
    # Why the tuning job started (its `promotion:*` tags: drift's retraining names the check, feature and PSI).
    trigger: dict[str, str] = {}


def write_audit_record(dynamodb: Any, table: str, record: AuditRecord) -> None:
    """Store the record once per release: a retried PublishResult of the same execution rewrites it, nobody else
    overwrites it (AuditRecordExists names who wrote it)."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"MODEL#{record.model}"},
                "sk": {"S": f"RELEASE#{record.release_id}"},
                "outcome": {"S": record.outcome},
                "recorded_at": {"S": record.recorded_at.isoformat()},
                "execution_arn": {"S": record.execution_arn},
                "record": {"S": record.model_dump_json()},
            },
            ConditionExpression="attribute_not_exists(sk) OR execution_arn = :me",
            ExpressionAttributeValues={":me": {"S": record.execution_arn}},
        )
    except ClientError as error:
        if aws_error_code(error) != "ConditionalCheckFailedException":
            raise
        raise AuditRecordExists(
            f"the audit record of {record.model} release {record.release_id} was written by another execution; "
            f"{record.execution_arn} does not overwrite it"
        ) from error


def read_audit_record(dynamodb: Any, table: str, model: str, release_id: str) -> AuditRecord | None:
    """One release's audit record, or None (e.g. a champion from before the product)."""
    item = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"RELEASE#{release_id}"}}, ConsistentRead=True
    ).get("Item")
    return AuditRecord.model_validate(json.loads(item["record"]["S"])) if item else None


AUDIT_ATTRIBUTES = ("pk", "sk", "record")  # what `promote history` reads (and people's policies allow)


def list_audit_records(dynamodb: Any, table: str, model: str) -> list[AuditRecord]:
    """Every audit record of a model, oldest release first (release ids sort by time). Strongly consistent: `promote
    rollback` picks the live release from this list, and a release published a moment ago must be on it."""
    items = query_partition(dynamodb, table, model, ("pk", "sk", "record"), prefix="RELEASE#")
    records = [AuditRecord.model_validate(json.loads(item["record"]["S"])) for item in items]
    return records
