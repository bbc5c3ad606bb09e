"""PublishResult: the one terminal step of every path after the claim. It decides the outcome, writes the
decision report and the audit record, releases the model's lock, and tells other systems (EventBridge, SNS)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.claim.store import ClaimStore
from promotion.contract.events import RESULT_SOURCE
from promotion.contract.names import report_prefix
from promotion.contract.state import Outcome, PromotionState, Result
from promotion.core.errors import aws_error_code, aws_error_message
from promotion.intake.approval import conclude_candidate
from promotion.result.audit import AuditRecord, write_audit_record
from promotion.result.notify import chat_notification, publish_notice
from promotion.result.outcome import decide_outcome
from promotion.result.report import render_report_html
from promotion.rollout.control import ControlRecord, log_entries, pending_request

DETAIL_TYPES = {
    Outcome.PROMOTED: "Promotion Succeeded",
    Outcome.ROLLED_BACK: "Promotion Rolled Back",
    Outcome.REJECTED: "Promotion Rejected",
    Outcome.FAILED: "Promotion Failed",
    Outcome.DUPLICATE: "Promotion Duplicate",
}


# The execution document's sections decision.json carries as they are (in this order, after the validation's).
REPORTED_SECTIONS = (
    "approval",
    "data_quality",
    "backup",
    "parameters",
    "config",
    "pipeline",
    "comparison",
    "rollout",
    "error",
)


def html_key(report_key: str) -> str:
    """report.html sits beside decision.json."""
    return report_key.rsplit("/", 1)[0] + "/report.html"


def comparison_plots(s3: Any, state: PromotionState) -> dict[str, bytes]:
    """The comparison job's PNGs, to embed in report.html (the page must read without AWS)."""
    plots: dict[str, bytes] = {}
    for name, uri in (state.comparison.plots if state.comparison else {}).items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        plots[name] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return plots


def decision_report(
    state: PromotionState,
    outcome: Outcome,
    reason: str,
    now: datetime,
    *,
    failed_state: str | None = None,
    cost: Mapping[str, Any] | None = None,
    interventions: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """decision.json: what was promoted, who approved, what failed with which numbers, what was restored, and what
    operators asked of the rollout."""
    document = state.model_dump(mode="json")
    validation = document["validation"] or {}
    return {
        "model": state.claim.model,
        "release_id": state.claim.release_id,
        "execution_name": state.claim.execution_name,
        "tuning_job": {
            "name": state.claim.tuning_job_name,
            "arn": state.claim.tuning_job_arn,
            "started_by": dict(state.claim.trigger),
        },
        "outcome": outcome.value,
        "reason": reason,
        "decided_at": now.isoformat(),
        "candidate": validation.get("candidate"),
        "champion": validation.get("champion"),
        "checks": validation.get("checks", []),
        "warnings": validation.get("warnings", []),
        **{section: document[section] for section in REPORTED_SECTIONS},
        "failed_state": failed_state,
        "rollback": document["rollback"],
        "rollback_error": document["rollback_error"],
        "cost": dict(cost) if cost else None,
        "operator_interventions": [dict(one) for one in interventions],
    }


def operator_interventions(dynamodb: Any, table: str, model: str, release_id: str) -> list[dict[str, str]]:
    """Operators' requests to this release's rollout, oldest first, with a request still pending at the end noted
    as never taken up (the rollout ended before its next look)."""
    item = ControlRecord(dynamodb, table, model, release_id).read()
    entries = log_entries(item)
    pending = pending_request(item)
    if pending is not None:
        entries.append(
            {
                "request": pending.action.command,
                "by": pending.by,
                "identity": pending.identity,
                "reason": pending.reason,
                "at": pending.at.isoformat(),
                "outcome": "not taken up",
                "detail": "the rollout ended before its next look",
            }
        )
    return entries


def publish_result(
    state: PromotionState,
    *,
    s3: Any,
    dynamodb: Any,
    events: Any,
    sns: Any | None,
    bucket: str,
    table: str,
    event_bus_name: str,
    topic_arn: str | None,
    store: ClaimStore,
    sagemaker: Any | None = None,
    now: datetime | None = None,
    failed_state: str | None = None,
    cost: Mapping[str, Any] | None = None,
) -> Result:
    """Record and announce the outcome, in the report, the audit trail and the Model Registry; release the lock
    this execution holds."""
    moment = now or datetime.now(UTC)
    outcome, reason = decide_outcome(state)
    claim = state.claim
    report_key = None
    if claim.model and claim.release_id:
        report_key = f"{report_prefix(claim.model, claim.release_id)}decision.json"
        interventions = operator_interventions(dynamodb, table, claim.model, claim.release_id)
        report = decision_report(
            state, outcome, reason, moment, failed_state=failed_state, cost=cost, interventions=interventions
        )
        body = json.dumps(report, indent=2, default=str).encode()
        s3.put_object(Bucket=bucket, Key=report_key, Body=body, ContentType="application/json")
        page = render_report_html(json.loads(body), comparison_plots(s3, state)).encode()
        s3.put_object(Bucket=bucket, Key=html_key(report_key), Body=page, ContentType="text/html; charset=utf-8")
        candidate = state.validation.candidate if state.validation else None
        approval = state.approval if state.approval and state.approval.decision == "approve" else None
        write_audit_record(
            dynamodb,
            table,
            AuditRecord(
                model=claim.model,
                release_id=claim.release_id,
                outcome=outcome.value,
                reason=reason,
                recorded_at=moment,
                execution_arn=claim.execution_arn,
                tuning_job_name=claim.tuning_job_name,
                tuning_job_arn=claim.tuning_job_arn,
                training_job_name=candidate.training_job_name if candidate else None,
                approved_by=approval.decided_by if approval else None,
                approved_by_identity=approval.identity if approval else None,
                approved_at=approval.decided_at if approval else None,
                approval_comment=approval.comment if approval else "",
                model_package_arn=approval.model_package_arn if approval else None,
                hyperparameters=dict(candidate.hyperparameters) if candidate else {},
                metrics=dict(candidate.metrics) if candidate else {},
                previous_release_id=state.backup.previous_release_id if state.backup else None,
                report_key=report_key,
                production_model_url=state.pipeline.model_data_url if state.pipeline else None,
                interventions=interventions,
                trigger=dict(claim.trigger),
            ),
        )
    package_arn, registry_error = None, None
    if sagemaker is not None:
        try:
            package_arn = conclude_candidate(dynamodb, sagemaker, table, state, outcome.value, reason)
        except ClientError as error:  # the registry is a view of the outcome: its failure must not hold the lock
            registry_error = f"{aws_error_code(error)}: {aws_error_message(error)}"
    released = False
    if claim.model:
        released = store.finish(
            model=claim.model,
            tuning_job_arn=claim.tuning_job_arn,  # a claim that is not this execution's is left as it is
            execution_arn=claim.execution_arn,
            outcome=outcome.value,
        )
    detail = {
        "model": claim.model,
        "release_id": claim.release_id,
        "tuning_job_name": claim.tuning_job_name,
        "execution_name": claim.execution_name,
        "outcome": outcome.value,
        "reason": reason,
        "report": f"s3://{bucket}/{report_key}" if report_key else None,
    }
    events.put_events(
        Entries=[
            {
                "Source": RESULT_SOURCE,
                "DetailType": DETAIL_TYPES[outcome],
                "Detail": json.dumps(detail),
                "EventBusName": event_bus_name,
                "Resources": [claim.execution_arn],
            }
        ]
    )
    if sns is not None and topic_arn:
        subject = f"[{outcome.value}] {claim.model or 'unknown model'} {claim.release_id or ''}".strip()
        icon = {Outcome.PROMOTED: ":white_check_mark:", Outcome.ROLLED_BACK: ":rewind:"}.get(outcome, ":x:")
        publish_notice(
            sns,
            topic_arn,
            subject=subject,
            detail=detail,
            chat=chat_notification(
                title=f"{icon} {subject}",
                description=reason,
                event_type=DETAIL_TYPES[outcome].replace(" ", ""),
                thread_id=f"{claim.model}-{claim.release_id}",
                next_steps=[f"Decision report: {detail['report']}"] if detail["report"] else [],
                context={"execution": claim.execution_name, "tuning_job": claim.tuning_job_name},
            ),
        )
    return Result(
        outcome=outcome,
        reason=reason,
        model=claim.model,
        release_id=claim.release_id,
        report_key=report_key,
        lock_released=released,
        model_package_arn=package_arn,
        registry_error=registry_error,
    )
