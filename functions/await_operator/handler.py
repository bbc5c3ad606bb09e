"""AwaitOperator: the rollout holds its weights (an operator's pause, or a stage still inconclusive with
`on_inconclusive: hold`); the task token is kept on the release's control record and the operators are told what was
measured and how to answer."""

from typing import Any

from pydantic import BaseModel

from promotion.contract.state import RolloutState, step_input
from promotion.core.boundary import step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.result.notify import publish_notice
from promotion.rollout.control import hold_chat_notification, hold_notice, hold_rollout


class AwaitOperatorInput(BaseModel):
    state: RolloutState
    task_token: str


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("AwaitOperator")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(AwaitOperatorInput, event, "AwaitOperator")
    claim, rollout = request.state.claim, request.state.rollout
    config = settings()
    held = hold_rollout(
        client("dynamodb"),
        client("stepfunctions"),
        config.table_name,
        claim.model,
        claim.release_id,
        rollout,
        request.task_token,
    )
    notice = hold_notice(claim.model, claim.release_id, rollout, held)
    if held["held"] and config.notification_topic_arn:
        publish_notice(
            client("sns"),
            config.notification_topic_arn,
            subject=f"Rollout held: {claim.model} {claim.release_id}",
            detail=notice,
            chat=hold_chat_notification(notice),
        )
    logger.info("rollout held" if held["held"] else "hold answered at once", extra={"notice": notice})
    metrics.add_metric(name="RolloutHeld", unit="Count", value=1)
    return notice
