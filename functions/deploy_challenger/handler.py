"""DeployChallenger: the challenger beside the champion on the production endpoint, at weight 0; the task completes
when SageMaker serves the new config (promotion.jobs.callbacks)."""

from typing import Any

from promotion.contract.state import CallbackRequest, PipelineState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import WaitKind
from promotion.rollout.steps import deploy_challenger


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("DeployChallenger")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, "DeployChallenger")
    state = step_input(PipelineState, request.state, "DeployChallenger")
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
    return answer_by_callback("DeployChallenger", WaitKind.ENDPOINT, result.endpoint_name, request, state, result)
