"""The least-privilege IAM statements the promotion functions are built from.

Each method is one capability in the product's words (read the production parameters, write the archive, start the
pipeline...) and returns the statements it needs, every resource scoped by the model catalogs and the stack's own
resources. Where a capability needs a wildcard resource, the grant carries the reason, recorded as a cdk-nag
acknowledgment on the role that receives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import RELEASES_PREFIX, name_pattern, promoted_config_key, tuning_job_name
from stacks.registry import PACKAGES_REASON, package_arns, package_group_arns
from stacks.storage import ARCHIVE_PREFIX, REPORTS_PREFIX
from stacks.training import split_s3_uri


@dataclass(frozen=True)
class Grant:
    """One IAM statement and, where its resources hold a wildcard, why that is the narrowest possible scope."""

    statement: iam.PolicyStatement
    wildcard_reason: str | None = None


class StepPermissions:
    """Builds the statements of each capability against the stack's resources and the catalogs."""

    def __init__(
        self,
        *,
        catalogs: Mapping[str, ModelCatalog],
        config_bucket: s3.IBucket,
        table: dynamodb.ITable,
        bus: events.IEventBus,
        topic: sns.ITopic,
        topic_key: kms.IKey,
        training_roles: Mapping[str, iam.IRole],
        state_machine_name: str,
        tuning_roles: Mapping[str, iam.IRole] | None = None,
        metrics_namespace: str,
        tracking_uri: str | None = None,
    ) -> None:
        self._catalogs = dict(sorted(catalogs.items()))
        self._tracking_uri = tracking_uri
        self._bucket = config_bucket
        self._table = table
        self._bus = bus
        self._topic = topic
        self._topic_key = topic_key
        self._training_roles = dict(sorted(training_roles.items()))
        self._tuning_roles = dict(sorted((tuning_roles or {}).items()))
        self._state_machine_name = state_machine_name
        self._metrics_namespace = metrics_namespace

    # --- helpers -------------------------------------------------------------------------------------------------

    def _parameter_arn(self, path: str) -> str:
        return f"arn:{cdk.Aws.PARTITION}:ssm:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:parameter{path}"

    def _states_arn(self, resource: str) -> str:
        return f"arn:{cdk.Aws.PARTITION}:states:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"

    def _sagemaker_arn(self, resource: str) -> str:
        return f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"

    def _config_objects(self) -> list[str]:
        return sorted({self._bucket.arn_for_objects(c.config.key) for c in self._catalogs.values()})

    def _objects_under(self, prefix: str) -> list[str]:
        # One prefix per model (archive/<model>/..., reports/<model>/...): a promotion only touches its own model.
        return [self._bucket.arn_for_objects(f"{prefix}{model_id}/*") for model_id in self._catalogs]

    def _training_role_arns(self) -> list[str]:
        """Each model's pipeline role: the one role its jobs and its endpoint model may be given."""
        return [role.role_arn for role in self._training_roles.values()]

    def _package_groups(self) -> list[str]:
        return package_group_arns(self._catalogs)

    def _packages(self) -> list[str]:
        return package_arns(self._catalogs)

    def _training_jobs(self) -> list[str]:
        return [self._sagemaker_arn(f"training-job/{model_id}-*") for model_id in self._catalogs]

    def _list_bucket(self) -> Grant:
        # Without ListBucket, S3 answers 403 instead of 404 for a missing key: "absent" must be recognisable,
        # and rollback lists a model's archive to find its previous release.
        return Grant(self._statement("ListConfigBucket", ["s3:ListBucket"], [self._bucket.bucket_arn]))

    @staticmethod
    def _statement(sid: str, actions: list[str], resources: list[str], **kwargs: object) -> iam.PolicyStatement:
        return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, **kwargs)  # type: ignore[arg-type]

    # --- capabilities --------------------------------------------------------------------------------------------

    def promotion_table(self) -> list[Grant]:
        """Claims, locks, approval tokens and the audit trail (conditional writes, no scans)."""
        actions = [
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ]
        return [Grant(self._statement("PromotionTable", actions, [self._table.table_arn]))]

    def read_approvals(self) -> list[Grant]:
        """Re-read the approval the approval path recorded (BackupProduction checks it before any write)."""
        return [Grant(self._statement("ReadRecordedApprovals", ["dynamodb:GetItem"], [self._table.table_arn]))]

    def read_parameters(self) -> list[Grant]:
        """Read each model's production hyperparameters (one parameter per name, and the path listing)."""
        paths = [c.parameter_store.prefix for c in self._catalogs.values()]
        resources = [self._parameter_arn(p) for p in paths] + [self._parameter_arn(f"{p}/*") for p in paths]
        actions = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
        return [Grant(self._statement("ReadProductionParameters", actions, resources), _PARAMETERS_REASON)]

    def write_parameters(self) -> list[Grant]:
        """Write each model's production hyperparameters."""
        resources = [self._parameter_arn(f"{c.parameter_store.prefix}/*") for c in self._catalogs.values()]
        actions = ["ssm:PutParameter", "ssm:AddTagsToResource"]
        return [Grant(self._statement("WriteProductionParameters", actions, resources), _PARAMETERS_REASON)]

    def delete_parameters(self) -> list[Grant]:
        """Remove parameters that did not exist before a release (rollback restores absence too)."""
        resources = [self._parameter_arn(f"{c.parameter_store.prefix}/*") for c in self._catalogs.values()]
        actions = ["ssm:DeleteParameter", "ssm:DeleteParameters"]
        return [Grant(self._statement("DeleteProductionParameters", actions, resources), _PARAMETERS_REASON)]

    def read_config(self) -> list[Grant]:
        """Read the production config objects (any version) and tell a missing object from a forbidden one."""
        return [
            Grant(
                self._statement("ReadProductionConfig", ["s3:GetObject", "s3:GetObjectVersion"], self._config_objects())
            ),
            self._list_bucket(),
        ]

    def write_config(self) -> list[Grant]:
        """Write the production config objects."""
        return [Grant(self._statement("WriteProductionConfig", ["s3:PutObject"], self._config_objects()))]

    def delete_config(self) -> list[Grant]:
        """Remove a config object that did not exist before the release."""
        return [Grant(self._statement("DeleteProductionConfig", ["s3:DeleteObject"], self._config_objects()))]

    def read_archive(self) -> list[Grant]:
        """Read archived releases (the backups rollback restores)."""
        return [
            Grant(
                self._statement(
                    "ReadArchive", ["s3:GetObject", "s3:GetObjectVersion"], self._objects_under(ARCHIVE_PREFIX)
                ),
                _ARCHIVE_REASON,
            ),
            self._list_bucket(),
        ]

    def write_archive(self) -> list[Grant]:
        """Write backups of production under archive/<model>/<release-id>/."""
        return [
            Grant(
                self._statement("WriteArchive", ["s3:PutObject"], self._objects_under(ARCHIVE_PREFIX)), _ARCHIVE_REASON
            )
        ]

    def archive_promoted_config(self) -> list[Grant]:
        """Archive the config a release wrote (archive/<model>/<release-id>/promoted-config.yaml), and nothing else
        under archive/: only BackupProduction writes the backups that restores trust."""
        resources = [self._bucket.arn_for_objects(promoted_config_key(m, "*")) for m in self._catalogs]
        return [Grant(self._statement("ArchivePromotedConfig", ["s3:PutObject"], resources), _ARCHIVE_REASON)]

    def write_reports(self) -> list[Grant]:
        """Write decision reports under reports/<model>/<release-id>/."""
        return [
            Grant(
                self._statement("WriteReports", ["s3:PutObject"], self._objects_under(REPORTS_PREFIX)),
                "Decision reports are keyed reports/<model>/<release-id>/...; the release id is minted per execution.",
            )
        ]

    def describe_candidates(self) -> list[Grant]:
        """Look up a completed tuning job and its best training job (names chosen by data scientists)."""
        reason = (
            "Tuning jobs (and the training jobs they spawn) are named freely by data scientists; the event only says "
            "the job is tagged promotion:model, so this read-only Describe must cover any tuning/training job."
        )
        return [
            Grant(
                self._statement(
                    "DescribeTuningJobs",
                    ["sagemaker:DescribeHyperParameterTuningJob"],
                    [self._sagemaker_arn("hyper-parameter-tuning-job/*")],
                ),
                reason,
            ),
            Grant(
                self._statement(
                    "DescribeBestTrainingJobs",
                    ["sagemaker:DescribeTrainingJob"],
                    [self._sagemaker_arn("training-job/*")],
                ),
                reason,
            ),
        ]

    def start_training(self) -> list[Grant]:
        """Start the production pipeline's training job (named <model-id>-...) with the training role."""
        return [
            Grant(
                self._statement(
                    "StartPipeline", ["sagemaker:CreateTrainingJob", "sagemaker:AddTags"], self._training_jobs()
                ),
                _TRAINING_JOBS_REASON,
            ),
            Grant(
                self._statement(
                    "PassTrainingRole",
                    ["iam:PassRole"],
                    self._training_role_arns(),
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ),
        ]

    def watch_training(self) -> list[Grant]:
        """Read the production pipeline's training job: its status once SageMaker says it ended."""
        return [
            Grant(
                self._statement("WatchPipeline", ["sagemaker:DescribeTrainingJob"], self._training_jobs()),
                _TRAINING_JOBS_REASON,
            )
        ]

    def _processing_jobs(self) -> list[str]:
        return [self._sagemaker_arn(f"processing-job/{model_id}-*") for model_id in self._catalogs]

    def start_comparison(self) -> list[Grant]:
        """Start a processing job of a release (the comparison, <model-id>-<release-id>-cmp; the data-quality check,
        -dq) with the jobs' role."""
        return [
            Grant(
                self._statement(
                    "StartComparison", ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"], self._processing_jobs()
                ),
                _PROCESSING_JOBS_REASON,
            ),
            Grant(
                self._statement(
                    "PassJobsRole",
                    ["iam:PassRole"],
                    self._training_role_arns(),
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ),
        ]

    def watch_comparison(self) -> list[Grant]:
        """Read a release's processing job (comparison, data quality): its status once SageMaker says it ended."""
        return [
            Grant(
                self._statement("WatchComparison", ["sagemaker:DescribeProcessingJob"], self._processing_jobs()),
                _PROCESSING_JOBS_REASON,
            )
        ]

    def read_reports(self) -> list[Grant]:
        """Read the processing jobs' reports under reports/<model>/<release-id>/ (the comparison's report.json and
        plots, the data-quality report and the champion's training data profile)."""
        return [
            Grant(
                self._statement("ReadReports", ["s3:GetObject"], self._objects_under(REPORTS_PREFIX)),
                "Reports are keyed reports/<model>/<release-id>/...; the release id is minted per execution.",
            ),
            self._list_bucket(),
        ]

    def _monitored(self) -> list[str]:
        return [model_id for model_id, catalog in self._catalogs.items() if catalog.monitoring is not None]

    def _drift_checks(self) -> list[str]:
        return [self._sagemaker_arn(f"processing-job/{model_id}-drift-*") for model_id in self._monitored()]

    def start_drift_checks(self) -> list[Grant]:
        """Start a monitored model's drift check (<model-id>-drift-<yymmddhh>) with its pipeline role, and read one
        back (a repeated schedule adopts its own)."""
        jobs = self._drift_checks()
        if not jobs:
            return []
        roles = [self._training_roles[m].role_arn for m in self._monitored()]
        return [
            Grant(
                self._statement("StartDriftChecks", ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"], jobs),
                _DRIFT_CHECKS_REASON,
            ),
            Grant(
                self._statement(
                    "PassDriftCheckRole",
                    ["iam:PassRole"],
                    roles,
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ),
            *self.watch_drift_checks(),
        ]

    def watch_drift_checks(self) -> list[Grant]:
        """Read a drift check: its status, role and output once SageMaker says it ended."""
        jobs = self._drift_checks()
        if not jobs:
            return []
        return [
            Grant(self._statement("WatchDriftChecks", ["sagemaker:DescribeProcessingJob"], jobs), _DRIFT_CHECKS_REASON)
        ]

    def retraining_records(self) -> list[Grant]:
        """The monitored models' retraining records (RETRAIN#<model>: the last retraining and when), and no other item
        of the table: the condition holds the item requests to those partition keys."""
        monitored = self._monitored()
        if not monitored:
            return []
        return [
            Grant(
                self._statement(
                    "RetrainingRecords",
                    ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                    [self._table.table_arn],
                    conditions={
                        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"RETRAIN#{m}" for m in monitored]}
                    },
                )
            )
        ]

    def start_retraining(self) -> list[Grant]:
        """Start a monitored model's retraining tuning job (named as the launcher names it, <model>-<yymmdd-HHMMSS>)
        with the model's tuning role, and read the last one's status (the rate limit)."""
        monitored = self._monitored()
        if not monitored:
            return []
        jobs = [
            self._sagemaker_arn(f"hyper-parameter-tuning-job/{tuning_job_name(m, _STAMP).rsplit('-', 2)[0]}-*")
            for m in monitored
        ]
        return [
            Grant(
                self._statement(
                    "StartRetraining",
                    [
                        "sagemaker:CreateHyperParameterTuningJob",
                        "sagemaker:AddTags",
                        "sagemaker:DescribeHyperParameterTuningJob",
                    ],
                    jobs,
                ),
                "A retraining's tuning job is named <model-id>-<yymmdd-HHMMSS> (the launcher's names), the time its "
                "drift check's window ended: the grant is the model's name prefix.",
            ),
            Grant(
                self._statement(
                    "PassTuningRole",
                    ["iam:PassRole"],
                    [self._tuning_roles[m].role_arn for m in monitored],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ),
        ]

    def _endpoints(self) -> list[str]:
        return [
            self._sagemaker_arn(f"endpoint/{c.rollout.endpoint_name}") for c in self._catalogs.values() if c.rollout
        ]

    def read_endpoint(self) -> list[Grant]:
        """Read the models' production endpoints (what the backup records, what an update reached)."""
        endpoints = self._endpoints()  # none when no catalog has rollout settings: no statement without resources
        return [Grant(self._statement("ReadEndpoints", ["sagemaker:DescribeEndpoint"], endpoints))] if endpoints else []

    def read_endpoint_configs(self) -> list[Grant]:
        """Read the champion's endpoint config, whose variant the rollout config copies."""
        return [
            Grant(
                self._statement(
                    "ReadEndpointConfigs",
                    ["sagemaker:DescribeEndpointConfig"],
                    [self._sagemaker_arn("endpoint-config/*")],
                ),
                _ENDPOINT_CONFIGS_REASON,
            )
        ]

    def _product_names(self, role: str, kind: str) -> list[str]:
        """ARNs of the models or endpoint configs the product names for the catalogs' models
        (promotion.contract.names)."""
        return sorted({self._sagemaker_arn(f"{kind}/{name_pattern(role, model)}") for model in self._catalogs})

    def _training_outputs(self) -> list[str]:
        """The objects under the catalogs' training output prefixes (the pipeline's model artifacts)."""
        outputs = {split_s3_uri(catalog.training.output_path) for catalog in self._catalogs.values()}
        return sorted(f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}/{prefix}*" for bucket, prefix in outputs)

    def deploy_challenger(self) -> list[Grant]:
        """Pin the challenger's artifact (copy it to releases/<model>/<release-id>/, checked against the digest the
        comparison evaluated), create its model and endpoint configs and update the production endpoint to them."""
        return [
            Grant(
                self._statement("ReadTrainedArtifacts", ["s3:GetObject"], self._training_outputs()),
                "The pipeline's training jobs write their artifacts under the catalogs' training.output_path "
                "prefixes, one folder per job.",
            ),
            Grant(
                self._statement("PinReleaseArtifacts", ["s3:PutObject"], self._objects_under(RELEASES_PREFIX)),
                "Pinned artifacts are keyed releases/<model>/<release-id>/model.tar.gz; the release id is minted "
                "per execution.",
            ),
            Grant(
                self._statement(
                    "CreateChallengerModel",
                    # DescribeModel: a retried step adopts the model it created, and only that one
                    ["sagemaker:CreateModel", "sagemaker:AddTags", "sagemaker:DescribeModel"],
                    self._product_names("model", "model"),
                ),
                _PRODUCT_NAMES_REASON,
            ),
            Grant(
                self._statement(
                    "CreateRolloutConfig",
                    ["sagemaker:CreateEndpointConfig"],
                    self._product_names("config", "endpoint-config"),
                ),
                _PRODUCT_NAMES_REASON,
            ),
            Grant(
                self._statement(
                    "PassModelRole",
                    ["iam:PassRole"],
                    self._training_role_arns(),
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ),
            *self.update_endpoint(),
        ]

    def promote_challenger(self) -> list[Grant]:
        """Create the final endpoint config (the challenger alone, untagged) and point the endpoint at it."""
        return [
            Grant(
                self._statement(
                    "CreateFinalEndpointConfig",
                    ["sagemaker:CreateEndpointConfig"],
                    self._product_names("config", "endpoint-config"),
                ),
                _PRODUCT_NAMES_REASON,
            ),
            *self.update_endpoint(),
        ]

    def update_endpoint(self) -> list[Grant]:
        """Point a production endpoint at another endpoint config (deploy, promote, roll back)."""
        return [
            Grant(
                self._statement(
                    "UpdateEndpoints",
                    ["sagemaker:UpdateEndpoint"],
                    [*self._endpoints(), self._sagemaker_arn("endpoint-config/*")],
                ),
                _ENDPOINT_CONFIGS_REASON,
            )
        ]

    def shift_traffic(self) -> list[Grant]:
        """Change the variants' weights on the production endpoints (none when no catalog has rollout settings)."""
        endpoints = self._endpoints()
        action = ["sagemaker:UpdateEndpointWeightsAndCapacities"]
        return [Grant(self._statement("ShiftTraffic", action, endpoints))] if endpoints else []

    def retire_champion(self) -> list[Grant]:
        """Delete the rollout's A/B endpoint config once the endpoint serves the new champion alone (the previous
        champion's model and config are kept for a rollback; nothing the product did not name is deleted)."""
        return [
            Grant(
                self._statement(
                    "RetireRolloutConfig",
                    ["sagemaker:DeleteEndpointConfig"],
                    self._product_names("config", "endpoint-config"),
                ),
                _PRODUCT_NAMES_REASON,
            )
        ]

    def delete_retired_champions(self) -> list[Grant]:
        """Delete a previous champion's endpoint config and model once its rollback window has passed (the product's
        names only: a champion from before the product is never deleted)."""
        return [
            Grant(
                self._statement(
                    "DeleteRetiredConfigs",
                    ["sagemaker:DeleteEndpointConfig"],
                    self._product_names("config", "endpoint-config"),
                ),
                _PRODUCT_NAMES_REASON,
            ),
            Grant(
                self._statement(
                    "DeleteRetiredModels", ["sagemaker:DeleteModel"], self._product_names("model", "model")
                ),
                _PRODUCT_NAMES_REASON,
            ),
        ]

    def read_audit_records(self) -> list[Grant]:
        """Read one release's audit record (when it was promoted)."""
        return [Grant(self._statement("ReadAuditRecords", ["dynamodb:GetItem"], [self._table.table_arn]))]

    def read_endpoint_metrics(self) -> list[Grant]:
        """Read the endpoints' per-variant CloudWatch metrics (GetMetricData has no resource-level permissions)."""
        return [Grant(self._statement("ReadEndpointMetrics", ["cloudwatch:GetMetricData"], ["*"]))]

    def put_events(self) -> list[Grant]:
        """Put promotion events on the product's own bus."""
        return [Grant(self._statement("PutProductEvents", ["events:PutEvents"], [self._bus.event_bus_arn]))]

    def track_promotions(self) -> list[Grant]:
        """Write each promotion's record to the SageMaker managed MLflow tracking servers the catalogs (or the stack)
        name: find the server's URL, then the MLflow calls of one record. Nothing for an http(s):// server."""
        servers = sorted(
            {
                uri
                for uri in [self._tracking_uri, *(c.tracking.mlflow_uri for c in self._catalogs.values() if c.tracking)]
                if uri and uri.startswith("arn:")
            }
        )
        if not servers:
            return []
        return [
            Grant(self._statement("FindTrackingServers", ["sagemaker:DescribeMlflowTrackingServer"], servers)),
            Grant(
                self._statement(
                    "RecordPromotions",
                    [
                        "sagemaker-mlflow:GetExperimentByName",
                        "sagemaker-mlflow:CreateExperiment",
                        "sagemaker-mlflow:SearchRuns",
                        "sagemaker-mlflow:CreateRun",
                        "sagemaker-mlflow:LogBatch",
                        "sagemaker-mlflow:UpdateRun",
                    ],
                    servers,
                )
            ),
        ]

    def notify(self) -> list[Grant]:
        """Publish to the (KMS-encrypted) notification topic."""
        return [
            Grant(self._statement("PublishNotifications", ["sns:Publish"], [self._topic.topic_arn])),
            Grant(
                self._statement(
                    "EncryptNotifications", ["kms:GenerateDataKey", "kms:Decrypt"], [self._topic_key.key_arn]
                )
            ),
        ]

    def register_candidates(self) -> list[Grant]:
        """Register a candidate as a model package, waiting for approval, in its model's package group."""
        return [
            Grant(
                self._statement(
                    "RegisterCandidates", ["sagemaker:CreateModelPackage"], [*self._package_groups(), *self._packages()]
                ),
                PACKAGES_REASON,
            )
        ]

    def read_candidates(self) -> list[Grant]:
        """Read a candidate package back: its status and who AWS says last changed it."""
        return [
            Grant(
                self._statement("ReadCandidates", ["sagemaker:DescribeModelPackage"], self._packages()),
                PACKAGES_REASON,
            )
        ]

    def mark_candidates(self) -> list[Grant]:
        """Change a candidate package: return a refused decision to pending, record how its promotion ended."""
        return [
            Grant(
                self._statement("MarkCandidates", ["sagemaker:UpdateModelPackage"], self._packages()),
                PACKAGES_REASON,
            )
        ]

    def answer_approvals(self) -> list[Grant]:
        """Complete the AwaitApproval task of a waiting execution with its task token."""
        actions = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
        resources = [self._states_arn(f"stateMachine:{self._state_machine_name}")]
        return [Grant(self._statement("AnswerApprovals", actions, resources))]

    def read_controls(self) -> list[Grant]:
        """Read a release's control record: an operator's request EvaluateStage applies at its look."""
        return [Grant(self._statement("ReadOperatorRequests", ["dynamodb:GetItem"], [self._table.table_arn]))]

    def hold_rollouts(self) -> list[Grant]:
        """AwaitOperator: keep the hold's task token on the release's control record, and complete its own task when
        an operator's request came in meanwhile."""
        return [
            Grant(
                self._statement("HoldRollouts", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [self._table.table_arn])
            ),
            Grant(
                self._statement(
                    "AnswerOwnHold",
                    ["states:SendTaskSuccess"],
                    [self._states_arn(f"stateMachine:{self._state_machine_name}")],
                )
            ),
        ]

    def control_rollouts(self) -> list[Grant]:
        """Operator control: record an operator's request on the release's control record (the model's lock says
        which release runs), or answer the held rollout with its task token."""
        resources = [self._states_arn(f"stateMachine:{self._state_machine_name}")]
        return [
            Grant(
                self._statement("ControlRollouts", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [self._table.table_arn])
            ),
            Grant(self._statement("AnswerHolds", ["states:SendTaskSuccess"], resources)),
        ]

    def _complete_waits(self, sid: str) -> Grant:
        resources = [self._states_arn(f"stateMachine:{self._state_machine_name}")]
        return Grant(self._statement(sid, ["states:SendTaskSuccess", "states:SendTaskFailure"], resources))

    def register_waits(self) -> list[Grant]:
        """A step that waits for SageMaker by callback: keep its task token with the resource's name, and take it
        back to complete the task itself when its work is already done (promotion.jobs.callbacks)."""
        actions = ["dynamodb:PutItem", "dynamodb:DeleteItem"]
        return [Grant(self._statement("RegisterWaits", actions, [self._table.table_arn]))]

    def complete_own_waits(self) -> list[Grant]:
        """A waiting step completes its own task when its result needs no wait or the work is already done."""
        return [self._complete_waits("CompleteOwnWaits")]

    def resume_waits(self) -> list[Grant]:
        """ResumeWaitingStep: find the task waiting for a resource and complete it, once."""
        actions = ["dynamodb:GetItem", "dynamodb:DeleteItem"]
        return [
            Grant(self._statement("ReadWaits", actions, [self._table.table_arn])),
            self._complete_waits("CompleteWaits"),
        ]

    def read_execution_history(self) -> list[Grant]:
        """Read an execution's own history: the state that failed and the orchestration cost so far (PublishResult)."""
        resources = [self._states_arn(f"execution:{self._state_machine_name}:*")]
        return [
            Grant(
                self._statement("ReadPromotionExecutionHistory", ["states:GetExecutionHistory"], resources),
                "PublishResult reads its own execution's history; executions are named per event, so the grant is "
                "that machine's executions (read-only GetExecutionHistory).",
            )
        ]

    def describe_executions(self) -> list[Grant]:
        """Tell whether the execution holding a model's lock is still running (a dead holder's lock is taken over)."""
        resources = [self._states_arn(f"execution:{self._state_machine_name}:*")]
        return [
            Grant(
                self._statement("DescribePromotionExecutions", ["states:DescribeExecution"], resources),
                "Lock holders are executions of the promotion state machine, named per event; the grant is that "
                "machine's executions (read-only DescribeExecution).",
            )
        ]


_PARAMETERS_REASON = (
    "Hyperparameters are one parameter each under the model catalog's Parameter Store prefix "
    "(/<model>/hyperparameters/<name>); the names come from the catalog and the tuning job."
)
_ARCHIVE_REASON = (
    "Backups are keyed archive/<model>/<release-id>/...; the release id is minted per execution, so the grant "
    "is the model's archive prefix."
)
_DRIFT_CHECKS_REASON = (
    "Drift checks are named <model-id>-drift-<yymmddhh>, the hour their window ended: the grant is the model's drift "
    "check prefix."
)
_STAMP = datetime(2000, 1, 1, tzinfo=UTC)  # any time: the grants need the name's model part only
_PROCESSING_JOBS_REASON = (
    "Processing jobs are named <model-id>-<release-id>-cmp|-dq; the release id is minted per execution, so the grant "
    "is the model's name prefix."
)
_PRODUCT_NAMES_REASON = (
    "Models and endpoint configs the product creates are named per release (<model>-<role>-<release-id>-<hash>, "
    "promotion.traffic); the wildcard covers the release id and hash of the catalogs' models only."
)
_ENDPOINT_CONFIGS_REASON = (
    "Reading an endpoint's config and pointing the endpoint back at it: the champion's config may be one from "
    "before the product, with any name; the production endpoints themselves are named exactly from the catalogs."
)
_TRAINING_JOBS_REASON = (
    "Pipeline training jobs are named <model-id>-<release-id>; the release id is minted per execution, so the grant "
    "is the model's name prefix."
)
