"""EvaluateStage: one look at the stage, challenger vs the concurrent champion, anytime-valid gate."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import RolloutState, step_input
from promotion.observability import logger, metrics
from promotion.rollout import evaluate_rollout_stage


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("EvaluateStage")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "EvaluateStage")
    catalog = catalog_of(state)
    result = evaluate_rollout_stage(client("cloudwatch"), catalog, state.rollout)
    logger.info("stage evaluated", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
