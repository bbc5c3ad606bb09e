"""The drift check's entry point (jobs/monitoring/drift.py, promotion_ml.drift) on SageMaker's data-capture files:
requests drawn from the training data's population do not drift, amounts twenty times larger do, bodies that are not
CSV rows of the catalog's width are counted as unreadable rather than read wrong, and a window with too few requests
is not judged."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from promotion_ml.data import FEATURE_NAMES, write_splits
from promotion_ml.drift import measure_drift
from promotion_ml.quality import Thresholds, check_data
from tests.jobs.conftest import JOBS, run_processing_entry_point

DRIFT_SCRIPT = JOBS / "monitoring" / "drift.py"
NAMES = list(FEATURE_NAMES)


@pytest.fixture(scope="module")
def training_profile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("release")
    write_splits(folder, seed=1, n_train=4000, n_validation=1000, n_holdout=1000)
    _, profile = check_data({c: folder / c for c in ("train", "validation", "holdout")}, Thresholds(), None, NAMES)
    assert profile is not None
    return profile


def requests(tmp_path: Path, seed: int, count: int) -> list[list[str]]:
    """`count` callers' feature rows, from a fresh draw of the same population (the label dropped)."""
    folder = tmp_path / f"draw-{seed}"
    splits = write_splits(folder, seed=seed, n_train=count, n_validation=10, n_holdout=10)
    with Path(splits.train).open() as rows:
        return [row[1:] for row in csv.reader(rows) if row]


def capture_line(body: str, encoding: str = "CSV") -> str:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                }
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2026-12-03T16:00:01Z"},
            "eventVersion": "0",
        }
    )


def capture_file(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_requests_of_the_training_population_do_not_drift(tmp_path: Path, training_profile: dict[str, Any]) -> None:
    rows = requests(tmp_path, seed=2, count=2000)
    file = capture_file(tmp_path / "c", [capture_line(",".join(row)) for row in rows])
    report = measure_drift([file], training_profile, NAMES, max_psi=0.25, min_rows=500)
    assert report["verdict"] == "NO_DRIFT" and report["rows"] == 2000 and report["unreadable"] == 0
    assert set(report["psi"]) == set(NAMES) and max(report["psi"].values()) < 0.05


def test_twenty_times_larger_amounts_drift_and_only_they(tmp_path: Path, training_profile: dict[str, Any]) -> None:
    rows = requests(tmp_path, seed=3, count=2000)
    shifted = [[f"{float(row[0]) * 20:.6g}", *row[1:]] for row in rows]
    # SageMaker base64-encodes a body whose content type the config does not list as CSV; a body may hold rows.
    lines = [capture_line("\n".join(",".join(r) for r in shifted[i : i + 4]), "BASE64") for i in range(0, 2000, 4)]
    report = measure_drift([capture_file(tmp_path / "c", lines)], training_profile, NAMES, max_psi=0.25, min_rows=500)
    assert report["verdict"] == "DRIFT" and report["rows"] == 2000
    assert report["drifted"] == ["amount"] and report["psi"]["amount"] > 1.0


def test_bodies_that_are_not_rows_of_the_features_are_counted_not_read(
    tmp_path: Path, training_profile: dict[str, Any]
) -> None:
    rows = requests(tmp_path, seed=4, count=600)
    lines = [capture_line(",".join(row)) for row in rows]
    lines += [
        capture_line(",".join(rows[0][:-1])),  # a field short
        capture_line("a,b,c,d,e,f,g,h,i,j"),  # not numbers
        capture_line('{"amount": 3}', "JSON"),  # a JSON body: not the CSV the endpoint takes
        capture_line("!!!", "BASE64").replace(base64.b64encode(b"!!!").decode(), "%%%"),  # not base64
        "not json at all",
        "",
    ]
    report = measure_drift([capture_file(tmp_path / "c", lines)], training_profile, NAMES, max_psi=0.25, min_rows=500)
    assert report["rows"] == 600 and report["unreadable"] == 5 and report["verdict"] == "NO_DRIFT"


def test_a_window_with_too_few_requests_is_not_judged_and_unknown_features_are_said(
    tmp_path: Path, training_profile: dict[str, Any]
) -> None:
    rows = requests(tmp_path, seed=5, count=100)
    file = capture_file(tmp_path / "c", [capture_line(",".join(row)) for row in rows])
    renamed = ["transaction_amount", *NAMES[1:]]
    report = measure_drift([file], training_profile, renamed, max_psi=0.25, min_rows=500)
    assert report["verdict"] == "TOO_FEW_ROWS" and report["rows"] == 100
    assert report["unmeasured"] == ["transaction_amount"] and "transaction_amount" not in report["psi"]


def test_the_entry_point_reads_every_captured_hour_and_writes_the_report(
    tmp_path: Path, training_profile: dict[str, Any]
) -> None:
    root = tmp_path / "processing"
    (root / "input" / "reference").mkdir(parents=True)
    (root / "input" / "reference" / "profile.json").write_text(json.dumps(training_profile))
    rows = requests(tmp_path, seed=6, count=800)
    for hour, part in (("2026120315", rows[:400]), ("2026120316", rows[400:])):
        capture_file(root / "input" / f"capture-{hour}" / "nested", [capture_line(",".join(row)) for row in part])
    arguments = ["--max-psi", "0.2", "--min-rows", "500", *[item for name in NAMES for item in ("--feature", name)]]
    done = run_processing_entry_point(DRIFT_SCRIPT, arguments, root, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "output" / "drift.json").read_text())
    assert report["rows"] == 800 and report["files"] == 2 and report["verdict"] == "NO_DRIFT"
    assert "drift: NO_DRIFT over 800 requests" in done.stdout


def test_without_the_release_profile_the_job_fails_with_the_reason(tmp_path: Path) -> None:
    done = run_processing_entry_point(
        DRIFT_SCRIPT, ["--max-psi", "0.2", "--min-rows", "5", "--feature", "amount"], tmp_path / "p", tmp_path
    )
    assert done.returncode == 1
    assert "FileNotFoundError" in (tmp_path / "output" / "message").read_text()
