"""Fixtures shared by every test layer: sample events, the model catalog, and moto-backed AWS clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from promotion.contract.catalog import ModelCatalog, load_catalog
from promotion.core.clients import reset_clients

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "data" / "events"
REGION = "us-east-1"
CONFIG_BUCKET = "promotion-config-test"
TABLE = "promotion-test"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from tests/data/events (copies of the real shapes in shared/events)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def catalog() -> ModelCatalog:
    return load_catalog(ROOT / "models" / "fraud-detection.yaml")


@pytest.fixture(scope="session")
def catalog_dir() -> Path:
    return ROOT / "models"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto clients plus the product's bucket (versioned) and table, as the stack creates them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        reset_clients()
        clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("s3", "ssm", "dynamodb", "sagemaker", "events", "sns", "stepfunctions")
        }
        clients["s3"].create_bucket(Bucket=CONFIG_BUCKET)
        clients["s3"].put_bucket_versioning(Bucket=CONFIG_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        clients["dynamodb"].create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        clients["sagemaker"].create_model_package_group(ModelPackageGroupName="fraud-detection")
        yield clients
        reset_clients()
