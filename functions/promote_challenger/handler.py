"""PromoteChallenger: the challenger becomes the endpoint's only variant."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import RolloutState, step_input
from promotion.observability import logger, metrics
from promotion.rollout import promote_challenger


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("PromoteChallenger")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "PromoteChallenger")
    catalog = catalog_of(state)
    result = promote_challenger(client("sagemaker"), catalog, state)
    logger.info("challenger promoted", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
