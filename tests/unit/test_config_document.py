"""production-model-config.yaml as serving and retraining read it: deterministic bytes, and a refusal that names
every wrong field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from promotion.core.errors import ConfigSchemaError
from promotion.production.config import ConfigSource, ProductionConfig, parse_config, render_config

CONFIG = ProductionConfig(
    model="fraud-detection",
    release_id="20261120-140541-abcdef",
    algorithm="xgboost",
    hyperparameters={"max_depth": 6, "eta": 0.08},
    performance={"validation:auc": 0.97},
    tested_date=datetime(2026, 11, 20, 14, 5, 41, tzinfo=UTC),
    approved_by="Alice Martin",
    approval_comment="AUC up on every segment — ship",
    source=ConfigSource(tuning_job_arn="arn:tuning", training_job_name="train-1"),
    previous_release_id=None,
)


def test_the_config_is_rendered_in_the_files_field_order_as_block_yaml() -> None:
    text = render_config(CONFIG)
    assert text.splitlines()[:6] == [
        "model: fraud-detection",
        "release_id: 20261120-140541-abcdef",
        "algorithm: xgboost",
        "hyperparameters:",
        "  max_depth: 6",
        "  eta: 0.08",
    ]
    assert "approval_comment: AUC up on every segment — ship" in text.splitlines()  # readable, not escaped
    assert "tested_date: '2026-11-20T14:05:41Z'" in text.splitlines()  # ISO 8601 as JSON writes it
    assert render_config(CONFIG) == text and parse_config(text) == CONFIG


def test_a_document_that_is_not_yaml_is_named_so() -> None:
    with pytest.raises(ConfigSchemaError) as raised:
        parse_config("model: [unclosed")
    assert str(raised.value).startswith("production config is not valid YAML: while parsing a flow sequence")


def test_every_wrong_field_is_named_with_its_path() -> None:
    document = render_config(CONFIG).replace("model: fraud-detection", "model: Fraud Detection")
    document = document.replace("  max_depth: 6", "  max_depth: [6]").replace("algorithm: xgboost\n", "")
    with pytest.raises(ConfigSchemaError) as raised:
        parse_config(document)
    message = str(raised.value)
    assert message.startswith("production config does not match the schema: model: String should match pattern")
    assert "; algorithm: Field required; hyperparameters.max_depth.int: Input should be a valid integer" in message
