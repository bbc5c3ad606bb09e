"""Fixtures shared by every test layer: sample events, the model catalog, and moto-backed AWS clients."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import Phase, settings
from moto import mock_aws

from promotion.contract.catalog import ModelCatalog, load_catalog
from promotion.core.clients import reset_clients
from tests.fakes import StronglyConsistentReads
from tests.strategies import MUTATION_EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "data" / "events"
REGION = "us-east-1"
CONFIG_BUCKET = "promotion-config-test"
TABLE = "promotion-test"

if os.environ.get(MUTATION_EXAMPLES):
    # A mutation run judges every mutant by the same examples: derandomized, and no database replaying one mutant's
    # counterexample against the next (which would make a mutant's verdict depend on the order they ran in).
    # No shrinking either: a mutant a property catches is caught at its first failing example, and shrinking it
    # (replaying moto-backed examples for half a minute) only makes the report prettier.
    settings.register_profile(
        "mutation", derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
    )
    settings.load_profile("mutation")


def load_event(name: str) -> dict[str, Any]:
    """A sample event from tests/data/events (copies of the real shapes in shared/events)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def catalog() -> ModelCatalog:
    return load_catalog(ROOT / "models" / "fraud-detection.yaml")


@pytest.fixture(scope="session")
def catalog_dir() -> Path:
    return ROOT / "models"


@cache
def _test_client(service: str) -> Any:
    """One client per service for the whole session: creating seven botocore clients cost most of each moto test's
    setup. moto intercepts a client's calls whenever a mock is active, whenever the client was made, and each
    `mock_aws()` starts from empty backends, so nothing carries over from one test to the next."""
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


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
            name: _test_client(name)
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
        clients["dynamodb"] = StronglyConsistentReads(clients["dynamodb"])
        yield clients
        reset_clients()
