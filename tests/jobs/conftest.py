"""Fixtures for the SageMaker job tests: ``jobs/`` importable, entry points loaded from their files, folders laid
out like a SageMaker container."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"
if str(JOBS) not in sys.path:
    sys.path.insert(0, str(JOBS))

TRAIN_SCRIPT = JOBS / "training" / "train.py"
COMPARE_SCRIPT = JOBS / "comparison" / "compare.py"

# The metric definitions a tuning job uses for the built-in algorithm (and so for this entry point).
VALIDATION_AUC_REGEX = r".*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"
VALIDATION_ACCURACY_REGEX = r".*validation-accuracy:([-+]?[0-9]*\.?[0-9]+).*"


def run_processing_entry_point(
    script: Path, arguments: list[str], root: Path, base: Path
) -> subprocess.CompletedProcess[str]:
    """A processing job's entry point as SageMaker runs it: its own process, /opt/ml/processing at `root`, /opt/ml at
    `base` (its exit message), the image's /opt/program (jobs/) importable."""
    return subprocess.run(
        [sys.executable, str(script), *arguments],
        env={"PROCESSING_ROOT": str(root), "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(JOBS)},
        capture_output=True,
        text=True,
        check=False,
    )


def load_script(path: Path) -> ModuleType:
    """Import an entry point from its file, as SageMaker runs it (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(f"job_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def train_job() -> ModuleType:
    return load_script(TRAIN_SCRIPT)


@pytest.fixture(scope="session")
def compare_job() -> ModuleType:
    return load_script(COMPARE_SCRIPT)


def training_layout(base: Path, train_dir: Path, validation_dir: Path, hyperparameters: dict[str, str]) -> Path:
    """``base`` laid out like ``/opt/ml`` for a training job: hyperparameters (all strings) and two channels."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    for channel, source in (("train", train_dir), ("validation", validation_dir)):
        target = base / "input" / "data" / channel
        target.mkdir(parents=True)
        for file in source.glob("*.csv"):
            (target / file.name).write_bytes(file.read_bytes())
    return base
