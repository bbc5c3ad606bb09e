"""cdk-nag acknowledgments: every one names a single finding and says why it is accepted.

cdk-nag 3 reads acknowledgments from `Validations.of(construct)` on the resource or any ancestor, and matches finding
ids exactly (no prefix matching), so a wildcard resource is acknowledged by the id cdk-nag gives it:
`AwsSolutions-IAM5[Resource::<flattened ARN>]`, where `Ref`/`Fn::GetAtt` tokens read `<LogicalId>`/`<LogicalId.Arn>`.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding on `scope` and everything under it."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def wildcard_resource_finding(scope: IConstruct, resource: str) -> str:
    """The cdk-nag IAM5 finding id of one resource string (a token-bearing ARN), as cdk-nag renders it."""
    return f"AwsSolutions-IAM5[Resource::{flatten_cfn_reference(cdk.Stack.of(scope).resolve(resource))}]"


def acknowledge_wildcard_resources(scope: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge the IAM5 finding of each resource in `resources` that contains a wildcard."""
    for resource in resources:
        finding = wildcard_resource_finding(scope, resource)
        if "*" in finding.removeprefix("AwsSolutions-IAM5[Resource::"):
            acknowledge(scope, finding, reason)


def flatten_cfn_reference(node: Any) -> str:
    """Python port of cdk-nag's `flattenCfnReference` (utils/flatten-cfn-reference.ts)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(flatten_cfn_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
