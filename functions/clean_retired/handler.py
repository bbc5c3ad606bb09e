"""The rollback window's end: an hourly schedule deletes each model's previous champion (its SageMaker model and
endpoint config) once the live release's catalog window has passed."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from promotion.contract.catalog import load_catalogs
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.production.retired import clean_retired


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The schedule's own time is "now": a delayed or retried delivery judges the window as of its schedule.
    scheduled = EventBridgeModel.model_validate(event)
    config = settings()
    results = []
    for catalog in load_catalogs(config.catalog_dir).values():
        retired = clean_retired(
            catalog,
            s3=client("s3"),
            sagemaker=client("sagemaker"),
            dynamodb=client("dynamodb"),
            bucket=config.config_bucket,
            table=config.table_name,
            now=scheduled.time,
        )
        logger.info(
            "retired champion",
            extra={"model": retired.model, "reason": retired.reason, "deleted": retired.deleted, "kept": retired.kept},
        )
        metrics.add_metric(name="RetiredResourcesDeleted", unit="Count", value=len(retired.deleted))
        results.append({"model": retired.model, "reason": retired.reason, "deleted": retired.deleted})
    return {"models": results}
