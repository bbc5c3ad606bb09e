"""Resolving CloudFormation tokens (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, ...) against the local world.

CDK writes the state machine definition, the functions' environments and the rules' targets as intrinsic
functions over logical ids. The local runtime creates each resource in moto under a physical name and resolves
every token against those names, the same way CloudFormation would, so nothing is renamed by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from local.errors import SetupError


class TokenError(SetupError):
    """A token names a resource, attribute or function the local world cannot resolve."""


@dataclass(frozen=True)
class Physical:
    """What CloudFormation would return for one resource: its `Ref` value and its `Fn::GetAtt` attributes."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Resolves intrinsic functions over a map of logical id -> physical resource and the pseudo parameters."""

    def __init__(self, physical: dict[str, Physical], *, account: str, region: str, stack_name: str) -> None:
        self.physical = physical
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local",
            "AWS::NoValue": "",
        }

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name not in self.physical:
            raise TokenError(f"Ref to {name!r}: no such resource in the local world")
        return self.physical[name].ref

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.physical:
            raise TokenError(f"Fn::GetAtt on {logical_id!r}: no such resource in the local world")
        attributes = self.physical[logical_id].attributes
        if attribute not in attributes:
            known = ", ".join(sorted(attributes)) or "none"
            raise TokenError(f"Fn::GetAtt {logical_id}.{attribute}: unknown attribute (known: {known})")
        return attributes[attribute]

    def _sub(self, template: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] in self.physical:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its local value (recursively)."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, self.resolve(attribute))
            if key == "Fn::Join":
                delimiter, parts = argument
                return delimiter.join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Sub":
                template, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._sub(template, variables)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(text)).split(delimiter)
            if key.startswith("Fn::") or key == "Condition":
                raise TokenError(f"{key} is not supported by the local runtime")
        return {key: self.resolve(item) for key, item in value.items()}
