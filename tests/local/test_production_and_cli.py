"""The seeded champion is a production the domain package accepts; the CLI refuses bad input with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from local.__main__ import app
from local.production import ProductionSnapshot, model_of, seed_champion, snapshot
from local.render import timeline
from local.runtime import RunResult
from local.timeline import StateRecord
from promotion.contract.catalog import ModelCatalog
from promotion.contract.hyperparameters import validate_hyperparameters
from promotion.production.config import parse_config
from tests.conftest import ROOT
from tests.local.conftest import SAMPLES

BUCKET = "promotion-config"


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield boto3.client("ssm", region_name="us-east-1"), s3


def test_the_champion_is_valid_production(stores: tuple[Any, Any], catalog: ModelCatalog) -> None:
    ssm, s3 = stores
    empty = snapshot(ssm, s3, BUCKET, catalog)
    assert empty.parameters == {} and empty.config is None and empty.endpoint_weights == {}
    champion = seed_champion(ssm, s3, BUCKET, catalog, account="123456789012", region="us-east-1")
    production = snapshot(ssm, s3, BUCKET, catalog)
    assert production.parameters == champion.parameters
    assert set(production.parameters) == {catalog.parameter_path(name) for name in catalog.hyperparameters}
    config = parse_config(production.config or "")
    assert config.model == catalog.id and config.release_id == champion.release_id
    names = {path.rsplit("/", 1)[1]: value for path, value in production.parameters.items()}
    assert validate_hyperparameters(names, catalog.hyperparameters) == config.hyperparameters
    assert config.performance[catalog.objective.metric] < 0.9712  # the sample candidate beats it
    assert config.approved_by in [one.name for one in catalog.approval.approvers]


def test_the_model_comes_from_the_events_tag() -> None:
    event = json.loads((SAMPLES / "tuning-job-completed.json").read_text())
    assert model_of(event) == "fraud-detection"
    assert model_of({"detail": {"model": "fraud-detection"}}) == "fraud-detection"
    assert model_of({"detail": {}}) is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "--event", "missing.json"], "event file not found"),
        (["run", "--event", "{bad}", "--approve", "a", "--reject", "b"], "mutually exclusive"),
        (["run", "--event", "{bad}"], "not readable JSON"),
        (["run", "--event", "{untagged}"], "names no model"),
        (["run", "--event", "{good}", "--world", "{bad}"], "not readable JSON"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(tmp_path: Path, arguments: list[str], message: str) -> None:
    files = {
        "bad": tmp_path / "bad.json",
        "untagged": tmp_path / "untagged.json",
        "good": SAMPLES / "tuning-job-completed.json",
    }
    files["bad"].write_text("{not json")
    files["untagged"].write_text(json.dumps({"source": "aws.sagemaker", "detail": {}}))
    result = CliRunner().invoke(app, [argument.format(**files) for argument in arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output


def _result(**overrides: Any) -> RunResult:
    entered = datetime(2026, 11, 20, tzinfo=UTC)
    fields: dict[str, Any] = {
        "status": "SUCCEEDED",
        "execution_name": "e-1",
        "states": [
            StateRecord(name="ClaimPromotion", type="Task", status="SUCCEEDED", entered=entered, exited=entered)
        ],
        "output": {"result": {"outcome": "PROMOTED", "reason": "promoted"}},
        "production_before": ProductionSnapshot(parameters={"/m/hyperparameters/eta": "0.1"}, config=None),
        "production_after": ProductionSnapshot(parameters={"/m/hyperparameters/eta": "0.2"}, config="release_id: r2\n"),
        "model": "m",
    }
    return RunResult(**{**fields, **overrides})


def test_the_json_contract_of_a_run() -> None:
    promoted = _result()
    assert list(promoted.contract()) == [
        "status", "execution_name", "states", "output", "production_before", "production_after", "report", "iam"
    ]  # fmt: skip
    assert promoted.contract()["states"] == [{"name": "ClaimPromotion", "status": "SUCCEEDED"}]
    assert promoted.contract()["production_after"] == {
        "parameters": {"/m/hyperparameters/eta": "0.2"},
        "config": "release_id: r2\n",
        "endpoint_config": None,
        "endpoint_weights": {},
    }
    assert promoted.exit_code == 0
    failed = _result(status="FAILED", output=None, error="REJECTED", cause="approval expired")
    assert (failed.contract()["error"], failed.contract()["cause"], failed.exit_code) == (
        "REJECTED",
        "approval expired",
        1,
    )
    assert _result(output={"result": {"outcome": "REJECTED"}}).exit_code == 1


def test_the_readable_timeline_shows_states_and_the_production_diff() -> None:
    text = timeline(_result())
    assert "Status SUCCEEDED, outcome PROMOTED" in text
    assert "ClaimPromotion  SUCCEEDED" in text
    assert "* /m/hyperparameters/eta  0.1 -> 0.2" in text
    assert "config: absent -> release r2" in text


def test_the_local_clis_model_tag_is_the_products() -> None:
    """`local` has no spelling of the tag of its own: it reads the contract's, from a fresh checkout too (a process
    without the tests' pythonpath), and `python -m local`'s start does not load moto."""
    import local.production
    from promotion.contract.events import MODEL_TAG

    assert not hasattr(local.production, "MODEL_TAG")
    assert model_of({"detail": {"Tags": {MODEL_TAG: "m"}}}) == "m"
    probe = (
        "import json, sys; import local.__main__; from local.production import model_of; "
        f"print(json.dumps([model_of({{'detail': {{'Tags': {{{MODEL_TAG!r}: 'm'}}}}}}), 'moto' in sys.modules]))"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["m", False]
