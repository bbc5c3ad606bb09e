"""Drive the domain steps in the state machine's order over moto clients (no state machine): each step's
section is added to the execution document exactly as the definition's ResultPath does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promotion.claim.claim import claim
from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import ModelPackageStateChange
from promotion.contract.state import Approval, ClaimInput, ClaimStatus, PromotionState, Result
from promotion.intake.candidate import validate_candidate
from promotion.production.backup import backup_production
from promotion.production.config import parse_config, write_config
from promotion.production.operator_rollback import OperatorRollback, rollback_on_request
from promotion.production.parameters import write_hyperparameters
from promotion.production.read import read_config, read_parameters
from promotion.result.publish import publish_result
from tests.conftest import CONFIG_BUCKET, EVENTS, TABLE, load_event
from tests.fakes import WorldSageMaker

ROLE = "arn:aws:iam::123456789012:role/promotion-training"


def world() -> dict[str, Any]:
    return json.loads((EVENTS / "world.json").read_text())


def snapshot(aws: dict[str, Any], catalog: ModelCatalog) -> dict[str, Any]:
    """Production as an operator sees it: parameter values with their types, and the config's exact bytes."""
    return {
        "parameters": {path: (p.value, p.type) for path, p in read_parameters(aws["ssm"], catalog).items()},
        "config": read_config(aws["s3"], CONFIG_BUCKET, catalog.config.key).body,
    }


def claimed_state(
    aws: dict[str, Any], catalog_dir: Path, event: dict[str, Any] | None = None, execution: str = "exec-1"
) -> PromotionState:
    """The execution's claim after its settle look (the first look only writes the claim and WAITs) and the next."""
    store = ClaimStore(aws["dynamodb"], TABLE)
    request = ClaimInput(
        event=event or load_event("tuning-job-completed.json"),
        execution_name=execution,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:promotion:{execution}",
    )
    first = claim(request, catalog_dir, store)
    if first.status != ClaimStatus.WAIT:
        return PromotionState(claim=first)
    again = request.model_copy(update={"state": {"claim": first.model_dump(mode="json")}})
    return PromotionState(claim=claim(again, catalog_dir, store))


def validated_state(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, the_world: dict[str, Any] | None = None
) -> PromotionState:
    state = claimed_state(aws, catalog_dir)
    assert state.claim.tuning_job_name is not None
    validation = validate_candidate(
        WorldSageMaker(the_world or world()), aws["s3"], CONFIG_BUCKET, catalog, state.claim.tuning_job_name
    )
    approval = Approval(decision="approve", decided_by="alice@example.com", comment="ok")
    return state.model_copy(update={"validation": validation, "approval": approval})


def register_release(aws: dict[str, Any], catalog: ModelCatalog, release: str) -> str:
    """The release's package in its model's Model Registry group, Approved (as AwaitApproval and an approver leave
    it); its ARN."""
    sagemaker = aws["sagemaker"]
    if not sagemaker.list_model_package_groups(NameContains=catalog.model_package_group)[
        "ModelPackageGroupSummaryList"
    ]:
        sagemaker.create_model_package_group(ModelPackageGroupName=catalog.model_package_group)
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=catalog.model_package_group,
            ModelPackageDescription=f"{catalog.id} release {release}",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"promotion:release-id": release},
        )["ModelPackageArn"]
    )


def promote_until_config(aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState) -> PromotionState:
    """BackupProduction, WriteParameters and WriteConfig over moto (the release registered and approved in the Model
    Registry first, so its config names its package)."""
    release = state.claim.release_id
    assert release is not None
    assert state.validation is not None
    if state.approval is not None and state.approval.decision == "approve":
        approval = state.approval.model_copy(update={"model_package_arn": register_release(aws, catalog, release)})
        state = state.model_copy(update={"approval": approval})
    assert state.validation.candidate is not None
    backup = backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    state = state.model_copy(update={"backup": backup})
    written = write_hyperparameters(
        aws["ssm"],
        aws["s3"],
        CONFIG_BUCKET,
        catalog,
        release,
        state.validation.candidate.hyperparameters,
        sleep=lambda _s: None,
    )
    state = state.model_copy(update={"parameters": written})
    config = write_config(aws["s3"], CONFIG_BUCKET, catalog, state)
    return state.model_copy(update={"config": config})


OPERATOR = ("PlatformOnCall", "omar@example.com")  # the catalog's operator (models/fraud-detection.yaml)
OPERATOR_ROLLBACK_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:ModelPromotion-operator-rollback:r1"


def reject_live_release(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    act: Callable[[tuple[str, str] | None], None],
    *,
    by: tuple[str, str] = OPERATOR,
    reason: str = "False-positive rate doubled after the last release.",
) -> ModelPackageStateChange:
    """An operator's rollback request as they make it: the live release's package set to Rejected as `by` (role,
    session), and the state change event SageMaker puts on the bus for it (the package as DescribeModelPackage
    answers, with a new event id)."""
    current = read_config(aws["s3"], CONFIG_BUCKET, catalog.config.key).body
    assert current is not None, "nothing is live"
    package_arn = parse_config(current).model_package_arn
    assert package_arn is not None, "the live release has no package"
    act(by)
    try:
        aws["sagemaker"].update_model_package(
            ModelPackageArn=package_arn, ModelApprovalStatus="Rejected", ApprovalDescription=reason
        )
    finally:
        act(None)
    return state_change(aws, package_arn)


def state_change(aws: dict[str, Any], package_arn: str, event_id: str | None = None) -> ModelPackageStateChange:
    """SageMaker's `Model Package State Change` event for the package as it is now (a new event unless `event_id`
    names one delivered again)."""
    document = load_event("model-package-rejected.json")
    described = aws["sagemaker"].describe_model_package(ModelPackageName=package_arn)
    document["id"] = event_id or str(uuid.uuid4())
    document["resources"] = [package_arn]
    document["detail"] = json.loads(json.dumps(described, default=str))
    return ModelPackageStateChange.model_validate(document)


def operator_rollback(
    aws: dict[str, Any], catalog: ModelCatalog, store: ClaimStore, request: ModelPackageStateChange
) -> OperatorRollback:
    """BeginRollback over moto for the package state change `request` (the Model Registry hooks must be active:
    they record who changed a package)."""
    return rollback_on_request(
        request,
        {catalog.id: catalog},
        ssm=aws["ssm"],
        s3=aws["s3"],
        dynamodb=aws["dynamodb"],
        bucket=CONFIG_BUCKET,
        table=TABLE,
        store=store,
        sagemaker=aws["sagemaker"],
        execution=OPERATOR_ROLLBACK_EXECUTION,
    )


def finish_promotion(store: ClaimStore, catalog: ModelCatalog, state: PromotionState) -> None:
    """The promotion's PublishResult: its claim done and the model's lock released."""
    store.finish(
        model=catalog.id,
        tuning_job_arn=state.claim.tuning_job_arn,
        execution_arn=state.claim.execution_arn,
        outcome="PROMOTED",
    )


def promote_another_release(
    aws: dict[str, Any],
    catalog: ModelCatalog,
    catalog_dir: Path,
    store: ClaimStore,
    first: PromotionState,
    *,
    suffix: str,
    time: str,
    execution: str,
) -> PromotionState:
    """Another tuning job (`suffix` on the seed's name, completed at `time`) promoted on top of production, with
    `first`'s validation and approval, and finished."""
    event = load_event("tuning-job-completed.json")
    event["time"] = time
    event["detail"]["HyperParameterTuningJobArn"] += suffix
    event["detail"]["HyperParameterTuningJobName"] += suffix
    state = claimed_state(aws, catalog_dir, event, execution=execution)
    assert state.claim.status == ClaimStatus.CLAIMED, state.claim.reason
    state = promote_until_config(
        aws, catalog, state.model_copy(update={"validation": first.validation, "approval": first.approval})
    )
    finish_promotion(store, catalog, state)
    return state


def subscribed_queue(aws: dict[str, Any], name: str = "promotions") -> tuple[str, Callable[[], list[dict[str, Any]]]]:
    """An SNS topic with an SQS queue subscribed: what the topic's subscribers receive."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = aws["sns"].create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return topic, received


def request_key(catalog: ModelCatalog, request_id: str) -> dict[str, Any]:
    """The table key of an operator's rollback request."""
    return {"pk": {"S": f"MODEL#{catalog.id}"}, "sk": {"S": f"ROLLBACK#{request_id}"}}


def request_record(aws: dict[str, Any], catalog: ModelCatalog, request_id: str) -> dict[str, Any]:
    return dict(
        aws["dynamodb"].get_item(TableName=TABLE, Key=request_key(catalog, request_id), ConsistentRead=True)["Item"]
    )


def put_request_record(aws: dict[str, Any], catalog: ModelCatalog, request_id: str, **fields: str) -> None:
    """A rollback request's record as an earlier delivery left it (string attributes)."""
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={**request_key(catalog, request_id), **{name: {"S": value} for name, value in fields.items()}},
    )


def publish_on(aws: dict[str, Any], state: PromotionState, **overrides: Any) -> Result:
    """PublishResult over the moto services: the default bus and no topic, unless `overrides` say otherwise."""
    arguments: dict[str, Any] = {
        "s3": aws["s3"],
        "dynamodb": aws["dynamodb"],
        "events": aws["events"],
        "sns": None,
        "bucket": CONFIG_BUCKET,
        "table": TABLE,
        "event_bus_name": "default",
        "topic_arn": None,
        "store": ClaimStore(aws["dynamodb"], TABLE),
    }
    return publish_result(state, **{**arguments, **overrides})
