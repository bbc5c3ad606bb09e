"""The data-quality gate on the synthesized state machine: bad training data and bad holdout data each stop the
promotion at CheckDataQuality, right after the approval, with DataQualityFailed naming the check, channel, column and
measured value; nothing in production is written (no backup was even needed). A clean run's check measures the shift
against the champion's training data profile."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from local.reporting import RunResult
from local.runtime import LocalRuntime
from tests.e2e.conftest import event, runtime_with, world

MODEL = "fraud-detection"
DATA_BUCKET = "fraud-detection-data"


def corrupt(runtime: LocalRuntime, channel: str, change: Callable[[np.ndarray], None]) -> None:
    """Rewrite a channel's CSV in the runtime's S3 (label first, then the catalog's features)."""
    s3 = runtime.clients.s3
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"{channel}/")["Contents"]]
    table = np.loadtxt(io.BytesIO(s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read()), delimiter=",")
    change(table)
    out = io.StringIO()
    np.savetxt(out, table, delimiter=",", fmt="%.10g")
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=out.getvalue().encode())


def run_with(synthesized: Path, tmp_path: Path, channel: str, change: Callable[[np.ndarray], None]) -> RunResult:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        runtime.seed_champion(MODEL)
        corrupt(runtime, channel, change)
        return runtime.run(event())


def states(result: RunResult) -> list[str]:
    return [state.name for state in result.states]


def test_labels_outside_the_catalogs_values_in_the_training_data_stop_the_promotion(
    synthesized: Path, tmp_path: Path
) -> None:
    def relabel(table: np.ndarray) -> None:
        table[:40, 0] = 2

    result = run_with(synthesized, tmp_path, "train", relabel)
    assert result.status == "FAILED", result.cause
    assert result.output["error"]["Error"] == "DataQualityFailed"
    cause = str(result.output["error"]["Cause"])
    assert "label.values on channel train, column label: labels 2 are not among the allowed values" in cause
    assert "against release" in cause and "report: s3://" in cause
    assert "CheckDataQuality" in states(result) and "BackupProduction" not in states(result)
    assert result.production_after == result.production_before


def test_a_shifted_feature_in_the_holdout_data_stops_the_promotion(synthesized: Path, tmp_path: Path) -> None:
    def inflate_amounts(table: np.ndarray) -> None:
        table[:, 1] *= 20  # amount: every transaction twenty times larger than the champion was trained on

    result = run_with(synthesized, tmp_path, "holdout", inflate_amounts)
    assert result.status == "FAILED", result.cause
    assert result.output["error"]["Error"] == "DataQualityFailed"
    cause = str(result.output["error"]["Cause"])
    assert "shift.psi on channel holdout, column amount:" in cause and "(limit 0.25)" in cause
    assert "channel train" not in cause  # the training data is as the champion's
    assert "BackupProduction" not in states(result)
    assert result.production_after == result.production_before
