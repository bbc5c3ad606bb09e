"""BackupProduction's record, to the letter: every parameter with its type, every schema parameter that was absent,
the config's exact bytes archived beside it, the release it replaces, and what happens when two attempts race or
S3 keeps something else than what was written."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key, previous_config_key
from promotion.contract.state import Backup
from promotion.core.errors import BackupMissing, BackupTampered, PromotionError, UnrestorableParameter
from promotion.production.backup import backup_production, load_backup
from tests.conftest import CONFIG_BUCKET, REGION

PREFIX = "/fraud-detection/hyperparameters"
RELEASE = "20261120-140541-abcdef"
TAKEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CHAMPION_CONFIG = b"""model: fraud-detection
release_id: 20261001-000000-champ0
algorithm: xgboost
hyperparameters: {max_depth: 5}
performance: {validation:auc: 0.95}
tested_date: '2026-10-01T00:00:00Z'
approved_by: bob@example.com
source: {tuning_job_arn: 'arn:old', training_job_name: old-job}
previous_release_id: null
"""


def production(aws: dict[str, Any], config: bytes | None = CHAMPION_CONFIG) -> str | None:
    aws["ssm"].put_parameter(Name=f"{PREFIX}/max_depth", Value="5", Type="String")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/eval_metric", Value="auc,logloss", Type="StringList")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/legacy", Value="x", Type="String")
    if config is None:
        return None
    return str(aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="production-model-config.yaml", Body=config)["VersionId"])


def backup(aws: dict[str, Any], catalog: ModelCatalog, s3: Any = None) -> Backup:
    return backup_production(aws["ssm"], s3 or aws["s3"], CONFIG_BUCKET, catalog, RELEASE, clock=lambda: TAKEN)


def test_the_record_lists_every_parameter_every_absent_one_and_the_archived_config(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    version = production(aws)
    summary = backup(aws, catalog)
    key = backup_key("fraud-detection", RELEASE)
    archived = previous_config_key("fraud-detection", RELEASE)
    absent = sorted(f"{PREFIX}/{name}" for name in ("eta", "min_child_weight", "num_round", "objective", "subsample"))
    assert summary == Backup(
        release_id=RELEASE,
        backup_key=key,
        parameters_present=3,
        parameters_absent=absent,
        config_existed=True,
        config_version_id=version,
        previous_release_id="20261001-000000-champ0",
    )
    stored = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=key)
    assert stored["ContentType"] == "application/json"
    assert json.loads(stored["Body"].read()) == {
        "model": "fraud-detection",
        "release_id": RELEASE,
        "taken_at": "2026-11-20T14:30:00Z",
        "prefix": PREFIX,
        "parameters": {
            **dict.fromkeys(absent),
            f"{PREFIX}/eval_metric": {"value": "auc,logloss", "type": "StringList"},
            f"{PREFIX}/legacy": {"value": "x", "type": "String"},
            f"{PREFIX}/max_depth": {"value": "5", "type": "String"},
        },
        "config": {
            "key": "production-model-config.yaml",
            "existed": True,
            "version_id": version,
            "sha256": hashlib.sha256(CHAMPION_CONFIG).hexdigest(),
            "archived_key": archived,
        },
        "endpoint": None,
        "previous_release_id": "20261001-000000-champ0",
    }
    copy = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=archived)
    assert (copy["Body"].read(), copy["ContentType"]) == (CHAMPION_CONFIG, "application/yaml")
    assert list(json.loads(aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=key)["Body"].read())["parameters"]) == sorted(
        [*absent, f"{PREFIX}/eval_metric", f"{PREFIX}/legacy", f"{PREFIX}/max_depth"]
    )


def test_a_first_release_backs_up_no_config_and_a_config_nobody_can_read_names_no_previous_release(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    production(aws, config=None)
    first = backup(aws, catalog)
    assert (first.config_existed, first.config_version_id, first.previous_release_id) == (False, None, None)
    record = load_backup(aws["s3"], CONFIG_BUCKET, "fraud-detection", RELEASE)
    assert record.config.model_dump() == {
        "key": "production-model-config.yaml",
        "existed": False,
        "version_id": None,
        "sha256": None,
        "archived_key": None,
    }
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=backup_key("fraud-detection", RELEASE))
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="production-model-config.yaml", Body=b"not: [a config")
    assert backup(aws, catalog).previous_release_id is None


def test_without_a_clock_the_backup_is_dated_now(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    production(aws)
    before = datetime.now(UTC)
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, RELEASE)
    taken = load_backup(aws["s3"], CONFIG_BUCKET, "fraud-detection", RELEASE).taken_at
    assert before <= taken <= datetime.now(UTC)


class RacedBy:
    """moto's S3, except that another attempt of the same step writes its record just before this one's put."""

    def __init__(self, s3: Any, other: bytes) -> None:
        self._s3, self._other = s3, other

    def put_object(self, **request: Any) -> Any:
        if request["Key"].endswith("/backup.json") and self._other:
            self._s3.put_object(Bucket=request["Bucket"], Key=request["Key"], Body=self._other)
            self._other = b""
        return self._s3.put_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_the_attempt_that_wrote_the_record_first_is_the_truth(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    production(aws)
    earlier = {
        "model": "fraud-detection",
        "release_id": RELEASE,
        "taken_at": "2026-11-20T14:29:00Z",
        "prefix": PREFIX,
        "parameters": {f"{PREFIX}/max_depth": {"value": "4", "type": "String"}},
        "config": {"key": "production-model-config.yaml", "existed": False},
    }
    summary = backup(aws, catalog, s3=RacedBy(aws["s3"], json.dumps(earlier).encode()))
    assert (summary.parameters_present, summary.parameters_absent, summary.config_existed) == (1, [], False)
    assert load_backup(aws["s3"], CONFIG_BUCKET, "fraud-detection", RELEASE).taken_at == datetime(
        2026, 11, 20, 14, 29, tzinfo=UTC
    )


class Rewriting:
    """moto's S3, except that what is stored under the backup key is not what was sent."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def put_object(self, **request: Any) -> Any:
        if request["Key"].endswith("/backup.json"):
            document = json.loads(request["Body"])
            document["parameters"] = {}
            request = {**request, "Body": json.dumps(document).encode()}
        return self._s3.put_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_a_record_that_does_not_read_back_as_written_stops_the_promotion(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    production(aws)
    with pytest.raises(PromotionError) as raised:
        backup(aws, catalog, s3=Rewriting(aws["s3"]))
    key = backup_key("fraud-detection", RELEASE)
    assert str(raised.value) == f"backup at s3://{CONFIG_BUCKET}/{key} does not read back as written"


def refusing_s3(operation: str, code: str) -> Any:
    s3 = boto3.client("s3", region_name=REGION)

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "refused"}}, operation)

    setattr(s3, operation, refuse)
    return s3


def test_a_refused_read_or_write_of_the_record_is_raised(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    production(aws)
    with pytest.raises(ClientError, match="AccessDenied"):
        load_backup(refusing_s3("get_object", "AccessDenied"), CONFIG_BUCKET, "fraud-detection", RELEASE)

    class RefusedPut:
        def __init__(self, s3: Any) -> None:
            self._s3 = s3

        def put_object(self, **request: Any) -> Any:
            if request["Key"].endswith("/backup.json"):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
            return self._s3.put_object(**request)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._s3, name)

    with pytest.raises(ClientError, match="AccessDenied"):
        backup(aws, catalog, s3=RefusedPut(aws["s3"]))


def test_a_missing_or_foreign_record_is_named(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    key = backup_key("fraud-detection", RELEASE)
    with pytest.raises(BackupMissing) as missing:
        load_backup(aws["s3"], CONFIG_BUCKET, "fraud-detection", RELEASE)
    assert str(missing.value) == (
        f"no backup at s3://{CONFIG_BUCKET}/{key} for release {RELEASE} of model fraud-detection"
    )
    production(aws)
    backup(aws, catalog)
    aws["s3"].copy_object(
        Bucket=CONFIG_BUCKET, Key=backup_key("churn", "r9"), CopySource={"Bucket": CONFIG_BUCKET, "Key": key}
    )
    with pytest.raises(BackupTampered) as foreign:
        load_backup(aws["s3"], CONFIG_BUCKET, "churn", "r9")
    assert str(foreign.value) == (
        f"the backup at s3://{CONFIG_BUCKET}/{backup_key('churn', 'r9')} is of model fraud-detection release "
        f"{RELEASE}, not churn release r9; nothing restored"
    )


def test_secure_strings_are_all_named_before_anything_is_written(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    production(aws)
    aws["ssm"].put_parameter(Name=f"{PREFIX}/token", Value="s", Type="SecureString")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/api_key", Value="s", Type="SecureString")
    with pytest.raises(UnrestorableParameter) as raised:
        backup(aws, catalog)
    assert str(raised.value) == (
        f"{PREFIX}/api_key, {PREFIX}/token under {PREFIX} is a SecureString: a backup reads it encrypted and could "
        "not put it back, and the promotion replaces everything under the prefix. Move it out of the model's prefix "
        "(the product keeps only String and StringList hyperparameters there)"
    )
    assert aws["s3"].list_objects_v2(Bucket=CONFIG_BUCKET, Prefix="archive/").get("KeyCount") == 0


def test_a_retried_backup_keeps_what_production_was_before_the_release(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    """The step runs again after the release changed the config: the record and its archived config stay."""
    production(aws)
    first = backup(aws, catalog)
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key="production-model-config.yaml", Body=b"model: changed\n")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/max_depth", Value="9", Type="String", Overwrite=True)
    assert backup(aws, catalog) == first
    archived = previous_config_key("fraud-detection", RELEASE)
    assert aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=archived)["Body"].read() == CHAMPION_CONFIG
