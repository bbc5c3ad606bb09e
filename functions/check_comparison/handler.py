"""CheckComparison: the comparison job's status and, once complete, its PASS / FAIL / INCONCLUSIVE verdict."""

from typing import Any

from promotion.clients import client
from promotion.comparison import check_comparison
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import ComparisonState, step_input
from promotion.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("CheckComparison")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ComparisonState, event, "CheckComparison")
    catalog_of(state)
    result = check_comparison(client("sagemaker"), client("s3"), state.comparison)
    logger.info("comparison status", extra=result.model_dump(mode="json"))
    return result.model_dump(mode="json")
