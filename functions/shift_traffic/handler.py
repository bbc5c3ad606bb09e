"""ShiftTraffic: the stage's weights on the endpoint (they sum to 1; the challenger's share only grows); the task
completes when SageMaker serves them (promotion.jobs.callbacks)."""

from typing import Any

from promotion.contract.state import CallbackRequest, RolloutState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.jobs.callbacks import WaitKind
from promotion.rollout.steps import shift_traffic


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("ShiftTraffic")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, "ShiftTraffic")
    state = step_input(RolloutState, request.state, "ShiftTraffic")
    catalog_of(state)  # binds model, release id and execution name to the logs and metrics
    result = shift_traffic(client("sagemaker"), state.rollout)
    logger.info("traffic shifted", extra={"action": result.action, "reason": result.reason})
    return answer_by_callback("ShiftTraffic", WaitKind.ENDPOINT, result.endpoint_name, request, state, result)
