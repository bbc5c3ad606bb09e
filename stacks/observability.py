"""Notifications (an encrypted SNS topic) and monitoring (alarms to that topic, one dashboard).

What the dashboard reads, and why it reads it that way:

* Step Functions' own metrics (`AWS/States`, dimension `StateMachineArn`): executions by how they ended, and time.
* The product's Powertools metrics (namespace `ModelPromotion`). Powertools writes them as EMF with the dimension set
  {model, service} (bus targets: {service} only), and a CloudWatch metric is identified by its exact dimension set,
  so the dashboard finds them with SEARCH expressions (one line per model, every model present and future, no
  redeploy when a catalog is added). SEARCH cannot drive an alarm; the alarms use Metrics Insights queries
  (`SELECT SUM(m) FROM "ModelPromotion"`), which aggregate over every dimension set, so a new model or a metric
  emitted without a model is never missed.
* SageMaker's per-variant endpoint metrics (`AWS/SageMaker`, dimensions EndpointName and VariantName) for the
  rollout endpoint named in each catalog (`rollout.endpoint_name`), by SEARCH: variant names are minted per
  release, so only a search finds the champion and the challenger of the moment.

Alarms (all to the topic; missing data is not breaching, one breaching 5-minute period fires):

* ExecutionsFailed, ExecutionsTimedOut, ExecutionsAborted (AWS/States). An aborted execution skipped Rollback and
  PublishResult: production may be half written and the model's lock is held until its lease ends.
* PromotionsRolledBack: PublishResult recorded ROLLED_BACK (production is back on the previous release).
* PromotionsFailed: PublishResult recorded FAILED (a failure before the backup, or a rollback that failed).
* ApprovalsExpired: the stuck approval. AwaitApproval waits with the catalog's timeout (TimeoutSecondsPath), so an
  approval nobody answers cannot wait longer than that: Step Functions ends the wait itself at the deadline
  (States.Timeout -> ApprovalExpired -> PublishResult, outcome REJECTED, reason "approval expired: ..."). That is
  the earliest exact signal that no decision came within the approval timeout, and it needs no polling. A metric
  filter on PublishResult's structured "result" log line counts those; Step Functions' ExecutionTime is only
  published when an execution ends and says nothing about which state it waited in.
* <rule>DeadLetters: events of a bus rule that could not be delivered, or bus-target invocations that failed after
  Lambda's retries (approval decisions and rollback requests that were lost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import METRICS_NAMESPACE
from promotion.contract.names import SERVICE as SERVICE_NAME
from promotion.contract.state import Outcome

PERIOD = cdk.Duration.minutes(5)
# promotion.monitoring.loop's metrics (dimensions model and service; FeatureDrift also feature)
DRIFT_METRIC = "FeatureDrift"
DRIFT_CHECK_FAILED_METRIC = "DriftCheckFailed"
DRIFT_LOOP_METRICS = (
    "DriftChecksStarted",
    "DriftChecksSkipped",
    "DriftDetected",
    DRIFT_CHECK_FAILED_METRIC,
    "RetrainingsStarted",
    "RetrainingsHeldBack",
    "CapturedRows",
    "UnreadableRows",  # a payload the check cannot read shows here before it shows as TOO_FEW_ROWS
)
# decide_outcome's reason for an approval that ran out (promotion.result.outcome); tests/infra check the two agree.
EXPIRED_REASON_PREFIX = "approval expired"
APPROVALS_EXPIRED_METRIC = "ApprovalsExpired"
# The function whose "result" log line carries every outcome and reason.
RESULT_FUNCTION = "publish_result"
SAGEMAKER_VARIANT_METRICS = (
    ("Invocations", "Sum", "invocations"),
    ("Invocation5XXErrors", "Sum", "5XX errors"),
    ("ModelLatency", "p99", "model latency p99 (microseconds)"),
)


def outcome_metric(outcome: Outcome) -> str:
    """The count PublishResult emits per outcome (functions/publish_result): PROMOTED -> PromotionPromoted."""
    return f"Promotion{outcome.value.title().replace('_', '')}"


def step_name(function_dir: str) -> str:
    """A step's metric prefix (promotion.core.boundary.step_boundary): claim_promotion -> ClaimPromotion."""
    return "".join(part.capitalize() for part in function_dir.split("_"))


def _names(names: Iterable[str]) -> str:
    """`"A" OR "B"` for a SEARCH term."""
    return " OR ".join(f'"{name}"' for name in names)


def product_search(metric_names: Iterable[str], statistic: str, *, per_model: bool = True) -> str:
    """SEARCH over the product's metrics: one line per model ({model, service}), or over every dimension set."""
    schema = (
        f'{{{METRICS_NAMESPACE},model,service}} service="{SERVICE_NAME}" '
        if per_model
        else f'Namespace="{METRICS_NAMESPACE}" '
    )
    return f"SEARCH('{schema}MetricName=({_names(metric_names)})', '{statistic}', {int(PERIOD.to_seconds())})"


def insights_sum(metric_name: str) -> str:
    """A Metrics Insights query summing one product metric over all its dimension sets (usable in an alarm)."""
    return f'SELECT SUM("{metric_name}") FROM "{METRICS_NAMESPACE}"'


def endpoint_search(endpoint_name: str, metric_name: str, statistic: str) -> str:
    """SEARCH over one endpoint's production variants (one line per variant)."""
    return (
        f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} EndpointName="{endpoint_name}" '
        f"MetricName=\"{metric_name}\"', '{statistic}', {int(PERIOD.to_seconds())})"
    )


# CloudFormation's execution role in a CDK-bootstrapped account (any qualifier): it creates the stack's own
# subscriptions (the `notificationEmails` context).
CFN_EXECUTION_ROLE = "arn:{partition}:iam::{account}:role/cdk-*-cfn-exec-role-*"


class Notifications(Construct):
    """The promotion topic: approval requests, results, alarms. Encrypted with its own key, TLS only.

    Who hears about promotions is part of the deployment: the topic's policy refuses sns:Subscribe to every principal
    but CloudFormation (which creates the `emails` subscriptions) and the `subscribers` (IAM role or user ARNs, with
    wildcards), whatever their identity policies allow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        emails: Sequence[str] = (),
        subscribers: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "TopicKey", description="Encrypts the promotion notification topic", enable_key_rotation=True
        )
        # CloudWatch alarms publish to the topic, so the alarm service must be able to use its key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        self.topic = sns.Topic(self, "Topic", display_name="Model promotion", master_key=self.key, enforce_ssl=True)
        allowed = [
            CFN_EXECUTION_ROLE.format(partition=cdk.Aws.PARTITION, account=cdk.Aws.ACCOUNT_ID),
            *subscribers,
        ]
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SubscriptionsAreDeployed",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sns:Subscribe"],
                resources=[self.topic.topic_arn],
                conditions={"StringNotLike": {"aws:PrincipalArn": allowed}},
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class Monitoring(Construct):
    """Alarms (failed, timed-out and aborted executions, rollbacks, failed promotions, expired approvals,
    undelivered events) to the topic, and one dashboard of the flow, its steps, its Lambdas and its endpoints."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        topic: sns.ITopic,
        catalogs: Mapping[str, ModelCatalog] | None = None,
        operator_rollback: sfn.StateMachine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        alarm_action = actions.SnsAction(topic)
        catalogs = catalogs or {}

        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "ExecutionsFailed",
                state_machine.metric_failed(period=PERIOD),
                "A promotion execution ended in a Fail state (rejected, rolled back or failed): read its decision "
                "report (docs/operators-guide.md, 'ExecutionsFailed')",
            ),
            self._alarm(
                "ExecutionsTimedOut",
                state_machine.metric_timed_out(period=PERIOD),
                "A promotion execution timed out: Rollback and PublishResult did not run; check production and the "
                "model's lock (docs/operators-guide.md, 'ExecutionsTimedOut')",
            ),
            self._alarm(
                "ExecutionsAborted",
                state_machine.metric_aborted(period=PERIOD),
                "A promotion execution was stopped: Rollback and PublishResult did not run; check production and the "
                "model's lock (docs/operators-guide.md, 'ExecutionsAborted')",
            ),
            self._alarm(
                "PromotionsRolledBack",
                self._insights(outcome_metric(Outcome.ROLLED_BACK), "rolled back"),
                "A promotion was rolled back: production is on the previous release again; the decision report says "
                "which step failed and what was restored (docs/operators-guide.md, 'PromotionsRolledBack')",
            ),
            self._alarm(
                "PromotionsFailed",
                self._insights(outcome_metric(Outcome.FAILED), "failed"),
                "A promotion FAILED: an unexpected error, or a rollback that did not complete, so production may "
                "differ from its backup (docs/operators-guide.md, 'PromotionsFailed')",
            ),
            self._alarm(
                "ApprovalsExpired",
                self._expired_approvals(functions),
                "A promotion waited for approval past the catalog's approval timeout and was rejected as expired "
                "(docs/operators-guide.md, 'ApprovalsExpired')",
            ),
        ]
        monitored = sorted(m for m, c in catalogs.items() if c.monitoring is not None)
        if monitored:
            self.alarms.append(
                self._alarm(
                    "DriftChecksFailed",
                    self._insights(DRIFT_CHECK_FAILED_METRIC, "drift checks failed"),
                    "A drift check's processing job failed or stopped: the live release went unwatched for that "
                    "window; its ExitMessage is in the notice (docs/operators-guide.md, 'DriftChecksFailed')",
                )
            )
        for name, queue in sorted(dead_letter_queues.items()):
            self.alarms.append(
                self._alarm(
                    f"{name}DeadLetters",
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                    f"Events of the {name} rule could not be delivered or processed (see its dead-letter queue)",
                )
            )
        if operator_rollback is not None:
            # An operator rollback that failed, was refused, timed out or was stopped: the operator who sent it waits
            # for the endpoint, and production may be half restored (docs/operators-guide.md, 'OperatorRollbacks').
            self.alarms.append(
                self._alarm(
                    "OperatorRollbacksNotDone",
                    cloudwatch.MathExpression(
                        expression="failed + timedout + aborted",
                        using_metrics={
                            "failed": operator_rollback.metric_failed(period=PERIOD),
                            "timedout": operator_rollback.metric_timed_out(period=PERIOD),
                            "aborted": operator_rollback.metric_aborted(period=PERIOD),
                        },
                        period=PERIOD,
                        label="operator rollbacks not done",
                    ),
                    "An operator rollback ended RollbackRefused (the reason is its cause), RollbackFailed, timed out "
                    "or was stopped: production may be half restored; read the execution in the Step Functions "
                    "console (docs/operators-guide.md, 'OperatorRollbacksNotDone')",
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(alarm_action)

        self.endpoint_names = sorted({c.rollout.endpoint_name for c in catalogs.values() if c.rollout is not None})
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{cdk.Stack.of(self).stack_name}-promotion",
            default_interval=cdk.Duration.days(7),
            widgets=[
                [self._header(state_machine, sorted(catalogs))],
                self._execution_row(state_machine),
                self._step_row(functions),
                self._lambda_row(functions),
                *[self._endpoint_row(name) for name in self.endpoint_names],
                *([self._drift_row()] if monitored else []),
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)],
            ],
        )

    # -- alarms ----------------------------------------------------------------------------------------------
    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            name,
            # Named after the stack: the SNS notification's subject says which alarm it is.
            alarm_name=f"{cdk.Stack.of(self).stack_name}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @staticmethod
    def _insights(metric_name: str, label: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=insights_sum(metric_name), using_metrics={}, period=PERIOD, label=label
        )

    def _expired_approvals(self, functions: Mapping[str, lambda_.IFunction]) -> cloudwatch.IMetric:
        publisher = functions[RESULT_FUNCTION]
        if not isinstance(publisher, lambda_.Function):
            raise TypeError(f"{RESULT_FUNCTION} must be a lambda_.Function with its own log group")
        metric_filter = logs.MetricFilter(
            self,
            "ApprovalsExpiredFilter",
            log_group=publisher.log_group,
            # Powertools' JSON log line: {"message": "result", "outcome": "REJECTED", "reason": "approval expired: ..."}
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.message", "=", "result"),
                logs.FilterPattern.string_value("$.reason", "=", f"{EXPIRED_REASON_PREFIX}*"),
            ),
            metric_namespace=METRICS_NAMESPACE,
            metric_name=APPROVALS_EXPIRED_METRIC,
            metric_value="1",
        )
        return metric_filter.metric(statistic="Sum", period=PERIOD)

    # -- dashboard -------------------------------------------------------------------------------------------
    @staticmethod
    def _header(state_machine: sfn.StateMachine, models: list[str]) -> cloudwatch.TextWidget:
        console = (
            f"https://{cdk.Aws.REGION}.console.aws.amazon.com/states/home?region={cdk.Aws.REGION}"
            f"#/statemachines/view/{state_machine.state_machine_arn}"
        )
        return cloudwatch.TextWidget(
            markdown=(
                "# Model promotion\n"
                f"Models: {', '.join(models) or 'see models/'} · [executions in the console]({console}) · "
                "runbook: `docs/operators-guide.md` · per-execution decision report: "
                "`s3://<config bucket>/reports/<model>/<release>/report.html` · `python -m promote status`"
            ),
            width=24,
            height=2,
        )

    @staticmethod
    def _drift_row() -> list[cloudwatch.IWidget]:
        """The live releases' drift (PSI per feature, against their training data) and what drift started."""
        hourly = int(cdk.Duration.hours(1).to_seconds())
        psi = (
            f'SEARCH(\'{{{METRICS_NAMESPACE},feature,model,service}} service="{SERVICE_NAME}" '
            f"MetricName=\"{DRIFT_METRIC}\"', 'Maximum', {hourly})"
        )
        return [
            cloudwatch.GraphWidget(
                title="Drift of the live release: PSI per feature (above the catalog's max_psi is drift)",
                left=[cloudwatch.MathExpression(expression=psi, using_metrics={}, period=cdk.Duration.hours(1))],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Drift checks and the retrainings drift started",
                left=[
                    cloudwatch.MathExpression(
                        expression=product_search(DRIFT_LOOP_METRICS, "Sum").replace(
                            f", {int(PERIOD.to_seconds())})", f", {hourly})"
                        ),
                        using_metrics={},
                        period=cdk.Duration.hours(1),
                    )
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _execution_row(state_machine: sfn.StateMachine) -> list[cloudwatch.IWidget]:
        outcomes = [outcome_metric(outcome) for outcome in Outcome]
        return [
            cloudwatch.GraphWidget(
                title="Executions by how they ended (Step Functions)",
                left=[
                    state_machine.metric_started(period=PERIOD, label="started"),
                    state_machine.metric_succeeded(period=PERIOD, label="succeeded"),
                    state_machine.metric_failed(period=PERIOD, label="failed"),
                    state_machine.metric_timed_out(period=PERIOD, label="timed out"),
                    state_machine.metric_aborted(period=PERIOD, label="aborted"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Promotion outcomes by model (PublishResult)",
                left=[cloudwatch.SearchExpression(expression=product_search(outcomes, "Sum"), label="")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Execution time (ms; includes the approval wait)",
                left=[
                    state_machine.metric_time(period=PERIOD, statistic="Average", label="average"),
                    state_machine.metric_time(period=PERIOD, statistic="p90", label="p90"),
                    state_machine.metric_time(period=PERIOD, statistic="Maximum", label="maximum"),
                ],
                width=8,
            ),
        ]

    @staticmethod
    def _step_row(functions: Mapping[str, lambda_.IFunction]) -> list[cloudwatch.IWidget]:
        steps = [step_name(name) for name in sorted(functions)]
        return [
            cloudwatch.GraphWidget(
                title="Step duration by model (ms, average)",
                left=[
                    cloudwatch.SearchExpression(
                        expression=product_search([f"{step}Duration" for step in steps], "Average"), label=""
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Step failures by model",
                left=[
                    cloudwatch.SearchExpression(
                        expression=product_search([f"{step}Failed" for step in steps], "Sum"), label=""
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Rollbacks, approvals and operator requests",
                left=[
                    cloudwatch.SearchExpression(expression=product_search(["RolledBack"], "Sum"), label=""),
                    cloudwatch.SearchExpression(
                        expression=product_search(
                            [
                                "DecisionAccepted",
                                "DecisionRefused",
                                "OperatorRollbackAccepted",
                                "OperatorRollbackRefused",
                                "ControlAccepted",
                                "ControlRefused",
                                "RolloutHeld",
                                "RetiredResourcesDeleted",
                                APPROVALS_EXPIRED_METRIC,
                            ],
                            "Sum",
                            per_model=False,
                        ),
                        label="",
                    ),
                ],
                width=8,
            ),
        ]

    @staticmethod
    def _lambda_row(functions: Mapping[str, lambda_.IFunction]) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="Lambda errors by step",
                left=[fn.metric_errors(period=PERIOD, label=name) for name, fn in sorted(functions.items())],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration by step (ms, p99)",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in sorted(functions.items())
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _endpoint_row(endpoint_name: str) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title=f"{endpoint_name}: {label} by variant",
                left=[
                    cloudwatch.SearchExpression(expression=endpoint_search(endpoint_name, metric, statistic), label="")
                ],
                width=8,
            )
            for metric, statistic, label in SAGEMAKER_VARIANT_METRICS
        ]
