"""AwaitApproval and the approval decision: nothing touches production until a catalog approver says so.

AwaitApproval stores the Step Functions task token with the pending promotion (`MODEL#<model>` /
`APPROVAL#<tuning job name>`) and tells the approvers what is waiting and how to decide. A decision event on the
product's bus is checked against the catalog's approvers and the pending promotion, then answered with
SendTaskSuccess / SendTaskFailure. A decision that does not count is refused with its reason, and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.catalog import ModelCatalog
from promotion.claims import condition_held
from promotion.errors import ApprovalNotRecorded
from promotion.events import ApprovalDecision
from promotion.models import Approval, PromotionState

PENDING = "PENDING"
APPROVED = "APPROVED"
# What people's tools (`promote`) read from the promotion table, and all their policies let them read: never the
# approval's task token, with which anyone could complete AwaitApproval (stacks/people.py grants these only).
PENDING_ATTRIBUTES = ("pk", "sk", "status", "decision_deadline", "release_id", "execution_arn", "requested_at")
REJECTION_ERROR = "PromotionRejected"
APPROVAL_SOURCE = "promotion.approvals"
REQUEST_DETAIL_TYPE = "Promotion Approval Requested"


@dataclass(frozen=True)
class DecisionOutcome:
    """What happened to a decision event: accepted (and forwarded to the execution) or refused with a reason."""

    accepted: bool
    reason: str
    model: str | None = None
    tuning_job_name: str | None = None


def approval_key(model: str, tuning_job_name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"APPROVAL#{tuning_job_name}"}}


def approval_commands(model: str) -> dict[str, str]:
    """The exact commands an approver runs (the `promote` CLI puts the decision event on the product bus)."""
    return {
        "approve": f'python -m promote approve {model} --by <you> --comment "why it is fine"',
        "reject": f'python -m promote reject {model} --by <you> --comment "why not"',
    }


def request_approval(
    state: PromotionState,
    task_token: str,
    catalog: ModelCatalog,
    *,
    dynamodb: Any,
    events: Any,
    sns: Any | None,
    table: str,
    event_bus_name: str,
    topic_arn: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Store the task token with the pending promotion and notify the approvers; returns the notification sent."""
    claim, validation = state.claim, state.validation
    assert claim.model and claim.tuning_job_name and validation is not None and validation.candidate is not None
    moment = now or datetime.now(UTC)
    expires_at = int(moment.timestamp()) + validation.approval_timeout_seconds
    dynamodb.put_item(
        TableName=table,
        Item={
            **approval_key(claim.model, claim.tuning_job_name),
            "status": {"S": PENDING},
            "task_token": {"S": task_token},
            "release_id": {"S": claim.release_id or ""},
            "execution_arn": {"S": claim.execution_arn},
            "requested_at": {"S": moment.isoformat()},
            "decision_deadline": {"N": str(expires_at)},
            "expires_at": {"N": str(expires_at + 90 * 86400)},
        },
        ConditionExpression="attribute_not_exists(pk) OR (#status = :pending AND execution_arn = :me)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":pending": {"S": PENDING}, ":me": {"S": claim.execution_arn}},
    )
    candidate, champion = validation.candidate, validation.champion
    notice = {
        "model": claim.model,
        "release_id": claim.release_id,
        "tuning_job_name": claim.tuning_job_name,
        "execution_name": claim.execution_name,
        "hyperparameters": candidate.hyperparameters,
        "metrics": candidate.metrics,
        "champion": {
            "release_id": champion.release_id if champion else None,
            "metrics": champion.performance if champion else {},
        },
        "warnings": validation.warnings,
        "approvers": catalog.approval.approvers,
        "decide_by": datetime.fromtimestamp(expires_at, UTC).isoformat(),
        "commands": approval_commands(claim.model),
    }
    events.put_events(
        Entries=[
            {
                "Source": "promotion.results",
                "DetailType": REQUEST_DETAIL_TYPE,
                "Detail": json.dumps(notice),
                "EventBusName": event_bus_name,
            }
        ]
    )
    if sns is not None and topic_arn:
        sns.publish(
            TopicArn=topic_arn,
            Subject=f"Approval needed: {claim.model} {claim.release_id}"[:100],
            Message=json.dumps(notice, indent=2),
        )
    return notice


def decide(
    decision: ApprovalDecision,
    catalogs: dict[str, ModelCatalog],
    *,
    dynamodb: Any,
    stepfunctions: Any,
    table: str,
    now: datetime | None = None,
) -> DecisionOutcome:
    """Check a decision event and forward it to the waiting execution, or refuse it with the reason."""
    detail = decision.detail
    model, job = detail.model, detail.tuning_job_name
    moment = now or datetime.now(UTC)

    def refuse(reason: str) -> DecisionOutcome:
        return DecisionOutcome(False, reason, model, job)

    catalog = catalogs.get(model)
    if catalog is None:
        return refuse(f"decision for unknown model {model!r}")
    if detail.decided_by not in catalog.approval.approvers:
        return refuse(
            f"{detail.decided_by} is not an approver of {model} (approvers: {', '.join(catalog.approval.approvers)})"
        )
    item = dynamodb.get_item(TableName=table, Key=approval_key(model, job), ConsistentRead=True).get("Item")
    if item is None:
        return refuse(f"no promotion of {model} from tuning job {job} is waiting for approval")
    status = item["status"]["S"]
    if status != PENDING:
        by = item.get("decided_by", {}).get("S", "?")
        return refuse(f"the promotion of {model} from {job} was already decided ({status} by {by}); decision ignored")
    if int(item["decision_deadline"]["N"]) < int(moment.timestamp()):
        return refuse(f"the approval window of {model} from {job} has expired; decision ignored")
    new_status = APPROVED if detail.decision == "approve" else "REJECTED"
    if not condition_held(
        dynamodb.update_item,
        TableName=table,
        Key=approval_key(model, job),
        UpdateExpression="SET #status = :new, decided_by = :by, decided_at = :at, decision_comment = :comment",
        ConditionExpression="#status = :pending",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":new": {"S": new_status},
            ":by": {"S": detail.decided_by},
            ":at": {"S": decision.time.isoformat()},
            ":comment": {"S": detail.comment},
            ":pending": {"S": PENDING},
        },
    ):
        return refuse(f"the promotion of {model} from {job} was decided concurrently; decision ignored")
    token = item["task_token"]["S"]
    try:
        if detail.decision == "approve":
            approval = Approval(
                decision="approve", decided_by=detail.decided_by, comment=detail.comment, decided_at=decision.time
            )
            stepfunctions.send_task_success(taskToken=token, output=approval.model_dump_json())
        else:
            cause = {
                "errorMessage": f"rejected by {detail.decided_by}: {detail.comment}",
                "decided_by": detail.decided_by,
                "comment": detail.comment,
                "decided_at": decision.time.isoformat(),
            }
            stepfunctions.send_task_failure(taskToken=token, error=REJECTION_ERROR, cause=json.dumps(cause))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            dynamodb.update_item(
                TableName=table,
                Key=approval_key(model, job),
                UpdateExpression="SET #status = :expired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expired": {"S": "EXPIRED"}},
            )
            return refuse(f"the promotion of {model} from {job} is no longer waiting ({code}); decision ignored")
        raise
    verb = "approved" if detail.decision == "approve" else "rejected"
    return DecisionOutcome(True, f"promotion of {model} from {job} {verb} by {detail.decided_by}", model, job)


def verify_recorded_approval(dynamodb: Any, table: str, state: PromotionState, catalog: ModelCatalog) -> None:
    """Before anything is written: the approval this execution received must be the one the approval path recorded
    for this very execution and release, by a catalog approver. Anyone who can call SendTaskSuccess with the token
    could otherwise complete AwaitApproval with an approval of their own making."""
    claim, approval = state.claim, state.approval
    model, job = claim.model or "?", claim.tuning_job_name or "?"
    if approval is None or approval.decision != "approve":
        decision = approval.decision if approval is not None else "none"
        raise ApprovalNotRecorded(f"the execution reached BackupProduction with decision {decision!r}, not an approval")
    item = dynamodb.get_item(TableName=table, Key=approval_key(model, job), ConsistentRead=True).get("Item")
    if item is None:
        raise ApprovalNotRecorded(f"no approval of {model} from tuning job {job} is recorded; nothing is written")
    recorded_by = item.get("decided_by", {}).get("S")
    problems = []
    if item["status"]["S"] != APPROVED:
        problems.append(f"its recorded status is {item['status']['S']}, not {APPROVED}")
    if item["execution_arn"]["S"] != claim.execution_arn:
        problems.append(f"it was recorded for execution {item['execution_arn']['S']}")
    if item["release_id"]["S"] != (claim.release_id or ""):
        problems.append(f"it was recorded for release {item['release_id']['S']}, not {claim.release_id}")
    if recorded_by != approval.decided_by:
        problems.append(f"the task output says {approval.decided_by!r} approved, the record says {recorded_by!r}")
    if recorded_by is not None and recorded_by not in catalog.approval.approvers:
        problems.append(f"{recorded_by!r} is not an approver of {model}")
    if problems:
        raise ApprovalNotRecorded(
            f"the approval of {model} release {claim.release_id} from {job} does not match what the approval path "
            f"recorded: {'; '.join(problems)}; production is not written"
        )


@dataclass(frozen=True)
class PendingApproval:
    model: str
    tuning_job_name: str
    release_id: str
    execution_arn: str
    requested_at: str
    decision_deadline: datetime


def pending_approvals(dynamodb: Any, table: str, model: str, now: datetime | None = None) -> list[PendingApproval]:
    """Promotions of a model still waiting for a decision (within their approval window)."""
    moment = now or datetime.now(UTC)
    pending: list[PendingApproval] = []
    paginator = dynamodb.get_paginator("query")
    names = {f"#a{index}": name for index, name in enumerate(PENDING_ATTRIBUTES)}
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression="#a0 = :pk AND begins_with(#a1, :approval)",
        ExpressionAttributeValues={":pk": {"S": f"MODEL#{model}"}, ":approval": {"S": "APPROVAL#"}},
        ExpressionAttributeNames=names,
        ProjectionExpression=", ".join(names),
        Select="SPECIFIC_ATTRIBUTES",
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            deadline = datetime.fromtimestamp(int(item["decision_deadline"]["N"]), UTC)
            if item["status"]["S"] != PENDING or deadline < moment:
                continue
            pending.append(
                PendingApproval(
                    model=model,
                    tuning_job_name=item["sk"]["S"].removeprefix("APPROVAL#"),
                    release_id=item["release_id"]["S"],
                    execution_arn=item["execution_arn"]["S"],
                    requested_at=item["requested_at"]["S"],
                    decision_deadline=deadline,
                )
            )
    return pending
