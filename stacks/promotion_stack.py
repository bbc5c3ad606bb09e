"""The promotion stack: storage, notifications, the product bus, the training role, the step functions, the state
machine, event routing and monitoring, composed from the model catalogs. Environment-agnostic (no account/region)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import METRICS_NAMESPACE, RELEASES_PREFIX, SERVICE, capture_prefix
from promotion.core.settings import DEFAULT_CATALOG_DIR, function_environment
from stacks.chat import ChatChannels
from stacks.events import PromotionBus, PromotionRules
from stacks.functions import PUBLISHERS, FunctionsProps, PromotionFunctions
from stacks.job_image import JobImage
from stacks.nag import acknowledge_wildcard_resources
from stacks.observability import Monitoring, Notifications
from stacks.operator_rollback import OperatorRollbackStateMachine
from stacks.people import PeoplePolicies
from stacks.permissions import StepPermissions
from stacks.registry import ModelRegistry
from stacks.state_machine import PromotionStateMachine
from stacks.storage import PromotionStorage
from stacks.training import TrainingRole

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUS_NAME = "promotion-events"


def _construct_name(model_id: str) -> str:
    """`fraud-detection` -> `FraudDetection`: a model's part of construct ids and output names."""
    return "".join(part.capitalize() for part in model_id.split("-"))


class PromotionStack(cdk.Stack):
    """Everything the promotion flow runs on, for every model in `catalogs`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalogs: Mapping[str, ModelCatalog],
        bus_name: str = DEFAULT_BUS_NAME,
        notification_emails: Sequence[str] = (),
        notification_subscribers: Sequence[str] = (),
        mlflow_tracking_uri: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        if not catalogs:
            raise ValueError("the promotion stack needs at least one model catalog")
        state_machine_name = f"{self.stack_name}-promotion"
        stage = cdk.Stage.of(self)
        if stage is None:
            raise ValueError("the promotion stack must be synthesized inside an App")

        storage = PromotionStorage(
            self,
            "Storage",
            capture_retention_days={
                m: c.monitoring.capture_retention_days for m, c in catalogs.items() if c.monitoring
            },
        )
        notifications = Notifications(
            self, "Notifications", emails=notification_emails, subscribers=notification_subscribers
        )
        bus = PromotionBus(self, "ProductBus", bus_name=bus_name)
        # One pipeline role and one tuning role per model: a job of one model cannot write another's artifacts or
        # reports (which the comparison's check trusts), and a tuning job cannot write production artifacts or reports.
        training_roles: dict[str, iam.IRole] = {}
        tuning_roles: dict[str, iam.IRole] = {}
        # The SageMaker jobs' image (jobs/Dockerfile: training, comparison, serving), built and pushed by `cdk deploy`.
        job_image = JobImage(self, "JobImage", directory=REPO_ROOT / "jobs")
        for model_id, catalog in sorted(catalogs.items()):
            name = _construct_name(model_id)
            pipeline_role = TrainingRole(self, f"Training{name}", catalogs={model_id: catalog}).role
            tuning_role = TrainingRole(self, f"Tuning{name}", catalogs={model_id: catalog}, purpose="tuning").role
            job_image.grant_pull(pipeline_role)
            job_image.grant_pull(tuning_role)
            reports = storage.config_bucket.arn_for_objects(f"reports/{model_id}/*")
            pipeline_role.add_to_principal_policy(
                iam.PolicyStatement(sid="WriteComparisonReports", actions=["s3:PutObject"], resources=[reports])
            )
            if catalog.data_quality is not None:
                # The data-quality job reads the champion's training data profile (an S3Prefix input: SageMaker lists
                # the key's prefix, then gets it) from the champion release's report folder.
                profiles = storage.config_bucket.arn_for_objects(f"reports/{model_id}/*/data-quality/profile.json")
                pipeline_role.add_to_principal_policy(
                    iam.PolicyStatement(sid="ReadDataProfiles", actions=["s3:GetObject"], resources=[profiles])
                )
                pipeline_role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="ListDataProfiles",
                        actions=["s3:ListBucket"],
                        resources=[storage.config_bucket.bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"reports/{model_id}/*/data-quality/profile.json"]}},
                    )
                )
                acknowledge_wildcard_resources(
                    pipeline_role,
                    [profiles],
                    "The data-quality job reads the champion release's training data profile, reports/<this model>/"
                    "<release-id>/data-quality/profile.json; the release id is minted per execution.",
                )
            if catalog.monitoring is not None:
                _grant_capture(pipeline_role, storage.config_bucket, model_id)
            # SageMaker downloads the endpoint model's artifact (the release's pinned copy) with this role.
            releases = storage.config_bucket.arn_for_objects(f"{RELEASES_PREFIX}{model_id}/*")
            pipeline_role.add_to_principal_policy(
                iam.PolicyStatement(sid="ReadReleaseArtifacts", actions=["s3:GetObject"], resources=[releases])
            )
            acknowledge_wildcard_resources(
                pipeline_role,
                [releases],
                "The endpoint's model reads its release's artifact, releases/<this model>/<release-id>/model.tar.gz; "
                "the release id is minted per execution.",
            )
            acknowledge_wildcard_resources(
                pipeline_role,
                [reports],
                "The comparison job writes its report under reports/<this model>/<release-id>/comparison/; the "
                "release id is minted per execution.",
            )
            training_roles[model_id], tuning_roles[model_id] = pipeline_role, tuning_role
        registry = ModelRegistry(self, "Registry", catalogs=catalogs)

        functions = PromotionFunctions(
            self,
            "Functions",
            props=FunctionsProps(
                repo_root=REPO_ROOT,
                staging_dir=Path(stage.outdir) / "staging" / self.stack_name / "promotion-layer",
                catalogs=catalogs,
                permissions=StepPermissions(
                    catalogs=catalogs,
                    config_bucket=storage.config_bucket,
                    table=storage.table,
                    bus=bus.bus,
                    topic=notifications.topic,
                    topic_key=notifications.key,
                    training_roles=training_roles,
                    tuning_roles=tuning_roles,
                    # Named, so its ARN is known before the machine exists: functions are granted without a cycle.
                    state_machine_name=state_machine_name,
                    metrics_namespace=METRICS_NAMESPACE,
                    tracking_uri=mlflow_tracking_uri,
                ),
                environment={
                    **function_environment(
                        config_bucket=storage.config_bucket.bucket_name,
                        table_name=storage.table.table_name,
                        catalog_dir=DEFAULT_CATALOG_DIR,
                        event_bus_name=bus.bus.event_bus_name,
                        notification_topic_arn=notifications.topic.topic_arn,
                        # {model id: its pipeline role ARN}
                        training_role_arns=self.to_json_string({m: r.role_arn for m, r in training_roles.items()}),
                        # {model id: its tuning role ARN}: drift's retraining launches tuning jobs with it
                        tuning_role_arns=self.to_json_string({m: r.role_arn for m, r in tuning_roles.items()}),
                        job_image_uri=job_image.image_uri,
                        # the promotion records' MLflow server unless a catalog names its own
                        **({"mlflow_tracking_uri": mlflow_tracking_uri} if mlflow_tracking_uri else {}),
                    ),
                    "POWERTOOLS_SERVICE_NAME": SERVICE,
                    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                },
            ),
        )
        functions.node.add_dependency(registry)  # candidates are registered in the groups from the first run on
        promotion = PromotionStateMachine(
            self, "Promotion", steps=functions.functions, state_machine_name=state_machine_name
        )
        operator_rollback = OperatorRollbackStateMachine(
            self,
            "OperatorRollback",
            function=functions.functions["rollback_request"],
            state_machine_name=f"{self.stack_name}-operator-rollback",
            log_key=promotion.log_key,
        )
        rules = PromotionRules(
            self,
            "Routing",
            state_machine=promotion.state_machine,
            approval_decision=functions.functions["approval_decision"],
            operator_rollback=operator_rollback.state_machine,
            operator_control=functions.functions["operator_control"],
            clean_retired=functions.functions["clean_retired"],
            start_drift_checks=functions.functions["start_drift_checks"],
            act_on_drift_check=functions.functions["act_on_drift_check"],
            monitored_models=sorted(m for m, c in catalogs.items() if c.monitoring is not None),
            package_groups=[catalog.model_package_group for catalog in catalogs.values()],
            resume_waiting_step=functions.functions["resume_waiting_step"],
            model_ids=sorted(catalogs),
            endpoint_names=sorted(c.rollout.endpoint_name for c in catalogs.values() if c.rollout is not None),
        )
        # What the product bus carries is the promotions' own word: only the functions that publish may put events.
        bus.only_published_by([functions.roles[name] for name in PUBLISHERS])
        ChatChannels(self, "Chat", topic=notifications.topic, catalogs=catalogs)
        people = PeoplePolicies(
            self, "People", table=storage.table, config_bucket=storage.config_bucket, catalogs=catalogs
        )
        Monitoring(
            self,
            "Monitoring",
            state_machine=promotion.state_machine,
            functions=functions.functions,
            dead_letter_queues=rules.dead_letter_queues,
            topic=notifications.topic,
            catalogs=catalogs,
            operator_rollback=operator_rollback.state_machine,
        )

        for name, value, description in (
            ("StateMachineArn", promotion.state_machine.state_machine_arn, "The promotion state machine"),
            (
                "OperatorRollbackStateMachineArn",
                operator_rollback.state_machine.state_machine_arn,
                "Carries out operators' rollback requests (a live release rejected in the Model Registry)",
            ),
            ("ConfigBucketName", storage.config_bucket.bucket_name, "Production configs, archive/ and reports/"),
            ("PromotionTableName", storage.table.table_name, "Claims, locks, approval tokens, audit trail"),
            ("EventBusName", bus.bus.event_bus_name, "Approval requests and promotion results come from it"),
            ("NotificationTopicArn", notifications.topic.topic_arn, "Subscribe to approval requests and results"),
            ("JobImageUri", job_image.image_uri, "The SageMaker job image (launch tuning jobs with it)"),
            ("ApproversPolicyArn", people.approvers.managed_policy_arn, "Attach to the approvers' roles"),
            ("OperatorsPolicyArn", people.operators.managed_policy_arn, "Attach to the operators' roles"),
            *(
                (
                    f"TuningRoleArn{_construct_name(model_id)}",
                    role.role_arn,
                    f"Execution role of {model_id}'s tuning jobs (promotion_toolkit.launcher --role-arn)",
                )
                for model_id, role in sorted(tuning_roles.items())
            ),
            *(
                (
                    f"TrainingRoleArn{_construct_name(model_id)}",
                    role.role_arn,
                    f"Execution role of {model_id}'s pipeline jobs (training, comparison, endpoint model)",
                )
                for model_id, role in sorted(training_roles.items())
            ),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)


def _grant_capture(role: iam.IRole, bucket: s3.IBucket, model_id: str) -> None:
    """The model's pipeline role is its endpoint model's execution role, which SageMaker's data capture writes the
    captured requests with (capture/<model>/), and its drift checks' role, which reads them back."""
    captured = bucket.arn_for_objects(f"{capture_prefix(model_id)}/*")
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="CaptureRequests", actions=["s3:PutObject", "s3:GetObject"], resources=[captured])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ListCapturedRequests",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{capture_prefix(model_id)}/*"]}},
        )
    )
    acknowledge_wildcard_resources(
        role,
        [captured],
        "SageMaker's data capture names its files capture/<this model>/<endpoint>/<variant>/<yyyy/mm/dd/hh>/<uuid>"
        ".jsonl; the drift check reads them back.",
    )
