"""What the production steps write and say, to the letter: the config's every field (who approved, when, what was
trained and where it came from), the archive beside it, the parameters' types, each refusal's message, and what a
rollback answers when there is nothing, or not yet everything, to restore."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key, previous_config_key, promoted_config_key
from promotion.contract.state import Approval, Backup, Restored
from promotion.core.errors import BackupMissing, BackupTampered, ConfigSchemaError, ParameterVerificationError
from promotion.production import config as config_module
from promotion.production.backup import BackedUpConfig, BackedUpParameter, BackupRecord, backup_production
from promotion.production.config import build_config, parse_config, write_config
from promotion.production.parameters import delete_parameter_if_present, verify_parameters, write_hyperparameters
from promotion.production.read import ConfigObject, describe_endpoint, read_config, read_endpoint, read_parameters
from promotion.production.restore import (
    RollbackVerificationError,
    restore_backup,
    rollback_execution,
    rollback_release,
    verify_restored,
)
from promotion.production.restore import (
    verify_parameters as verify_restored_parameters,
)
from tests.conftest import CONFIG_BUCKET, REGION
from tests.integration.helpers import promote_until_config, validated_state

PREFIX = "/fraud-detection/hyperparameters"
KEY = "production-model-config.yaml"
DECIDED = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def refusing(service: str, operation: str, code: str, message: str = "refused") -> Any:
    """A client whose `operation` fails with `code`: an AWS refusal moto does not produce on its own."""
    client = boto3.client(service, region_name=REGION)

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": message}}, operation)

    setattr(client, operation, refuse)
    return client


def approved(state: Any, **changes: Any) -> Any:
    approval = Approval(
        decision="approve",
        decided_by="alice@example.com",
        identity="arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com",
        comment="AUC up on every segment",
        decided_at=DECIDED,
        **changes,
    )
    return state.model_copy(update={"approval": approval})


def test_the_config_records_the_approval_the_release_and_its_origin(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = promote_until_config(aws, catalog, approved(validated_state(aws, catalog, catalog_dir)))
    assert state.validation is not None and state.validation.candidate is not None and state.config is not None
    candidate = state.validation.candidate
    stored = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=KEY)
    body = stored["Body"].read()
    config = parse_config(body)
    assert (config.approved_by, config.approved_by_identity, config.approved_at, config.approval_comment) == (
        "alice@example.com",
        "arn:aws:sts::123456789012:assumed-role/DataScientists/alice@example.com",
        DECIDED,
        "AUC up on every segment",
    )
    assert config.model_package_arn is not None and config.model_package_arn.startswith("arn:aws:sagemaker:")
    assert config.source.model_dump() == {
        "tuning_job_arn": candidate.tuning_job_arn,
        "training_job_name": candidate.training_job_name,
        "model_data_url": candidate.model_data_url,
    }
    assert candidate.model_data_url is not None
    assert (config.model, config.release_id, config.tested_date) == (
        "fraud-detection",
        state.claim.release_id,
        state.claim.event_time,
    )
    assert stored["ContentType"] == "application/yaml"
    archive_key = promoted_config_key("fraud-detection", str(state.claim.release_id))
    archived = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=archive_key)
    assert (archived["Body"].read(), archived["ContentType"]) == (body, "application/yaml")
    assert state.config.model_dump() == {
        "bucket": CONFIG_BUCKET,
        "key": KEY,
        "version_id": stored["VersionId"],
        "sha256": hashlib.sha256(body).hexdigest(),
        "archive_key": archive_key,
    }


@pytest.mark.parametrize("decision", ["reject", "expired", None])
def test_a_config_built_without_an_approval_names_no_approver(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, decision: str | None
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir), model_package_arn="arn:pkg")
    if decision is None:
        state = state.model_copy(update={"approval": None})
    else:
        assert state.approval is not None
        state = state.model_copy(update={"approval": state.approval.model_copy(update={"decision": decision})})
    config = build_config(state, catalog)
    assert (
        config.approved_by,
        config.approved_by_identity,
        config.approved_at,
        config.approval_comment,
        config.model_package_arn,
    ) == (None, None, None, "", None)


def test_the_previous_release_comes_from_the_backup(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir))
    assert build_config(state, catalog).previous_release_id is None
    backup = Backup(
        release_id="r", backup_key="k", parameters_present=0, parameters_absent=[], config_existed=True,
        previous_release_id="20261001-000000-champ0",
    )  # fmt: skip
    assert build_config(state.model_copy(update={"backup": backup}), catalog).previous_release_id == (
        "20261001-000000-champ0"
    )


def test_a_release_without_an_event_time_is_dated_when_its_config_is_built(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir))
    untimed = state.model_copy(update={"claim": state.claim.model_copy(update={"event_time": None})})
    before = datetime.now(UTC)
    tested = build_config(untimed, catalog).tested_date
    assert before <= tested <= datetime.now(UTC)


@pytest.mark.parametrize("missing", ["validation", "candidate", "model", "release_id"])
def test_a_config_is_not_built_from_an_execution_without_a_validated_candidate(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, missing: str
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir))
    assert state.validation is not None
    if missing == "validation":
        state = state.model_copy(update={"validation": None})
    elif missing == "candidate":
        state = state.model_copy(update={"validation": state.validation.model_copy(update={"candidate": None})})
    else:
        state = state.model_copy(update={"claim": state.claim.model_copy(update={missing: None})})
    with pytest.raises(ConfigSchemaError) as raised:
        build_config(state, catalog)
    assert str(raised.value) == "cannot build the production config: the execution has no validated candidate"


def test_a_candidate_without_metrics_makes_no_config(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir))
    assert state.validation is not None and state.validation.candidate is not None
    bare = state.validation.candidate.model_copy(update={"metrics": {}})
    state = state.model_copy(update={"validation": state.validation.model_copy(update={"candidate": bare})})
    with pytest.raises(ConfigSchemaError) as raised:
        build_config(state, catalog)
    assert str(raised.value).startswith("production config does not match the schema: 1 validation error")
    assert "performance" in str(raised.value)


def test_a_config_that_would_not_read_back_is_not_written(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-back guard: a renderer that loses a value must stop the write, not publish a different config."""
    state = validated_state(aws, catalog, catalog_dir)
    release = str(state.claim.release_id)
    state = state.model_copy(
        update={"backup": backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)}
    )
    real = config_module.render_config
    monkeypatch.setattr(config_module, "render_config", lambda c: real(c.model_copy(update={"algorithm": "other"})))
    with pytest.raises(ConfigSchemaError) as raised:
        write_config(aws["s3"], CONFIG_BUCKET, catalog, state)
    assert str(raised.value) == "rendered production config does not parse back to the same document"
    assert read_config(aws["s3"], CONFIG_BUCKET, KEY).body is None


def test_writes_need_the_backup_and_say_where_they_looked(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    state = approved(validated_state(aws, catalog, catalog_dir))
    release = str(state.claim.release_id)
    with pytest.raises(BackupMissing) as raised:
        write_config(aws["s3"], CONFIG_BUCKET, catalog, state)
    assert str(raised.value) == (
        f"no backup at s3://{CONFIG_BUCKET}/{backup_key('fraud-detection', release)} for release {release}; "
        "refusing to write production"
    )
    denied = refusing("s3", "head_object", "403", "Forbidden")
    with pytest.raises(ClientError, match="403"):
        write_config(denied, CONFIG_BUCKET, catalog, state)


def test_parameters_are_written_as_strings_and_strays_removed(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    aws["ssm"].put_parameter(Name=f"{PREFIX}/legacy", Value="a,b", Type="StringList")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/eta", Value="0.5", Type="StringList")
    state = validated_state(aws, catalog, catalog_dir)
    release = str(state.claim.release_id)
    assert state.validation is not None and state.validation.candidate is not None
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    hyperparameters = state.validation.candidate.hyperparameters
    written = write_hyperparameters(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release, hyperparameters, sleep=lambda _s: None
    )
    stored = read_parameters(aws["ssm"], catalog)
    assert {path: parameter.type for path, parameter in stored.items()} == dict.fromkeys(written.written, "String")
    assert {path: parameter.value for path, parameter in stored.items()} == written.written
    assert (written.removed, written.verified) == ([f"{PREFIX}/legacy"], True)
    assert sorted(written.written) == sorted(f"{PREFIX}/{name}" for name in hyperparameters)


def test_the_read_back_lists_every_difference(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    aws["ssm"].put_parameter(Name=f"{PREFIX}/eta", Value="0.2", Type="String")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/extra", Value="1", Type="String")
    desired = {f"{PREFIX}/eta": "0.1", f"{PREFIX}/max_depth": "6"}
    with pytest.raises(ParameterVerificationError) as raised:
        verify_parameters(aws["ssm"], catalog, desired, sleep=lambda _s: None)
    assert str(raised.value) == (
        f"Parameter Store does not hold what was written: {PREFIX}/eta: expected '0.1', found '0.2'; "
        f"{PREFIX}/max_depth: expected '6', found 'nothing'; {PREFIX}/extra: unexpected parameter still present"
    )


def test_deleting_a_parameter_already_gone_is_fine_but_a_refusal_is_not(aws: dict[str, Any]) -> None:
    delete_parameter_if_present(aws["ssm"], f"{PREFIX}/never-written")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        delete_parameter_if_present(refusing("ssm", "delete_parameter", "AccessDeniedException"), f"{PREFIX}/eta")


def test_reads_tell_a_missing_config_or_endpoint_from_a_refusal(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert read_config(aws["s3"], CONFIG_BUCKET, KEY) == ConfigObject(body=None, version_id=None)
    put = aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=KEY, Body=b"model: x\n")
    assert read_config(aws["s3"], CONFIG_BUCKET, KEY) == ConfigObject(body=b"model: x\n", version_id=put["VersionId"])
    with pytest.raises(ClientError, match="NoSuchBucket"):
        read_config(aws["s3"], "no-such-bucket", KEY)
    assert describe_endpoint(aws["sagemaker"], "no-such-endpoint") is None
    busy = refusing("sagemaker", "describe_endpoint", "ValidationException", "Cannot describe while throttled")
    with pytest.raises(ClientError, match="Cannot describe"):
        describe_endpoint(busy, "fraud-detection-prod")
    gone_by_message = refusing("sagemaker", "describe_endpoint", "ResourceNotFound", "Could not find endpoint x")
    with pytest.raises(ClientError):
        describe_endpoint(gone_by_message, "fraud-detection-prod")
    assert read_endpoint(None, catalog) is None
    assert read_endpoint(aws["sagemaker"], catalog) is None  # the catalog's endpoint does not exist yet


def test_the_endpoint_is_read_with_each_variants_current_weight(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert catalog.rollout is not None
    sagemaker = aws["sagemaker"]
    for name in ("champion-model", "other-model"):
        sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1"},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/serve",
        )
    variants = [
        {"VariantName": "champion", "ModelName": "champion-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 3.0},
        {"VariantName": "other", "ModelName": "other-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
    ]  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName="config-a", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName=catalog.rollout.endpoint_name, EndpointConfigName="config-a")
    state = read_endpoint(sagemaker, catalog)
    assert state is not None
    assert (state.name, state.config_name, state.weights) == (
        catalog.rollout.endpoint_name,
        "config-a",
        {"champion": 3.0, "other": 1.0},
    )
    assert read_endpoint(sagemaker, catalog.model_copy(update={"rollout": None})) is None


class DescribedAs:
    """A SageMaker whose DescribeEndpoint answers `described`: the fields the API may leave out, left out."""

    def __init__(self, described: dict[str, Any]) -> None:
        self._described = described

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointName": EndpointName, **self._described}


def test_an_endpoint_answer_without_its_optional_fields_reads_as_nothing_served(catalog: ModelCatalog) -> None:
    """DescribeEndpoint requires neither ProductionVariants (an endpoint being created lists none) nor a variant's
    CurrentWeight (a variant that serves nothing yet): neither is guessed."""
    creating = read_endpoint(DescribedAs({"EndpointConfigName": "config-a", "EndpointStatus": "Creating"}), catalog)
    assert creating is not None and creating.weights == {}
    variants = [{"VariantName": "champion", "CurrentWeight": 1.0}, {"VariantName": "challenger", "DesiredWeight": 0.5}]
    updating = read_endpoint(
        DescribedAs({"EndpointConfigName": "config-b", "EndpointStatus": "Updating", "ProductionVariants": variants}),
        catalog,
    )
    assert updating is not None and updating.weights == {"champion": 1.0, "challenger": 0.0}


class PagesWithout:
    """An SSM whose GetParametersByPath pages carry no `Parameters` (optional in the API's answer)."""

    def get_paginator(self, operation: str) -> Any:
        assert operation == "get_parameters_by_path"
        return self

    def paginate(self, **request: Any) -> list[dict[str, Any]]:
        return [{}, {"NextToken": "t"}]


def test_a_page_without_parameters_adds_none(catalog: ModelCatalog) -> None:
    assert read_parameters(PagesWithout(), catalog) == {}


def test_a_secure_string_is_read_without_decrypting_it(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    """The functions never hold a secret in clear: a SecureString under the prefix is read as SSM stores it (and
    BackupProduction refuses it by its type), so no role needs kms:Decrypt."""
    aws["ssm"].put_parameter(Name=f"{PREFIX}/api_key", Value="s3cr3t", Type="SecureString")
    read = read_parameters(aws["ssm"], catalog)[f"{PREFIX}/api_key"]
    # SSM answers the ciphertext (moto stands in with "kms:<key>:<value>"), never the value itself
    assert (read.type, read.value == "s3cr3t") == ("SecureString", False)


def record_of(catalog: ModelCatalog, **changes: Any) -> BackupRecord:
    fields: dict[str, Any] = {
        "model": catalog.id,
        "release_id": "20261120-140541-abcdef",
        "taken_at": DECIDED,
        "prefix": PREFIX,
        "parameters": {f"{PREFIX}/eta": BackedUpParameter(value="0.1", type="String")},
        "config": BackedUpConfig(key=KEY, existed=False),
    }
    return BackupRecord(**{**fields, **changes})


def test_a_tampered_backup_lists_every_problem_in_one_message(catalog: ModelCatalog, aws: dict[str, Any]) -> None:
    tampered = record_of(
        catalog,
        model="churn",
        prefix="/churn/hyperparameters",
        parameters={"/churn/a": None, "/churn/b": None, f"{PREFIX}/eta": None},
    )
    with pytest.raises(BackupTampered) as raised:
        restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, tampered)
    assert str(raised.value) == (
        f"the backup of fraud-detection release {tampered.release_id} does not match the catalog: "
        f"it is a backup of churn; its prefix /churn/hyperparameters is not {PREFIX}; "
        f"parameters outside {PREFIX}/: /churn/a, /churn/b; nothing restored"
    )


def test_a_backup_that_says_a_config_existed_but_archived_none_restores_nothing_of_the_config(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    broken = record_of(catalog, config=BackedUpConfig(key=KEY, existed=True))
    with pytest.raises(BackupMissing) as raised:
        restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, broken)
    assert str(raised.value) == (f"backup of release {broken.release_id} says a config existed but archived none")


def test_a_release_without_a_backup_is_answered_with_its_id_and_why_nothing_was_restored(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    result = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, "20261120-140541-abcdef")
    key = backup_key("fraud-detection", "20261120-140541-abcdef")
    assert result == Restored(
        restored=False,
        reason=f"no backup at s3://{CONFIG_BUCKET}/{key} for release 20261120-140541-abcdef of model "
        "fraud-detection; nothing to restore: production writes require that backup, so none happened",
        release_id="20261120-140541-abcdef",
    )


def test_the_verification_messages_name_value_type_and_the_config(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    record = record_of(
        catalog,
        parameters={
            f"{PREFIX}/eta": BackedUpParameter(value="0.1", type="String"),
            f"{PREFIX}/max_depth": BackedUpParameter(value="6", type="String"),
            f"{PREFIX}/gone": None,
        },
    )
    aws["ssm"].put_parameter(Name=f"{PREFIX}/eta", Value="0.1", Type="StringList")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/gone", Value="x", Type="String")
    problems = (
        f"{PREFIX}/eta: expected '0.1' (String), found '0.1' (StringList); "
        f"{PREFIX}/max_depth: expected '6' (String), found nothing; {PREFIX}/gone: should be absent"
    )
    with pytest.raises(RollbackVerificationError) as raised:
        verify_restored_parameters(aws["ssm"], catalog, record)
    assert str(raised.value) == f"parameters differ from the backup after rollback: {problems}"
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=KEY, Body=b"model: y\n")
    with pytest.raises(RollbackVerificationError) as raised:
        verify_restored(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, record, None)
    assert str(raised.value) == (
        f"production differs from the backup after rollback: {problems}; "
        f"config s3://{CONFIG_BUCKET}/{KEY} differs from the backup"
    )
    verify_restored_parameters(aws["ssm"], catalog, record_of(catalog, parameters={
        f"{PREFIX}/eta": BackedUpParameter(value="0.1", type="StringList"),
        f"{PREFIX}/gone": BackedUpParameter(value="x", type="String"),
    }))  # fmt: skip


def test_a_restore_brings_back_the_archived_config_bytes_and_says_which_release_is_back(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    archived = previous_config_key(catalog.id, "20261120-140541-abcdef")
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=archived, Body=b"model: old\n")
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=KEY, Body=b"model: new\n")
    record = record_of(
        catalog,
        config=BackedUpConfig(key=KEY, existed=True, archived_key=archived),
        previous_release_id="20261001-000000-champ0",
    )
    result = restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, record)
    assert (result.restored, result.config_action, result.parameters_restored, result.endpoint_pending) == (
        True,
        "restored",
        [f"{PREFIX}/eta"],
        False,
    )
    assert result.reason == (
        "production restored to the state before release 20261120-140541-abcdef (release 20261001-000000-champ0)"
    )
    restored = aws["s3"].get_object(Bucket=CONFIG_BUCKET, Key=KEY)
    assert (restored["Body"].read(), restored["ContentType"]) == (b"model: old\n", "application/yaml")
    again = restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, record)
    assert (again.config_action, again.parameters_restored, again.parameters_deleted) == ("unchanged", [], [])


def test_the_rollback_state_restores_the_executions_release_and_says_which_failure_caused_it(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    before = {path: (p.value, p.type) for path, p in read_parameters(aws["ssm"], catalog).items()}
    state = promote_until_config(aws, catalog, approved(validated_state(aws, catalog, catalog_dir)))
    failed = state.model_copy(
        update={"error": {"Error": "PipelineFailed", "Cause": '{"errorMessage": "training job Failed"}'}}
    )
    result = rollback_execution(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, failed)
    assert (result.restored, result.release_id, result.error) == (
        True,
        state.claim.release_id,
        "PipelineFailed: training job Failed",
    )
    assert {path: (p.value, p.type) for path, p in read_parameters(aws["ssm"], catalog).items()} == before
    assert result.parameters_deleted == sorted(state.parameters.written if state.parameters else [])
    # A later run of the same Rollback (its endpoint was pending) keeps what the earlier runs did.
    earlier = Restored(
        restored=False, reason="", endpoint_pending=True, parameters_restored=[f"{PREFIX}/x"], parameters_deleted=[]
    )
    again = rollback_execution(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, failed.model_copy(update={"rollback": earlier})
    )
    assert (again.parameters_restored, again.parameters_deleted) == ([f"{PREFIX}/x"], [])
    finished = earlier.model_copy(update={"endpoint_pending": False})
    last = rollback_execution(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, failed.model_copy(update={"rollback": finished})
    )
    assert last.parameters_restored == []


class ThrottledOnce:
    """moto's SSM, except that each operation's first call is throttled, as Parameter Store throttles bursts."""

    def __init__(self, ssm: Any) -> None:
        self._ssm = ssm
        self.throttled: list[str] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._ssm, name)
        if name not in ("put_parameter", "delete_parameter", "get_parameters_by_path"):
            return real

        def call(**request: Any) -> Any:
            if name not in self.throttled:
                self.throttled.append(name)
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name)
            return real(**request)

        return call

    def get_paginator(self, operation: str) -> Any:
        paginator = self._ssm.get_paginator(operation)
        throttled = self.throttled

        class Paginator:
            def paginate(self, **request: Any) -> Any:
                throttled.append(operation)
                if throttled.count(operation) % 2:  # every other read of the prefix: the write's and the check's
                    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, operation)
                return paginator.paginate(**request)

        return Paginator()


def test_throttled_writes_back_off_with_the_callers_sleep_and_still_land(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    aws["ssm"].put_parameter(Name=f"{PREFIX}/legacy", Value="x", Type="String")
    state = validated_state(aws, catalog, catalog_dir)
    release = str(state.claim.release_id)
    assert state.validation is not None and state.validation.candidate is not None
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    throttled = ThrottledOnce(aws["ssm"])
    slept: list[float] = []
    written = write_hyperparameters(
        throttled, aws["s3"], CONFIG_BUCKET, catalog, release, state.validation.candidate.hyperparameters, slept.append
    )
    assert sorted(set(throttled.throttled)) == ["delete_parameter", "get_parameters_by_path", "put_parameter"]
    assert len(slept) == 4  # one wait per throttled call (two reads of the prefix), none of them a real sleep
    assert written.removed == [f"{PREFIX}/legacy"] and written.verified


def test_a_parameter_created_after_the_backup_is_deleted_by_the_restore(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    aws["ssm"].put_parameter(Name=f"{PREFIX}/eta", Value="0.1", Type="String")
    aws["ssm"].put_parameter(Name=f"{PREFIX}/added_later", Value="1", Type="String")
    result = restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, record_of(catalog))
    assert (result.parameters_restored, result.parameters_deleted) == ([], [f"{PREFIX}/added_later"])
    assert list(read_parameters(aws["ssm"], catalog)) == [f"{PREFIX}/eta"]


def test_a_backup_naming_another_archive_or_endpoint_is_refused_with_each(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    from promotion.production.backup import BackedUpEndpoint

    assert catalog.rollout is not None
    foreign = record_of(
        catalog,
        config=BackedUpConfig(key=KEY, existed=True, archived_key="archive/churn/r/production-model-config.yaml"),
        endpoint=BackedUpEndpoint(name="churn-prod", config_name="c", weights={}),
    )
    expected = previous_config_key(catalog.id, foreign.release_id)
    with pytest.raises(BackupTampered) as raised:
        restore_backup(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, foreign)
    assert str(raised.value) == (
        f"the backup of fraud-detection release {foreign.release_id} does not match the catalog: its archived config "
        f"archive/churn/r/production-model-config.yaml is not {expected}; its endpoint churn-prod is not the "
        f"catalog's ({catalog.rollout.endpoint_name}); nothing restored"
    )
    with pytest.raises(BackupTampered) as raised:
        restore_backup(
            aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog.model_copy(update={"rollout": None}),
            record_of(catalog, endpoint=BackedUpEndpoint(name="churn-prod", config_name="c", weights={})),
        )  # fmt: skip
    assert "its endpoint churn-prod is not the catalog's (none); nothing restored" in str(raised.value)


def test_parameters_nested_under_the_prefix_are_production_too(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    """GetParametersByPath without Recursive stops at the first level: a nested parameter would survive the release
    and the rollback would not know it existed."""
    nested = f"{PREFIX}/xgboost/tree_method"
    aws["ssm"].put_parameter(Name=nested, Value="hist", Type="String")
    assert read_parameters(aws["ssm"], catalog)[nested].value == "hist"
    state = promote_until_config(aws, catalog, approved(validated_state(aws, catalog, catalog_dir)))
    assert state.parameters is not None and state.parameters.removed == [nested]
    result = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, str(state.claim.release_id))
    assert result.reason == f"production restored to the state before release {state.claim.release_id}"
    assert read_parameters(aws["ssm"], catalog)[nested].value == "hist"
