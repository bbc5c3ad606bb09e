"""Operator rollback requests from the product's bus: restore the previous release, or refuse with the reason."""

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError

from promotion.catalog import load_catalogs
from promotion.claims import ClaimStore, execution_liveness
from promotion.clients import client
from promotion.events import RollbackRequested
from promotion.observability import logger, metrics
from promotion.operations import rollback_on_request
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        request = RollbackRequested.model_validate(event)
    except ValidationError as error:
        logger.warning("rollback refused: malformed event", extra={"errors": error.errors(include_url=False)})
        return {"accepted": False, "reason": f"malformed rollback request: {error.error_count()} problem(s)"}
    logger.append_keys(model=request.detail.model, requested_by=request.detail.requested_by)
    config = settings()
    outcome = rollback_on_request(
        request,
        load_catalogs(config.catalog_dir),
        ssm=client("ssm"),
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        bucket=config.config_bucket,
        table=config.table_name,
        store=ClaimStore(client("dynamodb"), config.table_name, execution_liveness(client("stepfunctions"))),
        sagemaker=client("sagemaker"),
    )
    (logger.info if outcome.accepted else logger.warning)("operator rollback", extra={"reason": outcome.reason})
    metrics.add_metric(
        name="OperatorRollbackAccepted" if outcome.accepted else "OperatorRollbackRefused", unit="Count", value=1
    )
    return {"accepted": outcome.accepted, "reason": outcome.reason}
