"""CheckEndpoint: wait for an endpoint update to finish (then the first stage, or retiring the champion)."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import RolloutState, step_input
from promotion.observability import logger, metrics
from promotion.rollout import check_endpoint


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("CheckEndpoint")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "CheckEndpoint")
    catalog_of(state)  # binds model, release id and execution name to the logs and metrics
    result = check_endpoint(client("sagemaker"), state.rollout)
    logger.info("endpoint status", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
