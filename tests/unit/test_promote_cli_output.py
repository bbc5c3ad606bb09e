"""The promote CLI prints what is stored as data: a reason or a name cannot hide text or add links as Rich markup."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from promote import cli
from promote.cli import app
from tests.conftest import TABLE


def test_history_prints_stored_strings_literally(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "width", 1000)  # one line per row: the strings are not wrapped
    hostile = "[link=https://evil.example]click[/link] [white on white]hidden[/white on white]"
    record = {
        "model": "fraud-detection",
        "release_id": "r1",
        "outcome": "ROLLED_BACK",
        "reason": hostile,
        "recorded_at": "2026-11-20T14:05:41+00:00",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:m:e",
        "approved_by": "[bold]mallory[/bold]",
    }
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={"pk": {"S": "MODEL#fraud-detection"}, "sk": {"S": "RELEASE#r1"}, "record": {"S": json.dumps(record)}},
    )
    env = {"PROMOTION_TABLE": TABLE}
    result = CliRunner().invoke(app, ["history", "fraud-detection"], env=env)
    assert result.exit_code == 0, result.output
    assert hostile in result.output
    assert "[bold]mallory[/bold]" in result.output
