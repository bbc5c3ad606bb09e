"""ClaimPromotion: turn the raw tuning-job event into a promotion identity, dedupe it and take the model's lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from promotion.claim.store import ClaimStore
from promotion.contract.catalog import ModelCatalog, catalog_for
from promotion.contract.events import DRIFT_TRIGGER_TAG, MODEL_TAG, TRIGGER_TAG_PREFIX, TuningJobStateChange
from promotion.contract.names import release_id_for
from promotion.contract.state import Claim, ClaimedPromotion, ClaimInput, ClaimStatus
from promotion.core.errors import UnknownModel
from promotion.jobs.callbacks import CALLBACK_MARGIN_SECONDS, ENDPOINT_WAIT_SECONDS

# WaitForModelLock waits 300 s; 1,500 looks keep an execution well inside Step Functions' 25,000-event history.
MAX_LOCK_WAITS = 1500


def describe_event_errors(error: ValidationError) -> str:
    """Every field problem of a pydantic error, one line, for the execution output."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<event>"
        parts.append(f"{field}: {item['msg']}")
    return "; ".join(parts)


LEASE_MARGIN_SECONDS = 3600


def lock_lease_seconds(catalog: ModelCatalog) -> int:
    """A lease that outlives the model's longest promotion: the approval wait, the training and comparison jobs'
    waits at their longest (promotion.jobs.callbacks: max run time plus a margin), every endpoint change's wait at its
    longest, and every stage of the rollout undecided to its last extension, plus an hour."""
    comparison = (
        catalog.comparison.max_runtime_seconds + CALLBACK_MARGIN_SECONDS if catalog.comparison is not None else 0
    )
    rollout = catalog.rollout
    rollout_seconds = (
        len(rollout.stages) * rollout.bake_minutes * 60 * (1 + rollout.max_bake_extensions)
        + (len(rollout.stages) + 2) * ENDPOINT_WAIT_SECONDS  # DeployChallenger, each ShiftTraffic, PromoteChallenger
        if rollout is not None
        else 0
    )
    return int(
        catalog.approval.timeout_hours * 3600
        + catalog.training.max_runtime_seconds
        + CALLBACK_MARGIN_SECONDS
        + comparison
        + rollout_seconds
        + LEASE_MARGIN_SECONDS
    )


def parse_promotion_request(request: ClaimInput, catalog_dir: Path) -> Claim | tuple[ClaimedPromotion, ModelCatalog]:
    """A REJECTED claim for an event that cannot be promoted, or the claim identity and the model's catalog."""
    previous = request.state.get("claim")
    attempts = int(previous.get("attempts", 0)) + 1 if isinstance(previous, dict) else 1
    base = {"execution_name": request.execution_name, "execution_arn": request.execution_arn, "attempts": attempts}
    try:
        event = TuningJobStateChange.model_validate(request.event)
    except ValidationError as error:
        return Claim(
            status=ClaimStatus.REJECTED, reason=f"malformed tuning job event: {describe_event_errors(error)}", **base
        )
    detail = event.detail
    identity = {
        **base,
        "tuning_job_name": detail.HyperParameterTuningJobName,
        "tuning_job_arn": detail.HyperParameterTuningJobArn,
        "event_time": event.time,
        "trigger": {
            key: value for key, value in detail.Tags.items() if key.startswith(TRIGGER_TAG_PREFIX) and key != MODEL_TAG
        },
    }
    if detail.HyperParameterTuningJobStatus != "Completed":
        return Claim(
            status=ClaimStatus.REJECTED,
            reason=f"tuning job {detail.HyperParameterTuningJobName} is {detail.HyperParameterTuningJobStatus}; "
            "only Completed tuning jobs are promoted",
            **identity,
        )
    model = detail.Tags.get(MODEL_TAG)
    if not model:
        return Claim(
            status=ClaimStatus.REJECTED, reason=f"tuning job has no '{MODEL_TAG}' tag naming the model", **identity
        )
    try:
        catalog = catalog_for(model, catalog_dir)
    except UnknownModel as error:
        return Claim(status=ClaimStatus.REJECTED, reason=str(error), model=model, **identity)
    release_id = release_id_for(detail.HyperParameterTuningJobArn, event.time)
    return ClaimedPromotion(status=ClaimStatus.CLAIMED, model=model, release_id=release_id, **identity), catalog


TRIGGER_VERIFIED = "promotion:trigger-verified"


def claim(
    request: ClaimInput,
    catalog_dir: Path,
    store: ClaimStore,
    started_by_drift: Callable[[str, str], bool] | None = None,
) -> Claim:
    """Dedupe by tuning job and take the model's lock; WAIT when another promotion of the model runs first.
    `started_by_drift(model, tuning job)` checks a `promotion:trigger=drift` tag against drift's own record of the
    retraining (promotion.monitoring.retraining): the tag alone is anyone's word who may tag a tuning job."""
    parsed = parse_promotion_request(request, catalog_dir)
    if isinstance(parsed, Claim):
        return parsed
    identity, catalog = parsed
    if identity.trigger.get(DRIFT_TRIGGER_TAG) == "drift" and started_by_drift is not None:
        verified = started_by_drift(identity.model, identity.tuning_job_name)
        identity = identity.model_copy(
            update={
                "trigger": {
                    **identity.trigger,
                    TRIGGER_VERIFIED: "true" if verified else "false: no retraining record of the model names this job",
                }
            }
        )
    attempt = store.claim(
        model=identity.model,
        tuning_job_arn=identity.tuning_job_arn,
        release_id=identity.release_id,
        execution_arn=identity.execution_arn,
        event_time=identity.event_time,
        lease_seconds=lock_lease_seconds(catalog),
        settle=identity.attempts == 1,
    )
    if attempt.status == ClaimStatus.WAIT and identity.attempts >= MAX_LOCK_WAITS:
        store.forget(model=identity.model, tuning_job_arn=identity.tuning_job_arn, execution_arn=identity.execution_arn)
        return identity.model_copy(
            update={
                "status": ClaimStatus.REJECTED,
                "reason": f"gave up after {identity.attempts} looks at the model lock: {attempt.reason}; "
                "send the tuning job event again to retry",
            }
        )
    update: dict[str, object] = {"status": attempt.status, "reason": attempt.reason}
    if attempt.release_id is not None:
        update["release_id"] = attempt.release_id  # a takeover's own release id
    return identity.model_copy(update=update)
