"""Operators in control of a running rollout: pause, resume, abort and promote-now.

An operator asks in the Model Registry, as approvers and rollback requests do. On the running promotion's candidate
package (Approved, being rolled out) they set the package's model lifecycle (`ModelLifeCycle`, SageMaker's staging
construct) to stage `Rollout` with status `Pause`, `Resume`, `Abort` or `PromoteNow` and the reason as its
description: Studio's "Update model lifecycle", `aws sagemaker update-model-package --model-life-cycle ...`, or
`promote pause|resume|abort|promote-now`. SageMaker's state change event reaches the operator control function,
which reads the package back and trusts only the principal SageMaker recorded (`LastModifiedBy.IamIdentity.Arn`):
it must be one of the catalog's `operators`. The function answers on the package: the status becomes
`<request>Accepted` or `<request>Refused`, the description says why. The rule delivers only requests, so an answer
is never taken for a new request, and a redelivered event finds the request answered.

The promotion's control record (`MODEL#<model>` / `CONTROL#<release>`) carries:

* `pending_request`: a request the execution has not taken up yet (Pause, Abort or PromoteNow), with who asked, when and
  why. EvaluateStage reads it at the stage's next look: a pause holds the stage's weights (AwaitOperator), an abort
  rolls back, a promote-now promotes unless that look's guardrail fails.
* `task_token`, `held_for`, `hold_deadline`: while the execution waits in AwaitOperator (paused, or held on a stage
  still inconclusive with `on_inconclusive: hold`). Resume, Abort and PromoteNow answer it at once (SendTaskSuccess).
* `control_log`: every request with its outcome, accepted or refused and why, for the decision report and the audit
  trail.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from promotion.claim.store import condition_held, query_partition
from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import RELEASE_TAG, ModelPackageStateChange
from promotion.contract.names import endpoint_config_name, shadow_endpoint_config_name
from promotion.contract.state import OperatorDecision, Rollout
from promotion.core.errors import TASK_GONE_CODES, aws_error_code
from promotion.intake.registry import MAX_DESCRIPTION, account_of
from promotion.production.read import describe_endpoint

# SageMaker's ModelLifeCycle as the product reads it: the stage, and the statuses an operator sets to ask.
STAGE = "Rollout"
ACCEPTED, REFUSED = "Accepted", "Refused"
# An execution's history holds at most 25,000 events: each pause costs about 20 (stacks/history.py counts them).
MAX_PAUSES = 20
CONTROL_RETENTION_SECONDS = 90 * 86400
MAX_LOG_ENTRIES = 100  # of at most ~6 KB each (five fields of at most 1,024 characters)


class ControlRequest(StrEnum):
    """What an operator asks (the ModelLifeCycle StageStatus they set), and the `promote` command that sets it."""

    PAUSE = "Pause"
    RESUME = "Resume"
    ABORT = "Abort"
    PROMOTE_NOW = "PromoteNow"

    @property
    def command(self) -> str:
        return {"Pause": "pause", "Resume": "resume", "Abort": "abort", "PromoteNow": "promote-now"}[self.value]


def control_key(model: str, release_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CONTROL#{release_id}"}}


@dataclass(frozen=True)
class OperatorRequest:
    """A request as the control record keeps it until the execution takes it up."""

    action: ControlRequest
    by: str
    identity: str
    reason: str
    at: datetime

    def says(self) -> str:
        return f"{self.action.command} by {self.by} ({self.identity}) at {self.at.isoformat()}: {self.reason}"


@dataclass(frozen=True)
class ControlOutcome:
    """What the operator control function did with one package change."""

    accepted: bool
    reason: str
    model: str | None = None
    release_id: str | None = None
    request: str | None = None
    by: str | None = None
    identity: str | None = None
    ignored: bool = False


Answer = Callable[[bool, str], ControlOutcome]  # (accepted, reason) -> the outcome of the request at hand


@dataclass(frozen=True)
class _Asked:
    """One package change that is an operator's request, as SageMaker records it."""

    package_arn: str
    catalog: ModelCatalog
    request: ControlRequest
    identity: str | None
    reason: str
    release_id: str | None


def _read_request(sagemaker: Any, package_arn: str, catalogs: dict[str, ModelCatalog]) -> _Asked | ControlOutcome:
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    group = described.get("ModelPackageGroupName")
    catalog = next((one for one in catalogs.values() if one.model_package_group == group), None)
    if catalog is None:
        return ControlOutcome(False, f"model package group {group!r} is no catalog model's", ignored=True)
    lifecycle = described.get("ModelLifeCycle") or {}
    stage, status = lifecycle.get("Stage"), lifecycle.get("StageStatus")
    if stage != STAGE or status not in {one.value for one in ControlRequest}:
        return ControlOutcome(
            False,
            f"{package_arn}'s lifecycle is {stage}/{status}: no operator request (answered already, or none)",
            catalog.id,
            ignored=True,
        )
    last = described.get("LastModifiedBy") or described.get("CreatedBy") or {}
    metadata = described.get("CustomerMetadataProperties") or {}
    return _Asked(
        package_arn=str(described["ModelPackageArn"]),
        catalog=catalog,
        request=ControlRequest(status),
        identity=(last.get("IamIdentity") or {}).get("Arn"),
        reason=str(lifecycle.get("StageDescription") or ""),
        release_id=metadata.get(RELEASE_TAG),
    )


class ControlRecord:
    """The control record of one release, over an injected DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str, model: str, release_id: str) -> None:
        self._dynamodb, self._table = dynamodb, table
        self.model, self.release_id = model, release_id
        self.key = control_key(model, release_id)

    def read(self) -> dict[str, Any]:
        item = self._dynamodb.get_item(TableName=self._table, Key=self.key, ConsistentRead=True).get("Item")
        return dict(item or {})

    def update(self, expression: str, values: dict[str, Any], condition: str | None = None) -> bool:
        """One conditional UpdateItem (the record's TTL renewed); False when the condition did not hold."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self.key,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            request["ConditionExpression"] = condition
        return condition_held(self._dynamodb.update_item, **request)

    def log(self, entry: dict[str, str], now: datetime) -> bool:
        """Append one request and its outcome to the record's log; False once the log holds MAX_LOG_ENTRIES (an item
        stays far below DynamoDB's 400 KB, however many requests come in; the function's log has them all)."""
        return self.update(
            "SET control_log = list_append(if_not_exists(control_log, :empty), :entry), expires_at = :expires",
            {
                ":empty": {"L": []},
                ":entry": {"L": [{"M": {name: {"S": value[:MAX_DESCRIPTION]} for name, value in entry.items()}}]},
                ":expires": {"N": str(int(now.timestamp()) + CONTROL_RETENTION_SECONDS)},
                ":most": {"N": str(MAX_LOG_ENTRIES)},
            },
            "attribute_not_exists(control_log) OR size(control_log) < :most",
        )

    def entries(self) -> list[dict[str, str]]:
        return log_entries(self.read())


def log_entries(item: dict[str, Any]) -> list[dict[str, str]]:
    """The record's log as plain dicts (oldest first)."""
    return [
        {name: value.get("S", "") for name, value in entry.get("M", {}).items()}
        for entry in item.get("control_log", {}).get("L", [])
    ]


def pending_request(item: dict[str, Any]) -> OperatorRequest | None:
    """The request the execution has not taken up yet, from a control record's item."""
    if "pending_request" not in item:
        return None
    return OperatorRequest(
        action=ControlRequest(item["pending_request"]["S"]),
        by=item.get("requested_by", {}).get("S", ""),
        identity=item.get("requested_by_identity", {}).get("S", ""),
        reason=item.get("request_reason", {}).get("S", ""),
        at=datetime.fromisoformat(item.get("requested_at", {}).get("S", "1970-01-01T00:00:00+00:00")),
    )


def read_pending_request(dynamodb: Any, table: str, model: str, release_id: str) -> OperatorRequest | None:
    """EvaluateStage's look at the control record: the request to apply at this look, if any."""
    return pending_request(ControlRecord(dynamodb, table, model, release_id).read())


def _hold_deadline(item: dict[str, Any]) -> int:
    """When the control record's hold expires (epoch seconds; 0 when nothing is held)."""
    return int(item.get("hold_deadline", {}).get("N", "0"))


def _waiting(item: dict[str, Any], now: datetime) -> bool:
    """Whether the execution waits in AwaitOperator now (a token whose hold has not expired)."""
    return "task_token" in item and _hold_deadline(item) >= int(now.timestamp())


def handle_request(
    change: ModelPackageStateChange,
    catalogs: dict[str, ModelCatalog],
    *,
    dynamodb: Any,
    stepfunctions: Any,
    sagemaker: Any,
    table: str,
    now: datetime | None = None,
) -> ControlOutcome:
    """Read the changed package back and carry out, or refuse, the operator's request it holds; answer on the package
    (its lifecycle status becomes `<request>Accepted` or `<request>Refused`, the description says why)."""
    moment = now or datetime.now(UTC)
    asked = _read_request(sagemaker, change.detail.ModelPackageArn, catalogs)
    if isinstance(asked, ControlOutcome):
        return asked
    catalog, model = asked.catalog, asked.catalog.id
    operator = catalog.operator(asked.identity, account_of(asked.package_arn)) if asked.identity else None
    by = operator.name if operator is not None else None

    def outcome(accepted: bool, reason: str) -> ControlOutcome:
        return ControlOutcome(accepted, reason, model, asked.release_id, asked.request.command, by, asked.identity)

    if operator is None:
        who = asked.identity or "an unidentified principal"
        listed = ", ".join(one.identity for one in catalog.operators) or "none"
        result = outcome(False, f"{who} is not an operator of {model} (operators: {listed})")
    elif asked.release_id is None:
        result = outcome(False, f"{asked.package_arn} names no release ({RELEASE_TAG}): it is no promotion's candidate")
    else:
        result = _carry_out(asked, by or "", dynamodb, stepfunctions, sagemaker, table, moment, outcome)
    if asked.release_id:  # accepted or refused, every operator's (or would-be operator's) request is on record
        ControlRecord(dynamodb, table, model, asked.release_id).log(
            {
                "request": asked.request.command,
                "by": by or "",
                "identity": asked.identity or "",
                "reason": asked.reason,
                "at": moment.isoformat(),
                "outcome": "accepted" if result.accepted else "refused",
                "detail": result.reason,
            },
            moment,
        )
    _answer_on_package(sagemaker, asked, result)
    return result


def _carry_out(
    asked: _Asked,
    by: str,
    dynamodb: Any,
    stepfunctions: Any,
    sagemaker: Any,
    table: str,
    moment: datetime,
    outcome: Answer,
) -> ControlOutcome:
    """The request of a catalog operator: refused when nothing of the release is rolling out or its state does not
    allow it; otherwise recorded for the next look, or sent to the waiting AwaitOperator."""
    model, release = asked.catalog.id, asked.release_id or ""
    running = _not_rolling_out(asked.catalog, release, dynamodb, sagemaker, table)
    if running is not None:
        return outcome(False, running)
    record = ControlRecord(dynamodb, table, model, release)
    item = record.read()
    request = asked.request
    pending = pending_request(item)
    if _waiting(item, moment):
        if request == ControlRequest.PAUSE:
            return outcome(
                False, f"release {release} is already held ({item['held_for']['S']}), waiting for an operator"
            )
        return _answer_hold(record, item, asked, by, stepfunctions, moment, outcome)
    if request == ControlRequest.RESUME:
        if "task_token" in item and (pending is None or pending.action != ControlRequest.PAUSE):
            # A hold that expired: the catalog's on_hold_expiry decided (the rollout went on or rolled back).
            deadline = datetime.fromtimestamp(int(item.get("hold_deadline", {}).get("N", "0")), UTC)
            return outcome(
                False, f"the hold of release {release} expired at {deadline.isoformat()}: too late to resume"
            )
        if pending is None or pending.action != ControlRequest.PAUSE:
            return outcome(False, f"release {release} is not paused or held: nothing to resume")
        if not record.update(
            "REMOVE pending_request", {":pause": {"S": ControlRequest.PAUSE.value}}, "pending_request = :pause"
        ):
            return outcome(False, f"the pause of release {release} changed concurrently: ask again")
        return outcome(True, f"the pause asked by {pending.by} is cancelled before it took effect")
    if pending is not None and (request == ControlRequest.PAUSE or pending.action != ControlRequest.PAUSE):
        return outcome(False, f"release {release} already has a pending request: {pending.says()}")
    if request == ControlRequest.PAUSE:
        pauses = sum(
            1 for one in log_entries(item) if one.get("request") == "pause" and one.get("outcome") == "accepted"
        )
        if pauses >= MAX_PAUSES:
            return outcome(False, f"release {release} was paused {pauses} times already, the most one promotion may")
    values = {
        ":request": {"S": request.value},
        ":by": {"S": by},
        ":identity": {"S": asked.identity or ""},
        ":reason": {"S": asked.reason},
        ":at": {"S": moment.isoformat()},
    }
    expression = (
        "SET pending_request = :request, requested_by = :by, requested_by_identity = :identity, "
        "request_reason = :reason, requested_at = :at"
    )
    if pending is None:
        condition = "attribute_not_exists(pending_request)"
    else:  # an abort or a promote-now replaces a pause not taken up yet
        condition = "pending_request = :was"
        values[":was"] = {"S": pending.action.value}
    if not record.update(expression, values, condition):
        return outcome(False, f"another request for release {release} came in concurrently: ask again")
    effect = {
        ControlRequest.PAUSE: "the rollout holds its weights at the stage's next look",
        ControlRequest.ABORT: "the rollout rolls back at the stage's next look",
        ControlRequest.PROMOTE_NOW: "the challenger is promoted at the stage's next look, unless its guardrail fails",
    }[request]
    return outcome(True, f"{request.command} of release {release} recorded: {effect}")


def _not_rolling_out(catalog: ModelCatalog, release: str, dynamodb: Any, sagemaker: Any, table: str) -> str | None:
    """Why the release is not rolling out now (None when it is): the model's lock must be held by the release's
    promotion, and the endpoint must serve the release's A/B config (or its shadow stage's)."""
    lock = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": "LOCK"}}, ConsistentRead=True
    ).get("Item")
    if lock is None or lock.get("release_id", {}).get("S") != release:
        return f"no promotion of {catalog.id} is running release {release}: nothing to control"
    if catalog.rollout is None:
        return f"model {catalog.id} has no rollout: nothing to control"
    endpoint = describe_endpoint(sagemaker, catalog.rollout.endpoint_name) or {}
    ab_config = endpoint_config_name(catalog.id, release)
    rolling_out = (ab_config, shadow_endpoint_config_name(catalog.id, release))  # its shadow stage, or the A/B
    if endpoint.get("EndpointConfigName") not in rolling_out:
        return (
            f"release {release} is not in its A/B rollout (endpoint {catalog.rollout.endpoint_name} serves "
            f"{endpoint.get('EndpointConfigName') or 'nothing'}, not {ab_config}): nothing to control"
        )
    return None


def _answer_hold(
    record: ControlRecord,
    item: dict[str, Any],
    asked: _Asked,
    by: str,
    stepfunctions: Any,
    moment: datetime,
    outcome: Answer,
) -> ControlOutcome:
    """Resume, abort or promote-now for a rollout that waits in AwaitOperator: the token is taken (so one answer
    only), then sent."""
    token = item["task_token"]["S"]
    if not record.update("REMOVE task_token, held_for, hold_deadline", {":token": {"S": token}}, "task_token = :token"):
        return outcome(False, f"the hold of release {record.release_id} was answered concurrently")
    decision = OperatorDecision(
        decision=asked.request.command,
        by=by,
        identity=asked.identity,
        reason=asked.reason,
        at=moment,
    )
    try:
        stepfunctions.send_task_success(taskToken=token, output=decision.model_dump_json())
    except ClientError as error:
        code = aws_error_code(error)
        if code in TASK_GONE_CODES:
            return outcome(False, f"the rollout of release {record.release_id} no longer waits ({code}): expired")
        raise
    held = item.get("held_for", {}).get("S", "held")
    return outcome(True, f"{asked.request.command} sent to the rollout of release {record.release_id} ({held})")


def _answer_on_package(sagemaker: Any, asked: _Asked, result: ControlOutcome) -> None:
    """The package's lifecycle says how the request ended. A failure to say so changes nothing else: the outcome is
    in the control record's log, the function's log and its metrics."""
    with contextlib.suppress(ClientError):
        sagemaker.update_model_package(
            ModelPackageArn=asked.package_arn,
            ModelLifeCycle={
                "Stage": STAGE,
                "StageStatus": f"{asked.request.value}{ACCEPTED if result.accepted else REFUSED}",
                "StageDescription": result.reason[:MAX_DESCRIPTION],
            },
        )


# -- the execution's side ------------------------------------------------------------------------------------------


def hold_rollout(
    dynamodb: Any,
    stepfunctions: Any,
    table: str,
    model: str,
    release_id: str,
    rollout: Rollout,
    task_token: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """AwaitOperator: keep the task token on the control record so an operator's answer reaches this execution, and
    take up the pause it holds for. A request that came in since EvaluateStage looked is answered at once: an abort or
    a promote-now is sent to this very task, and a pause cancelled meanwhile resumes it."""
    moment = now or datetime.now(UTC)
    record = ControlRecord(dynamodb, table, model, release_id)
    hold = rollout.hold or "inconclusive"
    deadline = int(moment.timestamp()) + (rollout.hold_seconds or 0)
    for _ in range(5):
        item = record.read()
        pending = pending_request(item)
        if pending is not None and pending.action in (ControlRequest.ABORT, ControlRequest.PROMOTE_NOW):
            if record.update("REMOVE pending_request", {":was": {"S": pending.action.value}}, "pending_request = :was"):
                return _answer_own(stepfunctions, task_token, pending, hold)
            continue
        retried = _waiting(item, moment)
        if hold == "paused" and not retried and (pending is None or pending.action != ControlRequest.PAUSE):
            cancelled = next(
                (one for one in reversed(log_entries(item)) if one.get("request") == "resume"), {"by": "", "at": ""}
            )
            resume = OperatorDecision(
                decision="resume",
                by=cancelled.get("by"),
                identity=cancelled.get("identity"),
                reason="the pause was cancelled before the rollout stopped",
                at=moment,
            )
            stepfunctions.send_task_success(taskToken=task_token, output=resume.model_dump_json())
            return {"held": False, "reason": resume.reason}
        values: dict[str, Any] = {
            ":token": {"S": task_token},
            ":hold": {"S": hold},
            ":deadline": {"N": str(deadline)},
            ":expires": {"N": str(deadline + CONTROL_RETENTION_SECONDS)},
        }
        expression = (
            "SET task_token = :token, held_for = :hold, hold_deadline = :deadline, expires_at = :expires "
            "REMOVE pending_request"
        )
        if pending is None:  # a retry of this step keeps its hold (its new token replaces the first attempt's)
            condition = "attribute_not_exists(pending_request)"
        else:
            condition = "pending_request = :was"
            values[":was"] = {"S": pending.action.value}
        if record.update(expression, values, condition):
            return {
                "held": True,
                "hold": hold,
                "decide_by": datetime.fromtimestamp(deadline, UTC).isoformat(),
                "reason": rollout.reason,
            }
    raise RuntimeError(f"the control record of {model} release {release_id} kept changing; AwaitOperator retries")


def _answer_own(stepfunctions: Any, task_token: str, request: OperatorRequest, hold: str) -> dict[str, Any]:
    decision = OperatorDecision(
        decision=request.action.command,
        by=request.by,
        identity=request.identity,
        reason=request.reason,
        at=request.at,
    )
    stepfunctions.send_task_success(taskToken=task_token, output=decision.model_dump_json())
    return {"held": False, "reason": f"{request.says()} (came in as the rollout was {hold})"}


def hold_notice(model: str, release_id: str, rollout: Rollout, held: dict[str, Any]) -> dict[str, Any]:
    """What the operators are told when a rollout waits for them."""
    stage = rollout.stage_index + 1
    percent = 0.0 if rollout.phase == "shadow" else rollout.stages[rollout.stage_index] if rollout.stages else None
    last = rollout.history[-1] if rollout.history else None
    return {
        "model": model,
        "release_id": release_id,
        "hold": held.get("hold"),
        "why": rollout.reason,
        "stage": stage,
        "challenger_percent": percent,
        "measured": json.loads(last.model_dump_json()) if last is not None else None,
        "decide_by": held.get("decide_by"),
        "commands": {name: f"promote {name} {model} --reason '...'" for name in ("resume", "abort", "promote-now")},
    }


def hold_chat_notification(notice: dict[str, Any]) -> dict[str, Any]:
    """The held rollout as a chat channel shows it."""
    from promotion.result.notify import chat_notification

    title = f":double_vertical_bar: Rollout held: {notice['model']} {notice['release_id']} ({notice['hold']})"
    return chat_notification(
        title=title,
        description=f"{notice['why']}. Answer by {notice['decide_by']}.",
        event_type="PromotionRolloutHeld",
        thread_id=f"{notice['model']}-{notice['release_id']}",
        next_steps=list(notice["commands"].values()),
        context={"stage": notice["stage"], "challenger_percent": notice["challenger_percent"]},
    )


# -- people's tools ------------------------------------------------------------------------------------------------
RUNNING_ATTRIBUTES = ("pk", "sk", "release_id", "model_package_arn")
# What `promote status` shows of control records (people's policies let them read these, never the task token).
CONTROL_ATTRIBUTES = ("pk", "sk", "held_for", "hold_deadline", "pending_request", "requested_by", "requested_at")


@dataclass(frozen=True)
class ControlView:
    """A release's rollout as `promote status` shows it: held (why, until when) or with a request pending."""

    release_id: str
    held_for: str | None
    hold_deadline: datetime | None
    pending: str | None
    requested_by: str | None


def rollout_controls(dynamodb: Any, table: str, model: str, now: datetime) -> list[ControlView]:
    """The releases of `model` whose rollout is held now or has an operator's request pending."""
    found: list[ControlView] = []
    for item in query_partition(dynamodb, table, model, CONTROL_ATTRIBUTES, "CONTROL#"):
        deadline = _hold_deadline(item)
        held = item.get("held_for", {}).get("S") if deadline >= int(now.timestamp()) else None
        pending = item.get("pending_request", {}).get("S")
        if held is None and pending is None:
            continue
        found.append(
            ControlView(
                release_id=item["sk"]["S"].removeprefix("CONTROL#"),
                held_for=held,
                hold_deadline=datetime.fromtimestamp(deadline, UTC) if held else None,
                pending=ControlRequest(pending).command if pending else None,
                requested_by=item.get("requested_by", {}).get("S") if pending else None,
            )
        )
    return found


def candidate_packages(dynamodb: Any, table: str, model: str) -> tuple[str | None, dict[str, str]]:
    """(the release of the promotion of `model` that holds its lock now, or None; {release id: the candidate package
    its approval registered}). Reads only attributes people's policies let them read (stacks/people.py)."""
    items = query_partition(dynamodb, table, model, RUNNING_ATTRIBUTES)
    lock = next((item for item in items if item["sk"]["S"] == "LOCK" and "release_id" in item), None)
    packages = {
        str(item["release_id"]["S"]): str(item["model_package_arn"]["S"])
        for item in items
        if item["sk"]["S"].startswith("APPROVAL#") and "release_id" in item and "model_package_arn" in item
    }
    return (str(lock["release_id"]["S"]) if lock is not None else None), packages
