"""The config bucket (and its access-log bucket) and the promotion table keep their security settings."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Synth, as_list

pytestmark = pytest.mark.xdist_group("infra")

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def buckets(synth: Synth) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """(config bucket, access-log bucket), told apart by which one logs into the other."""
    items = synth.resources("AWS::S3::Bucket")
    (config,) = [(k, r) for k, r in items.items() if "LoggingConfiguration" in r["Properties"]]
    (logs,) = [(k, r) for k, r in items.items() if k != config[0]]
    return config, logs


def denies_insecure_transport(synth: Synth, bucket_id: str) -> bool:
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] == {"Ref": bucket_id}:
            return any(
                s["Effect"] == "Deny"
                and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and "s3:*" in as_list(s["Action"])
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
            )
    return False


def test_config_bucket_is_versioned_encrypted_private_tls_only_and_retained(synth: Synth) -> None:
    (config_id, config), (logs_id, _) = buckets(synth)
    props = config["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    assert denies_insecure_transport(synth, config_id)
    assert config["DeletionPolicy"] == "Retain" and config["UpdateReplacePolicy"] == "Retain"


def test_config_bucket_lifecycle_on_archive_and_reports(synth: Synth) -> None:
    (_, config), _ = buckets(synth)
    rules = {rule.get("Prefix"): rule for rule in config["Properties"]["LifecycleConfiguration"]["Rules"]}
    for prefix in ("archive/", "reports/"):
        assert rules[prefix]["Status"] == "Enabled"
        assert rules[prefix]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 365}
        # Archived releases are what rollback restores: current versions never expire.
        assert "ExpirationInDays" not in rules[prefix]


def test_access_log_bucket_is_secure_too(synth: Synth) -> None:
    _, (logs_id, logs) = buckets(synth)
    props = logs["Properties"]
    # Server access logs can only be delivered to SSE-S3 buckets.
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert denies_insecure_transport(synth, logs_id)


def test_promotion_table(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": Match.array_with(
                    [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
                ),
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
            "DeletionPolicy": "Retain",
        },
    )


def test_captured_requests_expire_per_model_and_only_for_monitored_models(synth: Synth) -> None:
    """SageMaker's data capture of a monitored model's requests (customers' data) is deleted after the catalog's
    capture_retention_days; churn, not monitored, has no capture prefix."""
    (_, config), _ = buckets(synth)
    rules = {rule.get("Prefix"): rule for rule in config["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["capture/fraud-detection/"]["ExpirationInDays"] == 30
    assert rules["capture/fraud-detection/"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert not [prefix for prefix in rules if prefix and prefix.startswith("capture/churn")]
