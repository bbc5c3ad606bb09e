"""Authorizing every AWS call of the local runtime against the synthesized policies of the principal that makes it.

`IamEnforcer` hooks botocore on the default boto3 session (the one the handlers' clients come from): a
`before-parameter-build` handler keeps the call's API parameters, a `before-call` handler asks `local.iam.actions`
which IAM requests the call makes and evaluates each (`local.iam.policy`) for the principal the current thread acts
as (`acting_as`). A denied request is answered before moto sees it, with the error the service sends
(`AccessDenied` 403 for S3, `AccessDeniedException` for JSON services, `AuthorizationError` for SNS...) and AWS's
message naming the principal, the action and the resource. Calls made outside any principal (the runtime seeding
the world, tests reading production) are the account owner's and are not checked.

Principals: each Lambda function's role (while its handler runs), the state machine's role (its Lambda tasks), the
EventBridge rule target's role or the events service itself (deliveries), the SageMaker job's role (what the job
reads and writes), and the roles the runtime plays for people (an approver, an operator) with the stack's shipped
managed policies. Every request is recorded (`records`) so the least-privilege analysis can replay them without a
statement (`replay`).

S3's rule for missing keys is modelled: GetObject/HeadObject of a key that does not exist answers 404 only when the
caller may also s3:ListBucket the bucket, else 403 AccessDenied (S3 API reference, GetObject "Permissions").
"""

from __future__ import annotations

import http.client
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local.faults import ACCESS_DENIED, error_response, service_error
from local.iam.actions import TASK_TOKEN_OPERATIONS, Need, UnmappedOperation, arn_for, needs_for
from local.iam.model import IamModel
from local.iam.policy import ContextValue, Decision, Policy, Principal, Request, evaluate

LOG = logging.getLogger("local.iam")
_KMS_VIA = {"sns": "sns.{region}.amazonaws.com", "s3": "s3.{region}.amazonaws.com"}


@dataclass(frozen=True)
class Record:
    """One authorization: who asked for what, through which API call, and the decision."""

    request: Request
    operation: str  # service:Operation of the API call (or what a service did on the principal's behalf)
    decision: Decision
    fatal: bool = True  # False: a request whose denial AWS does not surface (the Lambda service writing logs)

    @property
    def role(self) -> str | None:
        return self.request.principal.arn

    @property
    def message(self) -> str:
        """AWS's words for this request's denial."""
        return denial_message(self.request, self.decision, self.operation.split(":", maxsplit=1)[0])


class AccessDenied(Exception):
    """A denial outside botocore (a service acting for a principal): what failed, in AWS's words."""

    def __init__(self, message: str, request: Request | None) -> None:
        super().__init__(message)
        self.request = request


def denial_message(request: Request, decision: Decision, service: str) -> str:
    """AWS's AccessDenied message: the principal, the action, the resource and which policy type said no."""
    resource = request.resource
    if service == "s3":
        resource = f'"{resource}"'
    on = f" on resource: {resource}" if request.resource != "*" else ""
    why = {
        "explicit-identity-deny": "with an explicit deny in an identity-based policy",
        "explicit-resource-deny": "with an explicit deny in a resource-based policy",
        "no-identity-allow": f"because no identity-based policy allows the {request.action} action",
        "no-resource-allow": f"because no resource-based policy allows the {request.action} action",
    }[decision.reason]
    return f"User: {request.principal.name} is not authorized to perform: {request.action}{on} {why}"


class IamEnforcer:
    """Authorizes the calls of one running local runtime; attach before any handler makes its clients."""

    def __init__(
        self,
        model: IamModel,
        *,
        account: str,
        region: str,
        token_state_machine: Callable[[str], str | None] = lambda token: None,
        object_exists: Callable[[str, str, str | None], bool] | None = None,
    ) -> None:
        self.model = model
        self.account, self.region = account, region
        self.records: list[Record] = []
        self._token_state_machine = token_state_machine
        self._object_exists = object_exists
        self._local = threading.local()
        self._lock = threading.Lock()
        self._session: Any = None
        self._unique = f"local-iam-{uuid.uuid4().hex[:8]}"

    # -- principals --------------------------------------------------------------------------------------------
    @contextmanager
    def acting_as(self, principal: Principal | None) -> Iterator[None]:
        """Calls made by this thread inside the block are the principal's (None: the account owner's, unchecked)."""
        stack: list[Principal | None] = self._local.__dict__.setdefault("stack", [])
        stack.append(principal)
        try:
            yield
        finally:
            stack.pop()

    def current(self) -> Principal | None:
        stack: list[Principal | None] = self._local.__dict__.get("stack", [])
        return stack[-1] if stack else None

    # -- evaluation --------------------------------------------------------------------------------------------
    def _context(self, principal: Principal, extra: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
        context: dict[str, ContextValue] = {"aws:SecureTransport": "true", "aws:RequestedRegion": self.region}
        if principal.arn is not None:
            context.update(
                {
                    "aws:PrincipalArn": principal.arn,
                    "aws:PrincipalAccount": principal.account or self.account,
                    "aws:PrincipalType": "AssumedRole",
                }
            )
        context.update(extra)
        return context

    def requests(self, principal: Principal, needs: list[Need]) -> list[Request]:
        found = []
        for need in needs:
            resources = (
                [need.resource]
                if need.resource is not None
                else arn_for(need.action, need.fields, region=self.region, account=self.account)
            )
            for resource in resources:
                found.append(Request(principal, need.action, resource, self._context(principal, need.context)))
        return found

    def decide(self, request: Request, skip: frozenset[str] = frozenset()) -> Decision:
        identity: tuple[Policy, ...] = ()
        if request.principal.arn is not None:
            role = self.model.role(request.principal.arn)
            identity = role.policies if role is not None else ()
        required = request.resource in self.model.key_policies
        return evaluate(
            request,
            identity,
            self.model.resource_policy(request.resource),
            resource_policy_required=required,
            skip=skip,
        )

    def check(self, principal: Principal, needs: list[Need], operation: str, *, fatal: bool = True) -> Record | None:
        """Evaluate and record every request of `needs`; the first denial, or None when all are allowed."""
        denied: Record | None = None
        for request in self.requests(principal, needs):
            record = Record(request, operation, self.decide(request), fatal)
            with self._lock:
                self.records.append(record)
            if not record.decision.allowed and denied is None:
                denied = record
        if denied is not None:
            LOG.log(logging.WARNING if fatal else logging.INFO, "denied: %s", denied.message)
        return denied

    def require(self, principal: Principal, needs: list[Need], operation: str) -> None:
        """Like `check`, raising `AccessDenied` with AWS's message (a service acting for the principal)."""
        denied = self.check(principal, needs, operation)
        if denied is not None:
            raise AccessDenied(denied.message, denied.request)

    def assumable(self, role_arn: str, service: str, source_arn: str | None = None) -> bool:
        """Whether `service` may assume the role (its trust policy), as it does before acting with it."""
        role = self.model.role(role_arn)
        if role is None or role.trust is None:
            return False
        context: dict[str, ContextValue] = {"aws:SourceAccount": self.account}
        if source_arn is not None:
            context["aws:SourceArn"] = source_arn
        request = Request(Principal(service=service), "sts:AssumeRole", role_arn, context)
        return evaluate(request, (), role.trust, resource_policy_required=True).allowed

    # -- botocore ----------------------------------------------------------------------------------------------
    def attach(self) -> None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        events = self._session.events
        events.register_first("before-parameter-build", self._keep_params, unique_id=self._unique + "-p")
        events.register_first("before-call", self._before_call, unique_id=self._unique + "-c")

    def detach(self) -> None:
        if self._session is not None:
            self._session.events.unregister("before-parameter-build", unique_id=self._unique + "-p")
            self._session.events.unregister("before-call", unique_id=self._unique + "-c")
            self._session = None

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.current() is not None:
            context["local_iam_params"] = dict(params)

    def _needs(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Need]:
        if service == "stepfunctions" and operation in TASK_TOKEN_OPERATIONS:
            machine = self._token_state_machine(str(params.get("taskToken", "")))
            return [Need(TASK_TOKEN_OPERATIONS[operation], resource=machine or "*")]
        needs = needs_for(service, operation, params)
        needs.extend(self._kms_needs(service, operation, params))
        return needs

    def _kms_needs(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Need]:
        """What a service asks KMS on the caller's behalf when the resource is encrypted with a customer key."""
        key: str | None = None
        actions: tuple[str, ...] = ()
        if service == "sns" and operation == "Publish":
            key = self.model.topic_keys.get(str(params.get("TopicArn")))
            actions = ("kms:GenerateDataKey", "kms:Decrypt")
        elif service == "s3" and operation in ("PutObject", "GetObject", "HeadObject"):
            key = self.model.bucket_keys.get(str(params.get("Bucket")))
            actions = ("kms:GenerateDataKey",) if operation == "PutObject" else ("kms:Decrypt",)
        if key is None:
            return []
        via = _KMS_VIA[service].format(region=self.region)
        return [Need(action, resource=key, context={"kms:ViaService": via}) for action in actions]

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        principal = self.current()
        if principal is None:
            return None
        service, operation = model.service_model.service_name, model.name
        params: dict[str, Any] = context.get("local_iam_params", {})
        try:
            needs = self._needs(service, operation, params)
        except UnmappedOperation as error:
            code, status = service_error(service, ACCESS_DENIED, operation)
            return error_response(model, context, code, status, f"local runtime: {error}")
        denied = self.check(principal, needs, f"{service}:{operation}")
        if denied is not None:
            code, status = service_error(service, ACCESS_DENIED, operation)
            message = http.client.responses[status] if code.isdigit() else denied.message
            return error_response(model, context, code, status, message)
        if service == "s3" and operation in ("GetObject", "HeadObject") and self._object_exists is not None:
            return self._missing_object(principal, model, context, params)
        return None

    def _missing_object(
        self, principal: Principal, model: Any, context: dict[str, Any], params: Mapping[str, Any]
    ) -> Any:
        bucket, key = str(params["Bucket"]), str(params["Key"])
        assert self._object_exists is not None
        if self._object_exists(bucket, key, params.get("VersionId")):
            return None
        listing = [Need("s3:ListBucket", {"BucketName": bucket}, context={"s3:prefix": key})]
        if self.check(principal, listing, f"s3:{model.name} (missing key)") is None:
            return None  # moto answers NoSuchKey / 404, as S3 does for a caller that may list the bucket
        code, status = service_error("s3", ACCESS_DENIED, model.name)
        return error_response(model, context, code, status, "Forbidden" if code.isdigit() else "Access Denied")
