"""ClaimPromotion: dedupe the tuning job and take its model's lock."""

from typing import Any

from promotion.claim.claim import claim
from promotion.claim.store import ClaimStore, execution_liveness
from promotion.contract.state import ClaimInput
from promotion.core.boundary import bind_claim, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.monitoring.retraining import started_by_drift


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("ClaimPromotion")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ClaimInput.model_validate(event)
    table = settings().table_name
    store = ClaimStore(client("dynamodb"), table, execution_liveness(client("stepfunctions")))
    result = claim(
        request,
        settings().catalog_dir,
        store,
        lambda model, job: started_by_drift(client("dynamodb"), table, model, job),
    )
    bind_claim(result)
    logger.info("claim", extra={"status": result.status, "reason": result.reason})
    return result.model_dump(mode="json")
