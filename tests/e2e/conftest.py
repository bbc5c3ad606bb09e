"""End-to-end fixtures: the product's synthesized stack (cdk.out) running on the embedded local runtime."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from local.runtime import LocalRuntime
from local.template import load_stack
from tests.conftest import EVENTS, ROOT


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdk.out is fresh (synthesized once, shared by parallel workers under a lock)."""
    lock_path = tmp_path_factory.getbasetemp().parent / "e2e-synth.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        load_stack(ROOT)
    return ROOT


def event(**detail_changes: Any) -> dict[str, Any]:
    """The shared tuning-job event with `detail` fields replaced."""
    document = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    document["detail"].update(detail_changes)
    return document


def world() -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / "world.json").read_text()))


BEST_JOB = "fraud-xgb-tuning-0042-017-5a1c9e2f"


@pytest.fixture
def runtime(synthesized: Path, tmp_path: Path) -> Iterator[LocalRuntime]:
    with LocalRuntime(synthesized, synth=False, world=world(), reports_dir=tmp_path / "reports") as started:
        yield started


def runtime_with(synthesized: Path, tmp_path: Path, the_world: dict[str, Any], **options: Any) -> LocalRuntime:
    return LocalRuntime(synthesized, synth=False, world=the_world, reports_dir=tmp_path / "reports", **options)


T = TypeVar("T")


def once_per_run(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """`make(folder)` once per test run, its result shared by the xdist workers (pytest 9 ignores xdist's
    `--dist loadgroup`, so a session fixture would otherwise be built by every worker that runs one of its tests):
    the first worker makes it under a lock, in a folder all of them can read, and the others load its pickle."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent / f"{name}-{run_id}"
    shared.mkdir(exist_ok=True)
    with (shared / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = shared / "result.pickle"
        if stored.exists():
            loaded: T = pickle.loads(stored.read_bytes())
            return loaded
        made = make(shared / "work")
        stored.write_bytes(pickle.dumps(made))
        return made
