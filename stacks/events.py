"""Event routing: SageMaker's tuning-job completion starts a promotion; SageMaker's model package changes reach the
decision function (an approver's decision on a candidate) and the operator rollback state machine (an operator's
rejection of the live release); SageMaker's state changes of the product's jobs and endpoints complete the step
waiting for them. The product's own bus carries what the promotions publish. Every target has a retry
policy and an encrypted DLQ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from promotion.contract.events import MODEL_PACKAGE_DETAIL_TYPE, MODEL_TAG
from promotion.intake.registry import DECIDED_STATUSES, REJECTED_STATUS
from promotion.jobs.callbacks import WAITED_EVENTS, WaitKind
from promotion.rollout.control import STAGE as CONTROL_STAGE
from promotion.rollout.control import ControlRequest
from stacks.nag import acknowledge

TUNING_JOB_PATTERN = events.EventPattern(
    source=["aws.sagemaker"],
    detail_type=["SageMaker HyperParameter Tuning Job State Change"],
    # A key with a colon is an ordinary JSON key in a pattern; {"exists": true} requires the tag to be present.
    detail={"HyperParameterTuningJobStatus": ["Completed"], "Tags": {MODEL_TAG: events.Match.exists()}},
)


def decision_pattern(package_groups: Sequence[str]) -> events.EventPattern:
    """A decided candidate of one of the catalogs' package groups (creation and returns to pending are no
    decision, so they are not delivered)."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_DETAIL_TYPE],
        detail={"ModelPackageGroupName": sorted(package_groups), "ModelApprovalStatus": list(DECIDED_STATUSES)},
    )


def rollback_pattern(package_groups: Sequence[str]) -> events.EventPattern:
    """A rejected package of one of the catalogs' groups: an operator's rollback request when it is the live
    release's (the state machine reads it back and ignores the rest: candidates' rejections)."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_DETAIL_TYPE],
        detail={"ModelPackageGroupName": sorted(package_groups), "ModelApprovalStatus": [REJECTED_STATUS]},
    )


def control_pattern(package_groups: Sequence[str]) -> events.EventPattern:
    """An operator's request on a package of one of the catalogs' groups: its model lifecycle set to stage Rollout
    with a request status (the function's answers, `<request>Accepted|Refused`, are not delivered)."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_DETAIL_TYPE],
        detail={
            "ModelPackageGroupName": sorted(package_groups),
            "ModelLifeCycle": {"Stage": [CONTROL_STAGE], "StageStatus": [one.value for one in ControlRequest]},
        },
    )


def state_change_patterns(model_ids: Sequence[str], endpoint_names: Sequence[str]) -> dict[str, events.EventPattern]:
    """SageMaker's settled state changes of the product's own jobs (named <model-id>-...) and production endpoints,
    by rule name: they complete the promotion step that waits for them (promotion.jobs.callbacks)."""
    prefixes = [{"prefix": f"{model_id}-"} for model_id in sorted(model_ids)]
    names: dict[WaitKind, list[Any]] = {
        WaitKind.TRAINING_JOB: list(prefixes),
        WaitKind.PROCESSING_JOB: list(prefixes),
        WaitKind.ENDPOINT: sorted(endpoint_names),
    }
    rules = {
        WaitKind.TRAINING_JOB: "TrainingJobChanged",
        WaitKind.PROCESSING_JOB: "ComparisonJobChanged",
        WaitKind.ENDPOINT: "EndpointChanged",
    }
    patterns = {}
    for detail_type, waited in WAITED_EVENTS.items():
        if not names[waited.kind]:
            continue  # no catalog has an endpoint: no endpoint rule
        patterns[rules[waited.kind]] = events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=[detail_type],
            detail={waited.name_field: names[waited.kind], waited.status_field: list(waited.statuses)},
        )
    return patterns


def drift_check_pattern(model_ids: Sequence[str]) -> events.EventPattern:
    """A settled drift check (<model>-drift-<yymmddhh>) of a monitored model."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=["SageMaker Processing Job State Change"],
        detail={
            "ProcessingJobName": [{"prefix": f"{model_id}-drift-"} for model_id in sorted(model_ids)],
            "ProcessingJobStatus": ["Completed", "Failed", "Stopped"],
        },
    )


# The schedule fires hourly; each model's check runs when its catalog's schedule_hours divides the hour.
DRIFT_CHECK_INTERVAL = cdk.Duration.hours(1)
TARGET_RETRY_ATTEMPTS = 4
CLEANUP_INTERVAL = cdk.Duration.hours(1)  # rollback windows end within an hour of their catalog length
TARGET_MAX_EVENT_AGE = cdk.Duration.hours(2)


class PromotionBus(Construct):
    """The product's own event bus, where the promotions publish approval requests and results. Its policy denies
    PutEvents to every principal but the functions that publish (`only_published_by`): an event on it is the
    product's word, whatever IAM policies others in the account hold."""

    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)
        # The policy lives on the bus resource itself (its `Policy` property) rather than in an EventBusPolicy from
        # add_to_resource_policy (which prints a jsii deprecation warning at every synth). A resource cannot reference
        # its own attributes, so the ARN is spelled from the name.
        self._arn = cdk.Stack.of(self).format_arn(
            service="events", resource="event-bus", resource_name=bus_name, arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME
        )
        self.policy: iam.PolicyDocument | None = None

    def only_published_by(self, publishers: Sequence[iam.IRole]) -> None:
        """Deny PutEvents on the bus to every principal but these roles (an explicit deny in the bus's policy
        overrides any identity policy's allow)."""
        if not publishers:
            raise ValueError("the product bus needs at least one publisher")
        self.policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="OnlyThePromotionsPublish",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[self._arn],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in publishers]}},
                )
            ]
        )
        cfn_bus = self.bus.node.default_child
        if not isinstance(cfn_bus, events.CfnEventBus):
            raise TypeError("EventBus has no CfnEventBus child")
        cfn_bus.policy = self.policy.to_json()


class PromotionRules(Construct):
    """The rules and their dead-letter queues (`dead_letter_queues` by rule name, one for the state changes)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        approval_decision: lambda_.IFunction,
        operator_rollback: sfn.IStateMachine,
        operator_control: lambda_.IFunction,
        clean_retired: lambda_.IFunction,
        package_groups: Sequence[str],
        resume_waiting_step: lambda_.IFunction,
        model_ids: Sequence[str],
        endpoint_names: Sequence[str],
        start_drift_checks: lambda_.IFunction | None = None,
        act_on_drift_check: lambda_.IFunction | None = None,
        monitored_models: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queues: dict[str, sqs.Queue] = {}

        self.tuning_job_rule = self._machine_rule(
            "TuningJobCompleted",
            None,  # the default bus, where SageMaker puts its events
            TUNING_JOB_PATTERN,
            state_machine,
            "A tagged SageMaker tuning job completed: start its promotion",
        )
        self.approval_rule = self._function_rule(
            "ApprovalDecision",
            None,  # the default bus, where SageMaker puts its events
            decision_pattern(package_groups),
            approval_decision,
            "A candidate's status changed in the Model Registry: an approver's decision on a pending promotion",
        )
        self.rollback_rule = self._machine_rule(
            "RollbackRequested",
            None,  # the default bus, where SageMaker puts its events
            rollback_pattern(package_groups),
            operator_rollback,
            "A package was rejected in the Model Registry: an operator's rollback request if it is the live release's",
        )
        self.control_rule = self._function_rule(
            "OperatorControl",
            None,  # the default bus, where SageMaker puts its events
            control_pattern(package_groups),
            operator_control,
            "A rolling-out candidate's lifecycle set to a request: an operator's pause, resume, abort, promote-now",
        )
        self.cleanup_rule = self._function_rule(
            "RetiredChampionCleanup",
            None,
            None,
            clean_retired,
            "Hourly: delete previous champions whose rollback window has passed",
            schedule=events.Schedule.rate(CLEANUP_INTERVAL),
        )
        if monitored_models and start_drift_checks is not None and act_on_drift_check is not None:
            self.drift_schedule_rule = self._function_rule(
                "DriftCheckSchedule",
                None,
                None,
                start_drift_checks,
                "Hourly: start each monitored model's drift check whose schedule is due",
                schedule=events.Schedule.rate(DRIFT_CHECK_INTERVAL),
            )
            self.drift_result_rule = self._function_rule(
                "DriftCheckEnded",
                None,  # the default bus, where SageMaker puts its events
                drift_check_pattern(monitored_models),
                act_on_drift_check,
                "A drift check ended: publish its verdict, start a retraining on drift",
            )
        # One dead-letter queue for the three: the function's asynchronous failures land in one destination.
        self.state_change_rules = [
            self._function_rule(
                name,
                None,  # the default bus, where SageMaker puts its events
                pattern,
                resume_waiting_step,
                "A product job or production endpoint settled: complete the promotion step waiting for it",
                dead_letter_name="SageMakerStateChange",
            )
            for name, pattern in state_change_patterns(model_ids, endpoint_names).items()
        ]

    def _machine_rule(
        self,
        name: str,
        bus: events.IEventBus | None,
        pattern: events.EventPattern,
        machine: sfn.IStateMachine,
        description: str,
    ) -> events.Rule:
        """A rule that starts one execution of `machine` per event (the whole event is its input)."""
        dlq = self._dead_letter_queue(name)
        return events.Rule(
            self,
            name,
            description=description,
            event_bus=bus,
            event_pattern=pattern,
            targets=[
                targets.SfnStateMachine(
                    machine,
                    dead_letter_queue=dlq,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                )
            ],
        )

    def _function_rule(
        self,
        name: str,
        bus: events.IEventBus | None,
        pattern: events.EventPattern | None,
        function: lambda_.IFunction,
        description: str,
        dead_letter_name: str | None = None,
        schedule: events.Schedule | None = None,
    ) -> events.Rule:
        queue_name = dead_letter_name or name
        known = self.dead_letter_queues.get(queue_name)
        dlq = known if known is not None else self._dead_letter_queue(queue_name)
        if known is None:
            # Events that fail delivery and invocations that fail after Lambda's async retries land in one queue.
            function.configure_async_invoke(on_failure=destinations.SqsDestination(dlq), retry_attempts=2)
        return events.Rule(
            self,
            name,
            description=description,
            event_bus=bus,
            event_pattern=pattern,
            schedule=schedule,
            targets=[
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=dlq,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                )
            ],
        )

    def _dead_letter_queue(self, name: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            f"{name}DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            f"This queue is itself the dead-letter queue of the {name} rule's target; it needs no DLQ of its own.",
        )
        self.dead_letter_queues[name] = queue
        return queue
