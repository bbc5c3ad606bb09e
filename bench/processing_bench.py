"""What the processing jobs' benchmarks (bench_data_quality.py, bench_drift.py) share: the training data profile a
release's data-quality check keeps, and a measurement made in a fresh process so its peak memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"


def write_training_profile(folder: Path, target: Path, rows: int = 50_000) -> None:
    """A release's training data profile (`rows` generated rows, seed 1) written to `target` as JSON."""
    if str(JOBS) not in sys.path:
        sys.path.insert(0, str(JOBS))
    from promotion_ml.data import FEATURE_NAMES, write_splits
    from promotion_ml.quality import Thresholds, check_data

    write_splits(folder, n_train=rows, n_validation=1, n_holdout=1, seed=1)
    _, profile = check_data({"train": folder / "train"}, Thresholds(min_rows={"train": 1}), None, list(FEATURE_NAMES))
    target.write_text(json.dumps(profile))


def measure_in_child(code: str, root: Path) -> dict[str, Any]:
    """Run `code` (a template with {jobs} and {root}) in a fresh interpreter; the JSON object it prints."""
    child = subprocess.run(
        [sys.executable, "-c", code.format(jobs=str(JOBS), root=str(root))], capture_output=True, text=True, check=True
    )
    return dict(json.loads(child.stdout))
