"""What every thin handler shares: log context (model, release id, execution), the catalog lookup, and turning
transient AWS errors into the one error name the state machine retries."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog, catalog_for
from promotion.contract.state import CallbackRequest, Claim, ClaimedState, PromotionState, Section
from promotion.core.clients import client
from promotion.core.errors import EndpointBusy, TransientAwsError, UnknownModel, is_endpoint_busy
from promotion.core.observability import logger, metrics
from promotion.core.retry import is_transient
from promotion.core.settings import settings
from promotion.jobs.callbacks import Waiting, WaitKind, await_change

F = TypeVar("F", bound=Callable[..., Any])


def bind_claim(claim: Claim) -> None:
    """Every log line and metric of this invocation carries the model, release id and execution name."""
    logger.append_keys(model=claim.model, release_id=claim.release_id, execution_name=claim.execution_name)
    if claim.model:
        metrics.add_dimension(name="model", value=claim.model)


def catalog_of(state: PromotionState) -> ModelCatalog:
    """The catalog of the execution's model, after binding the log context."""
    bind_claim(state.claim)
    if state.claim.model is None:
        raise ValueError("the execution has no model: ClaimPromotion did not claim it")
    return catalog_for(state.claim.model, settings().catalog_dir)


def known_catalog(state: PromotionState) -> ModelCatalog | None:
    """The catalog of the execution's model, or None when it has no model or the model has no catalog (an event
    for an unknown model ends in PublishResult too)."""
    if state.claim.model is None:
        return None
    try:
        return catalog_for(state.claim.model, settings().catalog_dir)
    except UnknownModel:  # PublishResult reports it, with nothing to look up
        return None


def step_boundary(step: str) -> Callable[[F], F]:
    """Around every step handler: the step's duration as a metric (dimension model, set by the handler), and
    throttling or brief unavailability (after botocore's own retries) re-raised as TransientAwsError, and
    SageMaker's refusal of an endpoint change while another is in progress as EndpointBusy: the two error names
    the state machine retries (EndpointBusy after a longer wait)."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outcome = "Failed"
            try:
                result = handler(*args, **kwargs)
                outcome = "Succeeded"
                return result
            except ClientError as error:
                if is_transient(error):
                    raise TransientAwsError(str(error)) from error
                if is_endpoint_busy(error):
                    raise EndpointBusy(str(error)) from error
                raise
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000
                metrics.add_metric(name=f"{step}Duration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
                metrics.add_metric(name=f"{step}{outcome}", unit=MetricUnit.Count, value=1)

        return wrapper  # type: ignore[return-value]

    return decorate


def answer_by_callback(
    step: str, kind: WaitKind, resource: str | None, request: CallbackRequest, state: ClaimedState, result: Section
) -> dict[str, Any]:
    """A `.waitForTaskToken` step's end: its result completes the task now, or once SageMaker says the work is done
    (promotion.jobs.callbacks). The return value is only logged: Step Functions takes the task's output from the
    token."""
    config = settings()
    waiting = Waiting(
        kind=kind,
        resource=resource or "",
        step=step,
        task_token=request.task_token,
        attempt=request.attempt,
        claim=state.claim,
        section=result.model_dump(mode="json"),
    )
    resumed = await_change(
        client("dynamodb"),
        client("stepfunctions"),
        client("sagemaker"),
        client("s3"),
        table=config.table_name,
        waiting=waiting,
        result=result,
    )
    logger.info("waiting by callback", extra=resumed.model_dump())
    return result.model_dump(mode="json")
