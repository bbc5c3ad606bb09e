"""Rollback: put Parameter Store, the config and the endpoint back exactly as the release's backup recorded them."""

from typing import Any

from promotion.contract.state import PromotionState
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.production.restore import rollback_execution


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
