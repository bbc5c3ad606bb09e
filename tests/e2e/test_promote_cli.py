"""Every `promote` subcommand against the local runtime, as the people who run it (their role, with the stack's
approvers' or operators' policy), including what it refuses. The rollout controls (pause, resume, abort,
promote-now) are in tests/e2e/test_operator_controls.py; approve and rollback as the caller's own identity in
tests/e2e/test_approval_and_rollback.py."""

from __future__ import annotations

from pathlib import Path

from local.least_privilege import promote
from local.runtime import Decision
from local.sfn_bridge import TimeCompression
from promotion.production.config import parse_config
from tests.e2e.conftest import event, runtime_with, world

MODEL = "fraud-detection"
JOB = "fraud-xgb-tuning-0042"


def test_status_reject_and_history_and_nothing_left_to_decide(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        nothing = promote(runtime, "approver", "alice@example.com", "approve", MODEL, "--comment", "ok", exit_code=2)
        runtime.seed_champion(MODEL)
        before = runtime.production_snapshot(MODEL)
        (arn,) = runtime.send_event(event())
        runtime.wait_for_approval_request(arn)
        status = promote(runtime, "operator", "omar@example.com", "status", role="PlatformOnCall")
        said = promote(
            runtime,
            "approver",
            "bob@example.com",
            "reject",
            MODEL,
            "--comment",
            "recall dropped on high-value cards",
            role="DataScientists",
        )
        runtime.drain()
        ended = runtime.wait(arn)
        again = promote(runtime, "approver", "bob@example.com", "reject", MODEL, "--comment", "x", exit_code=2)
        history = promote(runtime, "operator", "omar@example.com", "history", MODEL, role="PlatformOnCall")
        after = runtime.production_snapshot(MODEL)
    assert "0 promotions of fraud-detection wait for a decision" in nothing
    assert "Waiting for approval" in status and JOB in status and "fraud-detection" in status
    assert "set to Rejected as arn:aws:sts::123456789012:assumed-role/DataScientists/bob@example.com" in said
    assert ended["status"] == "FAILED" and ended["error"] == "REJECTED"
    assert "recall dropped on high-value cards" in ended["cause"]
    assert "0 promotions of fraud-detection wait for a decision" in again
    (row,) = [line for line in history.splitlines() if "REJECTED" in line]
    assert JOB in row
    assert after == before


def test_an_expired_approval_cannot_be_approved_any_more(synthesized: Path, tmp_path: Path) -> None:
    compression = TimeCompression(state_timeouts_s={"AwaitApproval": 1})
    with runtime_with(synthesized, tmp_path, world(), time_compression=compression) as runtime:
        result = runtime.run(event(), seed=True, decision=Decision.no_answer())
        late = promote(runtime, "approver", "alice@example.com", "approve", MODEL, "--comment", "sorry", exit_code=2)
        status = promote(runtime, "approver", "alice@example.com", "status", MODEL)
    assert result.error == "REJECTED" and "approval expired" in str(result.cause)
    assert "0 promotions of fraud-detection wait for a decision" in late
    assert JOB not in status.split("Promotions of")[0]  # nothing waits any more
    assert "REJECTED" in status


def test_rollback_refuses_an_unknown_release_and_a_non_operators_request(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        promoted = runtime.run(event(), seed=True)
        assert promoted.production_after is not None
        release = parse_config(promoted.production_after.config or "").release_id
        unknown = promote(
            runtime,
            "operator",
            "omar@example.com",
            "rollback",
            MODEL,
            "--release",
            "20200101-000000-000000",
            "--reason",
            "x",
            role="PlatformOnCall",
            exit_code=2,
        )
        # Alice holds the operators' policy here, but the catalog does not list her as an operator.
        asked = promote(
            runtime,
            "operator",
            "alice@example.com",
            "rollback",
            MODEL,
            "--release",
            release,
            "--reason",
            "I do not like it",
            role="DataScientists",
        )
        runtime.drain()
        machine = next(
            m["stateMachineArn"]
            for m in runtime.clients.stepfunctions.list_state_machines()["stateMachines"]
            if m["name"].endswith("-operator-rollback")
        )
        ended = [
            runtime.wait(e["executionArn"])
            for e in runtime.clients.stepfunctions.list_executions(stateMachineArn=machine)["executions"]
        ]
        history = promote(runtime, "operator", "omar@example.com", "history", MODEL, role="PlatformOnCall")
        after = runtime.production_snapshot(MODEL)
    assert "has no release 20200101-000000-000000" in unknown
    assert "set to Rejected as arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com" in asked
    refused = [(one.get("error"), one.get("cause")) for one in ended if one["status"] == "FAILED"]
    assert refused == [
        (
            "RollbackRefused",
            "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com is not one of fraud-detection's "
            "operators; nothing restored",
        )
    ]
    assert after == promoted.production_after  # still the promoted release
    assert [line for line in history.splitlines() if release in line and "PROMOTED" in line]
    assert "ROLLED_BACK" not in history
