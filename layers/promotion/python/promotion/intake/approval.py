"""AwaitApproval and the approval decision: nothing touches production until a catalog approver says so, as AWS
proves who they are.

AwaitApproval registers the candidate as a model package in the SageMaker Model Registry (promotion.intake.registry),
stores the Step Functions task token with the pending promotion (`MODEL#<model>` / `APPROVAL#<tuning job name>`,
an item people's policies cannot read the token of) and tells the approvers what is waiting and how to decide.
Approving is changing that package's status. SageMaker's `Model Package State Change` event wakes the decision
function, which reads the package back and trusts only the IAM identity AWS recorded for the change: a catalog
approver's decision is answered with SendTaskSuccess / SendTaskFailure; anyone else's is refused with its reason,
logged with who it was, and the package goes back to PendingManualApproval. Nothing else changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.claim.store import condition_held, query_partition
from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import RESULT_SOURCE, ModelPackageStateChange
from promotion.contract.state import Approval, PromotionState, ValidatedState
from promotion.core.errors import REJECTION_ERROR, TASK_GONE_CODES, ApprovalNotRecorded, aws_error_code
from promotion.intake.registry import (
    APPROVED_STATUS,
    PENDING_STATUS,
    REJECTED_STATUS,
    describe_package,
    record_outcome,
    register_candidate,
    return_to_pending,
)
from promotion.result.notify import chat_notification, publish_notice

PENDING = "PENDING"
APPROVED = "APPROVED"
# What people's tools (`promote`) read from the promotion table, and all their policies let them read: never the
# approval's task token, with which anyone could complete AwaitApproval (stacks/people.py grants these only).
PENDING_ATTRIBUTES = (
    "pk",
    "sk",
    "status",
    "decision_deadline",
    "release_id",
    "execution_arn",
    "requested_at",
    "model_package_arn",
)
REQUEST_DETAIL_TYPE = "Promotion Approval Requested"


@dataclass(frozen=True)
class DecisionOutcome:
    """What happened to a decision event: accepted (and forwarded to the execution) or refused with a reason."""

    accepted: bool
    reason: str
    model: str | None = None
    tuning_job_name: str | None = None
    identity: str | None = None  # who AWS says made the change
    ignored: bool = False  # nothing was waiting for this change (a package no pending promotion owns, no decision)


def approval_key(model: str, tuning_job_name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"APPROVAL#{tuning_job_name}"}}


def approval_commands(model: str, package_arn: str) -> dict[str, str]:
    """The exact commands an approver runs: `promote`, or the AWS CLI (Studio's Model Registry does the same)."""
    return {
        "approve": f'python -m promote approve {model} --comment "why it is fine"',
        "reject": f'python -m promote reject {model} --comment "why not"',
        "aws_cli": (
            f"aws sagemaker update-model-package --model-package-arn {package_arn} "
            f'--model-approval-status Approved --approval-description "why it is fine"'
        ),
    }


def request_approval(
    state: ValidatedState,
    task_token: str,
    catalog: ModelCatalog,
    *,
    dynamodb: Any,
    events: Any,
    sns: Any | None,
    sagemaker: Any,
    serving_image: str,
    table: str,
    event_bus_name: str,
    topic_arn: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Register the candidate in the Model Registry, store the task token with the pending promotion and notify the
    approvers; returns the notification sent."""
    claim, validation = state.claim, state.validation
    moment = now or datetime.now(UTC)
    expires_at = int(moment.timestamp()) + validation.approval_timeout_seconds
    package_arn = register_candidate(sagemaker, state, catalog, serving_image)
    dynamodb.put_item(
        TableName=table,
        Item={
            **approval_key(claim.model, claim.tuning_job_name),
            "status": {"S": PENDING},
            "task_token": {"S": task_token},
            "release_id": {"S": claim.release_id},
            "execution_arn": {"S": claim.execution_arn},
            "requested_at": {"S": moment.isoformat()},
            "decision_deadline": {"N": str(expires_at)},
            "expires_at": {"N": str(expires_at + 90 * 86400)},
            "model_package_arn": {"S": package_arn},
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
        "approvers": [f"{one.name} ({one.identity})" for one in catalog.approval.approvers],
        "model_package_arn": package_arn,
        "model_package_group": catalog.model_package_group,
        "decide_by": datetime.fromtimestamp(expires_at, UTC).isoformat(),
        "commands": approval_commands(claim.model, package_arn),
    }
    events.put_events(
        Entries=[
            {
                "Source": RESULT_SOURCE,
                "DetailType": REQUEST_DETAIL_TYPE,
                "Detail": json.dumps(notice),
                "EventBusName": event_bus_name,
            }
        ]
    )
    if sns is not None and topic_arn:
        metrics = ", ".join(f"{name} {value:g}" for name, value in sorted(candidate.metrics.items()))
        publish_notice(
            sns,
            topic_arn,
            subject=f"Approval needed: {claim.model} {claim.release_id}",
            detail=notice,
            chat=chat_notification(
                title=f":raising_hand: Approval needed: {claim.model} {claim.release_id}",
                description=(
                    f"Tuning job `{claim.tuning_job_name}` passed validation ({metrics}). "
                    f"Decide by {notice['decide_by']} in the Model Registry or with `promote`."
                ),
                event_type="PromotionApprovalRequested",
                thread_id=f"{claim.model}-{claim.release_id}",
                next_steps=list(approval_commands(claim.model, package_arn).values()),
                context={"model_package_arn": package_arn, "execution": claim.execution_name},
            ),
        )
    return notice


def _approval_for_package(dynamodb: Any, table: str, model: str, package_arn: str) -> dict[str, Any] | None:
    """The approval item that registered this package (found by the ARN the flow stored, never by what the
    package's editable metadata says)."""
    paginator = dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :approval)",
        FilterExpression="model_package_arn = :arn",
        ExpressionAttributeValues={
            ":pk": {"S": f"MODEL#{model}"},
            ":approval": {"S": "APPROVAL#"},
            ":arn": {"S": package_arn},
        },
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            return dict(item)
    return None


def decide(
    change: ModelPackageStateChange,
    catalogs: dict[str, ModelCatalog],
    *,
    dynamodb: Any,
    stepfunctions: Any,
    sagemaker: Any,
    table: str,
    now: datetime | None = None,
) -> DecisionOutcome:
    """Read the changed package back, and forward a catalog approver's decision to the waiting execution; refuse
    anyone else's (the package returns to PendingManualApproval), and ignore changes nothing waits for."""
    package = describe_package(sagemaker, change.detail.ModelPackageArn)
    moment = now or datetime.now(UTC)
    catalog = next((one for one in catalogs.values() if one.model_package_group == package.group), None)
    if catalog is None:
        return DecisionOutcome(False, f"model package group {package.group!r} is no catalog model's", ignored=True)
    model = catalog.id
    if package.status not in (APPROVED_STATUS, REJECTED_STATUS):
        return DecisionOutcome(False, f"{package.arn} is {package.status}: nothing decided", model, ignored=True)
    item = _approval_for_package(dynamodb, table, model, package.arn)
    if item is None:
        reason = f"no promotion of {model} registered {package.arn}; its status change is not a decision"
        return DecisionOutcome(False, reason, model, identity=package.identity, ignored=True)
    job = item["sk"]["S"].removeprefix("APPROVAL#")

    def refuse(reason: str, ignored: bool = False) -> DecisionOutcome:
        return DecisionOutcome(False, reason, model, job, package.identity, ignored)

    status = item["status"]["S"]
    if status != PENDING:
        by = item.get("decided_by", {}).get("S", "?")
        return refuse(f"the promotion of {model} from {job} was already decided ({status} by {by}); ignored", True)
    if int(item["decision_deadline"]["N"]) < int(moment.timestamp()):
        return refuse(f"the approval window of {model} from {job} has expired; decision ignored")
    identity = package.identity
    approver = catalog.approval.approver(identity, package.account) if identity else None
    if approver is None or identity is None:
        who = identity or "an unidentified principal"
        listed = ", ".join(one.identity for one in catalog.approval.approvers)
        reason = f"{who} is not an approver of {model} (approvers: {listed})"
        return_to_pending(sagemaker, package.arn, f"{package.status} by {who} refused: not an approver of {model}")
        return refuse(f"{reason}; {package.arn} is back to {PENDING_STATUS}")
    approving = package.status == APPROVED_STATUS
    if not condition_held(
        dynamodb.update_item,
        TableName=table,
        Key=approval_key(model, job),
        UpdateExpression=(
            "SET #status = :new, decided_by = :by, decided_by_identity = :identity, decided_at = :at, "
            "decision_comment = :comment"
        ),
        ConditionExpression="#status = :pending AND model_package_arn = :arn",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":new": {"S": APPROVED if approving else "REJECTED"},
            ":by": {"S": approver.name},
            ":identity": {"S": identity},
            ":at": {"S": moment.isoformat()},
            ":comment": {"S": package.comment},
            ":pending": {"S": PENDING},
            ":arn": {"S": package.arn},
        },
    ):
        return refuse(f"the promotion of {model} from {job} was decided concurrently; decision ignored", True)
    token = item["task_token"]["S"]
    try:
        if approving:
            approval = Approval(
                decision="approve",
                decided_by=approver.name,
                identity=identity,
                model_package_arn=package.arn,
                comment=package.comment,
                decided_at=moment,
            )
            stepfunctions.send_task_success(taskToken=token, output=approval.model_dump_json())
        else:
            cause = {
                "errorMessage": f"rejected by {approver.name}: {package.comment}",
                "decided_by": approver.name,
                "identity": identity,
                "model_package_arn": package.arn,
                "comment": package.comment,
                "decided_at": moment.isoformat(),
            }
            stepfunctions.send_task_failure(taskToken=token, error=REJECTION_ERROR, cause=json.dumps(cause))
    except ClientError as error:
        code = aws_error_code(error)
        if code in TASK_GONE_CODES:
            dynamodb.update_item(
                TableName=table,
                Key=approval_key(model, job),
                UpdateExpression="SET #status = :expired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expired": {"S": "EXPIRED"}},
            )
            return refuse(f"the promotion of {model} from {job} is no longer waiting ({code}); decision ignored")
        raise
    verb = "approved" if approving else "rejected"
    return DecisionOutcome(
        True,
        f"promotion of {model} from {job} {verb} by {approver.name} ({identity})",
        model,
        job,
        identity,
    )


def verify_recorded_approval(
    dynamodb: Any, sagemaker: Any, table: str, state: PromotionState, catalog: ModelCatalog
) -> None:
    """Before anything is written: the approval this execution received must be the one the approval path recorded
    for this very execution and release, by a catalog approver, and the Model Registry must still say so. Anyone
    who can call SendTaskSuccess with the token could otherwise complete AwaitApproval with an approval of their own
    making."""
    claim, approval = state.claim, state.approval
    model, job = claim.model or "?", claim.tuning_job_name or "?"
    if approval is None or approval.decision != "approve":
        decision = approval.decision if approval is not None else "none"
        raise ApprovalNotRecorded(f"the execution reached BackupProduction with decision {decision!r}, not an approval")
    item = dynamodb.get_item(TableName=table, Key=approval_key(model, job), ConsistentRead=True).get("Item")
    if item is None:
        raise ApprovalNotRecorded(f"no approval of {model} from tuning job {job} is recorded; nothing is written")
    recorded_by = item.get("decided_by", {}).get("S")
    recorded_identity = item.get("decided_by_identity", {}).get("S")
    package_arn = item.get("model_package_arn", {}).get("S")
    problems = []
    if item["status"]["S"] != APPROVED:
        problems.append(f"its recorded status is {item['status']['S']}, not {APPROVED}")
    if item["execution_arn"]["S"] != claim.execution_arn:
        problems.append(f"it was recorded for execution {item['execution_arn']['S']}")
    if item["release_id"]["S"] != claim.release_id:
        problems.append(f"it was recorded for release {item['release_id']['S']}, not {claim.release_id}")
    if recorded_by != approval.decided_by:
        problems.append(f"the task output says {approval.decided_by!r} approved, the record says {recorded_by!r}")
    if package_arn != approval.model_package_arn:
        problems.append(f"the task output names package {approval.model_package_arn}, the record {package_arn}")
    if package_arn:
        package = describe_package(sagemaker, package_arn)
        approver = catalog.approval.approver(package.identity, package.account) if package.identity else None
        if package.status != APPROVED_STATUS:
            problems.append(f"the Model Registry says {package_arn} is {package.status}")
        elif approver is None or approver.name != recorded_by or package.identity != recorded_identity:
            who = package.identity or "an unidentified principal"
            problems.append(f"the Model Registry says {who} last changed {package_arn}")
    else:
        problems.append("no model package was registered for it")
    if problems:
        raise ApprovalNotRecorded(
            f"the approval of {model} release {claim.release_id} from {job} does not match what the approval path "
            f"recorded: {'; '.join(problems)}; production is not written"
        )


def conclude_candidate(
    dynamodb: Any, sagemaker: Any, table: str, state: PromotionState, outcome: str, reason: str
) -> str | None:
    """Make the Model Registry say how the promotion ended: the candidate's package gets the outcome (a candidate
    nobody decided on is Rejected, with why); a promoted one is the model's `current` release and the champion it
    replaced is `retired`; a rolled-back one says so. Returns the candidate's package ARN (None: none registered)."""
    claim = state.claim
    if not claim.model or not claim.tuning_job_name:
        return None
    key = approval_key(claim.model, claim.tuning_job_name)
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None or item["execution_arn"]["S"] != claim.execution_arn or "model_package_arn" not in item:
        return None
    package_arn = str(item["model_package_arn"]["S"])
    if item["status"]["S"] == PENDING:
        # First the record stops waiting (a decision arriving now is ignored), then the package says why.
        condition_held(
            dynamodb.update_item,
            TableName=table,
            Key=key,
            UpdateExpression="SET #status = :expired",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":expired": {"S": "EXPIRED"}, ":pending": {"S": PENDING}},
        )
        record_outcome(sagemaker, package_arn, outcome, reject_because=f"no approver decided: {reason}")
        return package_arn
    production = {"PROMOTED": "current", "ROLLED_BACK": "rolled-back"}.get(outcome)
    record_outcome(sagemaker, package_arn, outcome, production=production)
    champion = state.validation.champion if state.validation else None
    if outcome == "PROMOTED" and champion is not None and champion.model_package_arn:
        record_outcome(
            sagemaker, champion.model_package_arn, f"replaced by release {claim.release_id}", production="retired"
        )
    return package_arn


@dataclass(frozen=True)
class PendingApproval:
    model: str
    tuning_job_name: str
    release_id: str
    execution_arn: str
    requested_at: str
    decision_deadline: datetime
    model_package_arn: str | None = None


def pending_approvals(dynamodb: Any, table: str, model: str, now: datetime | None = None) -> list[PendingApproval]:
    """Promotions of a model still waiting for a decision (within their approval window)."""
    moment = now or datetime.now(UTC)
    pending: list[PendingApproval] = []
    for item in query_partition(dynamodb, table, model, PENDING_ATTRIBUTES, "APPROVAL#"):
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
                model_package_arn=item.get("model_package_arn", {}).get("S"),
            )
        )
    return pending
