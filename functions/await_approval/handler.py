"""AwaitApproval: register the candidate in the Model Registry, keep the task token with the pending promotion and
tell the approvers."""

from typing import Any

from pydantic import BaseModel

from promotion.contract.job_image import PROJECT_IMAGE
from promotion.contract.state import ValidatedState, step_input
from promotion.core.boundary import catalog_of, step_boundary
from promotion.core.clients import client
from promotion.core.observability import logger, metrics
from promotion.core.settings import settings
from promotion.intake.approval import request_approval


class AwaitApprovalInput(BaseModel):
    state: ValidatedState
    task_token: str


@logger.inject_lambda_context(clear_state=True)  # no keys of a previous invocation leak into this one
@metrics.log_metrics
@step_boundary("AwaitApproval")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = step_input(AwaitApprovalInput, event, "AwaitApproval")
    catalog = catalog_of(request.state)
    config = settings()
    notice = request_approval(
        request.state,
        request.task_token,
        catalog,
        dynamodb=client("dynamodb"),
        events=client("events"),
        sns=client("sns") if config.notification_topic_arn else None,
        sagemaker=client("sagemaker"),
        serving_image=config.images().resolve(catalog.rollout.serving_image if catalog.rollout else PROJECT_IMAGE),
        table=config.table_name,
        event_bus_name=config.event_bus_name,
        topic_arn=config.notification_topic_arn,
    )
    logger.info(
        "approval requested",
        extra={
            "approvers": notice["approvers"],
            "decide_by": notice["decide_by"],
            "model_package_arn": notice["model_package_arn"],
        },
    )
    return notice
