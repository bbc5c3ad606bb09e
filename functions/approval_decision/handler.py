"""Approval decisions: SageMaker's Model Package State Change, read back, forwarded to the waiting execution or
refused."""

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError

from promotion.contract.catalog import load_catalogs
from promotion.contract.events import ModelPackageStateChange
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.intake.approval import decide


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        change = ModelPackageStateChange.model_validate(event)
    except ValidationError as error:
        logger.warning("decision refused: malformed event", extra={"errors": error.errors(include_url=False)})
        metrics.add_metric(name="DecisionRefused", unit="Count", value=1)  # a malformed decision is refused too
        return {"accepted": False, "reason": f"malformed model package state change: {error.error_count()} problem(s)"}
    logger.append_keys(model_package_arn=change.detail.ModelPackageArn)
    config = settings()
    outcome = decide(
        change,
        load_catalogs(config.catalog_dir),
        dynamodb=client("dynamodb"),
        stepfunctions=client("stepfunctions"),
        sagemaker=client("sagemaker"),
        table=config.table_name,
    )
    logger.append_keys(model=outcome.model, tuning_job=outcome.tuning_job_name, decided_by_identity=outcome.identity)
    if outcome.ignored:
        logger.info("not a decision", extra={"reason": outcome.reason})
        metrics.add_metric(name="DecisionIgnored", unit="Count", value=1)
    elif outcome.accepted:
        logger.info("decision accepted", extra={"reason": outcome.reason})
        metrics.add_metric(name="DecisionAccepted", unit="Count", value=1)
    else:
        logger.warning("decision refused", extra={"reason": outcome.reason})
        metrics.add_metric(name="DecisionRefused", unit="Count", value=1)
    return {"accepted": outcome.accepted, "ignored": outcome.ignored, "reason": outcome.reason}
