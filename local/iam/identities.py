"""Who does what in the local runtime, as on AWS: the principal behind each kind of call, and the checks AWS makes
before a service acts with a role (its trust policy) or for itself (a resource policy).

`Identities` is what `LocalRuntime` hands its parts: the in-process Lambdas (`lambda_identity`), the Step
Functions bridge (`authorize_invoke`), the EventBridge bridge (`authorize_start`, `authorize_lambda_target`,
`authorize_dead_letter`), the SageMaker jobs (`authorize_job`) and the people the runtime plays (`person`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from local.errors import SetupError
from local.iam.actions import Need
from local.iam.enforcer import AccessDenied, IamEnforcer
from local.iam.model import Role, build_model
from local.iam.policy import Principal
from local.world import FunctionSpec, World

EVENTS_SERVICE = "events.amazonaws.com"
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


class RoleNotAssumable(Exception):
    """A service cannot assume the role a resource names (its trust policy does not let it)."""


class StackWouldNotDeploy(SetupError):
    """AWS would refuse to create a resource of the template for lack of a permission it checks at creation."""


def _denied(error: AccessDenied, operation: str, status: int = 400) -> ClientError:
    """The ClientError the calling service answers with (Lambda: 403, JSON services: 400)."""
    response = {"Error": {"Code": "AccessDeniedException", "Message": str(error)}}
    metadata = {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())}
    return ClientError({**response, "ResponseMetadata": metadata}, operation)


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
        self._traced_machines: set[str] = set()
        self._token_issuers: list[str] = []  # machines with a .waitForTaskToken task: only they issue task tokens
        for logical_id in machines:
            props = world.resolver.resolve(machines[logical_id].get("Properties", {}))
            arn = world.physical[logical_id].ref
            self._machine_roles[arn] = str(props.get("RoleArn", ""))
            if ".waitForTaskToken" in json.dumps(world.definitions.get(arn) or props.get("DefinitionString") or ""):
                self._token_issuers.append(arn)
            if (props.get("TracingConfiguration") or {}).get("Enabled"):
                self._traced_machines.add(arn)
            if props.get("LoggingConfiguration", {}).get("Destinations"):
                self._check_log_delivery(arn)

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
    def _check_log_delivery(self, machine_arn: str) -> None:
        """CreateStateMachine with a CloudWatch Logs destination checks that the role may set up log delivery
        (Step Functions developer guide, "IAM policies for logging to CloudWatch Logs"); without it the stack does
        not deploy, so the local world does not start."""
        principal = Principal(arn=self._machine_roles[machine_arn], session="CreateStateMachine")
        needs = [Need(action) for action in LOG_DELIVERY_ACTIONS]
        try:
            self.enforcer.require(principal, needs, "states:CreateStateMachine")
        except AccessDenied as error:
            raise RoleNotAssumable(
                f"The state machine IAM Role is not authorized to access the Log Destination: {error}"
            ) from None

    def execution_started(self, machine_arn: str) -> None:
        """An execution of a traced machine: Step Functions sends its trace segments with the machine's role (a
        denial loses the traces silently, as on AWS)."""
        if machine_arn in self._traced_machines:
            principal = Principal(arn=self._machine_roles[machine_arn], session="xray")
            traces = [Need("xray:PutTraceSegments"), Need("xray:PutTelemetryRecords")]
            self.enforcer.check(principal, traces, "states:SendTraces", fatal=False)

    def _token_state_machine(self, token: str) -> str | None:
        """The machine that issued a task token: the one machine of the stack that has a callback task."""
        return self._token_issuers[0] if len(self._token_issuers) == 1 else None

    def machine_principal(self, machine_arn: str) -> Principal:
        role = self._machine_roles.get(machine_arn) or _machine_role(self.account, self.region, machine_arn)
        if not self.enforcer.assumable(role, "states.amazonaws.com", source_arn=machine_arn):
            raise RoleNotAssumable(f"Neither the state machine nor the role {role} may be assumed by Step Functions")
        return Principal(arn=role, session=f"{uuid.uuid4().hex[:32]}")

    def authorize_invoke(self, machine: str, function_arn: str) -> None:
        """A Lambda task: the executing state machine's role invokes the function."""
        try:
            principal = self.machine_principal(machine)
            self.enforcer.require(principal, [Need("lambda:InvokeFunction", resource=function_arn)], "lambda:Invoke")
        except AccessDenied as error:
            raise _denied(error, "Invoke", 403) from None
        except RoleNotAssumable as error:
            raise _denied(AccessDenied(str(error), None), "Invoke", 403) from None

    # -- EventBridge -------------------------------------------------------------------------------------------
    def authorize_start(self, rule_arn: str, target: dict[str, Any]) -> None:
        """A state machine target: EventBridge assumes the target's role, which must allow StartExecution."""
        role = target.get("RoleArn")
        if not role or not self.enforcer.assumable(str(role), EVENTS_SERVICE, source_arn=rule_arn):
            raise _denied(AccessDenied(f"EventBridge cannot assume the role {role}", None), "StartExecution")
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

    def job_side_effects(self, role_arn: str, kind: str, job_name: str, metrics: bool) -> None:
        """What SageMaker does with the job's role besides staging data: the job's CloudWatch Logs stream and, for
        training, its metrics (namespace /aws/sagemaker/TrainingJobs). A denial loses them silently on AWS."""
        group = f"/aws/sagemaker/{kind}"
        stream = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:{job_name}/algo-1"
        needs = [
            Need("logs:CreateLogGroup", resource=f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"),
            Need("logs:CreateLogStream", resource=stream),
            Need("logs:PutLogEvents", resource=stream),
        ]
        if metrics:
            needs.append(Need("cloudwatch:PutMetricData", context={"cloudwatch:namespace": group}))
        self.enforcer.check(Principal(arn=role_arn, session="SageMaker"), needs, "sagemaker:JobLogs", fatal=False)

    # -- people ------------------------------------------------------------------------------------------------
    def person_role(self, kind: str | None, name: str | None = None) -> str | None:
        """The role the runtime plays for `kind` ("approver", "operator"): the stack's shipped managed policy for
        them (`stacks.people`) attached to a role of their own (`name`, default promotion-<kind>); kind None is a
        role with no policy at all. None when the template ships no such policy."""
        role_name = name or f"promotion-{kind or 'nobody'}"
        arn = f"arn:aws:iam::{self.account}:role/{role_name}"
        if arn in self.model.roles:
            return arn
        if kind is None:
            self.model.roles[arn] = Role(role_name, arn, ())
            return arn
        suffix = f"/{kind.capitalize()}sPolicy/Resource"
        for logical_id, resource in self.world.stack.of_type("AWS::IAM::ManagedPolicy").items():
            if str(resource.get("Metadata", {}).get("aws:cdk:path", "")).endswith(suffix):
                self.model.roles[arn] = Role(role_name, arn, (self.model.managed_policies[logical_id],))
                return arn
        return None

    @contextmanager
    def person(self, role_arn: str, session: str) -> Iterator[None]:
        with self.enforcer.acting_as(Principal(arn=role_arn, session=session)):
            yield


def _machine_role(account: str, region: str, machine_arn: str) -> str:
    """The role of a state machine created outside the template (tests do), as Step Functions recorded it."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    try:
        return str(stepfunctions_parser_backends[account][region].describe_state_machine(machine_arn).roleArn)
    except Exception:  # no such machine: no role to act with
        return ""


def _object_exists(account: str) -> Any:
    def exists(bucket: str, key: str, version_id: str | None) -> bool:
        from moto.s3.models import s3_backends

        try:
            return s3_backends[account]["aws"].get_object(bucket, key, version_id=version_id) is not None
        except Exception:  # a missing bucket: the key does not exist either
            return False

    return exists
