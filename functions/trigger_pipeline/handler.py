"""TriggerPipeline: start the production training job with the promoted hyperparameters; the task completes when
SageMaker says the job ended (promotion.jobs.callbacks)."""

from typing import Any

from promotion.contract.state import CallbackRequest, ValidatedState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import WaitKind
from promotion.jobs.training import trigger_pipeline


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("TriggerPipeline")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, "TriggerPipeline")
    state = step_input(ValidatedState, request.state, "TriggerPipeline")
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
    return answer_by_callback(
        "TriggerPipeline", WaitKind.TRAINING_JOB, result.training_job_name, request, state, result
    )
