"""The promotion's Lambda functions: one per step directory, each with its own log group and least-privilege role,
sharing two layers (third-party dependencies; the domain package with the validated catalogs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from stacks.assets import (
    IGNORED_FILES,
    LAYER_LOCK,
    REQUIREMENTS_HASH_FILE,
    AssetError,
    check_layer_lock,
    ensure_dependencies_layer,
    stage_promotion_layer,
)
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.permissions import Grant, StepPermissions

RUNTIME = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

Capability = Callable[[StepPermissions], list[Grant]]
P = StepPermissions


@dataclass(frozen=True)
class StepFunctionSpec:
    """One function: its step directory (`functions/<name>/`), what it does, and what it may touch."""

    name: str
    description: str
    capabilities: tuple[Capability, ...]
    timeout_seconds: int = 60

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


# What restoring a release's backup touches: Rollback and the operator's rollback request share the one restore.
RESTORE_PRODUCTION: tuple[Capability, ...] = (
    P.read_parameters,
    P.write_parameters,
    P.delete_parameters,
    P.read_config,
    P.write_config,
    P.delete_config,
    P.read_archive,
    P.read_endpoint,
    P.update_endpoint,
    P.shift_traffic,
)

STEP_FUNCTIONS: tuple[StepFunctionSpec, ...] = (
    StepFunctionSpec(
        "claim_promotion",
        "ClaimPromotion: dedupe the tuning-job event, take the model's lock",
        (P.promotion_table, P.describe_executions),
    ),
    StepFunctionSpec(
        "validate_candidate",
        "ValidateCandidate: check the best training job against the catalog and the champion",
        (P.describe_candidates, P.read_config),
    ),
    StepFunctionSpec(
        "await_approval",
        "AwaitApproval: register the candidate in the Model Registry, keep the task token, ask the approvers",
        (P.promotion_table, P.register_candidates, P.put_events, P.notify),
    ),
    StepFunctionSpec(
        "backup_production",
        "BackupProduction: check the recorded approval, archive the current parameters and config",
        # read_archive: a re-run finds its own backup (GetObject; 403, not 404, without it)
        (
            P.read_approvals,
            P.read_candidates,
            P.read_parameters,
            P.read_config,
            P.read_archive,
            P.write_archive,
            P.read_endpoint,
        ),
    ),
    StepFunctionSpec(
        "write_parameters",
        "WriteParameters: write and read back the new hyperparameters",
        (P.read_archive, P.read_parameters, P.write_parameters, P.delete_parameters),
    ),
    StepFunctionSpec(
        "write_config",
        "WriteConfig: validate and write the production config",
        (P.read_archive, P.write_config, P.archive_promoted_config),
    ),
    StepFunctionSpec(
        "trigger_pipeline",
        "TriggerPipeline: start the production training job, wait for SageMaker's word that it ended",
        (P.start_training, P.watch_training, P.register_waits, P.complete_own_waits),
    ),
    StepFunctionSpec(
        "check_data_quality",
        "CheckDataQuality: start the processing job checking the data to train and compare on, wait for its verdict",
        # read_config: which release is the champion; read_reports: whether its training data profile exists
        (
            P.promotion_table,
            P.read_config,
            P.start_comparison,
            P.watch_comparison,
            P.read_reports,
            P.complete_own_waits,
        ),
    ),
    StepFunctionSpec(
        "compare_with_champion",
        "CompareWithChampion: start the processing job scoring champion and challenger, wait for its verdict",
        # promotion_table covers the wait record (register_waits)
        (
            P.promotion_table,
            P.read_archive,
            P.start_comparison,
            P.watch_comparison,
            P.read_reports,
            P.complete_own_waits,
        ),
    ),
    StepFunctionSpec(
        "deploy_challenger",
        "DeployChallenger: the challenger beside the champion on the endpoint, at weight 0",
        (P.read_endpoint, P.read_endpoint_configs, P.deploy_challenger, P.register_waits, P.complete_own_waits),
    ),
    StepFunctionSpec(
        "shift_traffic",
        "ShiftTraffic: the rollout stage's variant weights (after a shadow stage, the A/B config first)",
        (P.shift_traffic, P.update_endpoint, P.read_endpoint, P.register_waits, P.complete_own_waits),
    ),
    StepFunctionSpec(
        "evaluate_stage",
        "EvaluateStage: the anytime-valid gate on the variants' CloudWatch metrics, and operators' requests",
        (P.read_endpoint_metrics, P.read_controls),
    ),
    StepFunctionSpec(
        "await_operator",
        "AwaitOperator: the rollout holds its weights until an operator answers; the task token is kept",
        (P.hold_rollouts, P.notify),
    ),
    StepFunctionSpec(
        "promote_challenger",
        "PromoteChallenger: the challenger becomes the endpoint's only variant",
        # read_endpoint_configs: a retried step adopts the final config it created, and only that one
        (P.promote_challenger, P.read_endpoint_configs, P.read_endpoint, P.register_waits, P.complete_own_waits),
    ),
    StepFunctionSpec(
        "retire_champion",
        "RetireChampion: delete the old champion's model and endpoint configs",
        (P.retire_champion,),
    ),
    StepFunctionSpec(
        "rollback",
        "Rollback: restore production byte for byte from the release's backup",
        RESTORE_PRODUCTION,
        timeout_seconds=120,
    ),
    StepFunctionSpec(
        "publish_result",
        "PublishResult: decision report, promotion event, notification, lock release",
        (
            P.promotion_table,
            P.describe_executions,
            P.read_execution_history,
            P.read_reports,  # the comparison's plots, embedded in the decision report
            P.write_reports,
            P.put_events,
            P.notify,
            P.mark_candidates,  # the candidate's package says how its promotion ended
            P.track_promotions,  # the promotion record in a managed MLflow tracking server, when one is named
        ),
    ),
    StepFunctionSpec(
        "resume_waiting_step",
        "SageMaker job and endpoint state changes: complete the promotion step that waits for one",
        (P.resume_waits, P.watch_training, P.watch_comparison, P.read_reports, P.read_endpoint),
    ),
    StepFunctionSpec(
        "approval_decision",
        "Model Registry decisions: read the package back, answer the waiting AwaitApproval or refuse",
        (P.promotion_table, P.read_candidates, P.mark_candidates, P.answer_approvals),
    ),
    StepFunctionSpec(
        "operator_control",
        "Operator controls from the Model Registry: pause, resume, abort or promote-now a running rollout",
        # read_candidates/mark_candidates: the request is read back, and answered on the package's lifecycle
        (P.control_rollouts, P.read_candidates, P.mark_candidates, P.read_endpoint),
    ),
    StepFunctionSpec(
        "rollback_request",
        "Rollback requests from the Model Registry: an operator's rejection of the live release puts the previous back",
        # read_endpoint_configs: a rollback after the rollback window (the previous config deleted) is refused first
        (
            P.promotion_table,
            *RESTORE_PRODUCTION,
            P.read_endpoint_configs,
            P.describe_executions,
            P.read_candidates,
            P.mark_candidates,
        ),
        timeout_seconds=120,
    ),
    StepFunctionSpec(
        "clean_retired",
        "Hourly: delete each model's previous champion (model, endpoint config) once its rollback window passed",
        (
            P.read_config,
            P.read_archive,
            P.read_audit_records,
            P.read_endpoint,
            P.read_endpoint_configs,
            P.delete_retired_champions,
        ),
        timeout_seconds=120,
    ),
    StepFunctionSpec(
        "start_drift_checks",
        "Monitoring schedule: start each monitored model's drift check of the captured requests' last window",
        # read_config: the live release; read_reports: its training data profile; ListBucket: the captured hours
        (
            P.read_config,
            P.read_reports,
            P.read_endpoint,
            P.read_endpoint_configs,
            P.start_drift_checks,
        ),
        timeout_seconds=120,
    ),
    StepFunctionSpec(
        "act_on_drift_check",
        "Drift checks' ends: publish the verdict; on drift, start the model's retraining within its rate limits",
        # retraining_records: one open retraining per model, a minimum interval; read_config: the live release
        (P.watch_drift_checks, P.read_reports, P.read_config, P.retraining_records, P.start_retraining, P.notify),
    ),
)

# The functions that put events on the product bus; its policy refuses PutEvents to every other principal.
PUBLISHERS: tuple[str, ...] = tuple(spec.name for spec in STEP_FUNCTIONS if P.put_events in spec.capabilities)

_UNRESTRICTABLE_ACTIONS = {
    "xray:PutTraceSegments": "X-Ray tracing",
    "xray:PutTelemetryRecords": "X-Ray tracing",
    "cloudwatch:GetMetricData": "reading the endpoints' per-variant metrics",
}


@dataclass(frozen=True)
class FunctionsProps:
    """What every function's environment and permissions refer to."""

    repo_root: Path
    staging_dir: Path
    catalogs: Mapping[str, ModelCatalog]
    permissions: StepPermissions
    environment: Mapping[str, str]


class PromotionFunctions(Construct):
    """One Lambda per entry of STEP_FUNCTIONS; `functions[name]` by step directory name."""

    def __init__(self, scope: Construct, construct_id: str, *, props: FunctionsProps) -> None:
        super().__init__(scope, construct_id)
        root = props.repo_root
        check_layer_lock(root / "requirements.txt", root / LAYER_LOCK)
        deps_dir = ensure_dependencies_layer(root / LAYER_LOCK, root / "build" / "layer-deps")
        self.dependencies_layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(str(deps_dir), exclude=[REQUIREMENTS_HASH_FILE, *IGNORED_FILES]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Third-party packages of requirements.txt (powertools, pydantic, pyyaml)",
        )
        staged = stage_promotion_layer(
            root / "layers" / "promotion" / "python" / "promotion", props.catalogs, props.staging_dir
        )
        self.promotion_layer = lambda_.LayerVersion(
            self,
            "PromotionLayer",
            code=lambda_.Code.from_asset(str(staged)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="The promotion domain package (python/promotion) and the validated model catalogs (catalog/)",
        )
        self.roles: dict[str, iam.Role] = {}
        self.functions: dict[str, lambda_.Function] = {
            spec.name: self._step_function(spec, props) for spec in STEP_FUNCTIONS
        }

    def _step_function(self, spec: StepFunctionSpec, props: FunctionsProps) -> lambda_.Function:
        code_dir = props.repo_root / "functions" / spec.name
        if not (code_dir / "handler.py").is_file():
            raise AssetError(f"function code missing: {code_dir}/handler.py (the {spec.name} step has no handler)")
        scope = Construct(self, spec.construct_id)
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the promotion step {spec.name}",
        )
        self.roles[spec.name] = role
        log_group = logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)
        log_group.grant_write(role)
        function = lambda_.Function(
            scope,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code_dir), exclude=list(IGNORED_FILES)),
            memory_size=256,
            timeout=cdk.Duration.seconds(spec.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(props.environment),
            layers=[self.dependencies_layer, self.promotion_layer],
            role=role,
            log_group=log_group,
        )
        self._attach(role, [grant for capability in spec.capabilities for grant in capability(props.permissions)])
        return function

    @staticmethod
    def _attach(role: iam.Role, grants: list[Grant]) -> None:
        seen: set[str] = set()
        star_actions = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # added by active tracing
        for grant in grants:
            sid = grant.statement.sid or ""
            if sid in seen:  # capabilities may share a statement (e.g. ListBucket on the config bucket)
                continue
            seen.add(sid)
            role.add_to_policy(grant.statement)
            if "*" in grant.statement.resources:
                star_actions.update(grant.statement.actions)
            elif grant.wildcard_reason:
                acknowledge_wildcard_resources(role, grant.statement.resources, grant.wildcard_reason)
        unexpected = star_actions - _UNRESTRICTABLE_ACTIONS.keys()
        if unexpected:
            raise ValueError(f"Resource '*' granted for actions that support resource scoping: {sorted(unexpected)}")
        uses = sorted({_UNRESTRICTABLE_ACTIONS[action] for action in star_actions})
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            f"Resource '*' only for {' and '.join(uses)}: {', '.join(sorted(star_actions))} "
            "support no resource-level permissions.",
        )
