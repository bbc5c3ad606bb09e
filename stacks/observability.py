"""Notifications (an encrypted SNS topic) and monitoring (alarms to that topic, one dashboard)."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class Notifications(Construct):
    """The promotion topic: approval requests, results, alarms. Encrypted with its own key, TLS only."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
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


class Monitoring(Construct):
    """Alarms on failed and timed-out executions and on undelivered events; a dashboard of the flow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        alarm_action = actions.SnsAction(topic)
        period = cdk.Duration.minutes(5)

        self.alarms: list[cloudwatch.Alarm] = []
        for name, metric, description in (
            ("ExecutionsFailed", state_machine.metric_failed(period=period), "A promotion execution failed"),
            ("ExecutionsTimedOut", state_machine.metric_timed_out(period=period), "A promotion execution timed out"),
        ):
            self.alarms.append(self._alarm(name, metric, description))
        for name, queue in sorted(dead_letter_queues.items()):
            self.alarms.append(
                self._alarm(
                    f"{name}DeadLetters",
                    queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                    f"Events of the {name} rule could not be delivered or processed (see its dead-letter queue)",
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(alarm_action)

        lambda_errors = [fn.metric_errors(period=period, label=name) for name, fn in sorted(functions.items())]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=cdk.Duration.days(7),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Promotion executions",
                        left=[
                            state_machine.metric_started(period=period, label="started"),
                            state_machine.metric_succeeded(period=period, label="succeeded"),
                            state_machine.metric_failed(period=period, label="failed"),
                            state_machine.metric_timed_out(period=period, label="timed out"),
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Execution time",
                        left=[
                            state_machine.metric_time(period=period, statistic="Average", label="average"),
                            state_machine.metric_time(period=period, statistic="p90", label="p90"),
                        ],
                        width=12,
                    ),
                ],
                [cloudwatch.GraphWidget(title="Lambda errors by step", left=lambda_errors, stacked=True, width=24)],
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)],
            ],
        )

    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            name,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
