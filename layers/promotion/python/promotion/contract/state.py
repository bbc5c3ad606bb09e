"""Pydantic models of the promotion state machine's document: each state reads what it needs and adds its section.

The execution's state is one JSON document `{claim, validation, approval, backup, parameters, config, pipeline,
error, rollback, result}`; every Lambda state returns its own small section (ResultPath `$.<section>`), so the
console shows a readable summary per state rather than raw API responses.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promotion.contract.hyperparameters import HyperparameterValue
from promotion.contract.names import TRAINING_JOB_LOG_GROUP
from promotion.core.errors import StepInputInvalid


class Section(BaseModel):
    """Base of every state output section: JSON-friendly, immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Outcome(StrEnum):
    PROMOTED = "PROMOTED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"


class RolloutAction(StrEnum):
    """What the state machine does next in the rollout (`$.rollout.action`; its Choice states read these)."""

    WAIT_ENDPOINT = "WAIT_ENDPOINT"
    SHIFT = "SHIFT"
    BAKE = "BAKE"
    HOLD = "HOLD"  # wait for an operator (a pause, or a stage still inconclusive with on_inconclusive: hold)
    NEXT_STAGE = "NEXT_STAGE"
    PROMOTE = "PROMOTE"
    DONE = "DONE"
    ROLLBACK = "ROLLBACK"
    SKIPPED = "SKIPPED"


class ClaimStatus(StrEnum):
    CLAIMED = "CLAIMED"
    DUPLICATE = "DUPLICATE"
    WAIT = "WAIT"
    REJECTED = "REJECTED"


class Claim(Section):
    """ClaimPromotion's output: who this promotion is (model, release, tuning job) and whether it may proceed."""

    status: ClaimStatus
    reason: str = ""
    execution_name: str
    execution_arn: str
    model: str | None = None
    release_id: str | None = None
    tuning_job_name: str | None = None
    tuning_job_arn: str | None = None
    event_time: datetime | None = None
    attempts: int = 0
    # Why the tuning job was started, from its `promotion:*` tags other than the model (a drift-triggered retraining:
    # promotion:trigger=drift and the drift check, feature, PSI and release); empty for a data scientist's own job.
    trigger: dict[str, str] = Field(default_factory=dict)


class CallbackRequest(BaseModel):
    """The input of a `.waitForTaskToken` step: the execution document and the token that completes the task."""

    state: dict[str, Any]
    task_token: str = Field(min_length=1)
    attempt: int = Field(default=0, ge=0)  # Step Functions' retry count of the step ($$.State.RetryCount)


class ClaimInput(BaseModel):
    """What the state machine passes to ClaimPromotion: the raw event and, on a lock-wait loop, the previous claim."""

    event: Any
    execution_name: str
    execution_arn: str
    state: dict[str, Any] = Field(default_factory=dict)


class Check(Section):
    """One gate the candidate was judged on, with the numbers."""

    name: str
    passed: bool
    value: float | str | None = None
    threshold: float | str | None = None
    detail: str = ""


class Candidate(Section):
    """The tuning job's best training job, as validated."""

    tuning_job_name: str
    tuning_job_arn: str
    training_job_name: str
    training_job_arn: str | None = None
    model_data_url: str | None = None
    training_image: str | None = None
    objective_metric: str
    objective_type: Literal["Maximize", "Minimize"]
    objective_value: float | None = None
    hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)


class Champion(Section):
    """The release currently in production (from its config), if any."""

    release_id: str | None = None
    objective_value: float | None = None
    performance: dict[str, float] = Field(default_factory=dict)
    model_package_arn: str | None = None  # its package in the Model Registry (releases from before: none)


class Validation(Section):
    """ValidateCandidate's verdict and every check behind it."""

    verdict: Literal["PASSED", "REJECTED"]
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    candidate: Candidate | None = None
    champion: Champion | None = None
    approval_timeout_seconds: int = 72 * 3600
    # How long TriggerPipeline and CompareWithChampion wait for SageMaker's event that their job ended: the job's
    # MaxRuntimeInSeconds (SageMaker stops it then) plus promotion.jobs.callbacks.CALLBACK_MARGIN_SECONDS.
    training_wait_seconds: int = 2 * 3600
    comparison_wait_seconds: int = 2 * 3600
    data_quality_wait_seconds: int = 2 * 3600


class Approval(Section):
    """Who approved the promotion, when and why (filled by the approval step)."""

    decision: Literal["approve", "reject", "expired"]
    decided_by: str | None = None  # the approver's name in the catalog
    identity: str | None = None  # the IAM identity AWS recorded on the model package for the decision
    model_package_arn: str | None = None
    comment: str = ""
    decided_at: datetime | None = None


class Backup(Section):
    """BackupProduction's output: where the snapshot of production is."""

    release_id: str
    backup_key: str
    parameters_present: int
    parameters_absent: list[str]
    config_existed: bool
    config_version_id: str | None = None
    previous_release_id: str | None = None


class ParametersWritten(Section):
    written: dict[str, str]
    removed: list[str] = Field(default_factory=list)
    verified: bool


class ConfigWritten(Section):
    bucket: str
    key: str
    version_id: str | None = None
    sha256: str
    archive_key: str


class Pipeline(Section):
    """The production pipeline's training job and its status."""

    training_job_name: str
    training_job_arn: str
    status: str
    failure_reason: str | None = None
    image: str | None = None
    # The job's final metrics (FinalMetricDataList): what its metric definitions read from its log.
    metrics: dict[str, float] = Field(default_factory=dict)
    log_group: str = TRAINING_JOB_LOG_GROUP
    log_stream_prefix: str | None = None
    model_data_url: str | None = None
    polls: int = 0


class Comparison(Section):
    """The offline comparison's status and, once complete, its verdict with the deciding numbers."""

    processing_job_name: str | None = None
    image: str | None = None
    status: str
    decision: Literal["PASS", "FAIL", "INCONCLUSIVE"] | None = None
    reason: str = ""
    primary_metric: str | None = None
    champion_value: float | None = None
    challenger_value: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min_gain: float | None = None
    alpha: float | None = None
    mcnemar_p_value: float | None = None
    delong_p_value: float | None = None
    holdout_rows: int | None = None
    # The seed check (the catalog's seed_check_seeds): the primary metric of the challenger's configuration
    # retrained with each seed, and their spread (max - min); a gain inside it is INCONCLUSIVE.
    seed_spread: float | None = None
    seed_values: list[float] = Field(default_factory=list)
    challenger_sha256: str | None = None  # the artifact the comparison evaluated; deployment must serve it
    report_uri: str | None = None
    plots: dict[str, str] = Field(default_factory=dict)
    polls: int = 0


class DataQuality(Section):
    """The data-quality gate's job and, once it ended, its verdict (a FAIL fails the step with DataQualityFailed)."""

    processing_job_name: str | None = None
    image: str | None = None
    status: str
    decision: Literal["PASS", "FAIL"] | None = None
    reason: str = ""
    reference_release: str | None = None  # whose training data profile the shift was measured against
    checks: int = 0
    rows: dict[str, int] = Field(default_factory=dict)
    report_uri: str | None = None
    profile_uri: str | None = None  # this release's training data profile: the next promotion's reference
    polls: int = 0


class StageReport(Section):
    """One look at one rollout stage: traffic, errors, latency, the gate's statistic and its verdict."""

    stage: int
    challenger_percent: float
    look: int
    outcome: str
    reason: str
    champion_requests: int
    challenger_requests: int
    champion_error_rate: float | None = None
    challenger_error_rate: float | None = None
    p99_ratio: float | None = None
    always_valid_p_value: float | None = None
    cs_lower: float | None = Field(default=None, description="anytime-valid lower bound of the error-rate excess")
    cs_upper: float | None = Field(default=None, description="anytime-valid upper bound of the error-rate excess")
    fail_margin: float | None = Field(default=None, description="FAIL when cs_lower is above it (the tolerance)")
    pass_margin: float | None = Field(default=None, description="PASS needs cs_upper below it (the harm ruled out)")
    baked_minutes: float | None = Field(default=None, description="minutes since the stage's weights were served")
    srm_p_value: float | None = None
    # What an operator's say did at this look (paused, promoted now, accepted as inconclusive, resumed, or why not).
    operator: str | None = None


class OperatorDecision(Section):
    """An operator's answer to a held rollout, as the operator control function sent it with the task token (or the
    hold's expiry, `decision: expired`, put by the state machine when nobody answered in time)."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a States.Timeout catch leaves Error/Cause beside it

    decision: Literal["resume", "abort", "promote-now", "expired"]
    by: str | None = None
    identity: str | None = None
    reason: str = ""
    at: datetime | None = None


class Rollout(Section):
    """The A/B rollout on the endpoint: where it stands and what the state machine does next (`action`)."""

    action: RolloutAction
    reason: str = ""
    endpoint_name: str | None = None
    endpoint_status: str | None = None
    # While WAIT_ENDPOINT: the config and weights the last change asked for, and the action once they are live.
    expected_config: str | None = None
    then: Literal[RolloutAction.SHIFT, RolloutAction.BAKE, RolloutAction.DONE] | None = None
    original_config: str | None = None
    rollout_config: str | None = None
    final_config: str | None = None
    champion_variant: str | None = None
    champion_model: str | None = None
    challenger_variant: str | None = None
    challenger_model: str | None = None
    # The challenger's artifact as deployed (releases/<model>/<release-id>/model.tar.gz) and its SHA-256.
    model_data_url: str | None = None
    artifact_sha256: str | None = None
    stages: list[float] = Field(default_factory=list)
    stage_index: int = 0
    weights: dict[str, float] = Field(default_factory=dict)
    stage_started_at: datetime | None = None
    looks: int = 0
    looks_per_stage: int = 1
    extensions: int = 0
    look_seconds: int = 300
    polls: int = 0
    gate_state: dict[str, Any] | None = None
    # The champion's counts over the last stage it shared traffic: the reference of the 100 % stage.
    reference_champion: dict[str, Any] | None = None
    history: list[StageReport] = Field(default_factory=list)
    # "shadow": the challenger is the endpoint's shadow variant (a copy of `shadow_share` of the live requests,
    # answering nobody) and stage_index 0 is the shadow stage's; "live": it serves callers at the stage's weight.
    phase: Literal["shadow", "live"] = "live"
    shadow_config: str | None = None
    shadow_share: float | None = None
    # While HOLD: why the rollout waits for an operator, and for how long at most (AwaitOperator's timeout).
    hold: Literal["paused", "inconclusive"] | None = None
    hold_seconds: int | None = None
    # The operator's answer AwaitOperator was completed with (or its expiry): EvaluateStage applies it once.
    operator: OperatorDecision | None = None


class Restored(Section):
    """Rollback's output: what it put back."""

    restored: bool
    reason: str
    release_id: str | None = None
    parameters_restored: list[str] = Field(default_factory=list)
    parameters_deleted: list[str] = Field(default_factory=list)
    config_action: Literal["restored", "deleted", "unchanged", "pending", "none"] = "none"
    endpoint_action: str = "none"
    # The endpoint is restored one SageMaker call at a time, each waited for (Wait -> Rollback again) until it
    # serves the backed-up config and weights; `endpoint_requested` is the last call made, to tell a failed one.
    endpoint_pending: bool = False
    endpoint_requested: str | None = None
    endpoint_polls: int = 0
    failed_state: str | None = None
    error: str | None = None


class OperatorRollback(Section):
    """An operator's rollback request as the operator rollback state machine carries it: ignored (the package
    change was no rollback request), refused or accepted, who asked (as AWS recorded it) and why, and while
    `pending` the endpoint restore's progress and the model lock's holder (`attempt`)."""

    accepted: bool
    reason: str
    model: str
    ignored: bool = False
    request_id: str | None = None  # the Model Registry state change event's id
    requested_by: str | None = None  # the catalog operator's name
    requested_by_identity: str | None = None  # the IAM identity SageMaker recorded as the package's LastModifiedBy
    model_package_arn: str | None = None  # the live release's package the operator rejected
    request_reason: str = ""  # the package's ApprovalDescription
    pending: bool = False
    rolled_back_release: str | None = None
    restored_release: str | None = None
    attempt: str | None = None
    restored: Restored | None = None
    note: str = ""  # e.g. that an earlier attempt of the same request had begun restoring


class OperatorRollbackStep(BaseModel):
    """A step's input in the operator rollback state machine: the request (the execution's input, SageMaker's model
    package state change event as is, validated by the step), the execution's ARN and, from the second step on, the
    progress so far."""

    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any]
    execution: Annotated[str, Field(min_length=1, max_length=2048)]
    progress: OperatorRollback | None = None


class Result(Section):
    """PublishResult's output: the outcome and where the decision report is."""

    outcome: Outcome
    reason: str
    model: str | None = None
    release_id: str | None = None
    report_key: str | None = None
    lock_released: bool = False
    model_package_arn: str | None = None  # the candidate's package, which now says how the promotion ended
    registry_error: str | None = None  # why the Model Registry could not be told (the outcome stands)
    tracking_run_id: str | None = None  # the promotion's run in the MLflow tracking server, when one is named
    tracking_error: str | None = None  # why the record could not be written there (the outcome stands)


class PromotionState(BaseModel):
    """The whole execution document as a Lambda receives it; each handler requires only its inputs."""

    model_config = ConfigDict(extra="ignore")

    claim: Claim
    validation: Validation | None = None
    approval: Approval | None = None
    backup: Backup | None = None
    parameters: ParametersWritten | None = None
    config: ConfigWritten | None = None
    data_quality: DataQuality | None = None
    pipeline: Pipeline | None = None
    comparison: Comparison | None = None
    rollout: Rollout | None = None
    error: dict[str, Any] | None = None
    rollback: Restored | None = None
    rollback_error: dict[str, Any] | None = None
    result: Result | None = None


# ---------------------------------------------------------------------------------------------------------------
# Step inputs: each step's view of the execution document, with the sections it needs required. A document without
# them (or with one of the wrong shape) is refused with StepInputInvalid naming what is missing, before anything is
# read or written, instead of failing later on a None.

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


def required(value: T | None, what: str) -> T:
    """`value`, or StepInputInvalid saying that `what` (a JSON path of the execution document) is missing."""
    if value is None or value == "":
        raise StepInputInvalid(f"{what} is missing from the execution document")
    return value


def document_value(section: type[BaseModel], field: str, value: str) -> str:
    """`value` as the document spells `section.field`, refused unless the field's type allows it: the state machine's
    Choice states compare with these, and a value the model can never hold would make a branch silently dead."""
    allowed: set[str] = set()
    pending = [section.model_fields[field].annotation]
    while pending:
        kind = pending.pop()
        if get_origin(kind) is Literal:
            allowed.update(str(option) for option in get_args(kind))
        elif isinstance(kind, type) and issubclass(kind, StrEnum):
            allowed.update(member.value for member in kind)
        else:
            pending.extend(get_args(kind))
    if value not in allowed:
        raise ValueError(f"{section.__name__}.{field} is never {value!r} (it is one of {sorted(allowed)})")
    return value


def step_input(model: type[S], event: Any, step: str) -> S:
    """Validate a step's input; a ValidationError becomes StepInputInvalid listing each problem by its path."""
    try:
        return model.model_validate(event)
    except ValidationError as error:
        problems = [
            f"$.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()[:5]
        ]
        raise StepInputInvalid(f"{step} cannot run on this execution document: {'; '.join(problems)}") from None


class ClaimedPromotion(Claim):
    """A claim that let the promotion proceed: who it is, fully known."""

    model: str
    release_id: str
    tuning_job_name: str
    tuning_job_arn: str
    event_time: datetime


class ClaimedState(PromotionState):
    """What every step after ClaimPromotion may rely on."""

    claim: ClaimedPromotion


class ValidatedCandidate(Validation):
    candidate: Candidate


class ValidatedState(ClaimedState):
    """AwaitApproval, TriggerPipeline, WriteParameters: the candidate ValidateCandidate passed."""

    validation: ValidatedCandidate


class PipelineState(ClaimedState):
    """CompareWithChampion, DeployChallenger: the training job TriggerPipeline started (and SageMaker ended)."""

    pipeline: Pipeline


class RolloutState(ClaimedState):
    """ShiftTraffic, EvaluateStage, PromoteChallenger, RetireChampion: the rollout DeployChallenger
    began."""

    rollout: Rollout
