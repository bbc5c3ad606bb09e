"""The data-quality entry point and its checks (promotion_ml.quality): each check fails on data made to break it,
names the channel and column, and passes on clean data drawn from the same population as the champion's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promotion_ml.data import FEATURE_NAMES, write_splits
from promotion_ml.quality import Thresholds, check_data, population_stability_index
from tests.jobs.conftest import JOBS, run_processing_entry_point

CHECK_SCRIPT = JOBS / "data_quality" / "check.py"
NAMES = list(FEATURE_NAMES)
SIZES = {"n_train": 4000, "n_validation": 1000, "n_holdout": 4000}


@pytest.fixture(scope="module")
def champion_profile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("champion")
    write_splits(folder, seed=1, **SIZES)
    report, profile = check_data(channels(folder), Thresholds(), None, NAMES)
    assert report["passed"], report["failures"]
    assert profile is not None
    return profile


def channels(folder: Path) -> dict[str, Path]:
    return {c: folder / c for c in ("train", "validation", "holdout")}


def broken(tmp_path: Path, channel: str, change: Callable[[list[list[str]]], None]) -> dict[str, Path]:
    """A fresh draw with one channel's rows (as text fields) changed."""
    write_splits(tmp_path, seed=2, **SIZES)
    path = tmp_path / channel / f"{channel}.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    change(rows)
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    return channels(tmp_path)


def failures(folders: dict[str, Path], reference: dict[str, Any] | None, **limits: Any) -> list[tuple[Any, ...]]:
    report, profile = check_data(folders, Thresholds(**limits), reference, NAMES)
    assert (profile is None) == (not report["passed"])  # no profile of data that failed
    return [(f["check"], f["channel"], f["column"]) for f in report["failures"]]


def test_clean_data_from_the_champions_population_passes(tmp_path: Path, champion_profile: dict[str, Any]) -> None:
    write_splits(tmp_path, seed=2, **SIZES)
    report, profile = check_data(channels(tmp_path), Thresholds(), champion_profile, NAMES)
    assert report["passed"], report["failures"]
    psi = [f["value"] for f in report["findings"] if f["check"] == "shift.psi"]
    assert len(psi) == 2 * len(NAMES) and max(psi) < 0.05
    assert profile is not None and profile["columns"] == len(NAMES) + 1


@pytest.mark.parametrize(
    ("channel", "change", "expected"),
    [
        ("train", lambda rows: rows[5].pop(), ("schema.columns", "train", None)),
        ("validation", lambda rows: rows[3].__setitem__(2, "n/a"), ("schema.numeric", "validation", "#2")),
        ("holdout", lambda rows: rows.__setitem__(slice(None), rows[:500]), ("rows.minimum", "holdout", None)),
        ("train", lambda rows: [r.__setitem__(4, "") for r in rows[:30]], ("nulls.fraction", "train", "merchant_risk")),
        ("train", lambda rows: [r.__setitem__(9, "1") for r in rows], ("constant.column", "train", "is_online")),
        ("holdout", lambda rows: rows[0].__setitem__(0, "7"), ("label.values", "holdout", "label")),
        ("train", lambda rows: [r.__setitem__(0, "1") for r in rows[:800]], ("label.balance", "train", "label")),
    ],
    ids=["columns", "numeric", "rows", "nulls", "constant", "label-values", "label-balance"],
)
def test_each_check_fails_on_data_made_to_break_it(
    tmp_path: Path, channel: str, change: Callable[[list[list[str]]], None], expected: tuple[Any, ...]
) -> None:
    assert expected in failures(broken(tmp_path, channel, change), None, max_positive_rate=0.1)


def test_a_shifted_feature_fails_against_the_champions_profile_only(
    tmp_path: Path, champion_profile: dict[str, Any]
) -> None:
    def later_hours(rows: list[list[str]]) -> None:
        for row in rows:
            row[2] = str((float(row[2]) + 8) % 24)  # every transaction eight hours later

    folders = broken(tmp_path, "train", later_hours)
    assert failures(folders, champion_profile) == [("shift.psi", "train", "hour_of_day")]
    assert failures(folders, None) == []  # without a reference the shift is not measured


def test_the_entry_point_writes_the_report_and_the_profile(tmp_path: Path, champion_profile: dict[str, Any]) -> None:
    root = tmp_path / "processing"
    write_splits(root / "input", seed=3, **SIZES)
    (root / "input" / "reference").mkdir()
    (root / "input" / "reference" / "profile.json").write_text(json.dumps(champion_profile))
    arguments = ["--limit", "max_psi=0.2", "--limit", 'min_rows={"train": 100, "validation": 10, "holdout": 100}']
    arguments += [item for name in NAMES for item in ("--feature", name)]
    done = run_processing_entry_point(CHECK_SCRIPT, arguments, root, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "output" / "report.json").read_text())
    assert report["passed"] and report["thresholds"]["max_psi"] == 0.2
    assert report["thresholds"]["min_rows"] == {"train": 100, "validation": 10, "holdout": 100}
    assert report["reference"] == "the champion's training data profile"
    assert json.loads((root / "output" / "profile.json").read_text())["features"].keys() == set(NAMES)
    assert "data quality: PASS" in done.stdout


def test_bad_arguments_are_the_jobs_exit_message(tmp_path: Path) -> None:
    done = run_processing_entry_point(CHECK_SCRIPT, ["--limit", "max_psi={not json"], tmp_path / "p", tmp_path)
    assert done.returncode == 2
    assert "invalid arguments" in (tmp_path / "output" / "message").read_text()


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    same = [0.1] * 10
    assert population_stability_index(same, same) == 0.0
    moved = [0.05] * 5 + [0.15] * 5
    assert 0 < population_stability_index(same, moved) < population_stability_index(same, [0.01] * 9 + [0.91])
    assert np.isfinite(population_stability_index(same, [0.0] * 9 + [1.0]))  # an empty bin is floored


def test_a_feature_the_champions_profile_lacks_is_said_to_be_unmeasured(
    tmp_path: Path, champion_profile: dict[str, Any]
) -> None:
    write_splits(tmp_path, seed=2, **SIZES)
    older = {**champion_profile, "features": {k: v for k, v in champion_profile["features"].items() if k != "amount"}}
    report, _ = check_data(channels(tmp_path), Thresholds(), older, NAMES)
    unmeasured = [(f["channel"], f["column"]) for f in report["findings"] if f["check"] == "shift.unmeasured"]
    assert unmeasured == [("train", "amount"), ("holdout", "amount")]
    assert report["passed"]


def test_clean_files_and_broken_files_read_the_same_rows(tmp_path: Path) -> None:
    """A clean file goes through numpy's parser, a file with an empty field through the field-by-field reader:
    both give the same numbers."""
    from promotion_ml.quality import read_channel

    write_splits(tmp_path, seed=4, **SIZES)
    clean = read_channel(tmp_path / "train", "train", len(NAMES) + 1)
    path = tmp_path / "train" / "train.csv"
    lines = path.read_text().splitlines()
    fields = lines[0].split(",")
    fields[3] = ""
    path.write_text("\n".join([",".join(fields), *lines[1:]]) + "\n")
    broken = read_channel(tmp_path / "train", "train", len(NAMES) + 1)
    assert clean.rows == broken.rows == SIZES["n_train"]
    assert np.isnan(broken.values[0, 3]) and np.array_equal(clean.values[1:], broken.values[1:])
