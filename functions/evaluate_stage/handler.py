"""EvaluateStage: one look at the stage, challenger vs the concurrent champion, anytime-valid gate; an operator's
pending request (pause, abort, promote-now) or answer to a hold is applied first."""

from typing import Any

from promotion.contract.state import RolloutState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.rollout.control import read_pending_request
from promotion.rollout.steps import evaluate_rollout_stage


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("EvaluateStage")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "EvaluateStage")
    catalog = catalog_of(state)
    request = read_pending_request(client("dynamodb"), settings().table_name, state.claim.model, state.claim.release_id)
    result = evaluate_rollout_stage(client("cloudwatch"), catalog, state.rollout, request=request)
    logger.info(
        "stage evaluated",
        extra={
            "action": result.action,
            "reason": result.reason,
            "operator_request": request.says() if request else None,
        },
    )
    return result.model_dump(mode="json")
