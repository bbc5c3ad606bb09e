"""promotion.artifacts over moto: the copy deployed is byte for byte what the comparison evaluated, or nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from promotion.core.errors import ArtifactChanged
from promotion.rollout.artifacts import pin_artifact
from tests.conftest import CONFIG_BUCKET

SOURCE_BUCKET = "fraud-detection-models"
SOURCE_KEY = "production/fraud-detection-r1/output/model.tar.gz"
SOURCE = f"s3://{SOURCE_BUCKET}/{SOURCE_KEY}"


@pytest.fixture
def trained(aws: dict[str, Any]) -> bytes:
    aws["s3"].create_bucket(Bucket=SOURCE_BUCKET)
    body = b"the model the comparison evaluated"
    aws["s3"].put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_KEY, Body=body)
    return body


def test_the_pinned_copy_is_the_evaluated_artifact(aws: dict[str, Any], trained: bytes) -> None:
    evaluated = hashlib.sha256(trained).hexdigest()
    pinned = pin_artifact(aws["s3"], CONFIG_BUCKET, "fraud-detection", "r1", SOURCE, evaluated)
    assert pinned.url == f"s3://{CONFIG_BUCKET}/releases/fraud-detection/r1/model.tar.gz"
    assert pinned.sha256 == evaluated and pinned.source == SOURCE
    copy = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key="releases/fraud-detection/r1/model.tar.gz")
    assert copy["Body"].read() == trained


def test_an_artifact_that_changed_since_the_comparison_is_refused(aws: dict[str, Any], trained: bytes) -> None:
    evaluated = hashlib.sha256(trained).hexdigest()
    aws["s3"].put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_KEY, Body=b"something else")
    with pytest.raises(ArtifactChanged, match=f"it evaluated sha256 {evaluated}, the artifact now has sha256"):
        pin_artifact(aws["s3"], CONFIG_BUCKET, "fraud-detection", "r1", SOURCE, evaluated)


def test_without_a_comparison_the_copy_is_pinned_and_its_digest_recorded(aws: dict[str, Any], trained: bytes) -> None:
    pinned = pin_artifact(aws["s3"], CONFIG_BUCKET, "fraud-detection", "r1", SOURCE, None)
    assert pinned.sha256 == hashlib.sha256(trained).hexdigest()


def test_a_missing_artifact_is_s3s_own_error(aws: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    aws["s3"].create_bucket(Bucket=SOURCE_BUCKET)
    with pytest.raises(ClientError) as missing:
        pin_artifact(aws["s3"], CONFIG_BUCKET, "fraud-detection", "r1", SOURCE, "00" * 32)
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
