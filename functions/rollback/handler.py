"""Rollback: put Parameter Store, the config and the endpoint back exactly as the release's backup recorded them."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import PromotionState
from promotion.observability import logger, metrics
from promotion.rollback import rollback_execution
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("Rollback")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = PromotionState.model_validate(event)
    catalog = catalog_of(state)
    result = rollback_execution(
        client("ssm"), client("s3"), settings().config_bucket, catalog, state, sagemaker=client("sagemaker")
    )
    logger.warning("rollback", extra=result.model_dump(mode="json"))
    if not result.endpoint_pending:  # counted once, when the whole of production is back
        metrics.add_metric(name="RolledBack", unit="Count", value=1)
    return result.model_dump(mode="json")
