"""WriteParameters: one Parameter Store parameter per hyperparameter, verified by reading back."""

from typing import Any

from promotion.contract.state import ValidatedState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.production.parameters import write_hyperparameters


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("WriteParameters")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ValidatedState, event, "WriteParameters")
    catalog = catalog_of(state)
    result = write_hyperparameters(
        client("ssm"),
        client("s3"),
        settings().config_bucket,
        catalog,
        state.claim.release_id,
        state.validation.candidate.hyperparameters,
    )
    logger.info("parameters written", extra={"written": result.written, "removed": result.removed})
    return result.model_dump(mode="json")
