"""Operator rollback state machine steps (BeginRollback, ContinueRollback): a rejection of a model's live release
in the Model Registry, read back from SageMaker, restores the previous release or is refused with the reason; while
the endpoint is being restored the machine waits and runs the next step."""

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError

from promotion.claim.store import ClaimStore, execution_liveness
from promotion.contract.catalog import load_catalogs
from promotion.contract.events import ModelPackageStateChange
from promotion.contract.state import OperatorRollback, OperatorRollbackStep
from promotion.core.boundary import step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.production.operator_rollback import rollback_step


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("OperatorRollback")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = OperatorRollbackStep.model_validate(event)
    logger.append_keys(execution_name=step.execution.rsplit(":", 1)[-1])
    try:
        change = ModelPackageStateChange.model_validate(step.event)
    except ValidationError as error:
        logger.warning("rollback refused: malformed event", extra={"errors": error.errors(include_url=False)})
        reason = f"malformed model package state change: {error.error_count()} problem(s)"
        return OperatorRollback(accepted=False, reason=reason, model="unknown").model_dump(mode="json")
    config = settings()
    outcome = rollback_step(
        change,
        step.progress,
        load_catalogs(config.catalog_dir),
        ssm=client("ssm"),
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        bucket=config.config_bucket,
        table=config.table_name,
        store=ClaimStore(client("dynamodb"), config.table_name, execution_liveness(client("stepfunctions"))),
        sagemaker=client("sagemaker"),
        execution=step.execution,
    )
    logger.append_keys(
        model=outcome.model,
        release_id=outcome.rolled_back_release,
        requested_by=outcome.requested_by,
        requested_by_identity=outcome.requested_by_identity,
    )
    if outcome.ignored:
        logger.info("not a rollback request", extra={"reason": outcome.reason})
        return outcome.model_dump(mode="json")
    (logger.info if outcome.accepted else logger.warning)("operator rollback", extra={"reason": outcome.reason})
    if not outcome.pending:  # counted once per request, when it is decided
        name = "OperatorRollbackAccepted" if outcome.accepted else "OperatorRollbackRefused"
        metrics.add_metric(name=name, unit="Count", value=1)
    return outcome.model_dump(mode="json")
