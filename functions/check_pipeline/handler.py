"""CheckPipeline: the training job's status; fails the state (to Rollback) when the job failed."""

from typing import Any

from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import PipelineState, step_input
from promotion.observability import logger, metrics
from promotion.pipeline import check_pipeline


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("CheckPipeline")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(PipelineState, event, "CheckPipeline")
    catalog = catalog_of(state)
    result = check_pipeline(client("sagemaker"), catalog, state.pipeline)
    logger.info("pipeline status", extra={"training_job": result.training_job_name, "status": result.status})
    return result.model_dump(mode="json")
