"""Operator controls: SageMaker's Model Package State Change for a lifecycle request (pause, resume, abort,
promote-now) on a rolling-out candidate, read back, carried out or refused."""

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError

from promotion.contract.catalog import load_catalogs
from promotion.contract.events import ModelPackageStateChange
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.rollout.control import handle_request


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        change = ModelPackageStateChange.model_validate(event)
    except ValidationError as error:
        logger.warning("control refused: malformed event", extra={"errors": error.errors(include_url=False)})
        metrics.add_metric(name="ControlRefused", unit="Count", value=1)
        return {"accepted": False, "reason": f"malformed model package state change: {error.error_count()} problem(s)"}
    logger.append_keys(model_package_arn=change.detail.ModelPackageArn)
    config = settings()
    outcome = handle_request(
        change,
        load_catalogs(config.catalog_dir),
        dynamodb=client("dynamodb"),
        stepfunctions=client("stepfunctions"),
        sagemaker=client("sagemaker"),
        table=config.table_name,
    )
    logger.append_keys(model=outcome.model, release_id=outcome.release_id, requested_by_identity=outcome.identity)
    if outcome.ignored:
        logger.info("not a control request", extra={"reason": outcome.reason})
        metrics.add_metric(name="ControlIgnored", unit="Count", value=1)
    elif outcome.accepted:
        logger.info("control accepted", extra={"request": outcome.request, "reason": outcome.reason})
        metrics.add_metric(name="ControlAccepted", unit="Count", value=1)
    else:
        logger.warning("control refused", extra={"request": outcome.request, "reason": outcome.reason})
        metrics.add_metric(name="ControlRefused", unit="Count", value=1)
    return {
        "accepted": outcome.accepted,
        "ignored": outcome.ignored,
        "reason": outcome.reason,
        "request": outcome.request,
        "by": outcome.by,
    }
