"""ValidateCandidate: judge the tuning job's best training job against the catalog and the champion."""

from typing import Any

from promotion.contract.state import ClaimedState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.intake.candidate import validate_candidate


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
