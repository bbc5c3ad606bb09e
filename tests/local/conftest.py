"""Fixtures for the local runtime's own mechanics: a tiny CDK app (fixtures/mini_app) synthesized once per session
into a temporary copy, and a LocalRuntime over it. The product's stack is exercised by tests/e2e, not here."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runtime import LocalRuntime
from local.template import StackTemplate, load_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "events"


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A synthesized copy of the mini CDK app (its cdk.out is written by `python app.py`, as for the product).
    Parallel test workers share one copy: the first synthesizes it, the others wait on the lock."""
    under_xdist = hasattr(request.config, "workerinput")
    shared = tmp_path_factory.getbasetemp().parent if under_xdist else tmp_path_factory.getbasetemp()
    root = shared / "local-mini-app"
    with open(shared / "local-mini-app.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not root.exists():
            shutil.copytree(FIXTURES / "mini_app", root, ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
        load_stack(root)  # synthesizes the first time: there is no cdk.out yet
    return root


@pytest.fixture(scope="session")
def mini_stack(mini_root: Path) -> StackTemplate:
    return load_stack(mini_root, synth=False)


@pytest.fixture
def runtime(mini_root: Path) -> Iterator[LocalRuntime]:
    with LocalRuntime(mini_root) as started:
        yield started


def start_event(**detail: Any) -> dict[str, Any]:
    """An event the mini app's StartRule matches (source mini.start, detail-type Start, detail.path present)."""
    return {"source": "mini.start", "detail-type": "Start", "detail": detail, "time": "2026-11-20T14:05:41Z"}


def decision_event(request: str, decision: str, by: str) -> dict[str, Any]:
    """A decision for the mini app's product bus rule (delivered to the decide Lambda)."""
    return {
        "source": "mini.decisions",
        "detail-type": "Decision",
        "detail": {"request": request, "decision": decision, "by": by},
    }


def run_path(runtime: LocalRuntime, timeout_s: float = 30, **detail: Any) -> dict[str, Any]:
    """Start the mini machine through the default bus and wait for its end; DescribeExecution's answer."""
    executions = runtime.send_event(start_event(**detail))
    assert len(executions) == 1, executions
    return runtime.wait(executions[0], timeout_s=timeout_s)


def wait_until(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
