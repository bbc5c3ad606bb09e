"""ResumeWaitingStep: SageMaker says a training job, a comparison job or an endpoint change ended; complete the
state machine's task that waits for it (promotion.jobs.callbacks)."""

from typing import Any

from promotion.core.boundary import step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.jobs.callbacks import resume


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
    if resumed.model is not None:  # a step waited for it: its promotion's model, release and execution on the log
        logger.append_keys(model=resumed.model, release_id=resumed.release_id, execution_name=resumed.execution_name)
    logger.info("sagemaker state change", extra=resumed.model_dump(exclude={"model", "release_id", "execution_name"}))
    return resumed.model_dump(mode="json")
