"""Chat channels for the operators: AWS Chatbot (Amazon Q Developer in chat applications) subscribed to the product's
notification topic, one configuration per Slack or Teams channel the catalogs name. The channels only receive
notifications: the channel role has no permission, and a deny-everything guardrail keeps anyone in the channel from
running AWS commands through it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from promotion.contract.catalog import ModelCatalog, SlackChannel, TeamsChannel
from stacks.nag import acknowledge


def _short(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]


class ChatChannels(Construct):
    """`configurations`: one Chatbot channel configuration per distinct channel of the catalogs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, topic: sns.ITopic, catalogs: Mapping[str, ModelCatalog]
    ) -> None:
        super().__init__(scope, construct_id)
        slack: dict[tuple[str, str], SlackChannel] = {}
        teams: dict[tuple[str, str], TeamsChannel] = {}
        for catalog in catalogs.values():
            for one in catalog.notifications.slack:
                slack[(one.workspace_id, one.channel_id)] = one
            for other in catalog.notifications.teams:
                teams[(other.team_id, other.channel_id)] = other
        self.configurations: list[Construct] = []
        if not slack and not teams:
            return
        role = iam.Role(
            self,
            "ChannelRole",
            assumed_by=iam.ServicePrincipal("chatbot.amazonaws.com"),
            description="AWS Chatbot's channel role for the promotion notifications: no permissions (notices only)",
        )
        guardrail = iam.ManagedPolicy(
            self,
            "NoCommands",
            description="Guardrail of the promotion chat channels: nobody runs AWS commands through them",
            statements=[iam.PolicyStatement(effect=iam.Effect.DENY, actions=["*"], resources=["*"])],
        )
        acknowledge(
            guardrail,
            "AwsSolutions-IAM5[Action::*]",
            "A guardrail that denies every action: the channels receive notifications and run nothing.",
        )
        acknowledge(
            guardrail,
            "AwsSolutions-IAM5[Resource::*]",
            "A guardrail that denies every action on every resource.",
        )
        for (workspace, channel), _ in sorted(slack.items()):
            name = f"promotion-slack-{_short(workspace, channel)}"
            self.configurations.append(
                chatbot.CfnSlackChannelConfiguration(
                    self,
                    f"Slack{_short(workspace, channel)}",
                    configuration_name=name,
                    iam_role_arn=role.role_arn,
                    slack_workspace_id=workspace,
                    slack_channel_id=channel,
                    sns_topic_arns=[topic.topic_arn],
                    guardrail_policies=[guardrail.managed_policy_arn],
                    logging_level="ERROR",
                )
            )
        for (team, channel), found in sorted(teams.items()):
            name = f"promotion-teams-{_short(team, channel)}"
            self.configurations.append(
                chatbot.CfnMicrosoftTeamsChannelConfiguration(
                    self,
                    f"Teams{_short(team, channel)}",
                    configuration_name=name,
                    iam_role_arn=role.role_arn,
                    team_id=team,
                    teams_channel_id=channel,
                    teams_tenant_id=found.tenant_id,
                    sns_topic_arns=[topic.topic_arn],
                    guardrail_policies=[guardrail.managed_policy_arn],
                    logging_level="ERROR",
                )
            )
