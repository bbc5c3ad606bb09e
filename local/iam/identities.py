"""Who does what in the local runtime, as on AWS: the principal behind each kind of call, and the checks AWS makes
before a service acts with a role (its trust policy) or for itself (a resource policy).

`Identities` is what `LocalRuntime` hands its parts: the in-process Lambdas (`lambda_identity`), the Step
Functions bridge (`authorize_invoke`), the EventBridge bridge (`authorize_start`, `authorize_lambda_target`,
`authorize_dead_letter`), the SageMaker jobs (`authorize_job`) and the people the runtime plays (`person`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from local.iam.actions import Need
from local.iam.enforcer import AccessDenied, IamEnforcer
from local.iam.model import Role, build_model
from local.iam.policy import Principal
from local.world import FunctionSpec, World

EVENTS_SERVICE = "events.amazonaws.com"


class RoleNotAssumable(Exception):
    """A service cannot assume the role a resource names (its trust policy does not let it)."""


def _denied(error: AccessDenied, operation: str, status: int = 400) -> ClientError:
    """The ClientError the calling service answers with (Lambda: 403, JSON services: 400)."""
    response = {"Error": {"Code": "AccessDeniedException", "Message": str(error)}}
    return ClientError({**response, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class Identities:
    """The principals of one local world and the service-side authorizations AWS performs for them."""

    def __init__(self, world: World, *, account: str, region: str) -> None:
        self.world = world
        self.account, self.region = account, region
        self.model = build_model(world)
        self.enforcer = IamEnforcer(
            self.model,
            account=account,
            region=region,
            token_state_machine=self._token_state_machine,
            object_exists=_object_exists(account),
        )
        machines = world.stack.of_type("AWS::StepFunctions::StateMachine")
        self._machine_roles: dict[str, str] = {}
        for logical_id in machines:
            props = world.resolver.resolve(machines[logical_id].get("Properties", {}))
            self._machine_roles[world.physical[logical_id].ref] = str(props.get("RoleArn", ""))

    def attach(self) -> None:
        self.enforcer.attach()

    def detach(self) -> None:
        self.enforcer.detach()

    # -- Lambda ------------------------------------------------------------------------------------------------
    @contextmanager
    def lambda_identity(self, spec: FunctionSpec) -> Iterator[None]:
        """The handler runs as the function's execution role. Lambda assumes it first (its trust policy), and the
        Lambda service writes the function's logs and traces with it; AWS drops those silently when denied, so
        they are recorded and logged, never raised."""
        if spec.role_arn is None or not self.enforcer.assumable(spec.role_arn, "lambda.amazonaws.com"):
            raise RoleNotAssumable(f"The role defined for the function cannot be assumed by Lambda: {spec.role_arn}")
        principal = Principal(arn=spec.role_arn, session=spec.name)
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        log_arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{spec.log_group}:log-stream:{stream}"
        writes = [Need("logs:CreateLogStream", resource=log_arn), Need("logs:PutLogEvents", resource=log_arn)]
        self.enforcer.check(principal, writes, "lambda:WriteLogs", fatal=False)
        if spec.tracing:
            traces = [Need("xray:PutTraceSegments"), Need("xray:PutTelemetryRecords")]
            self.enforcer.check(principal, traces, "lambda:SendTraces", fatal=False)
        with self.enforcer.acting_as(principal):
            yield

    # -- Step Functions ----------------------------------------------------------------------------------------
    def _token_state_machine(self, token: str) -> str | None:
        return next(iter(self._machine_roles)) if len(self._machine_roles) == 1 else None

    def machine_principal(self, machine_arn: str) -> Principal:
        role = self._machine_roles.get(machine_arn, "")
        if not self.enforcer.assumable(role, "states.amazonaws.com", source_arn=machine_arn):
            raise RoleNotAssumable(f"Neither the state machine nor the role {role} may be assumed by Step Functions")
        return Principal(arn=role, session=f"{uuid.uuid4().hex[:32]}")

    def authorize_invoke(self, function_arn: str) -> None:
        """A Lambda task: the state machine's role invokes the function (one state machine per local world)."""
        machine = next(iter(self._machine_roles))
        try:
            self.enforcer.require(
                self.machine_principal(machine), [Need("lambda:InvokeFunction", resource=function_arn)], "lambda:Invoke"
            )
        except AccessDenied as error:
            raise _denied(error, "Invoke", 403) from None

    # -- EventBridge -------------------------------------------------------------------------------------------
    def authorize_start(self, rule_arn: str, target: dict[str, Any]) -> None:
        """A state machine target: EventBridge assumes the target's role, which must allow StartExecution."""
        role = target.get("RoleArn")
        if not role or not self.enforcer.assumable(str(role), EVENTS_SERVICE, source_arn=rule_arn):
            raise ClientError(
                {
                    "Error": {"Code": "AccessDeniedException", "Message": f"EventBridge cannot assume the role {role}"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "StartExecution",
            )
        principal = Principal(arn=str(role), session=f"events-{uuid.uuid4().hex[:12]}")
        try:
            need = Need("states:StartExecution", resource=str(target["Arn"]))
            self.enforcer.require(principal, [need], "states:StartExecution")
        except AccessDenied as error:
            raise _denied(error, "StartExecution") from None

    def _as_events(self, rule_arn: str) -> dict[str, str]:
        return {"aws:SourceArn": rule_arn, "aws:SourceAccount": self.account}

    def authorize_lambda_target(self, rule_arn: str, target: dict[str, Any]) -> None:
        """A Lambda target: the events service invokes it, allowed only by the function's resource policy."""
        need = Need("lambda:InvokeFunction", resource=str(target["Arn"]), context=self._as_events(rule_arn))
        try:
            self.enforcer.require(Principal(service=EVENTS_SERVICE), [need], "lambda:Invoke")
        except AccessDenied as error:
            raise _denied(error, "Invoke", 403) from None

    def authorize_dead_letter(self, rule_arn: str, queue_arn: str) -> str | None:
        """EventBridge sends a failed event to the target's DLQ as itself: the queue policy must allow it. The
        denial's message (the event is then lost), or None."""
        need = Need("sqs:SendMessage", resource=queue_arn, context=self._as_events(rule_arn))
        try:
            self.enforcer.require(Principal(service=EVENTS_SERVICE), [need], "sqs:SendMessage")
        except AccessDenied as error:
            return str(error)
        return None

    # -- SageMaker jobs ----------------------------------------------------------------------------------------
    def authorize_job(self, role_arn: str, needs: list[Need], operation: str) -> None:
        """What SageMaker does with the job's role (stage channels, upload outputs); raises AccessDenied."""
        if not self.enforcer.assumable(role_arn, "sagemaker.amazonaws.com"):
            raise AccessDenied(
                f"SageMaker cannot assume the role {role_arn}: its trust policy does not allow sagemaker.amazonaws.com",
                None,
            )
        self.enforcer.require(Principal(arn=role_arn, session="SageMaker"), needs, operation)

    # -- people ------------------------------------------------------------------------------------------------
    def add_person_role(self, name: str, managed_policy_ids: list[str]) -> str:
        """A role the runtime plays for people (approvers, operators) with the stack's shipped managed policies."""
        arn = f"arn:aws:iam::{self.account}:role/{name}"
        missing = [lid for lid in managed_policy_ids if lid not in self.model.managed_policies]
        if missing:
            raise KeyError(f"the template has no managed policy {', '.join(missing)}")
        policies = tuple(self.model.managed_policies[lid] for lid in managed_policy_ids)
        self.model.roles[arn] = Role(name, arn, policies)
        return arn

    @contextmanager
    def person(self, role_arn: str, session: str) -> Iterator[None]:
        with self.enforcer.acting_as(Principal(arn=role_arn, session=session)):
            yield


def _object_exists(account: str) -> Any:
    def exists(bucket: str, key: str, version_id: str | None) -> bool:
        from moto.s3.models import s3_backends

        try:
            return s3_backends[account]["aws"].get_object(bucket, key, version_id=version_id) is not None
        except Exception:  # a missing bucket: the key does not exist either
            return False

    return exists
