"""An operator rollback whose endpoint takes time to come back, over moto with SageMaker's endpoint lifecycle
(local.endpoints: an update leaves the endpoint Updating until it completes, and a change sent meanwhile is
refused). The first step restores parameters and asks for the previous endpoint config; each next step renews the
model's lock and waits, or finishes: audit record, request done, lock released."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import endpoints
from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key
from promotion.contract.state import ClaimStatus, OperatorRollback, PromotionState
from promotion.core.errors import LockLost, TransientAwsError
from promotion.production.backup import backup_production
from promotion.production.operator_rollback import continue_rollback, rollback_step
from promotion.production.read import read_endpoint
from promotion.production.restore import rollback_execution
from promotion.result.audit import list_audit_records
from tests.conftest import CONFIG_BUCKET, TABLE, load_event
from tests.integration.helpers import (
    OPERATOR_ROLLBACK_EXECUTION,
    claimed_state,
    finish_promotion,
    promote_until_config,
    put_request_record,
    reject_live_release,
    request_record,
    snapshot,
    state_change,
    validated_state,
)

Act = Callable[[tuple[str, str] | None], None]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1"
ROLE = "arn:aws:iam::123456789012:role/serve"


@pytest.fixture
def lifecycle(aws: dict[str, Any]) -> Iterator[endpoints.EndpointLifecycle]:
    simulator = endpoints.TrafficSimulator(aws["sagemaker"], None, [], "good")
    endpoints.HOOKS.activate(simulator)
    yield simulator.lifecycle
    endpoints.HOOKS.deactivate(simulator)


def endpoint_config(aws: dict[str, Any], name: str) -> None:
    aws["sagemaker"].create_model(ModelName=f"{name}-model", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    aws["sagemaker"].create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": name, "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
        ],
    )  # fmt: skip


def services(aws: dict[str, Any], store: ClaimStore) -> dict[str, Any]:
    return {
        "ssm": aws["ssm"],
        "s3": aws["s3"],
        "dynamodb": aws["dynamodb"],
        "bucket": CONFIG_BUCKET,
        "table": TABLE,
        "store": store,
        "sagemaker": aws["sagemaker"],
        "execution": OPERATOR_ROLLBACK_EXECUTION,
    }


def two_releases_on_the_endpoint(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    store: ClaimStore,
    lifecycle: endpoints.EndpointLifecycle,
) -> dict[str, Any]:
    """R1 serving on config-r1, then R2 promoted (its backup records config-r1) and serving on config-r2."""
    assert catalog.rollout is not None
    name = catalog.rollout.endpoint_name
    first = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    finish_promotion(store, catalog, first)
    endpoint_config(aws, "config-r1")
    aws["sagemaker"].create_endpoint(EndpointName=name, EndpointConfigName="config-r1")
    lifecycle.complete_now(name)
    before_r2 = snapshot(aws, catalog)
    event = load_event("tuning-job-completed.json")
    event["time"] = "2026-11-22T10:00:00Z"
    event["detail"]["HyperParameterTuningJobArn"] += "r2"
    event["detail"]["HyperParameterTuningJobName"] += "r2"
    second: PromotionState = claimed_state(aws, catalog_dir, event, execution="exec-2")
    assert second.claim.status == ClaimStatus.CLAIMED
    release = str(second.claim.release_id)
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release, sagemaker=aws["sagemaker"])
    second = promote_until_config(
        aws, catalog, second.model_copy(update={"validation": first.validation, "approval": first.approval})
    )
    finish_promotion(store, catalog, second)
    endpoint_config(aws, "config-r2")
    aws["sagemaker"].update_endpoint(EndpointName=name, EndpointConfigName="config-r2")
    lifecycle.complete_now(name)
    assert read_endpoint(aws["sagemaker"], catalog) is not None
    return {"name": name, "release": release, "before": before_r2, "first": first}


def test_the_endpoint_is_waited_for_under_the_lock_and_the_rollback_finishes_once_it_serves_the_previous_config(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))
    assert (first.accepted, first.pending, first.rolled_back_release) == (True, True, world["release"])
    assert (first.restored_release, first.note) == (world["first"].claim.release_id, "")
    assert first.attempt is not None and re.fullmatch(rf"{re.escape(request.id)}/[0-9a-f]{{12}}", first.attempt)
    assert first.restored is not None and first.restored.endpoint_requested == "UpdateEndpoint:config-r1"
    assert (first.restored.restored, first.restored.config_action, first.restored.endpoint_polls) == (
        False,
        "pending",
        0,
    )
    assert first.reason == (
        f"restoring fraud-detection: parameters are back to the state before release {world['release']}; the "
        f"endpoint is being restored (endpoint {world['name']}: back to config config-r1), the config follows it"
    )
    assert store.lock_holder(catalog.id) == {
        "holder": f"operator-rollback:{first.attempt}",
        "release_id": "operator-rollback",
    }

    waiting = rollback_step(request, first, {catalog.id: catalog}, **services(aws, store))
    assert (waiting.pending, waiting.attempt) == (True, first.attempt)
    assert waiting.restored is not None and waiting.restored.endpoint_polls == 1
    assert waiting.reason == (
        f"restoring fraud-detection: parameters are back to the state before release {world['release']}; the "
        f"endpoint is being restored (endpoint {world['name']} is Updating; waiting to restore it), the config "
        "follows it"
    )
    assert store.lock_holder(catalog.id) is not None
    assert list_audit_records(aws["dynamodb"], TABLE, catalog.id) == []  # written once everything is back

    lifecycle.complete_now(world["name"])
    noted = waiting.model_copy(update={"note": "an earlier attempt of this request had begun restoring"})
    done = rollback_step(request, noted, {catalog.id: catalog}, **services(aws, store))
    assert (done.accepted, done.pending, done.rolled_back_release) == (True, False, world["release"])
    assert done.restored_release == world["first"].claim.release_id
    assert snapshot(aws, catalog) == world["before"]
    endpoint = read_endpoint(aws["sagemaker"], catalog)
    assert endpoint is not None and endpoint.config_name == "config-r1"
    assert store.lock_holder(catalog.id) is None
    record = list_audit_records(aws["dynamodb"], TABLE, catalog.id)[-1]
    identity = "arn:aws:sts::123456789012:assumed-role/PlatformOnCall/omar@example.com"
    assert (record.outcome, record.approved_by, record.approved_by_identity, record.execution_arn) == (
        "OPERATOR_ROLLBACK",
        "Omar Haddad",
        identity,
        OPERATOR_ROLLBACK_EXECUTION,
    )
    assert (done.requested_by_identity, done.request_reason) == (identity, "FPR x2")
    assert done.restored is not None
    assert record.reason == (
        f"Omar Haddad: FPR x2; {done.restored.reason} (an earlier attempt of this request had begun restoring)"
    )
    assert record.recorded_at.tzinfo is not None and record.release_id.startswith(f"{world['release']}-rollback-")
    item = request_record(aws, catalog, request.id)
    assert (item["status"]["S"], item["accepted"]["BOOL"], item["outcome"]["S"]) == ("DONE", True, done.reason)


def test_a_request_interrupted_earlier_says_so_while_the_endpoint_comes_back(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    """An earlier delivery of the request began restoring R2 and died (the request reads RESTORING R2): the next
    one restores again, and its first, pending step already tells the operator about the interrupted attempt."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as, reason="FPR x2")
    put_request_record(aws, catalog, request.id, status="RESTORING", release_id=world["release"])
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))
    assert (first.accepted, first.pending, first.rolled_back_release) == (True, True, world["release"])
    assert first.note == f"an earlier attempt of this request had begun restoring release {world['release']}"


def test_a_continuation_that_lost_its_lock_fails_the_request_and_says_where_production_is(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as)
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))
    assert first.attempt is not None
    store.release_operator_lock(catalog.id, first.attempt)  # its lease ran out and someone else took it
    with pytest.raises(LockLost) as raised:
        continue_rollback({catalog.id: catalog}, first, **services(aws, store))
    assert str(raised.value) == f"the operator rollback {first.attempt} no longer holds the lock of {catalog.id}"
    item = request_record(aws, catalog, request.id)
    assert (item["status"]["S"], item["accepted"]["BOOL"]) == ("DONE", False)
    assert item["outcome"]["S"] == (
        f"the rollback of release {world['release']} failed part way: {raised.value}; the endpoint may still serve "
        "it, and the config names it until the endpoint is back: reject its package again to finish"
    )


def test_a_continuation_whose_backup_vanished_fails_and_releases_the_lock(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as)
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))
    aws["s3"].delete_object(Bucket=CONFIG_BUCKET, Key=backup_key(catalog.id, world["release"]))
    with pytest.raises(Exception, match="no backup at"):
        continue_rollback({catalog.id: catalog}, first, **services(aws, store))
    assert store.lock_holder(catalog.id) is None


@pytest.mark.parametrize(
    "change",
    [{"pending": False}, {"rolled_back_release": None}, {"attempt": None}, {"model": "churn"}],
    ids=["not-pending", "no-release", "no-attempt", "unknown-model"],
)
def test_nothing_to_continue_is_refused_and_recorded(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
    change: dict[str, Any],
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as)
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))
    broken = first.model_copy(update=change)
    with pytest.raises(ValueError, match="nothing to continue") as raised:
        continue_rollback({catalog.id: catalog}, broken, **services(aws, store))
    assert str(raised.value) == f"rollback request {request.id}: nothing to continue ({first.reason})"


@pytest.mark.parametrize("missing", ["request_id", "requested_by", "model_package_arn"])
def test_progress_that_names_no_request_is_refused(missing: str) -> None:
    progress = OperatorRollback(
        accepted=True,
        reason="restoring",
        model="fraud-detection",
        request_id="evt-1",
        requested_by="Omar Haddad",
        model_package_arn="arn:pkg",
        pending=True,
    ).model_copy(update={missing: None})
    with pytest.raises(ValueError, match="names no request") as raised:
        continue_rollback({}, progress, **dict.fromkeys(
            ("ssm", "s3", "dynamodb", "bucket", "table", "store", "sagemaker", "execution")
        ))  # fmt: skip
    assert str(raised.value) == "operator rollback of fraud-detection: the progress names no request (restoring)"


def test_a_package_of_no_catalog_model_is_no_rollback_request(
    aws: dict[str, Any], catalog: ModelCatalog, registry_as: Act
) -> None:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="churn")
    package = aws["sagemaker"].create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Rejected",
    )["ModelPackageArn"]
    store = ClaimStore(aws["dynamodb"], TABLE)
    outcome = rollback_step(state_change(aws, package), None, {catalog.id: catalog}, **services(aws, store))
    assert outcome == OperatorRollback(
        accepted=False, ignored=True, model="unknown", reason="model package group 'churn' is no catalog model's"
    )


def test_the_rollback_state_restores_the_endpoint_and_a_finished_earlier_run_changes_nothing(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    """Rollback of the execution's own release (R2, whose backup recorded config-r1) with the endpoint on config-r2:
    the first run asks for config-r1; once it serves it, a run carrying a finished earlier run reports it back."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    claim = world["first"].claim.model_copy(update={"release_id": world["release"]})
    state = world["first"].model_copy(update={"claim": claim, "error": {"Error": "GateFailed", "Cause": "5xx"}})
    first = rollback_execution(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state, aws["sagemaker"])
    assert (first.endpoint_pending, first.endpoint_requested, first.error) == (
        True,
        "UpdateEndpoint:config-r1",
        "GateFailed: 5xx",
    )
    lifecycle.complete_now(world["name"])
    done = rollback_execution(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.model_copy(update={"rollback": first}), aws["sagemaker"]
    )
    assert (done.restored, done.endpoint_action) == (True, f"endpoint {world['name']} back on config-r1 (config-r1)")
    assert done.reason == (
        f"production restored to the state before release {world['release']} "
        f"(release {world['first'].claim.release_id})"
    )
    again = rollback_execution(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.model_copy(update={"rollback": done}), aws["sagemaker"]
    )
    assert (again.restored, again.endpoint_action) == (True, "unchanged")


@pytest.mark.parametrize(
    "refusal",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetObject"),
        TransientAwsError("still throttled (ThrottlingException) after 6 attempts"),
    ],
    ids=["throttled", "gave-up-backing-off"],
)
def test_a_transient_failure_is_raised_for_the_retry_with_the_lock_held_and_the_request_open(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    registry_as: Act,
    lifecycle: endpoints.EndpointLifecycle,
    monkeypatch: pytest.MonkeyPatch,
    refusal: Exception,
) -> None:
    from promotion.production import operator_rollback as operations

    store = ClaimStore(aws["dynamodb"], TABLE)
    two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    request = reject_live_release(aws, catalog, registry_as)
    first = rollback_step(request, None, {catalog.id: catalog}, **services(aws, store))

    def throttled(*_: Any, **__: Any) -> Any:
        raise refusal

    monkeypatch.setattr(operations, "load_backup", throttled)
    with pytest.raises(type(refusal)):
        continue_rollback({catalog.id: catalog}, first, **services(aws, store))
    assert store.lock_holder(catalog.id) == {
        "holder": f"operator-rollback:{first.attempt}",
        "release_id": "operator-rollback",
    }
    item = request_record(aws, catalog, request.id)
    assert item["status"]["S"] == "RESTORING"


def test_a_later_run_of_the_rollback_keeps_what_the_earlier_runs_restored_and_deleted(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    lifecycle: endpoints.EndpointLifecycle,
) -> None:
    store = ClaimStore(aws["dynamodb"], TABLE)
    world = two_releases_on_the_endpoint(aws, catalog, catalog_dir, store, lifecycle)
    claim = world["first"].claim.model_copy(update={"release_id": world["release"]})
    state = world["first"].model_copy(update={"claim": claim, "error": {"Error": "GateFailed", "Cause": "5xx"}})
    first = rollback_execution(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state, aws["sagemaker"])
    earlier = first.model_copy(update={"parameters_restored": ["/p/restored"], "parameters_deleted": ["/p/deleted"]})
    later = rollback_execution(
        aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.model_copy(update={"rollback": earlier}), aws["sagemaker"]
    )
    assert later.endpoint_pending
    assert (later.parameters_restored, later.parameters_deleted) == (["/p/restored"], ["/p/deleted"])
