"""The `promote` command line. Approving and rejecting change the candidate's status in the SageMaker Model
Registry, and rolling back rejects the live release's package there (UpdateModelPackage, made with your own AWS
credentials: SageMaker records who you are, and only the catalog's approvers and operators count); the rest reads
the promotion table. All of it is boto3, so it works against a deployed stack and, in process, against the local
runtime's moto world.

Where things are: `--stack NAME` reads the stack's outputs, or the environment gives them directly
(PROMOTION_TABLE, PROMOTION_CONFIG_BUCKET). `--local --as PERSON` drives the local runtime `python -m local up`
keeps running instead of AWS, as that person (promote/local.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from promotion.contract.catalog import load_catalogs
from promotion.core.errors import CatalogError
from promotion.intake.approval import pending_approvals
from promotion.intake.plan import PromotionPlan, plan_promotion
from promotion.intake.registry import APPROVED_STATUS, REJECTED_STATUS
from promotion.result.audit import list_audit_records
from promotion.rollout.control import ACCEPTED, REFUSED, STAGE, ControlRequest, candidate_packages, rollout_controls

app = typer.Typer(help="Approve, reject and roll back model promotions; see what is running and what happened.")
console = Console()


@app.callback()
def main(
    local: Annotated[
        bool, typer.Option("--local", help="talk to the local runtime (python -m local up), not to AWS")
    ] = False,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="PROMOTE_AS",
            help="with --local: who you are, a catalog person's session name (alice@example.com) or ROLE/SESSION",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="with --local and ROLE/SESSION: the stack policy that role holds (approver|operator|none)"),
    ] = None,
    connection: Annotated[Path, typer.Option(help="with --local: the connection file python -m local up wrote")] = Path(
        ".promote-local.json"
    ),
) -> None:
    """Approve, reject and roll back model promotions; see what is running and what happened."""
    if not local:
        if as_ is not None or policy is not None:
            raise typer.BadParameter("--as and --policy name a person of the local runtime: add --local")
        return
    from promote.local import LocalUnavailable, connect, read_connection

    try:
        if as_ is None:
            people = read_connection(connection).people
            listed = "".join(f"\n  {session}: {label}" for session, label in people.items())
            raise typer.BadParameter(f"say who you are with --as (or PROMOTE_AS); the local runtime's people:{listed}")
        connect(connection, as_, policy)
    except LocalUnavailable as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(2) from None


@dataclass(frozen=True)
class Targets:
    table: str
    config_bucket: str | None


def resolve_targets(stack: str | None, cloudformation: Any | None = None) -> Targets:
    """Table and bucket from the stack's outputs (when `stack` is given) or the environment."""
    if stack:
        cfn = cloudformation or boto3.client("cloudformation")
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        }

        def find(*fragments: str) -> str | None:
            for key, value in outputs.items():
                if any(fragment.lower() in key.lower() for fragment in fragments):
                    return value
            return None

        table = find("Table")
        if not table:
            raise typer.BadParameter(f"stack {stack} has no table output (found {sorted(outputs)})")
        return Targets(table=table, config_bucket=find("ConfigBucket", "Bucket"))
    try:
        return Targets(
            table=os.environ["PROMOTION_TABLE"],
            config_bucket=os.environ.get("PROMOTION_CONFIG_BUCKET"),
        )
    except KeyError as missing:
        raise typer.BadParameter(f"set {missing.args[0]} or pass --stack NAME") from None


StackOption = Annotated[str | None, typer.Option("--stack", help="CloudFormation stack to read names from")]


def _pending_package(targets: Targets, model: str, tuning_job: str | None) -> tuple[str, str]:
    """(tuning job, model package ARN) of the promotion of `model` that waits for a decision."""
    pending = [
        one
        for one in pending_approvals(boto3.client("dynamodb"), targets.table, model)
        if tuning_job is None or one.tuning_job_name == tuning_job
    ]
    if len(pending) != 1:
        console.print(
            f"[red]{len(pending)} promotions of {escape(model)} wait for a decision; name one with --tuning-job[/red]"
        )
        raise typer.Exit(2)
    if not pending[0].model_package_arn:
        console.print("[red]the pending promotion registered no model package; it cannot be decided[/red]")
        raise typer.Exit(2)
    return pending[0].tuning_job_name, pending[0].model_package_arn


def _decide(decision: str, model: str, comment: str, tuning_job: str | None, stack: str | None) -> None:
    targets = resolve_targets(stack)
    job, package_arn = _pending_package(targets, model, tuning_job)
    status = APPROVED_STATUS if decision == "approve" else REJECTED_STATUS
    boto3.client("sagemaker").update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=status, ApprovalDescription=comment
    )
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    console.print(
        f"{package_arn} set to {status} as {caller}; the promotion of {model} from {job} continues only if that "
        "identity is one of the catalog's approvers (see `promote status`)",
        markup=False,
    )


@app.command()
def approve(
    model: str,
    comment: Annotated[str, typer.Option(help="why the candidate may go to production")],
    tuning_job: Annotated[str | None, typer.Option(help="the tuning job, when several wait")] = None,
    stack: StackOption = None,
) -> None:
    """Approve the promotion of MODEL that waits for a decision (as your AWS identity)."""
    _decide("approve", model, comment, tuning_job, stack)


@app.command()
def reject(
    model: str,
    comment: Annotated[str, typer.Option(help="why the candidate may not go to production")],
    tuning_job: Annotated[str | None, typer.Option(help="the tuning job, when several wait")] = None,
    stack: StackOption = None,
) -> None:
    """Reject the promotion of MODEL that waits for a decision (as your AWS identity)."""
    _decide("reject", model, comment, tuning_job, stack)


def _release_package(targets: Targets, model: str, release: str) -> str:
    """The Model Registry package of a release of `model`, as its audit record names it."""
    record = next(
        (
            one
            for one in list_audit_records(boto3.client("dynamodb"), targets.table, model)
            if one.release_id == release
        ),
        None,
    )
    if record is None:
        console.print(f"[red]{escape(model)} has no release {escape(release)} (see `promote history`)[/red]")
        raise typer.Exit(2)
    if not record.model_package_arn:
        console.print(f"[red]release {escape(release)} has no Model Registry package; it cannot be rolled back[/red]")
        raise typer.Exit(2)
    return record.model_package_arn


@app.command()
def rollback(
    model: str,
    release: Annotated[str, typer.Option(help="the live release to roll back (see `promote history`)")],
    reason: Annotated[str, typer.Option(help="why production must go back")],
    stack: StackOption = None,
) -> None:
    """Roll MODEL back from RELEASE to the release before it (as your AWS identity): rejects RELEASE's package in
    the Model Registry. Carried out only if you are one of the catalog's operators and RELEASE is still live."""
    targets = resolve_targets(stack)
    package_arn = _release_package(targets, model, release)
    boto3.client("sagemaker").update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=REJECTED_STATUS, ApprovalDescription=reason
    )
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    console.print(
        f"{package_arn} set to {REJECTED_STATUS} as {caller}: the rollback of {model} from {release} is carried out "
        "only if that identity is one of the catalog's operators and the release is still live; the outcome shows "
        f"in `promote history {model}`",
        markup=False,
    )


def _control(
    request: ControlRequest, model: str, reason: str, release: str | None, wait: float, stack: str | None
) -> None:
    """Ask the running rollout of MODEL for `request`: the candidate package's lifecycle set to stage Rollout with the
    request as its status (UpdateModelPackage, as your AWS identity); then wait for the operator control function's
    answer on the package, and exit 0 when accepted, 1 when refused, 3 when no answer came within `wait` seconds."""
    targets = resolve_targets(stack)
    running, packages = candidate_packages(boto3.client("dynamodb"), targets.table, model)
    release = release or running
    if release is None:
        console.print(f"[red]no promotion of {escape(model)} is running: nothing to {request.command}[/red]")
        raise typer.Exit(2)
    package_arn = packages.get(release)
    if package_arn is None:
        console.print(f"[red]release {escape(release)} of {escape(model)} registered no candidate package[/red]")
        raise typer.Exit(2)
    sagemaker = boto3.client("sagemaker")
    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelLifeCycle={"Stage": STAGE, "StageStatus": request.value, "StageDescription": reason},
    )
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    console.print(f"asked {request.command} of {model} release {release} as {caller} ({package_arn})", markup=False)
    answers = {f"{request.value}{ACCEPTED}": 0, f"{request.value}{REFUSED}": 1}
    deadline = time.monotonic() + wait
    while True:
        lifecycle = sagemaker.describe_model_package(ModelPackageName=package_arn).get("ModelLifeCycle") or {}
        status = lifecycle.get("StageStatus", "")
        if status in answers:
            console.print(f"{status}: {lifecycle.get('StageDescription', '')}", markup=False)
            raise typer.Exit(answers[status])
        if time.monotonic() >= deadline:
            console.print(f"no answer yet (the package says {status or 'nothing'}); see `promote status {model}`")
            raise typer.Exit(3)
        time.sleep(min(1.0, max(0.05, wait / 100)))


ReasonOption = Annotated[str, typer.Option(help="why (recorded with your identity in the audit trail and report)")]
ReleaseOption = Annotated[str | None, typer.Option(help="the release to control (default: the one rolling out now)")]
WaitOption = Annotated[float, typer.Option(help="seconds to wait for the answer (0: do not wait)")]


@app.command()
def pause(
    model: str, reason: ReasonOption, release: ReleaseOption = None, wait: WaitOption = 60, stack: StackOption = None
) -> None:
    """Pause MODEL's rollout at the stage's next look: its weights hold until `resume`, `abort` or `promote-now`
    (or the catalog's hold_hours, then on_hold_expiry). Only the catalog's operators count."""
    _control(ControlRequest.PAUSE, model, reason, release, wait, stack)


@app.command()
def resume(
    model: str, reason: ReasonOption, release: ReleaseOption = None, wait: WaitOption = 60, stack: StackOption = None
) -> None:
    """Resume MODEL's paused rollout where its gate stopped, or accept a stage held as inconclusive."""
    _control(ControlRequest.RESUME, model, reason, release, wait, stack)


@app.command()
def abort(
    model: str, reason: ReasonOption, release: ReleaseOption = None, wait: WaitOption = 60, stack: StackOption = None
) -> None:
    """Abort MODEL's rollout: production rolls back to the champion (at the next look, or at once when held)."""
    _control(ControlRequest.ABORT, model, reason, release, wait, stack)


@app.command("promote-now")
def promote_now(
    model: str, reason: ReasonOption, release: ReleaseOption = None, wait: WaitOption = 60, stack: StackOption = None
) -> None:
    """Promote MODEL's challenger without the remaining stages, unless the current look's guardrail fails."""
    _control(ControlRequest.PROMOTE_NOW, model, reason, release, wait, stack)


MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


@app.command()
def plan(
    model: str,
    tuning_job: str,
    models: Annotated[Path, typer.Option(help="the model catalogs (default: this repository's models/)")] = MODELS_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object instead of tables")] = False,
    stack: StackOption = None,
) -> None:
    """What a promotion of TUNING_JOB for MODEL would do, without writing anything: the validation verdict, the
    hyperparameters against production, the rollout schedule, how long it may take and its SageMaker compute cost.
    Exits 0 when the candidate would pass validation, 1 when it would be rejected, 2 for an unknown model."""
    targets = resolve_targets(stack)
    try:
        catalog = load_catalogs(models)[model]
    except (CatalogError, KeyError) as error:
        console.print(f"[red]no catalog of {escape(model)} in {escape(str(models))}: {escape(str(error))}[/red]")
        raise typer.Exit(2) from None
    if not targets.config_bucket:
        raise typer.BadParameter("set PROMOTION_CONFIG_BUCKET or pass --stack NAME (the champion's config is read)")
    planned = plan_promotion(
        boto3.client("sagemaker"), boto3.client("s3"), boto3.client("ssm"), targets.config_bucket, catalog, tuning_job
    )
    if as_json:
        print(json.dumps(planned.summary(), indent=2, default=str))
    else:
        _print_plan(planned)
    raise typer.Exit(0 if planned.would_start else 1)


def _print_plan(planned: PromotionPlan) -> None:
    validation = planned.validation
    verdict = "[green]PASSED[/green]" if planned.would_start else "[red]REJECTED[/red]"
    console.print(f"Promotion of {escape(planned.model)} from {escape(planned.tuning_job)}: validation {verdict}")
    for reason in validation.reasons:
        console.print(f"  - {escape(reason)}")
    for warning in validation.warnings:
        console.print(f"  ! {escape(warning)}")
    checks = Table(title="Checks")
    for column in ("check", "passed", "value", "threshold", "detail"):
        checks.add_column(column)
    for check in validation.checks:
        cells = (check.name, str(check.passed), str(check.value or ""), str(check.threshold or ""), check.detail)
        checks.add_row(*(escape(cell) for cell in cells))
    console.print(checks)
    parameters = Table(title="Hyperparameters: production -> candidate")
    for column in ("name", "production", "candidate", "changes"):
        parameters.add_column(column)
    for one in planned.parameters:
        changed = "yes" if one.changed else ""
        parameters.add_row(
            *(escape(c) for c in (one.name, one.production or "(absent)", one.candidate or "(absent)", changed))
        )
    console.print(parameters)
    stages = Table(title="Rollout schedule")
    for column in ("stage", "challenger %", "looks at most", "shortest (min)", "longest (min)"):
        stages.add_column(column)
    for stage in planned.stages:
        numbers = (stage.stage, stage.percent, stage.looks, stage.shortest_minutes, stage.longest_minutes)
        stages.add_row(*(f"{number:g}" for number in numbers))
    console.print(stages)
    phases = Table(title="Duration (hours)")
    for column in ("phase", "shortest", "longest", "note"):
        phases.add_column(column)
    for phase in planned.phases:
        phases.add_row(phase.name, f"{phase.shortest_hours:g}", f"{phase.longest_hours:g}", escape(phase.note))
    console.print(phases)
    costs = Table(title=f"SageMaker compute, on demand (prices of {planned.price_table_date})")
    for column in ("what", "instance", "count", "hourly USD", "shortest USD", "longest USD"):
        costs.add_column(column)
    for cost in planned.costs:
        price = "no price recorded" if cost.hourly_usd is None else f"{cost.hourly_usd:g}"
        shortest = "" if cost.shortest_usd is None else f"{cost.shortest_usd:.2f}"
        longest = "" if cost.longest_usd is None else f"{cost.longest_usd:.2f}"
        costs.add_row(escape(cost.what), cost.instance_type, str(cost.instance_count), price, shortest, longest)
    console.print(costs)
    low, high = planned.total_usd()
    console.print(f"SageMaker compute in all: {low:.2f} to {high:.2f} USD (orchestration adds well under 0.01 USD)")


def _history_table(model: str, targets: Targets, limit: int | None) -> Table:
    table = Table(title=f"Promotions of {model}", show_lines=False)
    for column in ("release", "outcome", "approved by", "tuning job", "reason", "report"):
        table.add_column(column, overflow="fold")
    records = list_audit_records(boto3.client("dynamodb"), targets.table, model)
    for record in records[-limit:] if limit else records:
        report = (
            f"s3://{targets.config_bucket}/{record.report_key}"
            if record.report_key and targets.config_bucket
            else (record.report_key or "")
        )
        # Stored strings are data, not Rich markup: a reason must not hide text or add links.
        table.add_row(
            *(
                escape(value)
                for value in (
                    record.release_id,
                    record.outcome,
                    record.approved_by or "",
                    record.tuning_job_name or "",
                    record.reason,
                    report,
                )
            )
        )
    return table


@app.command()
def status(
    model: Annotated[str | None, typer.Argument(help="one model (default: every model with a record)")] = None,
    stack: StackOption = None,
) -> None:
    """Pending approvals, running promotions and recent outcomes."""
    targets = resolve_targets(stack)
    dynamodb = boto3.client("dynamodb")
    models = [model] if model else _models(dynamodb, targets.table)
    now = datetime.now(UTC)
    waiting = Table(title="Waiting for approval")
    for column in ("model", "tuning job", "release", "decide by"):
        waiting.add_column(column)
    for name in models:
        for item in pending_approvals(dynamodb, targets.table, name, now):
            cells = (item.model, item.tuning_job_name, item.release_id, item.decision_deadline.isoformat())
            waiting.add_row(*(escape(cell) for cell in cells))
    console.print(waiting)
    controlled = Table(title="Rollouts held or asked")
    for column in ("model", "release", "held", "answer by", "pending request", "asked by"):
        controlled.add_column(column)
    for name in models:
        for view in rollout_controls(dynamodb, targets.table, name, now):
            deadline = view.hold_deadline.isoformat() if view.hold_deadline else ""
            row = (name, view.release_id, view.held_for or "", deadline, view.pending or "", view.requested_by or "")
            controlled.add_row(*(escape(cell) for cell in row))
    console.print(controlled)
    for name in models:
        console.print(_history_table(name, targets, limit=5))


def _models(dynamodb: Any, table: str) -> list[str]:
    names: set[str] = set()
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="pk", Select="SPECIFIC_ATTRIBUTES"
    )
    for page in pages:
        names.update(item["pk"]["S"].removeprefix("MODEL#") for item in page.get("Items", []))
    return sorted(names)


@app.command()
def history(model: str, stack: StackOption = None) -> None:
    """Every promotion of MODEL with its outcome, reason and report."""
    console.print(_history_table(model, resolve_targets(stack), limit=None))


def run() -> None:
    """The entry point: AWS's refusal (AccessDenied, a missing table) and a local runtime that stops answering are
    said plainly, not as a traceback."""
    from botocore.exceptions import ClientError

    from promote.local import LocalUnavailable

    try:
        app()
    except ClientError as error:
        detail = error.response.get("Error", {})
        console.print(
            f"[red]AWS refused {escape(error.operation_name)}: {escape(str(detail.get('Code')))}: "
            f"{escape(str(detail.get('Message')))}[/red]"
        )
        sys.exit(1)
    except LocalUnavailable as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    run()
