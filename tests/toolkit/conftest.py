"""Fixtures for the data scientists' toolkit (``toolkit/promotion_toolkit``: tracking, features, algorithms, tuning,
launcher) and its notebooks: one small MLflow store per test worker, small seeded data."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from promotion_toolkit.algorithms import Splits, make_splits
from promotion_toolkit.tracking import Tracker, sqlite_uri

ROOT = Path(__file__).resolve().parents[2]


def scratch_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder on a tmpfs when there is one: every MLflow write is a SQLite commit, and syncing each to a disk
    doubles the time of these tests. Removed at the end of the session."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix=f"promotion-toolkit-{name}-", dir=shm))
        _SCRATCH.append(folder)
        return folder
    return tmp_path_factory.mktemp(name)


_SCRATCH: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _remove_scratch() -> Iterator[None]:
    yield
    for folder in _SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store for this worker: creating one runs MLflow's migrations (about 2 s), so tests share it and keep
    apart by experiment."""
    return sqlite_uri(scratch_folder(tmp_path_factory, "mlflow") / "mlflow.db")


def fresh_tracker(uri: str) -> Tracker:
    """A tracker on its own new experiment in the shared store."""
    return Tracker(uri, experiment=f"test-{uuid.uuid4().hex}")


@pytest.fixture
def tracker(tracking_uri: str) -> Tracker:
    return fresh_tracker(tracking_uri)


@pytest.fixture(scope="session")
def small_splits() -> Splits:
    """3,000 training and 1,500 validation rows (about 45 and 22 frauds): enough signal, fast to fit."""
    return make_splits(3_000, 1_500, 500, seed=2024)


# MLflow's SQLite store configures SQLAlchemy mappers with a loader strategy SQLAlchemy 2.1 deprecates.
MLFLOW_WARNINGS = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
