"""RetireChampion: delete the old champion's endpoint configs and model once the endpoint serves the new one."""

from typing import Any

from promotion.contract.state import RolloutState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.rollout.steps import retire_champion


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("RetireChampion")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(RolloutState, event, "RetireChampion")
    catalog_of(state)  # binds model, release id and execution name to the logs and metrics
    result = retire_champion(client("sagemaker"), state.rollout)
    logger.info("champion retired", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
