"""TriggerPipeline: start the production training job with the promoted hyperparameters."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import ValidatedState, step_input
from promotion.observability import logger, metrics
from promotion.pipeline import trigger_pipeline
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("TriggerPipeline")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ValidatedState, event, "TriggerPipeline")
    catalog = catalog_of(state)
    config = settings()
    claim, role_arn = state.claim, config.training_role_for(state.claim.model)
    result = trigger_pipeline(
        client("sagemaker"),
        catalog,
        claim.release_id,
        state.validation.candidate.hyperparameters,
        role_arn,
        claim.tuning_job_name,
        config.images(),
    )
    logger.info("pipeline started", extra={"training_job": result.training_job_name, "status": result.status})
    return result.model_dump(mode="json")
