"""The IAM side of the synthesized template, resolved against the local world: every role with its identity-based
policies and trust policy, every resource policy (bucket, KMS key, topic, queue, event bus, Lambda function), and the
KMS keys that encrypt topics and buckets. Built once per runtime from the same template that runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.iam.policy import Policy, UnsupportedPolicy
from local.world import World


@dataclass(frozen=True)
class Role:
    """One `AWS::IAM::Role` of the stack (or a principal the runtime plays, such as an approver)."""

    logical_id: str
    arn: str
    policies: tuple[Policy, ...]
    trust: Policy | None = None


@dataclass
class IamModel:
    """Roles by ARN, resource policies by resource ARN, and the customer managed keys of topics and buckets."""

    roles: dict[str, Role] = field(default_factory=dict)
    resource_policies: dict[str, Policy] = field(default_factory=dict)
    key_policies: dict[str, Policy] = field(default_factory=dict)  # key ARN -> key policy
    topic_keys: dict[str, str] = field(default_factory=dict)  # topic ARN -> key ARN
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket name -> key ARN
    managed_policies: dict[str, Policy] = field(default_factory=dict)  # logical id -> policy
    managed_policy_arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN

    def role(self, arn: str) -> Role | None:
        return self.roles.get(arn)

    def resource_policy(self, resource: str) -> Policy | None:
        """The resource policy that governs `resource` (an object ARN is governed by its bucket's policy)."""
        if resource in self.key_policies:
            return self.key_policies[resource]
        if resource.startswith("arn:aws:s3:::"):
            return self.resource_policies.get("arn:aws:s3:::" + resource.removeprefix("arn:aws:s3:::").split("/")[0])
        if ":function:" in resource:
            return self.resource_policies.get(":".join(resource.split(":")[:7]))
        return self.resource_policies.get(resource)

    def statement_sources(self, role_arn: str) -> list[str]:
        role = self.roles[role_arn]
        return [statement.source for policy in role.policies for statement in policy.statements]


# AWS managed policies a template may attach, with the documents AWS publishes for them (IAM console, "AWS managed
# policy" reference). The product's own stack attaches none; other stacks run locally (the runtime's test app) do.
AWS_MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
}


def _ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def build_model(world: World) -> IamModel:
    """Read every IAM-relevant resource of the template; an element the evaluation cannot model fails here."""
    stack, resolver = world.stack, world.resolver
    model = IamModel()
    attached: dict[str, list[Policy]] = {}

    def resolved(logical_id: str) -> dict[str, Any]:
        value: dict[str, Any] = resolver.resolve(stack.resources[logical_id].get("Properties", {})) or {}
        return value

    def attach(role_refs: Iterable[Any], policy: Policy) -> None:
        for reference in role_refs:
            role_id = _ref_id(reference)
            if role_id is None:
                raise UnsupportedPolicy(f"{policy.name}: attached to a role outside the stack ({reference!r})")
            attached.setdefault(role_id, []).append(policy)

    for logical_id, resource in stack.resources.items():
        kind = resource.get("Type")
        raw = resource.get("Properties", {}) or {}
        if kind == "AWS::IAM::Policy":
            props = resolved(logical_id)
            attach(raw.get("Roles", []), Policy.parse(logical_id, props["PolicyDocument"]))
            if raw.get("Users") or raw.get("Groups"):
                raise UnsupportedPolicy(f"{logical_id}: policies for IAM users or groups are not modelled")
        elif kind == "AWS::IAM::ManagedPolicy":
            props = resolved(logical_id)
            policy = Policy.parse(logical_id, props["PolicyDocument"])
            model.managed_policies[logical_id] = policy
            model.managed_policy_arns[logical_id] = world.physical[logical_id].ref
            attach(raw.get("Roles", []), policy)
    managed_by_arn = {model.managed_policy_arns[lid]: p for lid, p in model.managed_policies.items()}

    for logical_id in stack.of_type("AWS::IAM::Role"):
        props = resolved(logical_id)
        policies = list(attached.get(logical_id, []))
        for inline in props.get("Policies", []) or []:
            policies.append(Policy.parse(f"{logical_id}/{inline['PolicyName']}", inline["PolicyDocument"]))
        for arn in props.get("ManagedPolicyArns", []) or []:
            if arn in AWS_MANAGED_POLICIES:
                policies.append(Policy.parse(arn, AWS_MANAGED_POLICIES[arn]))
                continue
            if arn not in managed_by_arn:
                raise UnsupportedPolicy(
                    f"{logical_id}: managed policy {arn} is not in the template (of AWS managed policies only "
                    f"{', '.join(AWS_MANAGED_POLICIES)} are modelled)"
                )
            policies.append(managed_by_arn[arn])
        if props.get("PermissionsBoundary"):
            raise UnsupportedPolicy(f"{logical_id}: permissions boundaries are not modelled")
        arn = world.physical[logical_id].attributes["Arn"]
        trust = Policy.parse(f"{logical_id} trust", props["AssumeRolePolicyDocument"], resource_policy=True)
        model.roles[arn] = Role(logical_id, arn, tuple(policies), trust)

    for logical_id, resource in stack.resources.items():
        kind = resource.get("Type")
        if kind == "AWS::S3::BucketPolicy":
            props = resolved(logical_id)
            model.resource_policies[f"arn:aws:s3:::{props['Bucket']}"] = Policy.parse(
                logical_id, props["PolicyDocument"], resource_policy=True
            )
        elif kind == "AWS::KMS::Key":
            props = resolved(logical_id)
            arn = world.physical[logical_id].attributes["Arn"]
            model.key_policies[arn] = Policy.parse(logical_id, props["KeyPolicy"], resource_policy=True)
        elif kind == "AWS::SNS::TopicPolicy":
            props = resolved(logical_id)
            for topic in props.get("Topics", []):
                model.resource_policies[str(topic)] = Policy.parse(
                    logical_id, props["PolicyDocument"], resource_policy=True
                )
        elif kind == "AWS::SQS::QueuePolicy":
            props = resolved(logical_id)
            for reference in resource["Properties"].get("Queues", []):
                queue_id = _ref_id(reference)
                if queue_id is not None:
                    model.resource_policies[world.physical[queue_id].attributes["Arn"]] = Policy.parse(
                        logical_id, props["PolicyDocument"], resource_policy=True
                    )
        elif kind == "AWS::Events::EventBus":
            props = resolved(logical_id)
            if props.get("Policy"):
                document = props["Policy"]
                document = json.loads(document) if isinstance(document, str) else document
                model.resource_policies[world.physical[logical_id].attributes["Arn"]] = Policy.parse(
                    logical_id, document, resource_policy=True
                )
        elif kind == "AWS::Events::EventBusPolicy":
            raise UnsupportedPolicy(f"{logical_id}: AWS::Events::EventBusPolicy is not modelled (use the bus's Policy)")
        elif kind == "AWS::Lambda::Permission":
            props = resolved(logical_id)
            function = str(props["FunctionName"])
            statement: dict[str, Any] = {
                "Sid": logical_id,
                "Effect": "Allow",
                "Action": props["Action"],
                "Resource": function,
                "Principal": _lambda_principal(str(props["Principal"])),
            }
            conditions: dict[str, dict[str, str]] = {}
            if props.get("SourceArn"):
                conditions["ArnLike"] = {"aws:SourceArn": str(props["SourceArn"])}
            if props.get("SourceAccount"):
                conditions["StringEquals"] = {"aws:SourceAccount": str(props["SourceAccount"])}
            if conditions:
                statement["Condition"] = conditions
            existing = model.resource_policies.get(function)
            parsed = Policy.parse(f"{function} policy", {"Statement": [statement]}, resource_policy=True)
            statements = (existing.statements if existing else ()) + parsed.statements
            model.resource_policies[function] = Policy(f"{function} policy", statements)
        elif kind == "AWS::SNS::Topic":
            props = resolved(logical_id)
            if props.get("KmsMasterKeyId"):
                model.topic_keys[world.physical[logical_id].ref] = str(props["KmsMasterKeyId"])
        elif kind == "AWS::S3::Bucket":
            props = resolved(logical_id)
            for rule in (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration", []):
                default = rule.get("ServerSideEncryptionByDefault") or {}
                if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
                    model.bucket_keys[world.physical[logical_id].ref] = str(default["KMSMasterKeyID"])
    return model


def _lambda_principal(principal: str) -> dict[str, str]:
    if principal.endswith(".amazonaws.com"):
        return {"Service": principal}
    return {"AWS": principal}
