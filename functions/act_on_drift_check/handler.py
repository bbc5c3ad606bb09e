"""ActOnDriftCheck: SageMaker says a processing job ended; for a drift check, publish its verdict and, on drift,
start the model's retraining within its rate limits (promotion.monitoring)."""

from typing import Any

from promotion.contract.catalog import load_catalogs
from promotion.core import clock
from promotion.core.clients import client
from promotion.core.observability import logger
from promotion.core.settings import settings
from promotion.monitoring.loop import act_on_drift_check


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
# No @metrics.log_metrics: every metric here is a single_metric with its own dimensions (model, feature), flushed
# as it is made (promotion.monitoring.loop).
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    outcome = act_on_drift_check(
        client("sagemaker"),
        client("s3"),
        client("dynamodb"),
        client("sns"),
        event=event,
        catalogs=load_catalogs(config.catalog_dir),
        bucket=config.config_bucket,
        table=config.table_name,
        pipeline_roles=config.training_role_arns or {},
        tuning_roles=config.tuning_role_arns or {},
        images=config.images(),
        topic_arn=config.notification_topic_arn,
        now=clock.now(),
    )
    if outcome.verdict is not None:
        logger.append_keys(model=outcome.verdict.model, release_id=outcome.verdict.release_id)
    logger.info("drift check ended", extra=outcome.model_dump(mode="json", exclude={"verdict": {"model"}}))
    return outcome.model_dump(mode="json")
