"""PromoteChallenger: the challenger becomes the endpoint's only variant; the task completes when SageMaker serves
it (promotion.jobs.callbacks)."""

from typing import Any

from promotion.contract.state import CallbackRequest, RolloutState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import WaitKind
from promotion.rollout.steps import promote_challenger


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("PromoteChallenger")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, "PromoteChallenger")
    state = step_input(RolloutState, request.state, "PromoteChallenger")
    catalog = catalog_of(state)
    result = promote_challenger(client("sagemaker"), catalog, state, bucket=settings().config_bucket)
    logger.info("challenger promoted", extra={"action": result.action, "reason": result.reason})
    return answer_by_callback("PromoteChallenger", WaitKind.ENDPOINT, result.endpoint_name, request, state, result)
