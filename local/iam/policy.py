"""IAM policy documents and AWS's evaluation logic for one account, as the IAM User Guide's "Policy evaluation
logic" describes it: an explicit Deny in any applicable policy wins; otherwise an Allow in an identity-based policy
or in the resource's own policy grants the request; otherwise the request is implicitly denied.

What the product's account uses is modelled, and nothing is silently approximated: an operator or a policy element
this module does not know raises `UnsupportedPolicy` when the stack is loaded, so a template the local runtime
cannot judge fails loudly instead of being waved through.

* Action and NotAction: case-insensitive, `*` and `?` wildcards.
* Resource and NotResource: case-sensitive, `*` and `?` wildcards over the whole ARN.
* Principal and NotPrincipal (resource policies): `*`, `{"AWS": ...}` (a role ARN, an account id or its root ARN),
  `{"Service": ...}`. A statement naming the account (root) delegates to the account's identity-based policies and
  grants nothing on its own; one naming the role (or `*`) grants directly.
* Condition: the String*, Arn*, Bool, Null and Numeric* operators, with `...IfExists` and the `ForAnyValue:` and
  `ForAllValues:` set qualifiers. A key absent from the request makes a condition false, except for the negated
  operators (`StringNotEquals`, `ArnNotLike`, ...), `...IfExists` and `ForAllValues:`, where it is true (IAM User
  Guide, "Condition operators" and "Single-valued vs. multivalued context keys").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

ContextValue = str | Sequence[str]


class UnsupportedPolicy(ValueError):
    """A policy uses an element or operator the local evaluation does not model."""


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's `*` (any run of characters, `/` and `:` included) and `?` (one character); everything else literal."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an assumed IAM role (`arn`, the role ARN; `session`, its session name) or an AWS
    service acting for itself (`service`, e.g. events.amazonaws.com)."""

    arn: str | None = None
    session: str = "local"
    service: str | None = None

    @property
    def account(self) -> str | None:
        return self.arn.split(":")[4] if self.arn else None

    @property
    def name(self) -> str:
        """What AWS names in an AccessDenied message."""
        if self.service is not None:
            return self.service
        assert self.arn is not None
        role = self.arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account}:assumed-role/{role}/{self.session}"


@dataclass(frozen=True)
class Request:
    """One authorization question: may `principal` perform `action` on `resource`, given `context`?"""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "Bool",
    "Null",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


# Condition keys the local runtime puts in a request when AWS would (local.iam.enforcer and local.iam.actions); a
# condition on any other key cannot be judged, so it fails loudly instead of counting as absent.
MODELLED_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SecureTransport",
        "aws:RequestedRegion",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:TagKeys",
        "iam:PassedToService",
        "cloudwatch:namespace",
        "s3:prefix",
        "s3:delimiter",
        "events:source",
        "events:detail-type",
        "kms:ViaService",
        "ssm:Recursive",
        "dynamodb:Select",
        "dynamodb:Attributes",
        "dynamodb:LeadingKeys",
    )
)


def _modelled(key: str) -> bool:
    return key.lower() in MODELLED_KEYS or key.lower().startswith("aws:requesttag/")


def _arn_matches(pattern: str, value: str) -> bool:
    """Arn* operators match each of an ARN's six colon-separated parts on its own (`*` does not cross a colon
    before the resource part)."""
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != len(value_parts):
        return False
    return all(wildcard_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _value_matches(operator: str, policy_value: str, value: str) -> bool:
    base = operator.removeprefix("String").removeprefix("Arn").removeprefix("Numeric")
    if operator.startswith("Numeric"):
        try:
            left, right = float(value), float(policy_value)
        except ValueError:
            return False
        return {
            "Equals": left == right,
            "NotEquals": left == right,  # negation is applied by the caller
            "LessThan": left < right,
            "LessThanEquals": left <= right,
            "GreaterThan": left > right,
            "GreaterThanEquals": left >= right,
        }[base]
    if operator == "Bool":
        return value.lower() == policy_value.lower()
    if "IgnoreCase" in operator:
        return value.lower() == policy_value.lower()
    if operator.startswith("Arn"):
        return _arn_matches(policy_value, value)
    if "Like" in operator:
        return wildcard_match(policy_value, value)
    return value == policy_value


@dataclass(frozen=True)
class Condition:
    """One `"Operator": {"key": values}` entry of a Condition block."""

    operator: str
    key: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, operator: str, key: str, values: Any) -> Condition:
        base = operator.split(":", 1)[-1].removesuffix("IfExists")
        if base not in _OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator!r} is not modelled by the local runtime")
        if ":" in operator and operator.split(":", 1)[0] not in ("ForAnyValue", "ForAllValues"):
            raise UnsupportedPolicy(f"condition set qualifier in {operator!r} is not modelled")
        return cls(operator, key, tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(values)))

    def holds(self, context: Mapping[str, ContextValue]) -> bool:
        qualifier, _, rest = self.operator.rpartition(":")
        if_exists = rest.endswith("IfExists")
        base = rest.removesuffix("IfExists")
        present = _context_value(context, self.key)
        if base == "Null":
            return (present is None) == (self.values[0].lower() == "true")
        if present is None:
            if not _modelled(self.key):
                raise UnsupportedPolicy(
                    f"condition key {self.key} is not modelled: the local runtime cannot tell whether AWS sends it"
                )
            if qualifier == "ForAnyValue":  # an absent or empty set has no value that matches, IfExists or not
                return False
            return if_exists or base in _NEGATED or qualifier == "ForAllValues"
        values = [present] if isinstance(present, str) else list(present)
        negated = base in _NEGATED

        def one(value: str) -> bool:
            hit = any(_value_matches(base, policy_value, value) for policy_value in self.values)
            return not hit if negated else hit

        if qualifier == "ForAllValues":
            return all(one(value) for value in values)
        return any(one(value) for value in values)


def _context_value(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    """Condition keys are case-insensitive (the tag key part of aws:RequestTag/... aside, which we match exactly)."""
    if key in context:
        return context[key]
    lowered = key.lower()
    return next((value for name, value in context.items() if name.lower() == lowered), None)


@dataclass(frozen=True)
class Statement:
    """One statement of a policy, with where it comes from (`source`: the policy's name and the statement's Sid or
    position), so a denial or a least-privilege report can point at it."""

    effect: Literal["Allow", "Deny"]
    source: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principals: Mapping[str, tuple[str, ...]] | None = None  # None: an identity-based statement
    not_principals: Mapping[str, tuple[str, ...]] | None = None
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None

    @classmethod
    def parse(cls, document: Mapping[str, Any], source: str, *, resource_policy: bool) -> Statement:
        known = {
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
        }
        unknown = set(document) - known
        if unknown:
            raise UnsupportedPolicy(f"{source}: statement elements {sorted(unknown)} are not modelled")
        effect = document.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{source}: Effect must be Allow or Deny, not {effect!r}")
        conditions = tuple(
            Condition.parse(operator, key, values)
            for operator, block in (document.get("Condition") or {}).items()
            for key, values in block.items()
        )
        return cls(
            effect=effect,
            source=source,
            actions=tuple(str(a) for a in _as_list(document.get("Action"))),
            not_actions=tuple(str(a) for a in _as_list(document.get("NotAction"))),
            # A resource policy's statement may leave Resource out (a bus or topic policy applies to its own resource).
            resources=tuple(str(r) for r in _as_list(document.get("Resource", "*" if resource_policy else None))),
            not_resources=tuple(str(r) for r in _as_list(document.get("NotResource"))),
            principals=_principal_block(document.get("Principal")) if "Principal" in document else None,
            not_principals=_not_principal(document, source),
            conditions=conditions,
            sid=document.get("Sid"),
        )

    # -- matching ----------------------------------------------------------------------------------------------
    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(wildcard_match(p, action, ignore_case=True) for p in self.not_actions)
        return any(wildcard_match(p, action, ignore_case=True) for p in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(wildcard_match(p, resource) for p in self.not_resources)
        return any(wildcard_match(p, resource) for p in self.resources)

    def principal_match(self, principal: Principal) -> Literal["direct", "account", "none"]:
        """How a resource-policy statement names `principal`: itself (or everyone), its account only, or not."""
        if self.not_principals is not None:
            return "none" if _names(self.not_principals, principal) != "none" else "direct"
        if self.principals is None:
            return "none"
        return _names(self.principals, principal)

    def applies(self, request: Request) -> bool:
        return (
            self.matches_action(request.action)
            and self.matches_resource(request.resource)
            and all(condition.holds(request.context) for condition in self.conditions)
        )


def _not_principal(document: Mapping[str, Any], source: str) -> Mapping[str, tuple[str, ...]] | None:
    """NotPrincipal's rules (session ARNs, Allow unsupported) are not modelled; no stack of ours uses it."""
    if "NotPrincipal" in document:
        raise UnsupportedPolicy(f"{source}: NotPrincipal is not modelled by the local runtime")
    return None


def _principal_block(value: Any) -> dict[str, tuple[str, ...]]:
    if value == "*":
        return {"AWS": ("*",)}
    if not isinstance(value, Mapping):
        raise UnsupportedPolicy(f"Principal {value!r} is not modelled")
    unknown = set(value) - {"AWS", "Service"}
    if unknown:
        raise UnsupportedPolicy(f"principal types {sorted(unknown)} are not modelled")
    return {kind: tuple(str(v) for v in _as_list(names)) for kind, names in value.items()}


def _names(block: Mapping[str, tuple[str, ...]], principal: Principal) -> Literal["direct", "account", "none"]:
    if principal.service is not None:
        return "direct" if principal.service in block.get("Service", ()) or "*" in block.get("AWS", ()) else "none"
    found: Literal["direct", "account", "none"] = "none"
    for name in block.get("AWS", ()):
        if name in ("*", principal.arn):
            return "direct"
        if name in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            found = "account"
    return found


@dataclass(frozen=True)
class Policy:
    """A named policy document: identity-based (attached to a role) or a resource's own policy."""

    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any], *, resource_policy: bool = False) -> Policy:
        statements = []
        for index, statement in enumerate(_as_list(document.get("Statement"))):
            label = statement.get("Sid") or f"#{index + 1}"
            statements.append(Statement.parse(statement, f"{name} {label}", resource_policy=resource_policy))
        return cls(name, tuple(statements))


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: allowed or not, why, and the statements that allowed (or denied) it."""

    allowed: bool
    reason: Literal[
        "allowed", "explicit-identity-deny", "explicit-resource-deny", "no-identity-allow", "no-resource-allow"
    ]
    statements: tuple[Statement, ...] = ()


def evaluate(
    request: Request,
    identity: Iterable[Policy],
    resource_policy: Policy | None = None,
    *,
    resource_policy_required: bool = False,
    skip: frozenset[str] = frozenset(),
) -> Decision:
    """AWS's same-account evaluation. `resource_policy_required`: the resource's own policy must grant (a KMS key
    policy, a role trust policy, a Lambda function policy for a service); a grant to the account there delegates to
    the identity-based policies. `skip`: statement sources left out (the least-privilege analysis)."""
    identity_statements = [s for p in identity for s in p.statements if s.source not in skip and s.applies(request)]
    # Principal first: a statement for another principal (a service we never play) is never evaluated further.
    named = [
        (s, s.principal_match(request.principal))
        for s in (resource_policy.statements if resource_policy else ())
        if s.source not in skip
    ]
    resource_statements = [(s, how) for s, how in named if how != "none" and s.applies(request)]
    denies = [s for s in identity_statements if s.effect == "Deny"]
    if denies:
        return Decision(False, "explicit-identity-deny", tuple(denies))
    resource_denies = [s for s, _ in resource_statements if s.effect == "Deny"]
    if resource_denies:
        return Decision(False, "explicit-resource-deny", tuple(resource_denies))
    identity_allows = tuple(s for s in identity_statements if s.effect == "Allow")
    direct = tuple(s for s, how in resource_statements if s.effect == "Allow" and how == "direct")
    delegated = tuple(s for s, how in resource_statements if s.effect == "Allow" and how == "account")
    if resource_policy_required:
        if direct:
            return Decision(True, "allowed", direct)
        if delegated and identity_allows:
            return Decision(True, "allowed", identity_allows + delegated)
        return Decision(False, "no-resource-allow" if not delegated else "no-identity-allow")
    if identity_allows or direct:
        return Decision(True, "allowed", identity_allows + direct)
    return Decision(False, "no-identity-allow")
