"""Operators in control of a running rollout, end to end: pause, resume, abort and promote-now, asked in the Model
Registry as the operator's own IAM identity (`promote`, which sets the candidate package's lifecycle), and stages held
for an operator when they stay inconclusive (`on_inconclusive: hold`), answered or left to expire."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.least_privilege import promote
from local.production import ProductionSnapshot
from local.reporting import RunResult
from local.runtime import Decision, LocalRuntime
from local.sfn_bridge import TimeCompression
from promotion.result.audit import read_audit_record
from tests.e2e.conftest import event
from tests.e2e.test_flood import BASE_MODEL, held_runtime

MODEL = BASE_MODEL
JOB = "fraud-xgb-tuning-0042"
OMAR = ("operator", "omar@example.com")  # the catalog's operator, as `promote` plays them
OMAR_IDENTITY = "arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com"


def start(runtime: LocalRuntime) -> str:
    """A promotion of the shared event (on the champion `seed` put in production), approved by the demo approver:
    its execution ARN."""
    (arn,) = runtime.send_event(event())
    runtime.wait_for_approval_request(arn)
    runtime.send_decision(MODEL, JOB, Decision.approve(runtime.demo_approver(MODEL)))
    return arn


def seed(runtime: LocalRuntime) -> ProductionSnapshot:
    """The champion in production: parameters, config and the endpoint serving it alone."""
    runtime.seed_champion(MODEL)
    return runtime.production_snapshot(MODEL)


def ended(runtime: LocalRuntime, arn: str) -> RunResult:
    """The execution, once it ended, as `local run` reports it (its output is the last document, also when it
    failed)."""
    return runtime.result(arn, runtime.wait(arn), model=MODEL, before=None, started=0.0)


def at_first(state: str, act: Callable[[], Any]) -> tuple[Callable[[str, Any], None], list[Any]]:
    """An `after_step` hook that acts once, right after `state`'s function first returned; and what it got."""
    done: list[Any] = []

    def hook(name: str, result: Any) -> None:
        if name == state and not done:
            done.append(act())

    return hook, done


def ask(runtime: LocalRuntime, command: str, reason: str, *options: str, exit_code: int = 0) -> str:
    """`promote COMMAND fraud-detection --reason REASON` as the catalog's operator, Omar."""
    kind, session = OMAR
    return promote(
        runtime,
        kind,
        session,
        command,
        MODEL,
        "--reason",
        reason,
        "--wait",
        "30",
        *options,
        role="PlatformOnCall",
        exit_code=exit_code,
    )


def report_of(result: RunResult) -> dict[str, Any]:
    assert result.report is not None
    document: dict[str, Any] = json.loads(Path(result.report["json"]).read_text())
    return document


def operator_notes(result: RunResult) -> list[str]:
    """What operators' say did at each look, in order."""
    return [look["operator"] for look in result.output["rollout"]["history"] if look.get("operator")]


def test_a_pause_holds_the_weights_until_an_operator_resumes(tmp_path: Path) -> None:
    runtime = held_runtime(tmp_path)
    hook, asked = at_first("ShiftTraffic", lambda: runtime.control_rollout(MODEL, "pause", "fraud spike, hold"))
    runtime.after_step = hook
    with runtime:
        before = seed(runtime)
        arn = start(runtime)
        runtime.executions.wait_in(arn, "AwaitOperator")
        # Held at the first stage's weights: no further ShiftTraffic happened.
        held = runtime.production_snapshot(MODEL).endpoint_weights
        said = ask(runtime, "resume", "spike explained")
        result = ended(runtime, arn)
        audit = read_audit_record(
            runtime.clients.dynamodb, runtime.table_name, MODEL, str(result.output["claim"]["release_id"])
        )
    assert asked[0]["StageStatus"] == "PauseAccepted", asked
    assert sorted(held.values()) == [0.5, 0.5]
    assert "ResumeAccepted" in said and OMAR_IDENTITY in said
    assert result.status == "SUCCEEDED", result.cause
    assert result.production_after is not None and result.production_after.endpoint_weights != before.endpoint_weights
    notes = operator_notes(result)
    assert notes[0].startswith("stage 1 (50 %) paused by Omar Haddad") and "fraud spike, hold" in notes[0]
    assert notes[1].startswith("stage 1 (50 %) resumed by Omar Haddad") and "spike explained" in notes[1]
    interventions = report_of(result)["operator_interventions"]
    assert [(one["request"], one["outcome"], one["by"], one["reason"]) for one in interventions] == [
        ("pause", "accepted", "Omar Haddad", "fraud spike, hold"),
        ("resume", "accepted", "Omar Haddad", "spike explained"),
    ]
    assert {one["identity"] for one in interventions} == {OMAR_IDENTITY}
    assert audit is not None and audit.interventions == interventions


def test_an_abort_while_paused_rolls_back_at_once(tmp_path: Path) -> None:
    runtime = held_runtime(tmp_path)
    hook, asked = at_first("ShiftTraffic", lambda: runtime.control_rollout(MODEL, "pause", "investigating"))
    runtime.after_step = hook
    with runtime:
        before = seed(runtime)
        arn = start(runtime)
        runtime.executions.wait_in(arn, "AwaitOperator")
        said = ask(runtime, "abort", "challenger flags VIP cards")
        result = ended(runtime, arn)
    assert asked[0]["StageStatus"] == "PauseAccepted"
    assert "AbortAccepted" in said
    assert result.error == "ROLLED_BACK", result.cause
    assert "aborted by Omar Haddad" in str(result.cause) and "challenger flags VIP cards" in str(result.cause)
    assert result.production_after == before  # parameters, config and endpoint weights as they were


def test_an_abort_is_carried_out_at_the_stages_next_look(tmp_path: Path) -> None:
    runtime = held_runtime(tmp_path)
    hook, said = at_first("ShiftTraffic", lambda: ask(runtime, "abort", "wrong feature set deployed"))
    runtime.after_step = hook
    with runtime:
        before = seed(runtime)
        result = ended(runtime, start(runtime))
    assert "AbortAccepted" in said[0] and "next look" in said[0]
    assert result.error == "ROLLED_BACK", result.cause
    assert "abort by Omar Haddad" in result.output["rollout"]["reason"]
    assert result.output["rollout"]["history"] == []  # no look was taken: the abort came first
    assert result.production_after == before


def test_promote_now_skips_the_remaining_stages(tmp_path: Path) -> None:
    runtime = held_runtime(tmp_path)
    hook, asked = at_first("ShiftTraffic", lambda: runtime.control_rollout(MODEL, "promote-now", "incident fix"))
    runtime.after_step = hook
    with runtime:
        seed(runtime)
        result = ended(runtime, start(runtime))
    assert asked[0]["StageStatus"] == "PromoteNowAccepted"
    assert result.status == "SUCCEEDED", result.cause
    assert {look["stage"] for look in result.output["rollout"]["history"]} == {1}  # of 2: the 100 % stage skipped
    (note,) = operator_notes(result)
    assert "promoted now by Omar Haddad" in note and "this look's guardrail held" in note
    assert result.production_after is not None
    assert result.production_after.endpoint_weights == {result.output["rollout"]["challenger_variant"]: 1.0}


def test_promote_now_does_not_skip_a_failing_guardrail(tmp_path: Path) -> None:
    runtime = held_runtime(tmp_path, scenario="worse-errors")
    hook, asked = at_first("ShiftTraffic", lambda: runtime.control_rollout(MODEL, "promote-now", "ship it"))
    runtime.after_step = hook
    with runtime:
        before = seed(runtime)
        result = ended(runtime, start(runtime))
    assert asked[0]["StageStatus"] == "PromoteNowAccepted"
    assert result.error == "ROLLED_BACK", result.cause
    (note,) = operator_notes(result)
    assert "FAIL" in note and "the promote-now by Omar Haddad" in note and "not carried out" in note
    assert result.production_after == before


def test_an_inconclusive_stage_holds_until_an_operator_accepts_it(tmp_path: Path) -> None:
    with held_runtime(tmp_path, scenario="no-traffic") as runtime:
        seed(runtime)
        arn = start(runtime)
        runtime.executions.wait_in(arn, "AwaitOperator")
        status = promote(runtime, "operator", "omar@example.com", "status", MODEL, role="PlatformOnCall")
        # Held: a second pause and a stranger's resume are refused, with the reason, and change nothing.
        refused = ask(runtime, "pause", "again", exit_code=1)
        stranger = promote(
            runtime,
            "operator",
            "alice@example.com",
            "resume",
            MODEL,
            "--reason",
            "looks fine",
            "--wait",
            "30",
            role="DataScientists",
            exit_code=1,
        )
        still_held = runtime.executions.task_waiting(arn, "AwaitOperator")
        accepted = ask(runtime, "resume", "no traffic on Sundays; accept")
        runtime.executions.wait_in(arn, "AwaitOperator")  # the 100 % stage is inconclusive too
        ask(runtime, "resume", "accept the last stage")
        result = ended(runtime, arn)
    (held_row,) = [line for line in status.splitlines() if "inconclusive" in line]
    assert "Rollouts held or asked" in status and "fraud-detection" in held_row
    assert "PauseRefused" in refused and "already held (inconclusive)" in refused
    assert "ResumeRefused" in stranger and "is not an operator of fraud-detection" in stranger
    assert still_held
    assert "ResumeAccepted" in accepted
    assert result.status == "SUCCEEDED", result.cause
    notes = operator_notes(result)
    assert len(notes) == 2 and all("accepted although inconclusive, by Omar Haddad" in note for note in notes)
    outcomes = [(one["request"], one["outcome"]) for one in report_of(result)["operator_interventions"]]
    assert outcomes == [("pause", "refused"), ("resume", "refused"), ("resume", "accepted"), ("resume", "accepted")]


def test_a_hold_nobody_answers_expires_into_a_rollback(tmp_path: Path) -> None:
    compression = TimeCompression(state_timeouts_s={"AwaitOperator": 1})
    with held_runtime(tmp_path, scenario="no-traffic", time_compression=compression) as runtime:
        before = seed(runtime)
        result = ended(runtime, start(runtime))
        release = str(result.output["claim"]["release_id"])
        # Too late: nothing of the model runs any more, with or without naming the release.
        nothing = ask(runtime, "resume", "sorry, was asleep", exit_code=2)
        late = ask(runtime, "resume", "sorry, was asleep", "--release", release, exit_code=1)
    assert result.error == "ROLLED_BACK", result.cause
    assert "no operator answered within 1 h" in str(result.cause) and "on_hold_expiry rollback" in str(result.cause)
    assert result.production_after == before
    assert "no promotion of fraud-detection is running" in nothing
    assert "ResumeRefused" in late and f"no promotion of fraud-detection is running release {release}" in late


def test_a_hold_whose_step_fails_rolls_back(tmp_path: Path) -> None:
    """AwaitOperator crashing (after it kept the token) is caught like any rollout step: production comes back."""
    runtime = held_runtime(tmp_path, fail_at=["AwaitOperator:crash"])
    hook, _ = at_first("ShiftTraffic", lambda: runtime.control_rollout(MODEL, "pause", "investigating"))
    runtime.after_step = hook
    with runtime:
        before = seed(runtime)
        result = ended(runtime, start(runtime))
    assert result.error == "ROLLED_BACK", result.cause
    assert result.output["error"]["Error"] == "Runtime.ExitError"
    assert result.production_after == before
