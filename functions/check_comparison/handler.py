"""CheckComparison: the comparison job's status and, once complete, its PASS / FAIL / INCONCLUSIVE verdict."""

from typing import Any

from promotion.clients import client
from promotion.comparison import check_comparison
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import PromotionState
from promotion.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("CheckComparison")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = PromotionState.model_validate(event)
    catalog_of(state)
    assert state.comparison is not None
    result = check_comparison(client("sagemaker"), client("s3"), state.comparison)
    logger.info("comparison status", extra=result.model_dump(mode="json"))
    return result.model_dump(mode="json")
