"""ResumeWaitingStep: SageMaker says a training job, a comparison job or an endpoint change ended; complete the
state machine's task that waits for it (promotion.callbacks)."""

from typing import Any

from promotion.callbacks import resume
from promotion.clients import client
from promotion.handler_support import step_boundary
from promotion.observability import logger, metrics
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("ResumeWaitingStep")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    resumed = resume(
        client("dynamodb"),
        client("stepfunctions"),
        client("sagemaker"),
        client("s3"),
        table=config.table_name,
        event=event,
    )
    logger.info("sagemaker state change", extra=resumed.model_dump())
    return resumed.model_dump(mode="json")
