"""EvaluateStage: one look at the stage, challenger vs the concurrent champion, anytime-valid gate."""

from typing import Any

from promotion.contract.state import RolloutState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.rollout.steps import evaluate_rollout_stage


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("EvaluateStage")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "EvaluateStage")
    catalog = catalog_of(state)
    result = evaluate_rollout_stage(client("cloudwatch"), catalog, state.rollout)
    logger.info("stage evaluated", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
