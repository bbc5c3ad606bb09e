"""The promotion record in the data scientists' MLflow: the stack deployed with `-c mlflowTrackingUri=...` (here the
synthesized template with PublishResult's MLFLOW_TRACKING_URI set, as that context sets it) writes every promotion
as a run in a real MLflow tracking server (`mlflow server`, SQLite store) over MLflow's REST API; the Lambda layer
carries no MLflow. A server that does not answer leaves the outcome as it is, with the reason in the result."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from local.paths import ROOT
from local.reporting import RunResult
from local.runtime import LocalRuntime
from tests.e2e.conftest import event, world

MODEL, JOB = "fraud-detection", "fraud-xgb-tuning-0042"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"),
            *("--default-artifact-root", str(tmp_path / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("mlflow server did not start")
            time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def template_recording_to(uri: str, folder: Path) -> Path:
    """cdk.out's template with PublishResult's MLFLOW_TRACKING_URI set, as `-c mlflowTrackingUri=` sets it."""
    template = json.loads((ROOT / "cdk.out" / "ModelPromotion.template.json").read_text())
    (function,) = [
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function" and logical_id.startswith("FunctionsPublishResultFunction")
    ]
    function["Properties"]["Environment"]["Variables"]["MLFLOW_TRACKING_URI"] = uri
    path = folder / "template.json"
    path.write_text(json.dumps(template))
    return path


def promote_recording_to(uri: str, synthesized: Path, tmp_path: Path) -> RunResult:
    """A promotion of the shared event on the stack whose PublishResult records to `uri`."""
    runtime = LocalRuntime(
        synthesized,
        synth=False,
        template=template_recording_to(uri, tmp_path),
        world=world(),
        reports_dir=tmp_path / "reports",
    )
    with runtime:
        return runtime.run(event(), seed=True)


def test_every_promotion_is_a_run_in_the_tracking_server(synthesized: Path, tmp_path: Path, mlflow_server: str) -> None:
    result = promote_recording_to(mlflow_server, synthesized, tmp_path)
    assert result.outcome == "PROMOTED", result.cause
    published = result.output["result"]
    assert published["tracking_error"] is None
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("promotions")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == published["tracking_run_id"] and run.info.status == "FINISHED"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    release = published["release_id"]
    assert tags["promotion.model"] == MODEL and tags["promotion.release_id"] == release
    assert tags["promotion.outcome"] == "PROMOTED" and tags["promotion.tuning_job"] == JOB
    assert tags["promotion.approval.by"] == "Alice Martin"
    assert tags["promotion.approval.identity"].endswith("assumed-role/DataScientists/alice@example.com")
    assert tags["promotion.comparison.decision"] == "PASS"
    assert [tags[f"promotion.stage.{k}"].split()[0] for k in (1, 2, 3, 4)] == ["PASS"] * 4
    assert tags["promotion.data_quality"].startswith("PASS: all")
    assert tags["promotion.report"].endswith(f"reports/{MODEL}/{release}/decision.json")
    candidate = result.output["validation"]["candidate"]
    assert params == {name: str(value) for name, value in candidate["hyperparameters"].items()}
    assert metrics["challenger.validation:auc"] == candidate["metrics"]["validation:auc"]
    assert "champion.validation:auc" in metrics
    assert metrics["comparison.difference"] == pytest.approx(result.output["comparison"]["difference"])


def test_a_tracking_server_that_does_not_answer_leaves_the_outcome_as_it_is(synthesized: Path, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = promote_recording_to(down, synthesized, tmp_path)
    assert result.outcome == "PROMOTED", result.cause
    published = result.output["result"]
    assert published["tracking_run_id"] is None
    assert published["tracking_error"].startswith("TrackerUnavailable: MLflow at " + down)
    assert published["lock_released"] is True
