"""CompareWithChampion: start the processing job that scores champion and challenger on the same holdout; the task
completes with the verdict when SageMaker says the job ended (promotion.jobs.callbacks)."""

from typing import Any

from promotion.contract.state import CallbackRequest, PipelineState, step_input
from promotion.core.boundary import answer_by_callback, catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import WaitKind
from promotion.jobs.comparison import start_comparison


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("CompareWithChampion")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(CallbackRequest, event, "CompareWithChampion")
    state = step_input(PipelineState, request.state, "CompareWithChampion")
    catalog = catalog_of(state)
    config = settings()
    result = start_comparison(
        client("sagemaker"),
        client("s3"),
        client("dynamodb"),
        catalog,
        state,
        role_arn=config.training_role_for(state.claim.model),
        bucket=config.config_bucket,
        table=config.table_name,
        images=config.images(),
    )
    logger.info("comparison started", extra=result.model_dump(mode="json"))
    return answer_by_callback(
        "CompareWithChampion", WaitKind.PROCESSING_JOB, result.processing_job_name, request, state, result
    )
