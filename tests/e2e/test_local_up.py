"""The README's sequence on a laptop: `python -m local up` keeps the stack running (a champion in production, the
sample tuning job's promotion waiting for approval), and `promote --local --as PERSON` approves it, reads status
and history, and rolls the promoted release back, each as its own process, the runtime enforcing the stack's
policies on every call the command makes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.paths import ROOT

MODEL, JOB = "fraud-detection", "fraud-xgb-tuning-0042"
TEMPLATE = ROOT / "cdk.out" / "ModelPromotion.template.json"


@pytest.fixture
def local_up(synthesized: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    connection = tmp_path / "up.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "up",
            "--port",
            "0",
            "--connection",
            str(connection),
            "--template",
            str(TEMPLATE),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not connection.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"local up did not start: {process.communicate()[0]}")
        time.sleep(0.5)
    try:
        yield process, connection
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def promote(connection: Path, who: str | None, *arguments: str, exit_code: int = 0) -> str:
    identity = ["--as", who] if who else []
    done = subprocess.run(
        [sys.executable, "-m", "promote", "--local", "--connection", str(connection), *identity, *arguments],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == exit_code, f"promote {' '.join(arguments)} exited {done.returncode}: {output}"
    return output


def history_until(connection: Path, outcome: str, timeout_s: float = 180.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        history = promote(connection, "omar@example.com", "history", MODEL)
        if outcome in history or time.monotonic() > deadline:
            return history
        time.sleep(2)


def test_approve_status_history_and_rollback_from_other_processes(
    local_up: tuple[subprocess.Popen[str], Path],
) -> None:
    process, connection = local_up
    status = promote(connection, "omar@example.com", "status")
    unnamed = promote(connection, None, "status", exit_code=2)
    stranger = promote(connection, "Intruders/eve", "status", exit_code=1)
    approved = promote(connection, "alice@example.com", "approve", MODEL, "--comment", "looks good")
    promoted = history_until(connection, "PROMOTED")
    (release,) = re.findall(r"^│ (\d{8}-\d{6}-\d{6}) +│ PROMOTED", promoted, re.MULTILINE)
    asked = promote(connection, "omar@example.com", "rollback", MODEL, "--release", release, "--reason", "FPR doubled")
    rolled_back = history_until(connection, "OPERATOR_ROLLBACK")
    process.send_signal(signal.SIGTERM)
    said, _ = process.communicate(timeout=60)

    assert "Waiting for approval" in status and JOB in status
    assert "say who you are with --as" in unnamed and "omar@example.com: role PlatformOnCall: operator" in unnamed
    # A role with no policy of the stack: AWS's refusal, through the same enforcement as the functions'.
    assert "AWS refused Scan: AccessDeniedException" in stranger
    assert "assumed-role/Intruders/eve is not authorized to perform: dynamodb:Scan" in stranger
    assert "set to Approved as arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com" in approved
    assert "Alice Martin" in promoted
    assert "set to Rejected as arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com" in asked
    assert re.search(rf"{release}-rollback-\S+ +│ OPERATOR_ROLLBACK +│ Omar Haddad", rolled_back)
    assert process.returncode == 0 and not connection.exists()
    assert "waits in AwaitApproval" in said and "local runtime stopped" in said
