"""ValidateCandidate: judge the tuning job's best training job against the catalog and the champion."""

from typing import Any

from promotion.candidate import validate_candidate
from promotion.clients import client
from promotion.handler_support import catalog_of, step_boundary
from promotion.models import ClaimedState, step_input
from promotion.observability import logger, metrics
from promotion.settings import settings


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("ValidateCandidate")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = step_input(ClaimedState, event, "ValidateCandidate")
    catalog = catalog_of(state)
    result = validate_candidate(
        client("sagemaker"), client("s3"), settings().config_bucket, catalog, state.claim.tuning_job_name
    )
    logger.info("validation", extra={"verdict": result.verdict, "reasons": result.reasons, "warnings": result.warnings})
    return result.model_dump(mode="json")
