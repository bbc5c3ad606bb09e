"""CheckDataQuality: start the processing job that checks the training, validation and holdout data before anything
in production is written; the task completes with the verdict when SageMaker says the job ended
(promotion.jobs.callbacks), or fails with DataQualityFailed naming the failed checks."""

from typing import Any

from promotion.contract.state import CallbackRequest, ValidatedState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import DATA_QUALITY_STEP, WaitKind
from promotion.jobs.data_quality import start_data_quality


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary(DATA_QUALITY_STEP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, DATA_QUALITY_STEP)
    state = step_input(ValidatedState, request.state, DATA_QUALITY_STEP)
    catalog = catalog_of(state)
    config = settings()
    result = start_data_quality(
        client("sagemaker"),
        client("s3"),
        catalog,
        state,
        role_arn=config.training_role_for(state.claim.model),
        bucket=config.config_bucket,
        images=config.images(),
    )
    logger.info("data-quality check started", extra=result.model_dump(mode="json"))
    return answer_by_callback(
        DATA_QUALITY_STEP, WaitKind.PROCESSING_JOB, result.processing_job_name, request, state, result
    )
