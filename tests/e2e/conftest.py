"""End-to-end fixtures: the product's synthesized stack (cdk.out) running on the embedded local runtime."""

from __future__ import annotations

import copy
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
