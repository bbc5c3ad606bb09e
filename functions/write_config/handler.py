"""WriteConfig: the schema-checked production-model-config.yaml, archived under the release."""

from typing import Any

from promotion.contract.state import ClaimedState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.production.config import write_config


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("WriteConfig")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ClaimedState, event, "WriteConfig")
    catalog = catalog_of(state)
    result = write_config(client("s3"), settings().config_bucket, catalog, state)
    logger.info("config written", extra={"key": result.key, "sha256": result.sha256})
    return result.model_dump(mode="json")
