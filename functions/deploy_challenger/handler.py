"""DeployChallenger: the challenger beside the champion on the production endpoint, at weight 0."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import PipelineState, step_input
from promotion.observability import logger, metrics
from promotion.rollout import deploy_challenger
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("DeployChallenger")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(PipelineState, event, "DeployChallenger")
    catalog = catalog_of(state)
    config = settings()
    result = deploy_challenger(
        client("sagemaker"),
        client("s3"),
        config.config_bucket,
        catalog,
        state,
        config.training_role_for(state.claim.model),
        config.images(),
    )
    logger.info("challenger deployed", extra={"action": result.action, "reason": result.reason})
    return result.model_dump(mode="json")
