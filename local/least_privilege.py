"""The least-privilege survey: the product's scenarios run on the local runtime with IAM enforced, then every
statement of every role is removed in turn and the recorded requests are evaluated again.

A statement is *needed* when some scenario's request is denied without it (the survey names the first such
request, so the statement's reason to exist is a concrete call), *redundant* when it granted requests that other
statements grant too, and *unexercised* when no scenario made a request it grants. Replaying the recorded requests
instead of re-running the scenarios per statement keeps the survey to one run of each scenario.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.iam.enforcer import Record
from local.iam.model import IamModel
from local.runtime import Decision, LocalRuntime, RunResult


@dataclass(frozen=True)
class Scenario:
    """One way the product is used: the runtime's options and what to do with it."""

    name: str
    expected: str  # the promotion outcome the scenario must reach (a survey of a broken run proves nothing)
    options: dict[str, Any] = field(default_factory=dict)
    drive: Callable[[LocalRuntime, dict[str, Any]], RunResult] | None = None


def _promote(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    return runtime.run(event, seed=True)


def _promote_then_drift(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    """A promotion, then two hours of drifted requests on its endpoint: the first hour's check starts a retraining,
    the second's finds it open; the retraining's tuning job runs, and the promotion its completion starts ends."""
    result = runtime.run(event, seed=True)
    first, second = (runtime.monitor("fraud-detection", drift=True) for _ in range(2))
    retrainings = [outcome.get("retraining") or {} for run in (first, second) for outcome in run.outcomes]
    if [r.get("status") for r in retrainings] != ["STARTED", "NOT_STARTED"]:
        raise RuntimeError(f"drift did not start exactly one retraining: {retrainings}")
    for started in runtime.finish_retraining():
        runtime.wait(started)
    return result


def _reject(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    return runtime.run(event, seed=True, decision=Decision.reject(runtime.demo_approver("fraud-detection")))


def _promote_then_roll_back(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    result = runtime.run(event, seed=True)
    (rolled_back,) = runtime.request_rollback("fraud-detection", "least-privilege survey")
    if rolled_back["status"] != "SUCCEEDED":
        raise RuntimeError(f"the operator's rollback did not succeed: {rolled_back.get('cause')}")
    # The promote CLI's reads, as the people who run them (the shipped approver and operator policies).
    promote(runtime, "operator", "omar@example.com", "status", role="PlatformOnCall")
    promote(runtime, "operator", "omar@example.com", "history", "fraud-detection", role="PlatformOnCall")
    promote(runtime, "approver", "alice@example.com", "status", "fraud-detection", role="DataScientists")
    # The champion is back: a plan of the same tuning job would pass again (its reads, as each kind of person).
    job = str(event["detail"]["HyperParameterTuningJobName"])
    promote(runtime, "approver", "alice@example.com", "plan", "fraud-detection", job, role="DataScientists")
    promote(runtime, "operator", "omar@example.com", "plan", "fraud-detection", job, role="PlatformOnCall")
    return result


def _refused_then_approved(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    """Someone with the approvers' policy but not in the catalog decides first: refused, the package waits again
    (the decision function's UpdateModelPackage), then the approver approves."""
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    (arn,) = runtime.send_event(event)
    runtime.wait_for_approval_request(arn, timeout_s=60)
    job = str(event["detail"]["HyperParameterTuningJobName"])
    runtime.send_decision(
        "fraud-detection", job, Decision(decision="approve", role="DataScientists", session="mallory@example.com")
    )
    described = runtime.wait(
        arn, decision=Decision.approve("Alice Martin"), model="fraud-detection", tuning_job_name=job
    )
    runtime.drain()
    return runtime.result(arn, described, model="fraud-detection", before=before, started=time.monotonic())


@contextmanager
def _clients_made_under(lock: AbstractContextManager[Any]) -> Iterator[None]:
    """While the command runs, every boto3 client is made holding the functions' environment lock: making one reads
    os.environ (credentials, proxies), which a function running meanwhile on another thread rewrites for its own
    environment (an iteration that meets a key removed mid-way fails with KeyError). The command itself does not
    hold the lock while it waits, so the function whose answer it waits for can run."""
    import boto3

    original = boto3.client

    def client(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    boto3.client = client
    try:
        yield
    finally:
        boto3.client = original


def promote(
    runtime: LocalRuntime, kind: str, person: str, *arguments: str, role: str | None = None, exit_code: int = 0
) -> str:
    """Run a `promote` command in process against the runtime's world, as session `person` of `role` (default
    promotion-<kind>) holding `kind`'s managed policy; its output, when it exits with `exit_code`."""
    from typer.testing import CliRunner

    from promote import cli
    from promote.cli import app

    assert runtime.iam is not None and runtime.lambdas is not None
    role_arn = runtime.iam.person_role(kind, role)
    assert role_arn is not None, f"the template ships no {kind}s policy"
    assert os.environ.get("PROMOTION_TABLE") == runtime.table_name  # the runtime sets it for its life
    width = cli.console.width
    cli.console.width = 250  # whole names in the tables, not ellipses
    try:
        with runtime.iam.person(role_arn, person), _clients_made_under(runtime.lambdas.environment_lock):
            result = CliRunner().invoke(app, list(arguments), catch_exceptions=False)
    finally:
        cli.console.width = width
    if result.exit_code != exit_code:
        raise RuntimeError(
            f"promote {' '.join(arguments)} as {kind} {person} exited {result.exit_code}, not {exit_code}: "
            f"{result.output}"
        )
    return result.output


def _pause_then_resume(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    """The catalog's operator pauses the rollout at its first stage (the operator control function records it, the
    next look holds, AwaitOperator keeps the token and tells the operators), then resumes it with `promote`."""
    model = "fraud-detection"
    runtime.seed_champion(model)
    before = runtime.production_snapshot(model)
    paused: list[dict[str, str]] = []

    def pause(state: str, result: Any) -> None:
        if state == "ShiftTraffic" and not paused:
            paused.append(runtime.control_rollout(model, "pause", "least-privilege survey"))

    runtime.after_step = pause
    (arn,) = runtime.send_event(event)
    runtime.wait_for_approval_request(arn, timeout_s=60)
    runtime.send_decision(model, str(event["detail"]["HyperParameterTuningJobName"]), Decision.approve("Alice Martin"))
    runtime.executions.wait_in(arn, "AwaitOperator")
    promote(runtime, "operator", "omar@example.com", "resume", model, "--reason", "survey", role="PlatformOnCall")
    described = runtime.wait(arn)
    runtime.drain()
    return runtime.result(arn, described, model=model, before=before, started=time.monotonic())


def _promote_then_clean_up(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    """A promotion, then the hourly cleanup after its rollback window: the previous champion's model and endpoint
    config are deleted."""
    from datetime import timedelta

    from promotion.contract.catalog import load_catalog
    from promotion.result.audit import list_audit_records

    result = runtime.run(event, seed=True)
    (promoted,) = list_audit_records(runtime.clients.dynamodb, runtime.table_name, "fraud-detection")
    rollout = load_catalog(runtime.models_dir / "fraud-detection.yaml").rollout
    assert rollout is not None
    window = timedelta(hours=rollout.rollback_window_hours)
    (cleaned,) = runtime.fire_schedule("RetiredChampionCleanup", promoted.recorded_at + window + timedelta(minutes=1))
    if not cleaned["models"][0]["deleted"]:
        raise RuntimeError(f"the cleanup deleted nothing: {cleaned}")
    return result


def _first_release_fails(runtime: LocalRuntime, event: dict[str, Any]) -> RunResult:
    # No champion: rollback must delete the parameters and config the failed release created.
    return runtime.run(event, seed=False)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("promotion, then drift starts a retraining", "PROMOTED", drive=_promote_then_drift),
    Scenario("rejection", "REJECTED", drive=_reject),
    Scenario("failed rollout stage", "ROLLED_BACK", {"scenario": "worse-errors"}, _promote),
    Scenario("challenger loses the comparison", "ROLLED_BACK", {"champion": "strong"}, _promote),
    Scenario("first release fails", "ROLLED_BACK", {"fail_at": ("DeployChallenger",)}, _first_release_fails),
    Scenario("operator rollback after a promotion", "PROMOTED", drive=_promote_then_roll_back),
    Scenario("a non-approver's decision is refused", "PROMOTED", drive=_refused_then_approved),
    Scenario("an operator pauses and resumes the rollout", "PROMOTED", drive=_pause_then_resume),
    Scenario("the rollback window ends after a promotion", "PROMOTED", drive=_promote_then_clean_up),
)


@dataclass
class StatementFinding:
    role: str  # the role's logical id
    statement: str  # policy name and Sid (or position)
    actions: list[str]
    granted: int  # recorded requests this statement allowed
    lost_without_it: int  # recorded requests denied once it is removed
    example: str | None  # the first of those, as "action on resource (scenario)"
    unused_actions: list[str]  # actions of the statement no recorded request used

    @property
    def verdict(self) -> str:
        if self.lost_without_it:
            return "needed"
        return "redundant" if self.granted else "unexercised"


@dataclass
class Survey:
    scenarios: dict[str, str]  # name -> outcome reached
    requests: int
    requests_per_scenario: dict[str, int]
    findings: list[StatementFinding]

    def by_verdict(self, verdict: str) -> list[StatementFinding]:
        return [f for f in self.findings if f.verdict == verdict]

    def summary(self) -> dict[str, Any]:
        roles: dict[str, dict[str, int]] = {}
        for finding in self.findings:
            counts = roles.setdefault(finding.role, {"statements": 0, "needed": 0, "redundant": 0, "unexercised": 0})
            counts["statements"] += 1
            counts[finding.verdict] += 1
        return {
            "scenarios": self.scenarios,
            "requests_authorized": self.requests,
            "requests_per_scenario": self.requests_per_scenario,
            "statements": len(self.findings),
            "needed": len(self.by_verdict("needed")),
            "redundant": len(self.by_verdict("redundant")),
            "unexercised": len(self.by_verdict("unexercised")),
            "roles": roles,
            "findings": [{**asdict(f), "verdict": f.verdict} for f in self.findings],
        }


def run_scenarios(
    root: Path, event: dict[str, Any], world: dict[str, Any], scenarios: tuple[Scenario, ...] = SCENARIOS
) -> tuple[IamModel, list[tuple[str, Record]], dict[str, str]]:
    """Run each scenario in a runtime of its own; the IAM model and every recorded request, by scenario."""
    recorded: list[tuple[str, Record]] = []
    outcomes: dict[str, str] = {}
    model: IamModel | None = None
    for scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix="least-privilege-") as folder:
            runtime = LocalRuntime(
                root, synth=False, world=world, reports_dir=Path(folder) / "reports", **scenario.options
            )
            with runtime:
                assert runtime.iam is not None and scenario.drive is not None
                result = scenario.drive(runtime, event)
                outcomes[scenario.name] = str(result.outcome or result.status)
                recorded.extend((scenario.name, record) for record in runtime.iam.enforcer.records)
                model = runtime.iam.model
    assert model is not None
    return model, recorded, outcomes


def survey(model: IamModel, recorded: list[tuple[str, Record]], outcomes: dict[str, str]) -> Survey:
    """Remove each statement of each role in turn and replay the recorded requests without it."""
    from local.iam.enforcer import IamEnforcer

    judge = IamEnforcer(model, account="123456789012", region="us-east-1")
    allowed = [(name, r) for name, r in recorded if r.decision.allowed]
    findings: list[StatementFinding] = []
    per_scenario: dict[str, int] = {}
    for name, _ in recorded:
        per_scenario[name] = per_scenario.get(name, 0) + 1
    for role in model.roles.values():
        mine = [(n, r) for n, r in allowed if r.request.principal.arn == role.arn]
        for policy in role.policies:
            for statement in policy.statements:
                granted = [(n, r) for n, r in mine if statement in r.decision.statements]
                lost = [
                    (n, r) for n, r in granted if not judge.decide(r.request, frozenset({statement.source})).allowed
                ]
                used = {r.request.action.lower() for _, r in granted}
                unused = [action for action in statement.actions if "*" not in action and action.lower() not in used]
                example = None
                if lost:
                    scenario, record = lost[0]
                    example = f"{record.request.action} on {record.request.resource} ({scenario})"
                findings.append(
                    StatementFinding(
                        role=role.logical_id,
                        statement=statement.source,
                        actions=list(statement.actions or statement.not_actions),
                        granted=len(granted),
                        lost_without_it=len(lost),
                        example=example,
                        unused_actions=unused,
                    )
                )
    return Survey(outcomes, len(recorded), per_scenario, findings)
