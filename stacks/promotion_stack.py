"""The promotion stack: storage, notifications, the product bus, the training role, the step functions, the state
machine, event routing and monitoring, composed from the model catalogs. Environment-agnostic (no account/region)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from promotion.catalog import ModelCatalog
from stacks.events import PromotionBus, PromotionRules
from stacks.functions import CATALOG_DIR, METRICS_NAMESPACE, SERVICE_NAME, FunctionsProps, PromotionFunctions
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
LEASE_MARGIN_SECONDS = 3600


def lock_lease_seconds(catalogs: Mapping[str, ModelCatalog]) -> int:
    """A model's lock must outlive its longest promotion: the approval wait plus the pipeline, plus a margin."""
    return LEASE_MARGIN_SECONDS + max(
        int(c.approval.timeout_hours * 3600) + c.training.max_runtime_seconds for c in catalogs.values()
    )


class PromotionStack(cdk.Stack):
    """Everything the promotion flow runs on, for every model in `catalogs`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalogs: Mapping[str, ModelCatalog],
        bus_name: str = DEFAULT_BUS_NAME,
        approval_principals: Sequence[str] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        if not catalogs:
            raise ValueError("the promotion stack needs at least one model catalog")
        state_machine_name = f"{self.stack_name}-promotion"
        stage = cdk.Stage.of(self)
        if stage is None:
            raise ValueError("the promotion stack must be synthesized inside an App")

        storage = PromotionStorage(self, "Storage")
        notifications = Notifications(self, "Notifications")
        bus = PromotionBus(self, "ProductBus", bus_name=bus_name, approval_principals=approval_principals)
        training = TrainingRole(self, "Training", catalogs=catalogs)
        registry = ModelRegistry(self, "Registry", catalogs=catalogs)
        # The SageMaker jobs' image (jobs/Dockerfile: training, comparison, serving), built and pushed by `cdk deploy`.
        job_image = JobImage(self, "JobImage", directory=REPO_ROOT / "jobs")
        job_image.grant_pull(training.role)
        training.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteComparisonReports",
                actions=["s3:PutObject"],
                resources=[storage.config_bucket.arn_for_objects("reports/*")],
            )
        )
        acknowledge_wildcard_resources(
            training.role,
            [storage.config_bucket.arn_for_objects("reports/*")],
            "The comparison job writes its report under reports/<model>/<release-id>/comparison/; the release id is "
            "minted per execution.",
        )

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
                    training_role=training.role,
                    # Named, so its ARN is known before the machine exists: functions are granted without a cycle.
                    state_machine_name=state_machine_name,
                    metrics_namespace=METRICS_NAMESPACE,
                ),
                environment={
                    "CONFIG_BUCKET": storage.config_bucket.bucket_name,
                    "PROMOTION_TABLE": storage.table.table_name,
                    "CATALOG_DIR": CATALOG_DIR,
                    "EVENT_BUS_NAME": bus.bus.event_bus_name,
                    "NOTIFICATION_TOPIC_ARN": notifications.topic.topic_arn,
                    "TRAINING_ROLE_ARN": training.role.role_arn,
                    "JOB_IMAGE_URI": job_image.image_uri,
                    "LOCK_LEASE_SECONDS": str(lock_lease_seconds(catalogs)),
                    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
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
            bus=bus.bus,
            state_machine=promotion.state_machine,
            approval_decision=functions.functions["approval_decision"],
            operator_rollback=operator_rollback.state_machine,
            package_groups=[catalog.model_package_group for catalog in catalogs.values()],
        )
        people = PeoplePolicies(self, "People", bus=bus.bus, table=storage.table, catalogs=catalogs)
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
                "Carries out operators' rollback requests",
            ),
            ("ConfigBucketName", storage.config_bucket.bucket_name, "Production configs, archive/ and reports/"),
            ("PromotionTableName", storage.table.table_name, "Claims, locks, approval tokens, audit trail"),
            ("EventBusName", bus.bus.event_bus_name, "Put rollback requests here; promotion results come from it"),
            ("NotificationTopicArn", notifications.topic.topic_arn, "Subscribe to approval requests and results"),
            ("TrainingRoleArn", training.role.role_arn, "Execution role of the pipeline's training jobs"),
            ("JobImageUri", job_image.image_uri, "The SageMaker job image (launch tuning jobs with it)"),
            ("ApproversPolicyArn", people.approvers.managed_policy_arn, "Attach to the approvers' roles"),
            ("OperatorsPolicyArn", people.operators.managed_policy_arn, "Attach to the operators' roles"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)
