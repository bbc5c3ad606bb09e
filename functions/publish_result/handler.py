"""PublishResult: decide and record the outcome, release the lock, tell other systems."""

import os
from typing import Any

import boto3

from promotion.claim.store import ClaimStore, execution_liveness
from promotion.contract.state import PromotionState
from promotion.core.boundary import bind_claim, known_catalog, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.result.cost import execution_facts
from promotion.result.publish import publish_result
from promotion.result.tracker import track_promotion


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("PublishResult")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = PromotionState.model_validate(event)
    bind_claim(state.claim)
    config = settings()
    failed_state, cost = execution_facts(
        client("stepfunctions"),
        state.claim.execution_arn,
        int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")),
    )
    result = publish_result(
        state,
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        events=client("events"),
        sns=client("sns") if config.notification_topic_arn else None,
        bucket=config.config_bucket,
        table=config.table_name,
        event_bus_name=config.event_bus_name,
        topic_arn=config.notification_topic_arn,
        store=ClaimStore(client("dynamodb"), config.table_name, execution_liveness(client("stepfunctions"))),
        sagemaker=client("sagemaker"),
        failed_state=failed_state,
        cost=cost,
    )
    run_id, tracking_error = track_promotion(
        state,
        result.outcome,
        result.reason,
        catalog=known_catalog(state),
        stack_uri=config.mlflow_tracking_uri,
        report_uri=f"s3://{config.config_bucket}/{result.report_key}" if result.report_key else None,
        sagemaker=client("sagemaker"),
        session=boto3.session.Session(),
    )
    result = result.model_copy(update={"tracking_run_id": run_id, "tracking_error": tracking_error})
    if tracking_error:
        logger.warning("the promotion record was not written to MLflow", extra={"error": tracking_error})
    metrics.add_metric(name=f"Promotion{result.outcome.title().replace('_', '')}", unit="Count", value=1)
    if result.registry_error:
        logger.warning("the Model Registry was not told the outcome", extra={"error": result.registry_error})
    logger.info("result", extra={"outcome": result.outcome, "reason": result.reason})
    return result.model_dump(mode="json")
