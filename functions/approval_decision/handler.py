"""Approval decisions from the product's bus: checked, then forwarded to the waiting execution or refused."""

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError

from promotion.approval import decide
from promotion.catalog import load_catalogs
from promotion.clients import client
from promotion.events import ApprovalDecision
from promotion.observability import logger, metrics
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        decision = ApprovalDecision.model_validate(event)
    except ValidationError as error:
        logger.warning("decision refused: malformed event", extra={"errors": error.errors(include_url=False)})
        metrics.add_metric(name="DecisionRefused", unit="Count", value=1)  # a malformed decision is refused too
        return {"accepted": False, "reason": f"malformed approval decision: {error.error_count()} problem(s)"}
    logger.append_keys(model=decision.detail.model, tuning_job=decision.detail.tuning_job_name)
    config = settings()
    outcome = decide(
        decision,
        load_catalogs(config.catalog_dir),
        dynamodb=client("dynamodb"),
        stepfunctions=client("stepfunctions"),
        table=config.table_name,
    )
    log = logger.info if outcome.accepted else logger.warning
    log("decision accepted" if outcome.accepted else "decision refused", extra={"reason": outcome.reason})
    metrics.add_metric(name="DecisionAccepted" if outcome.accepted else "DecisionRefused", unit="Count", value=1)
    return {"accepted": outcome.accepted, "reason": outcome.reason}
