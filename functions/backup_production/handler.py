"""BackupProduction: check the recorded approval, then snapshot parameters and config under the release id before
anything is written."""

from typing import Any

from promotion.contract.state import ClaimedState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.intake.approval import verify_recorded_approval
from promotion.production.backup import backup_production


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("BackupProduction")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ClaimedState, event, "BackupProduction")
    catalog = catalog_of(state)
    verify_recorded_approval(client("dynamodb"), client("sagemaker"), settings().table_name, state, catalog)
    result = backup_production(
        client("ssm"),
        client("s3"),
        settings().config_bucket,
        catalog,
        state.claim.release_id,
        sagemaker=client("sagemaker"),
    )
    logger.info("backup taken", extra={"backup_key": result.backup_key})
    return result.model_dump(mode="json")
