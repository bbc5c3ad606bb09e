"""The model catalog: one YAML file per promoted model, validated into pydantic models.

Everything model-specific (Parameter Store prefix, config key, hyperparameter schema, thresholds, approvers,
training, comparison and rollout settings) lives here, so a second model is a second file, not code.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promotion.contract.job_image import (
    ALWAYS_EMITTED,
    MAX_TRAINING_METRIC_DEFINITIONS,
    PROJECT_IMAGE,
    ImageError,
    check_image,
    project_image_reports,
)
from promotion.contract.names import ARCHIVE_PREFIX, REPORTS_PREFIX, tuning_job_name
from promotion.core.errors import CatalogError, UnknownModel
from promotion.rollout.gate import FAIL_TOLERANCE_RATIO

MODEL_ID_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # a tuning job name's model part does not depend on the time
HYPERPARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricDefinition(_Strict):
    """How SageMaker reads one metric from a training job's log (AlgorithmSpecification.MetricDefinitions)."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    regex: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("regex")
    @classmethod
    def _one_group(cls, regex: str) -> str:
        try:
            compiled = re.compile(regex)
        except re.error as error:
            raise ValueError(f"regex {regex!r} does not compile: {error}") from None
        if compiled.groups < 1:
            raise ValueError(f"regex {regex!r} has no group: SageMaker takes the metric's value from the first group")
        return regex


class HyperparameterSpec(_Strict):
    """Schema of one hyperparameter: its type and either a numeric range or a set of choices."""

    type: Literal["int", "float", "str", "bool"]
    min: float | None = None
    max: float | None = None
    choices: list[str | int | float | bool] | None = None
    required: bool = True

    @model_validator(mode="after")
    def _range_is_consistent(self) -> HyperparameterSpec:
        if self.type in ("str", "bool") and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max only apply to int and float hyperparameters, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.type == "str" and not self.choices:
            raise ValueError("a str hyperparameter needs its allowed choices")
        return self


class ParameterStoreSettings(_Strict):
    prefix: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9_.-]+)+$")]


class ConfigLocation(_Strict):
    """Where the model's production config lives inside the product's config bucket."""

    key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]+\.ya?ml$")]

    @field_validator("key")
    @classmethod
    def _not_under_reserved_prefixes(cls, key: str) -> str:
        if key.startswith((ARCHIVE_PREFIX, REPORTS_PREFIX, "/")):
            raise ValueError("config key may not start with '/', 'archive/' or 'reports/' (reserved prefixes)")
        return key


class Objective(_Strict):
    metric: str
    type: Literal["Maximize", "Minimize"]


class Thresholds(_Strict):
    """Accuracy gate (pass / warn) and the minimum objective gain over the champion."""

    metric: str
    pass_: Annotated[float, Field(alias="pass", ge=0.0, le=1.0)]
    warn: Annotated[float, Field(ge=0.0, le=1.0)]
    min_gain_over_champion: Annotated[float, Field(ge=0.0)] = 0.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _warn_below_pass(self) -> Thresholds:
        if self.warn > self.pass_:
            raise ValueError(f"warn ({self.warn}) must not exceed pass ({self.pass_})")
        return self


IAM_NAME_PATTERN = r"^[\w+=,.@-]{1,64}$"
# SageMaker's session names and role names (the parts of an assumed-role ARN) use this alphabet.
MODEL_PACKAGE_GROUP_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>[^/]+)$")
_IAM_USER = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):user/(?:[^/]+/)*(?P<user>[^/]+)$")


class Person(_Strict):
    """One approver or operator: an IAM identity, as AWS names whoever changed a model package (its
    LastModifiedBy), with the name people know them by. `role` alone admits every session of that role (a role only
    this person assumes); `role` with `session` admits one person of a shared role (an IAM Identity Center
    permission set's role, whose session name is the user's); `user` is an IAM user."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Annotated[str | None, Field(pattern=IAM_NAME_PATTERN)] = None
    session: Annotated[str | None, Field(pattern=r"^[\w+=,.@-]{2,64}$")] = None
    user: Annotated[str | None, Field(pattern=IAM_NAME_PATTERN)] = None

    @model_validator(mode="after")
    def _one_identity(self) -> Person:
        if (self.role is None) == (self.user is None):
            raise ValueError(f"{self.name!r} needs exactly one of role (with an optional session) or user")
        if self.session is not None and self.role is None:
            raise ValueError(f"{self.name!r}: a session belongs to a role")
        return self

    def matches(self, identity_arn: str, account: str) -> bool:
        """Whether AWS's ARN of the principal (`IamIdentity.Arn`) is this person, in the package's account."""
        assumed = _ASSUMED_ROLE.match(identity_arn)
        if assumed is not None:
            return (
                assumed["account"] == account
                and self.role == assumed["role"]
                and self.session in (None, assumed["session"])
            )
        user = _IAM_USER.match(identity_arn)
        return user is not None and user["account"] == account and self.user == user["user"]

    @property
    def identity(self) -> str:
        """How the catalog names this identity (for messages and the lists of approvers in notices)."""
        if self.user is not None:
            return f"user/{self.user}"
        return f"role/{self.role}" + (f" session {self.session}" if self.session else " (any session)")


class Approval(_Strict):
    """Who may approve, where candidates are registered (a SageMaker Model Registry package group) and for how long
    a candidate waits."""

    approvers: Annotated[list[Person], Field(min_length=1)]
    model_package_group: Annotated[str | None, Field(pattern=MODEL_PACKAGE_GROUP_PATTERN)] = None
    demo_approver: str | None = None  # the `name` of the approver the local runtime plays
    timeout_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 72

    @model_validator(mode="after")
    def _demo_approver_is_an_approver(self) -> Approval:
        names = [approver.name for approver in self.approvers]
        if len(set(names)) != len(names):
            raise ValueError("approvers' names must be unique (they are what reports and configs show)")
        if self.demo_approver is not None and self.demo_approver not in names:
            raise ValueError(f"demo_approver {self.demo_approver!r} is not one of the approvers' names")
        return self

    def approver(self, identity_arn: str, account: str) -> Person | None:
        """The catalog approver AWS's identity is, if any."""
        return next((one for one in self.approvers if one.matches(identity_arn, account)), None)

    def approver_named(self, name: str) -> Person | None:
        return next((one for one in self.approvers if one.name == name), None)


class Training(_Strict):
    """Settings of the production pipeline's SageMaker training job (and of the data scientists' tuning job)."""

    # `project` (the stack's job image, jobs/Dockerfile) or an ECR image URI with {region}
    # (promotion.contract.job_image).
    image: str = PROJECT_IMAGE
    # Only for an image other than the project's: how SageMaker reads its metrics from the log. The project image's
    # are built in (promotion.contract.job_image.metric_definitions).
    metric_definitions: Annotated[
        list[MetricDefinition] | None, Field(min_length=1, max_length=MAX_TRAINING_METRIC_DEFINITIONS)
    ] = None
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    volume_gb: Annotated[int, Field(ge=1, le=16384)] = 30
    max_runtime_seconds: Annotated[int, Field(ge=60, le=28 * 24 * 3600)] = 3600
    train_data: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.*$")]
    validation_data: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.*$")]
    output_path: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.*$")]


class Comparison(_Strict):
    """The offline comparison job: challenger vs champion on the same held-out rows."""

    holdout_data: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.*$")]
    # The comparison runs jobs/comparison/compare.py: the project image (or one built from it, with {region}).
    image: str = PROJECT_IMAGE
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.xlarge"
    primary_metric: Literal["roc_auc", "pr_auc", "accuracy", "f1"] = "roc_auc"
    min_gain: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    bootstrap_resamples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    max_runtime_seconds: Annotated[int, Field(ge=60, le=24 * 3600)] = 3600
    # Seed sensitivity: the job retrains the challenger's configuration with this many seeds, and a gain inside their
    # spread (max - min of the primary metric) is INCONCLUSIVE, not PASS. None: not checked.
    seed_check_seeds: Annotated[int, Field(ge=2, le=20)] | None = None


class MinimumRows(_Strict):
    train: Annotated[int, Field(ge=1)] = 1000
    validation: Annotated[int, Field(ge=1)] = 200
    holdout: Annotated[int, Field(ge=1)] = 1000


MAX_DATA_QUALITY_FEATURES = 100


class DataQuality(_Strict):
    """The data-quality gate (jobs/data_quality/check.py, a processing job right after the approval and before
    anything in production is written): the training, validation and holdout data checked for schema, rows, nulls,
    constant columns, label values and balance, and each feature's shift (population stability index) against the
    champion's training data. Any failed check stops the promotion with DataQualityFailed, naming it."""

    # The features' names, in the CSV's order after the label: the schema (their count + 1 fields per row) and the
    # names the report uses. None: the champion's training data's column count, else the train channel's.
    feature_names: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] | None = None
    min_rows: MinimumRows = MinimumRows()
    max_null_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    label_values: Annotated[list[float], Field(min_length=2, max_length=100)] = [0.0, 1.0]
    min_positive_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.001
    max_positive_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    # PSI over the champion's deciles: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.
    max_psi: Annotated[float, Field(gt=0.0, le=10.0)] = 0.25
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    image: str = PROJECT_IMAGE  # runs jobs/data_quality/check.py
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    max_runtime_seconds: Annotated[int, Field(ge=60, le=24 * 3600)] = 1800

    @model_validator(mode="after")
    def _rates(self) -> DataQuality:
        if self.min_positive_rate > self.max_positive_rate:
            raise ValueError("data_quality.min_positive_rate is above max_positive_rate")
        # The job gets one container argument per value: SageMaker takes at most 256, of at most 256 characters.
        if self.feature_names is not None and len(self.feature_names) > MAX_DATA_QUALITY_FEATURES:
            raise ValueError(f"data_quality.feature_names lists more than {MAX_DATA_QUALITY_FEATURES} features")
        if len(json.dumps(self.label_values)) > 200:
            raise ValueError("data_quality.label_values is longer than 200 characters as JSON")
        return self

    def thresholds(self) -> dict[str, Any]:
        """The limits as the job takes them (--thresholds)."""
        return self.model_dump(
            include={"min_rows", "max_null_fraction", "label_values", "min_positive_rate", "max_positive_rate",
                     "max_psi", "bins"}
        )  # fmt: skip


class Retraining(_Strict):
    """The tuning job drift starts (promotion.monitoring.retraining): built from the catalog as the data scientists'
    launcher builds it (promotion_toolkit.launcher), at most one open per model and one per `min_interval_hours`."""

    strategy: Literal["Bayesian", "Random", "Hyperband"] = "Bayesian"
    max_jobs: Annotated[int, Field(ge=1, le=500)] = 20
    max_parallel_jobs: Annotated[int, Field(ge=1, le=100)] = 2
    min_interval_hours: Annotated[float, Field(ge=1, le=90 * 24)] = 24


MAX_CAPTURE_HOURS = 8  # one processing input per captured hour, beside the reference: SageMaker takes 10 inputs


class Monitoring(_Strict):
    """Watching the live release on its endpoint (promotion.monitoring): the rollout's endpoint configs capture a
    sample of the requests (SageMaker data capture); every `schedule_hours` a processing job (jobs/monitoring/drift.py)
    compares the captured features of that window with the live release's training data profile (the data-quality
    gate's), by the population stability index per feature. A feature above `max_psi` is drift: a CloudWatch metric,
    a notice and, within the rate limits, a new tuning job (`retraining`) whose completion starts a promotion.

    SageMaker Model Monitor schedules are not used: Model Monitor is no longer open to new customers (AWS's notice on
    its pages), so a product for new accounts cannot rest on it."""

    capture_percent: Annotated[int, Field(ge=1, le=100)] = 20
    # A divisor of 24 (checks at the same hours every day, windows that never overlap), at most MAX_CAPTURE_HOURS.
    schedule_hours: Literal[1, 2, 3, 4, 6, 8] = 1
    min_rows: Annotated[int, Field(ge=10)] = 500  # captured requests a window needs before it is judged
    max_psi: Annotated[float, Field(gt=0.0, le=10.0)] = 0.25
    capture_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    image: str = PROJECT_IMAGE  # runs jobs/monitoring/drift.py
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    max_runtime_seconds: Annotated[int, Field(ge=60, le=24 * 3600)] = 1800
    retraining: Retraining | None = Retraining()


class Tracking(_Strict):
    """Where every promotion's record goes (promotion.result.tracker): an MLflow tracking server, as a SageMaker
    managed server's ARN or an http(s):// URI. None: the stack's `mlflow_tracking_uri` context, else nowhere."""

    mlflow_uri: (
        Annotated[
            str,
            Field(
                pattern=r"^(arn:aws:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/[A-Za-z0-9-]{1,256}|https?://\S+)$"
            ),
        ]
        | None
    ) = None
    experiment: Annotated[str, Field(min_length=1, max_length=200)] = "promotions"


DEFAULT_MIN_BAKE_MINUTES = 10.0
SMALLEST_DEFAULT_RULE_OUT_RATIO = 1.2  # a PASS bound must stay above the FAIL tolerance (1.1x)


def default_rule_out_ratio(stage_number: int) -> float:
    """Stage k (1-based) passes once a (1 + 1/k)x error rate is ruled out: 2x at 1 %, 1.5x at 10 %, 1.33x, 1.25x,
    and 1.2x from the fifth stage on. Each stage sees several times the traffic of the one before, so it can rule out
    a smaller harm in about the same time."""
    return max(1.0 + 1.0 / stage_number, SMALLEST_DEFAULT_RULE_OUT_RATIO)


class Gates(_Strict):
    """What each rollout stage must show, challenger against the concurrent champion."""

    # FAIL side: the chance over a stage's looks that a challenger within the tolerance (+10 %) is failed.
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    # PASS side: the chance over a stage's looks that a challenger exactly as bad as the harm the stage must rule
    # out passes it (lower it to stop more bad challengers at the 1 % stage; stages take longer).
    beta: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    # The error-rate ratio (challenger/champion) each stage must rule out before it passes, one per stage; the
    # default is 1 + 1/k at stage k (at least 1.2). `error_rate_tolerance` is the first stage's absolute floor: stage
    # k rules out the larger of its ratio's excess and the floor shrunk as its ratio's excess is (1/k by default),
    # so a model with few errors is not held to an excess its traffic cannot resolve at 1 %, and later stages still
    # rule out smaller harms.
    rule_out_ratios: list[Annotated[float, Field(gt=FAIL_TOLERANCE_RATIO, le=100.0)]] | None = None
    error_rate_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.005
    # Requests each variant needs before their p99 latencies are compared (to FAIL or to PASS a stage): a p99 of n
    # requests rests on the slowest n/100. Lower it for an endpoint whose 1 % stage sees fewer requests in a bake.
    min_latency_requests: Annotated[int, Field(ge=1)] = 1000
    max_p99_latency_ratio: Annotated[float, Field(gt=1.0, le=100.0)] = 1.5
    min_requests: Annotated[int, Field(ge=1)] = 200
    srm_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.001


class Shadow(_Strict):
    """A shadow stage before the first live one: SageMaker sends the challenger, as the endpoint's shadow variant, a
    copy of `sampling_percent` % of the live requests; it answers nobody. The stage's gate (the first stage's harm
    and guardrails) compares its errors and latency with the champion's on the same requests, with the same bake and
    looks, before any caller is served by the challenger."""

    sampling_percent: Annotated[float, Field(gt=0, le=100)] = 100


class Rollout(_Strict):
    """The A/B rollout on the production endpoint: stages (challenger %), bake time and gates."""

    endpoint_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
    # The endpoint serves the model the training job wrote: the project image's `serve` reads that format.
    serving_image: str = PROJECT_IMAGE
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    initial_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    stages: Annotated[list[float], Field(min_length=1)] = [1, 10, 50, 100]
    # A stage ends at the first look that decides (PASS or FAIL); bake_minutes (times 1 + max_bake_extensions) is
    # the longest it may take, min_bake_minutes the shortest before it may PASS (warm-up, effects that need time;
    # default: 10 minutes, or the whole bake if it is shorter).
    bake_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 60
    min_bake_minutes: Annotated[float | None, Field(ge=0, le=7 * 24 * 60)] = None
    look_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 5
    max_bake_extensions: Annotated[int, Field(ge=0, le=20)] = 2
    # What a stage still INCONCLUSIVE after its extensions does: roll back, or hold its weights and wait for an
    # operator (`promote resume` accepts the stage, `abort` rolls back, `promote-now` promotes).
    on_inconclusive: Literal["rollback", "hold"] = "rollback"
    # How long a held rollout (paused by an operator, or inconclusive with on_inconclusive: hold) waits for an
    # operator, and what happens when nobody answers: roll back (the default) or go on as if resumed.
    hold_hours: Annotated[float, Field(gt=0, le=7 * 24)] = 24
    on_hold_expiry: Literal["rollback", "continue"] = "rollback"
    # How long after a promotion the previous champion's model and endpoint config are kept, so an operator's
    # rollback restores it with one endpoint update; an hourly schedule deletes them afterwards.
    rollback_window_hours: Annotated[float, Field(gt=0, le=90 * 24)] = 72
    shadow: Shadow | None = None
    gates: Gates = Gates()

    @field_validator("stages")
    @classmethod
    def _stages_grow_to_100(cls, stages: list[float]) -> list[float]:
        if any(not 0 < stage <= 100 for stage in stages):
            raise ValueError("every stage is a challenger share in (0, 100]")
        if any(later <= earlier for earlier, later in itertools.pairwise(stages)):
            raise ValueError("stages must strictly increase")
        if stages[-1] != 100:
            raise ValueError("the last stage must be 100")
        return stages

    @model_validator(mode="after")
    def _look_within_bake(self) -> Rollout:
        if self.look_minutes > self.bake_minutes:
            raise ValueError(f"look_minutes ({self.look_minutes}) exceeds bake_minutes ({self.bake_minutes})")
        if self.min_bake_minutes is not None and self.min_bake_minutes > self.bake_minutes:
            raise ValueError(f"min_bake_minutes ({self.min_bake_minutes}) exceeds bake_minutes ({self.bake_minutes})")
        last_look = max(1, round(self.bake_minutes / self.look_minutes)) * self.look_minutes
        if last_look < self.shortest_bake_minutes:
            raise ValueError(
                f"a bake's last look comes after {last_look:g} minutes (bake_minutes {self.bake_minutes:g} in looks of "
                f"{self.look_minutes:g}), before the {self.shortest_bake_minutes:g}-minute minimum bake: no stage "
                "could pass; lengthen bake_minutes or shorten min_bake_minutes"
            )
        ratios = self.gates.rule_out_ratios
        if ratios is not None and len(ratios) != len(self.stages):
            raise ValueError(
                f"gates.rule_out_ratios has {len(ratios)} values for {len(self.stages)} stages: give one per stage"
            )
        return self

    @property
    def shortest_bake_minutes(self) -> float:
        """How long a stage bakes at least before it may PASS."""
        return (
            min(DEFAULT_MIN_BAKE_MINUTES, self.bake_minutes) if self.min_bake_minutes is None else self.min_bake_minutes
        )

    def rule_out_ratio(self, stage_index: int) -> float:
        """The error-rate ratio stage `stage_index` (0-based) must rule out to pass (the last one past the list, as
        when the catalog lost stages while a rollout of the old list runs)."""
        ratios = self.gates.rule_out_ratios
        if ratios is not None:
            return ratios[min(stage_index, len(ratios) - 1)]
        return default_rule_out_ratio(stage_index + 1)

    def rule_out_floor(self, stage_index: int) -> float:
        """The absolute excess stage `stage_index` always rules out: `error_rate_tolerance`, shrunk as the stage's
        ratio excess is against the first stage's (1/k with the default ratios)."""
        first = self.rule_out_ratio(0) - 1
        return self.gates.error_rate_tolerance * (self.rule_out_ratio(stage_index) - 1) / first


class SlackChannel(_Strict):
    """A Slack channel AWS Chatbot (Amazon Q Developer in chat applications) posts the product's notifications in;
    the workspace must be authorized in the Chatbot console once per account."""

    workspace_id: Annotated[str, Field(pattern=r"^[0-9A-Z]{1,255}$")]
    channel_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,255}$")]


class TeamsChannel(_Strict):
    """A Microsoft Teams channel, likewise (the team authorized in the Chatbot console)."""

    team_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")]
    tenant_id: Annotated[str, Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")]
    # URL-encoded, as in the channel's link (19%3A...%40thread.tacv2): the form AWS Chatbot takes.
    channel_id: Annotated[
        str, Field(pattern=r"^([a-zA-Z0-9-_=+/.,])*%3[aA]([a-zA-Z0-9-_=+/.,])*%40([a-zA-Z0-9-_=+/.,])*$")
    ]


class Notifications(_Strict):
    """Chat channels that receive the product's notifications (approval requests, holds, results and alarms)."""

    slack: list[SlackChannel] = []
    teams: list[TeamsChannel] = []


class ModelCatalog(_Strict):
    """One model's catalog entry (`models/<id>.yaml`)."""

    id: Annotated[str, Field(pattern=MODEL_ID_PATTERN)]
    description: str = ""
    algorithm: str
    parameter_store: ParameterStoreSettings
    config: ConfigLocation
    hyperparameters: Annotated[dict[str, HyperparameterSpec], Field(min_length=1)]
    objective: Objective
    thresholds: Thresholds
    approval: Approval
    # Who may roll the model back: reject its live release's package in the Model Registry (Studio, the AWS CLI or
    # `promote rollback`). None listed: a release goes back only through a promotion's own rollback.
    operators: list[Person] = []
    training: Training
    comparison: Comparison | None = None
    data_quality: DataQuality | None = None
    tracking: Tracking | None = None
    rollout: Rollout | None = None
    monitoring: Monitoring | None = None
    notifications: Notifications = Notifications()

    @field_validator("hyperparameters")
    @classmethod
    def _names_are_valid(cls, specs: dict[str, HyperparameterSpec]) -> dict[str, HyperparameterSpec]:
        for name in specs:
            if not re.match(HYPERPARAMETER_NAME_PATTERN, name):
                raise ValueError(f"hyperparameter name {name!r} must match {HYPERPARAMETER_NAME_PATTERN}")
        return specs

    @model_validator(mode="after")
    def _images_and_metrics(self) -> ModelCatalog:
        """Every image resolves in any region, and the metrics the promotion judges on exist: SageMaker reads a
        custom image's metrics only through the training job's metric definitions."""
        images = [("training.image", self.training.image)]
        if self.comparison is not None:
            images.append(("comparison.image", self.comparison.image))
        if self.data_quality is not None:
            images.append(("data_quality.image", self.data_quality.image))
        if self.rollout is not None:
            images.append(("rollout.serving_image", self.rollout.serving_image))
        if self.monitoring is not None:
            images.append(("monitoring.image", self.monitoring.image))
        for field, value in images:
            try:
                check_image(value)
            except ImageError as error:
                raise ValueError(f"{field}: {error}") from None
        declared = self.training.metric_definitions
        if self.training.image != PROJECT_IMAGE and declared is None:
            raise ValueError(
                "training.metric_definitions is required with an image other than the project's: SageMaker reads "
                "a custom image's metrics only through them"
            )
        judged = (("objective.metric", self.objective.metric), ("thresholds.metric", self.thresholds.metric))
        for field, metric in judged:
            if declared is not None and metric not in [d.name for d in declared]:
                names = ", ".join(d.name for d in declared)
                raise ValueError(f"{field}: {metric} has no training.metric_definitions entry (it has {names})")
            if declared is None and not project_image_reports(metric):
                raise ValueError(
                    f"{field}: {metric} is not a metric the project image's training reports (it reports "
                    f"{', '.join(ALWAYS_EMITTED)}, and train:/validation:<XGBoost eval_metric> each round)"
                )
        return self

    @model_validator(mode="after")
    def _monitoring_has_what_it_reads(self) -> ModelCatalog:
        """Monitoring reads the endpoint's captured requests and compares them with the data-quality gate's profile
        of the live release's training data: it needs both."""
        if self.monitoring is None:
            return self
        if self.rollout is None:
            raise ValueError("monitoring needs rollout settings: it watches the rollout's endpoint")
        if self.data_quality is None or not self.data_quality.feature_names:
            raise ValueError(
                "monitoring needs data_quality.feature_names: the captured requests are compared, feature by "
                "feature, with the profile the data-quality gate keeps of each release's training data"
            )
        return self

    @model_validator(mode="after")
    def _operators_named_once(self) -> ModelCatalog:
        names = [operator.name for operator in self.operators]
        if len(set(names)) != len(names):
            raise ValueError("operators' names must be unique (they are what audit records show)")
        return self

    def operator(self, identity_arn: str, account: str) -> Person | None:
        """The catalog operator AWS's identity is, if any."""
        return next((one for one in self.operators if one.matches(identity_arn, account)), None)

    def operator_named(self, name: str) -> Person | None:
        return next((one for one in self.operators if one.name == name), None)

    @property
    def model_package_group(self) -> str:
        """The SageMaker Model Registry package group of this model's candidates (default: the model id)."""
        return self.approval.model_package_group or self.id

    def parameter_path(self, name: str) -> str:
        """Parameter Store path of one hyperparameter."""
        return f"{self.parameter_store.prefix}/{name}"


def _describe_validation_error(path: Path, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"{field}: {item['msg']}")
    return f"invalid model catalog {path}: " + "; ".join(problems)


def parse_catalog(document: object, source: Path | str = "<catalog>") -> ModelCatalog:
    """Validate an already-loaded catalog document; errors name the source and every bad field."""
    path = Path(source)
    try:
        catalog = ModelCatalog.model_validate(document)
    except ValidationError as error:
        raise CatalogError(_describe_validation_error(path, error)) from error
    if path.suffix in (".yaml", ".yml") and path.stem != catalog.id:
        raise CatalogError(f"invalid model catalog {path}: id: {catalog.id!r} must match the file name {path.stem!r}")
    return catalog


def load_catalog(path: Path) -> ModelCatalog:
    """Read and validate one catalog file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CatalogError(f"cannot read model catalog {path}: {error}") from error
    return parse_catalog(document, path)


def load_catalogs(directory: Path) -> dict[str, ModelCatalog]:
    """Every catalog in a directory, keyed by model id; an invalid file fails the whole load."""
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise CatalogError(f"no model catalogs (*.yaml) in {directory}")
    catalogs = [load_catalog(path) for path in files]
    owners: dict[tuple[str, str], str] = {}
    for catalog in catalogs:
        for what, value in (
            ("Parameter Store prefix", catalog.parameter_store.prefix),
            ("config key", catalog.config.key),
            ("model package group", catalog.model_package_group),
        ):
            owner = owners.setdefault((what, value), catalog.id)
            if owner != catalog.id:
                raise CatalogError(f"models {owner} and {catalog.id} share the {what} {value}")
    # Drift's retrainings are named as the launcher names tuning jobs, <model id cut to 18>-<yymmdd-HHMMSS>, and
    # granted by that prefix: two monitored models with one prefix would share (and adopt) each other's jobs.
    prefixes: dict[str, str] = {}
    for catalog in catalogs:
        if catalog.monitoring is None or catalog.monitoring.retraining is None:
            continue
        prefix = tuning_job_name(catalog.id, _ANY_TIME).rsplit("-", 2)[0]
        owner = prefixes.setdefault(prefix, catalog.id)
        if owner != catalog.id:
            raise CatalogError(
                f"models {owner} and {catalog.id} both retrain under the tuning job name prefix {prefix!r} (model ids "
                "are cut to fit SageMaker's 32 characters): make their first 18 characters differ"
            )
    # Parameters are read by path, recursively, and stale ones are deleted: a prefix inside another model's would
    # let one model's write delete the other's parameters.
    for outer in catalogs:
        for inner in catalogs:
            if inner.parameter_store.prefix.startswith(outer.parameter_store.prefix + "/"):
                raise CatalogError(
                    f"the Parameter Store prefix {inner.parameter_store.prefix} of model {inner.id} lies under "
                    f"{outer.parameter_store.prefix} of model {outer.id}: a model's parameters would be read and "
                    "deleted as the other's"
                )
    return {catalog.id: catalog for catalog in catalogs}


@lru_cache(maxsize=8)
def _cached_catalogs(directory: str) -> dict[str, ModelCatalog]:
    return load_catalogs(Path(directory))


def catalog_for(model_id: str, directory: Path) -> ModelCatalog:
    """The catalog of one model, from the catalog directory shipped with the deployment."""
    catalogs = _cached_catalogs(str(directory))
    try:
        return catalogs[model_id]
    except KeyError:
        known = ", ".join(sorted(catalogs)) or "none"
        raise UnknownModel(f"no catalog for model {model_id!r} (known models: {known})") from None
