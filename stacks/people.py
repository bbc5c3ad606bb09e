"""Least-privilege managed policies for the people who use the `promote` command line: approvers (approve and
reject candidates in their models' Model Registry groups, see their status) and operators (reject a live release's
package to roll it back, see status and history). An administrator attaches them to the approvers' and operators'
roles (or SSO permission sets); the local runtime plays those roles with exactly these policies when it answers
approvals and asks for rollbacks. The grant alone makes nobody an approver or an operator: the catalog's
`approval.approvers` and `operators` name whose changes count."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from promotion.intake.approval import PENDING_ATTRIBUTES
from promotion.result.audit import AUDIT_ATTRIBUTES
from promotion.rollout.control import CONTROL_ATTRIBUTES, RUNNING_ATTRIBUTES
from stacks.nag import acknowledge_wildcard_resources
from stacks.registry import PACKAGES_REASON, package_arns

# Fine-grained access: people read only these attributes (never an approval's task token), and only by naming them.
READABLE_ATTRIBUTES = sorted({*PENDING_ATTRIBUTES, *AUDIT_ATTRIBUTES, *CONTROL_ATTRIBUTES, *RUNNING_ATTRIBUTES})
ATTRIBUTES_ONLY = {
    "ForAllValues:StringEquals": {"dynamodb:Attributes": READABLE_ATTRIBUTES},
    "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
}
APPROVERS_POLICY_ID = "ApproversPolicy"
OPERATORS_POLICY_ID = "OperatorsPolicy"


class PeoplePolicies(Construct):
    """`approvers` and `operators`: the managed policies the `promote` CLI needs, nothing more."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        config_bucket: s3.IBucket,
        catalogs: Mapping[str, ModelCatalog],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        packages = package_arns(catalogs)
        # `promote ... --stack NAME` reads the stack's outputs to find the table.
        stack_arn = stack.format_arn(
            service="cloudformation",
            resource="stack",
            resource_name=f"{stack.stack_name}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

        def describe_stack() -> iam.PolicyStatement:
            return iam.PolicyStatement(
                sid="FindPromotionStack", actions=["cloudformation:DescribeStacks"], resources=[stack_arn]
            )

        def read_table(sid: str, action: str) -> iam.PolicyStatement:
            return iam.PolicyStatement(
                sid=sid, actions=[action], resources=[table.table_arn], conditions=ATTRIBUTES_ONLY
            )

        def plan_promotions() -> list[iam.PolicyStatement]:
            """`promote plan`: the tuning job and its best training job, the production parameters and config."""
            prefixes = [c.parameter_store.prefix for c in catalogs.values()]
            return [
                iam.PolicyStatement(
                    sid="PlanReadsCandidates",
                    actions=["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:DescribeTrainingJob"],
                    resources=[
                        stack.format_arn(service="sagemaker", resource="hyper-parameter-tuning-job", resource_name="*"),
                        stack.format_arn(service="sagemaker", resource="training-job", resource_name="*"),
                    ],
                ),
                iam.PolicyStatement(
                    sid="PlanReadsProduction",
                    actions=["ssm:GetParametersByPath"],
                    resources=[
                        stack.format_arn(service="ssm", resource="parameter", resource_name=prefix.lstrip("/"))
                        for prefix in prefixes
                    ],
                ),
                iam.PolicyStatement(
                    sid="PlanReadsChampion",
                    actions=["s3:GetObject"],
                    resources=sorted({config_bucket.arn_for_objects(c.config.key) for c in catalogs.values()}),
                ),
                # Without ListBucket, S3 answers 403 for a model with no config yet: plan must read it as no champion.
                iam.PolicyStatement(
                    sid="PlanTellsNoChampion", actions=["s3:ListBucket"], resources=[config_bucket.bucket_arn]
                ),
            ]

        self.approvers = iam.ManagedPolicy(
            self,
            APPROVERS_POLICY_ID,
            description="Approve or reject pending model promotions with the promote CLI",
            statements=[
                # Deciding is changing a candidate's status in its model's group: Studio, the AWS CLI or `promote`.
                iam.PolicyStatement(
                    sid="DecideOnCandidates",
                    actions=["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"],
                    resources=packages,
                ),
                # approve/reject look up the pending approval of a model (a Query on the model's partition)
                read_table("ReadPromotions", "dynamodb:Query"),
                describe_stack(),
                *plan_promotions(),
            ],
        )
        self.operators = iam.ManagedPolicy(
            self,
            OPERATORS_POLICY_ID,
            description="Roll models back and read promotion status and history with the promote CLI",
            statements=[
                # Asking for a rollback is rejecting the live release's package: Studio, the AWS CLI or `promote`.
                iam.PolicyStatement(
                    sid="RejectLiveReleases",
                    actions=["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"],
                    resources=packages,
                ),
                # `promote rollback` finds the live release's package in its audit record (a Query)
                read_table("ReadPromotions", "dynamodb:Query"),
                # `promote status` without a model lists the models that have records (a Scan of the keys)
                read_table("ListModels", "dynamodb:Scan"),
                describe_stack(),
                *plan_promotions(),
            ],
        )
        reason = "The stack's own id ends its ARN (stack/<name>/<id>) and is known only after deployment."
        for policy in (self.approvers, self.operators):
            acknowledge_wildcard_resources(policy, [stack_arn], reason)
        for policy in (self.approvers, self.operators):
            acknowledge_wildcard_resources(policy, packages, PACKAGES_REASON)
            acknowledge_wildcard_resources(
                policy,
                [
                    stack.format_arn(service="sagemaker", resource="hyper-parameter-tuning-job", resource_name="*"),
                    stack.format_arn(service="sagemaker", resource="training-job", resource_name="*"),
                ],
                "Tuning jobs and their training jobs are named freely by data scientists; `promote plan` only "
                "describes the one it is given (read-only).",
            )
