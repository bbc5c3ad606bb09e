"""StartDriftChecks: the monitoring schedule; starts each monitored model's drift check of the window that just
ended (promotion.monitoring.drift)."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from promotion.contract.catalog import load_catalogs
from promotion.core.clients import client
from promotion.core.observability import logger
from promotion.core.settings import settings
from promotion.monitoring.loop import start_drift_checks


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
# No @metrics.log_metrics: every metric here is a single_metric with its own dimensions (model, feature), flushed
# as it is made (promotion.monitoring.loop).
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The schedule's own time ends the window: a delayed or retried delivery checks the same window (and finds its
    # job by name).
    scheduled = EventBridgeModel.model_validate(event)
    config = settings()
    checks = start_drift_checks(
        client("sagemaker"),
        client("s3"),
        load_catalogs(config.catalog_dir),
        bucket=config.config_bucket,
        role_arns=config.training_role_arns or {},
        images=config.images(),
        now=scheduled.time,
    )
    return {"checks": [check.model_dump(mode="json") for check in checks]}
