"""The embedded local runtime: the synthesized stack, live in moto, with its real handlers invoked in process.

`LocalRuntime` starts moto (`mock_aws` with Step Functions executing state machines), builds the stack's
resources from `cdk.out`, activates the bridges (`local.sfn_bridge`, `local.events_bridge`), seeds the SageMaker
world, and drives executions: an event goes through EventBridge exactly as on AWS (the rule CDK defined decides
what starts), approvals are answered with real decision events on the product bus, and the result reports the
execution's states, output and production before and after. The CLI (`python -m local`) and e2e tests use it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self, TextIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from pydantic import BaseModel, ConfigDict

from local import endpoints, events_bridge, registry, sagemaker_events, sagemaker_jobs, sfn_bridge
from local.errors import UsageError
from local.events_bridge import OVER_THE_LIMIT, PUT_EVENTS_LIMIT_BYTES, entry_size
from local.faults import FaultInjector
from local.iam.identities import Identities
from local.lambdas import InProcessLambdas
from local.production import (
    Champion,
    ProductionSnapshot,
    load_model_catalog,
    model_of,
    seed_champion,
    snapshot,
)
from local.sagemaker_world import load_world, seed_sagemaker
from local.sfn_bridge import TimeCompression
from local.template import StackTemplate, load_stack
from local.timeline import StateRecord, states_from_history
from local.world import World, WorldBuilder, find_function

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
MAX_EXECUTION_INPUT_BYTES = 262144  # StartExecution's input, in UTF-8 bytes
# State names are the operator contract (docs/state-machine.md); the runtime answers this one's callback.
APPROVAL_STATE = "AwaitApproval"
_POLL_S = 0.02


class Decision(BaseModel):
    """How the run answers AwaitApproval: approve or reject as someone, or not at all (let it expire).

    `by` is a catalog approver's name: the runtime plays their IAM identity (their role, with their session name)
    and changes the candidate's status in the Model Registry as they would. `role` / `session` play any other
    identity instead (someone who is not an approver, with or without the approvers' policy)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["approve", "reject", "none"]
    by: str | None = None
    comment: str = ""
    role: str | None = None  # an IAM role name to play instead of the approver's
    session: str | None = None
    grant: bool = True  # the played role holds the stack's approvers' policy (False: no policy at all)

    @classmethod
    def approve(cls, by: str, comment: str = "approved in the local runtime") -> Decision:
        return cls(decision="approve", by=by, comment=comment)

    @classmethod
    def reject(cls, by: str, comment: str = "rejected in the local runtime") -> Decision:
        return cls(decision="reject", by=by, comment=comment)

    @classmethod
    def no_answer(cls) -> Decision:
        return cls(decision="none")


class IamSummary(BaseModel):
    """What the IAM enforcement saw during one run: whether it was on, the requests it authorized, the denials
    (in AWS's words) and the requests AWS would not surface when denied (the Lambda service's log writes)."""

    enforced: bool
    authorized: int = 0
    denied: list[str] = []
    silent_denials: list[str] = []

    def line(self) -> str:
        if not self.enforced:
            return "IAM: NOT enforced (--no-iam): on AWS every call below is authorized; this run checked none"
        return f"IAM: enforced, {self.authorized} requests authorized, {len(self.denied)} denied"


class RunResult(BaseModel):
    """The end of one local run: the contract of `python -m local run --json` plus what tests want to look at."""

    status: str
    execution_name: str | None
    execution_arn: str | None = None
    states: list[StateRecord] = []
    output: Any = None
    error: str | None = None
    cause: str | None = None
    production_before: ProductionSnapshot | None = None
    production_after: ProductionSnapshot | None = None
    report: dict[str, str] | None = None
    model: str | None = None
    duration_s: float = 0.0
    iam: IamSummary | None = None

    @property
    def outcome(self) -> str | None:
        result = self.output.get("result") if isinstance(self.output, dict) else None
        return result.get("outcome") if isinstance(result, dict) else None

    @property
    def promoted(self) -> bool:
        return self.status == "SUCCEEDED" and self.outcome == "PROMOTED"

    @property
    def exit_code(self) -> int:
        return 0 if self.promoted else 1

    def contract(self) -> dict[str, Any]:
        """The JSON object `python -m local run --json` prints."""
        document: dict[str, Any] = {
            "status": self.status,
            "execution_name": self.execution_name,
            "states": [{"name": s.name, "status": s.status} for s in self.states],
            "output": self.output,
        }
        if self.error is not None or self.cause is not None:
            document.update(error=self.error, cause=self.cause)
        document.update(
            production_before=self.production_before.model_dump() if self.production_before else None,
            production_after=self.production_after.model_dump() if self.production_after else None,
            report=self.report,
            iam=self.iam.model_dump() if self.iam else None,
        )
        return document


@dataclass
class _Clients:
    """boto3 clients on moto, made after the mock started."""

    region: str
    # local.lambdas' environment lock, once the functions run: a client is made under it (see new_client)
    environment_lock: Any = None
    _made: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._made:
            self._made[service] = new_client(
                service,
                self.environment_lock,
                region_name=self.region,
                config=Config(retries={"mode": "standard", "max_attempts": 2}),
            )
        return self._made[service]


def new_client(service: str, environment_lock: Any, **options: Any) -> Any:
    """A boto3 client made while no in-process function has its environment swapped into os.environ: botocore reads
    the process environment as it makes a client, and a function putting its keys back meanwhile breaks that read."""
    with environment_lock if environment_lock is not None else nullcontext():
        return boto3.client(service, **options)


def final_document(history: list[dict[str, Any]]) -> Any:
    """A failed execution has no output: the document as it entered its last state says what happened."""
    for event in reversed(history):
        details = event.get("stateEnteredEventDetails")
        if details and details.get("input"):
            return json.loads(details["input"])
    return None


def published_report_key(history: list[dict[str, Any]]) -> str | None:
    """The decision report key from PublishResult's own result in the history."""
    publishing = False
    key: str | None = None
    for event in history:
        entered = event.get("stateEnteredEventDetails")
        if entered is not None:
            publishing = entered.get("name") == "PublishResult"
        succeeded = event.get("taskSucceededEventDetails") or event.get("lambdaFunctionSucceededEventDetails")
        if publishing and succeeded and succeeded.get("output"):
            result = json.loads(succeeded["output"])
            if isinstance(result, dict) and result.get("report_key"):
                key = str(result["report_key"])
    return key


def _reset_domain_clients() -> None:
    """The domain package caches boto3 clients per process; they must not outlive one mock."""
    clients = sys.modules.get("promotion.core.clients")
    if clients is not None:
        clients.reset_clients()


_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class LocalRuntime:
    """The stack in `root`'s cdk.out, running on moto in this process. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        root: Path = ROOT,
        *,
        stack_name: str | None = None,
        assembly_dir: Path | None = None,
        synth: bool = True,
        world: Path | dict[str, Any] | None = None,
        time_compression: TimeCompression | None = None,
        fail_at: Iterable[str] = (),
        function_logs: TextIO | None = None,
        models_dir: Path | None = None,
        reports_dir: Path | None = None,
        champion: Literal["weak", "strong"] = "weak",
        scenario: str = "good",
        traffic_seed: int = 7,
        event_delivery: sagemaker_events.EventDelivery | None = None,
        jobs_dir: Path | None = None,
        faults: FaultInjector | None = None,
        enforce_iam: bool = True,
        template: Path | None = None,
    ) -> None:
        self.root = root
        self.models_dir = models_dir or root / "models"
        # Decision reports are copied here from the moto bucket, one folder per execution.
        self.reports_dir = reports_dir or root / ".local-runs" / "reports"
        # How good the seeded champion model is: "weak" (the tuned challenger beats it) or "strong" (it does not).
        self.champion = champion
        # How the endpoint's callers fare on the challenger during a rollout (local/endpoints.py).
        self.scenario = scenario
        self.traffic_seed = traffic_seed  # the simulated callers' random draws (errors, latencies)
        # How SageMaker's state-change events arrive (all, once, by default) and the record of those put.
        self.event_delivery = event_delivery or sagemaker_events.EventDelivery()
        self.traffic: endpoints.TrafficSimulator | None = None
        self.jobs_dir = jobs_dir or root / ".local-runs" / "jobs" / uuid.uuid4().hex[:12]
        self.jobs: sagemaker_jobs.LocalJobs | None = None
        self.time = time_compression or TimeCompression()
        self.fail_at = tuple(fail_at)
        self.function_logs = function_logs
        self.stack_name, self.assembly_dir, self.synth = stack_name, assembly_dir, synth
        self._world_source = world
        self.faults = faults  # local.faults: AWS errors and Lambda failures to inject, and the record of AWS calls
        # local.iam: every AWS call is authorized against the template's policies (off only when asked, and said)
        self.enforce_iam = enforce_iam
        self.iam: Identities | None = None
        self._iam_mark = 0  # index of the first IAM record of the current run
        self.template = template  # run this synthesized template instead of cdk.out's (`local run --template`)
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._started_by_event: dict[str, list[str]] = {}
        self.dead_letters: list[dict[str, Any]] = []  # deliveries EventBridge gave up on (see _dead_letter)
        self._sfn: sfn_bridge.StepFunctionsBridge | None = None
        self._events: events_bridge.EventsBridge | None = None
        self._registry: registry.RegistryBridge | None = None
        self._persons = threading.local()  # the people this thread plays (role ARN, session), innermost last
        self._advance_lock = threading.Lock()
        self.stack: StackTemplate | None = None
        self.world: World | None = None
        self.lambdas: InProcessLambdas | None = None
        self.clients = _Clients(REGION)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Synthesize if needed, start moto, build the world, activate the bridges, seed the SageMaker world."""
        self.stack = load_stack(
            self.root,
            stack_name=self.stack_name,
            assembly_dir=self.assembly_dir,
            synth=self.synth,
            template=self.template,
        )
        world_document = load_world(self._world_source) if self._world_source is not None else None
        self._saved_env = {key: os.environ.get(key) for key in _FAKE_ENV}
        os.environ.update(_FAKE_ENV)
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        try:
            self.world = WorldBuilder(self.stack, self.clients, account=ACCOUNT, region=REGION).build()
            # The people's shell: `promote` finds the table here. Set once for the runtime's life, not per command:
            # a command that swapped it in and out would race the functions running meanwhile in other threads
            # (each sets its own environment over the process's and puts back what it found).
            table = self._optional_function_env("PROMOTION_TABLE")
            if table is not None:
                self._saved_env.setdefault("PROMOTION_TABLE", os.environ.get("PROMOTION_TABLE"))
                os.environ["PROMOTION_TABLE"] = table
            faults = self._fault_functions(self.fail_at)
            self.lambdas = InProcessLambdas(self.world.functions, REGION, faults=faults, echo=self.function_logs)
            self.lambdas.open()
            self.clients.environment_lock = self.lambdas.environment_lock
            if self.enforce_iam:
                self.iam = Identities(self.world, account=ACCOUNT, region=REGION)
                self.iam.attach()
                self.lambdas.identity = self.iam.lambda_identity
            if self.faults is not None:
                self.faults.attach(self)
            self.traffic = endpoints.TrafficSimulator(
                self.clients.sagemaker,
                self.clients.cloudwatch,
                self._endpoint_names(),
                self.scenario,
                seed=self.traffic_seed,
            )
            self.traffic.lifecycle.model_data_check = self._model_data_check
            self.traffic.lifecycle.on_change = sagemaker_events.endpoint_changed
            self._sfn = sfn_bridge.StepFunctionsBridge(
                lambdas=self.lambdas,
                time=self.time,
                on_wait=self.traffic.on_wait,
                authorize_invoke=self.iam.authorize_invoke if self.iam is not None else None,
                advance=self._advance_sagemaker,
            )
            self._events = events_bridge.EventsBridge(
                start_execution=self._start_from_rule,
                invoke_async=self._invoke_target,
                dead_letter=self._dead_letter,
            )
            sfn_bridge.HOOKS.activate(self._sfn)
            events_bridge.HOOKS.activate(self._events)
            self.jobs = sagemaker_jobs.LocalJobs(
                self.clients.s3,
                self.jobs_dir,
                cache_dir=self.root / ".local-runs" / "job-cache",
                authorize=self.iam.authorize_job if self.iam is not None else None,
                side_effects=self.iam.job_side_effects if self.iam is not None else None,
                project_image=self._optional_function_env("JOB_IMAGE_URI"),
            )
            sagemaker_jobs.HOOKS.activate(self.jobs)
            sagemaker_events.HOOKS.activate(self.event_delivery)
            endpoints.HOOKS.activate(self.traffic)
            self._registry = registry.RegistryBridge(caller=self._caller)
            registry.HOOKS.activate(self._registry)
            from promotion.core import clock

            clock.reset()
            _reset_domain_clients()
            if world_document is not None:
                seed_sagemaker(world_document, account=ACCOUNT, region=REGION)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop running executions, let queued deliveries finish, deactivate the bridges, stop moto, restore the
        environment. Executions are stopped first so no interpreter thread outlives the mock. Whatever fails on the
        way (an execution that ended between listing and stopping it), moto is stopped and the environment restored,
        so the next runtime in the process starts clean; the first failure is raised afterwards."""
        failures: list[BaseException] = []

        def attempt(step: Any, *args: Any) -> None:
            try:
                step(*args)
            except Exception as error:  # teardown goes on; the first failure is re-raised below
                failures.append(error)

        try:
            if self._mock is not None and self.world is not None:
                attempt(self._stop_executions)
            if self.faults is not None:
                attempt(self.faults.detach)
            if self.iam is not None:
                attempt(self.iam.detach)
            if self.lambdas is not None:
                attempt(self.lambdas.close)
            if self._sfn is not None:
                attempt(sfn_bridge.HOOKS.deactivate, self._sfn)
            if self._events is not None:
                attempt(events_bridge.HOOKS.deactivate, self._events)
            if self.jobs is not None:
                attempt(sagemaker_jobs.HOOKS.deactivate, self.jobs)
            attempt(sagemaker_events.HOOKS.deactivate, self.event_delivery)
            if self.traffic is not None:
                attempt(endpoints.HOOKS.deactivate, self.traffic)
            if self._registry is not None:
                attempt(registry.HOOKS.deactivate, self._registry)
        finally:
            try:
                if self._mock is not None:
                    mock, self._mock = self._mock, None
                    mock.stop()
            finally:
                _reset_domain_clients()
                for key, value in self._saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                self._saved_env = {}
        if failures:
            raise failures[0]

    def _stop_executions(self, settle_s: float = 20.0) -> None:
        """Let the short executions SageMaker's events started (the operator rollback machine's, which most often
        just ignore a package change the run made) end by themselves, then stop whatever still runs: an execution
        stopped mid-task would finish its Lambda after this runtime is gone, inside the next one's world."""
        sfn = self.clients.stepfunctions
        promotion = self.state_machine_arn
        deadline = time.monotonic() + settle_s
        for arn in self._world().state_machines.values():
            if arn == promotion:
                continue
            self._drain()
            while sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        for arn in self._world().state_machines.values():
            for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                try:
                    sfn.stop_execution(executionArn=execution["executionArn"])
                except ClientError as error:  # it ended by itself since the listing
                    if error.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "ExecutionNotRunning"):
                        raise

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the stack -------------------------------------------------------------------------------------------
    def _world(self) -> World:
        if self.world is None:
            raise RuntimeError("the local runtime is not started")
        return self.world

    @property
    def state_machine_arn(self) -> str:
        return self._world().state_machine_arn()

    def _optional_function_env(self, name: str) -> str | None:
        """The functions' one value of `name`, or None when the stack sets none (a stack without a job image)."""
        try:
            return self._function_env(name)
        except UsageError:
            return None

    def _function_env(self, name: str) -> str:
        values = {spec.environment[name] for spec in self._world().functions.values() if name in spec.environment}
        if len(values) != 1:
            raise UsageError(f"the stack's functions do not agree on one {name} (found {sorted(values) or 'none'})")
        return values.pop()

    @property
    def config_bucket(self) -> str:
        """The config bucket, as the template tells the functions (CONFIG_BUCKET)."""
        return self._function_env("CONFIG_BUCKET")

    @property
    def table_name(self) -> str:
        """The promotion table, as the template tells the functions (PROMOTION_TABLE)."""
        return self._function_env("PROMOTION_TABLE")

    @property
    def product_bus(self) -> str:
        """The product's own bus, as the template tells the functions (EVENT_BUS_NAME)."""
        return self._function_env("EVENT_BUS_NAME")

    def lambda_states(self) -> dict[str, str]:
        """State name -> logical id of the function behind it, for every Lambda task of the promotion state machine."""
        world = self._world()
        found: dict[str, str] = {}

        def visit(states: dict[str, Any]) -> None:
            for name, state in states.items():
                for branch in state.get("Branches", []):
                    visit(branch.get("States", {}))
                for key in ("Iterator", "ItemProcessor"):
                    if key in state:
                        visit(state[key].get("States", {}))
                if state.get("Type") != "Task":
                    continue
                resource = str(state.get("Resource", ""))
                reference = resource
                if resource.startswith("arn:aws:states:::lambda:invoke"):
                    reference = str(state.get("Parameters", {}).get("FunctionName", ""))
                spec = find_function(world.functions, reference)
                if spec is not None:
                    found[name] = spec.logical_id

        visit(world.definitions[world.state_machine_arn()].get("States", {}))
        return found

    def _fault_functions(self, states: Iterable[str]) -> set[str]:
        known = self.lambda_states()
        unknown = [state for state in states if state not in known]
        if unknown:
            raise UsageError(
                f"--fail-at {', '.join(unknown)}: not a Lambda task of the state machine "
                f"(Lambda tasks: {', '.join(sorted(known))})"
            )
        return {known[state] for state in states}

    # -- events ----------------------------------------------------------------------------------------------
    def _start_from_rule(
        self, rule_arn: str, target: dict[str, Any], execution_input: str, event: dict[str, Any]
    ) -> None:
        """EventBridge -> Step Functions target: one execution per matching event, named as EventBridge does,
        started with the target's role."""
        state_machine_arn = str(target["Arn"])
        if self.iam is not None:
            self.iam.authorize_start(rule_arn, target)
        if len(execution_input.encode()) > MAX_EXECUTION_INPUT_BYTES:  # moto does not check StartExecution's limit
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                        f"Member must have length less than or equal to {MAX_EXECUTION_INPUT_BYTES}",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "StartExecution",
            )
        response = self.clients.stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=execution_input
        )
        if self.iam is not None:
            self.iam.execution_started(state_machine_arn)
        self._started_by_event.setdefault(event["id"], []).append(response["executionArn"])

    def _invoke_target(self, rule_arn: str, target: dict[str, Any], payload: Any) -> None:
        """EventBridge -> Lambda target: the events service invokes the function asynchronously, allowed by the
        function's resource policy."""
        if self.iam is not None:
            self.iam.authorize_lambda_target(rule_arn, target)
        assert self.lambdas is not None
        self.lambdas.invoke_async(str(target["Arn"]), payload)

    def _dead_letter(self, rule_arn: str, target: dict[str, Any], event: dict[str, Any], error: ClientError) -> None:
        """A delivery EventBridge gave up on: into the target's dead-letter queue, as EventBridge writes it (the
        queue's policy must let the events service send; otherwise the event is lost, as on AWS)."""
        message = f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        letter = {"rule": rule_arn, "target": target["Arn"], "queue": queue_arn, "event": event, "error": message}
        self.dead_letters.append(letter)
        if queue_arn and self.iam is not None:
            refused = self.iam.authorize_dead_letter(rule_arn, queue_arn)
            if refused is not None:
                letter.update(queue=None, lost=refused)
                return
        if not queue_arn:
            return  # no DLQ: EventBridge drops the event
        url = self.clients.sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        attributes = {
            "ERROR_CODE": "SDK_CLIENT_ERROR",
            "ERROR_MESSAGE": message,
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
            "RETRY_ATTEMPTS": "0",
            "RULE_ARN": rule_arn,
            "TARGET_ARN": target["Arn"],
        }
        self.clients.sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
        )

    def send_event(
        self,
        event: dict[str, Any],
        bus: str | None = None,
        *,
        as_person: tuple[Literal["approver", "operator"], str] | None = None,
    ) -> list[str]:
        """Put an event (EventBridge's delivered shape, like shared/events/*.json) on a bus; the ARNs of the
        executions the stack's rules started for it. `as_person`: (kind, name) puts it as that person would, with
        the stack's managed policy for approvers or operators (otherwise as the account, like AWS's own events)."""
        if not isinstance(event.get("source"), str) or not isinstance(event.get("detail-type"), str):
            raise UsageError("an event needs a 'source' and a 'detail-type' (EventBridge's delivered shape)")
        entry: dict[str, Any] = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event.get("detail", {})),
            "Resources": list(event.get("resources", [])),
            "EventBusName": bus or "default",
        }
        if event.get("time"):
            try:
                entry["Time"] = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
            except ValueError as error:
                raise UsageError(f"the event's time {event['time']!r} is not ISO 8601: {error}") from None
        try:
            response = self._put_events(entry, as_person)
        except ClientError as error:
            if error.response["Error"]["Code"] == "AccessDeniedException":
                raise UsageError(f"EventBridge refused the event: {error.response['Error']['Message']}") from None
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            why = error.response["Error"]["Message"]
            if why == OVER_THE_LIMIT:
                why += f" (this entry is {entry_size(entry):,} bytes; the limit is {PUT_EVENTS_LIMIT_BYTES:,} bytes)"
            raise UsageError(f"EventBridge refused the event: ValidationException: {why}") from None
        result = response["Entries"][0]
        if "ErrorCode" in result:
            raise UsageError(f"EventBridge refused the event: {result['ErrorCode']}: {result.get('ErrorMessage')}")
        return self._started_by_event.get(result["EventId"], [])

    def _put_events(
        self, entry: dict[str, Any], as_person: tuple[Literal["approver", "operator"], str] | None
    ) -> dict[str, Any]:
        if self.iam is None or as_person is None:
            response: dict[str, Any] = self.clients.events.put_events(Entries=[entry])
            return response
        role = self.iam.person_role(as_person[0])
        if role is None:  # never put it as the unchecked account instead: that would hide a missing policy
            raise UsageError(f"the template ships no {as_person[0]}s' managed policy to put this event with")
        # A client made now, after the enforcement hooked botocore, so the person's policy is what decides.
        client = new_client("events", self.clients.environment_lock, region_name=REGION)
        with self.iam.person(role, as_person[1]):
            response = client.put_events(Entries=[entry])
        return response

    def pending_package(self, model: str, tuning_job_name: str) -> str:
        """The candidate package AwaitApproval registered for this tuning job's promotion."""
        from promotion.intake.approval import approval_key

        item = self.clients.dynamodb.get_item(
            TableName=self.table_name, Key=approval_key(model, tuning_job_name), ConsistentRead=True
        ).get("Item")
        if item is None or "model_package_arn" not in item:
            raise UsageError(f"no candidate of {model} from {tuning_job_name} is registered for approval")
        return str(item["model_package_arn"]["S"])

    def decision_identity(self, model: str, decision: Decision) -> tuple[str, str]:
        """(role name, session name) the runtime plays for `decision`."""
        if decision.role is not None:
            return decision.role, decision.session or "local"
        approver = load_model_catalog(self.models_dir, model).approval.approver_named(decision.by or "")
        if approver is None or approver.role is None:
            raise UsageError(
                f"{decision.by!r} is not a role-based approver of {model}: name one of the catalog's approvers, or "
                "give the role and session to play"
            )
        return approver.role, approver.session or re.sub(r"[^\w+=,.@-]", "-", approver.name)[:64]

    def send_decision(self, model: str, tuning_job_name: str, decision: Decision) -> None:
        """A data scientist's decision, made as they make it: UpdateModelPackage on the candidate's package in the
        Model Registry, as their IAM identity. SageMaker's state change event then reaches the product's rule."""
        if decision.decision == "none" or (decision.by is None and decision.role is None):
            return
        package_arn = self.pending_package(model, tuning_job_name)
        role, session = self.decision_identity(model, decision)
        status = "Approved" if decision.decision == "approve" else "Rejected"
        kind: Literal["approver"] | None = "approver" if decision.grant else None
        self.person_call(
            kind,
            role,
            session,
            "sagemaker",
            "update_model_package",
            ModelPackageArn=package_arn,
            ModelApprovalStatus=status,
            ApprovalDescription=decision.comment,
        )
        self._drain()

    def person_call(
        self,
        kind: Literal["approver", "operator"] | None,
        role: str,
        session: str,
        service: str,
        operation: str,
        **params: Any,
    ) -> Any:
        """One API call made as a person: role `role` (holding the stack's managed policy for `kind`, or nothing
        when `kind` is None) in session `session`. With IAM enforced the role's policies decide; either way the
        Model Registry records this identity as the caller, as SageMaker records the authenticated principal."""
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        # made now: the enforcement's hooks apply to it
        client = new_client(service, self.clients.environment_lock, region_name=REGION)
        with self._playing(role_arn, session):
            if self.iam is None:
                return getattr(client, operation)(**params)
            if self.iam.person_role(kind, role) is None:
                raise UsageError(f"the template ships no {kind}s' managed policy to act with")
            with self.iam.person(role_arn, session):
                return getattr(client, operation)(**params)

    @contextmanager
    def _playing(self, role_arn: str, session: str) -> Iterator[None]:
        self._persons.__dict__.setdefault("stack", []).append((role_arn, session))
        try:
            yield
        finally:
            self._persons.stack.pop()

    def _caller(self) -> tuple[str, str] | None:
        """Who makes the current call, for the Model Registry's records: a person the runtime plays, else the
        principal IAM enforcement says acts (a function's role), else the account owner (None)."""
        stack = self._persons.__dict__.get("stack") or []
        if stack:
            return cast(tuple[str, str], stack[-1])
        principal = self.iam.enforcer.current() if self.iam is not None else None
        if principal is not None and principal.arn is not None:
            return principal.arn, principal.session
        return None

    def request_rollback(
        self,
        model: str,
        reason: str,
        *,
        by: str | None = None,
        role: str | None = None,
        session: str | None = None,
        grant: bool = True,
        release: str | None = None,
        timeout_s: float = 120.0,
    ) -> list[dict[str, Any]]:
        """An operator's rollback request, made as `promote rollback` makes it: the package of `release` (default:
        the live one) set to Rejected in the Model Registry, as the catalog operator `by` (default: the first) or as
        `role`/`session` (anyone else; with the operators' policy unless `grant` is False). Returns, once they ended,
        the DescribeExecution answers of the operator rollback executions SageMaker's state change started."""
        package_arn = self.release_package(model, release)
        role, session = self.operator_identity(model, by, role, session)
        before = set(self._started_by_event)
        self.person_call(
            "operator" if grant else None,
            role,
            session,
            "sagemaker",
            "update_model_package",
            ModelPackageArn=package_arn,
            ModelApprovalStatus="Rejected",
            ApprovalDescription=reason,
        )
        # The operator's change is the first event since: the executions it started (later ones come from the
        # rollback's own updates of the packages, which it ignores).
        fresh = [event_id for event_id in list(self._started_by_event) if event_id not in before][:1]
        started = [arn for event_id in fresh for arn in self._started_by_event[event_id]]
        self._drain()
        return [self.wait(arn, timeout_s=timeout_s) for arn in started]

    def release_package(self, model: str, release: str | None = None) -> str:
        """The Model Registry package of a release of `model` (default: the live one), as its audit record names it
        (where `promote rollback` finds it)."""
        from promotion.production.config import parse_config
        from promotion.result.audit import read_audit_record

        if release is None:
            config = self.production_snapshot(model).config
            if config is None:
                raise UsageError(f"{model} has no production config: there is no live release to roll back")
            release = parse_config(config).release_id
        record = read_audit_record(self.clients.dynamodb, self.table_name, model, release)
        if record is None or not record.model_package_arn:
            raise UsageError(f"release {release} of {model} has no audit record naming its Model Registry package")
        return record.model_package_arn

    def operator_identity(
        self, model: str, by: str | None, role: str | None = None, session: str | None = None
    ) -> tuple[str, str]:
        """(role name, session name) the runtime plays for a rollback request: `role`/`session` as given, else the
        catalog operator `by` (default: the first)."""
        if role is not None:
            return role, session or "local"
        operators = load_model_catalog(self.models_dir, model).operators
        operator = next((one for one in operators if by is None or one.name == by), None)
        if operator is None or operator.role is None:
            raise UsageError(
                f"{by or 'nobody'!r} is not a role-based operator of {model}: name one of the catalog's operators, "
                "or give the role and session to play"
            )
        return operator.role, operator.session or re.sub(r"[^\w+=,.@-]", "-", operator.name)[:64]

    # -- production ------------------------------------------------------------------------------------------
    def seed_champion(self, model_id: str, performance: dict[str, float] | None = None) -> Champion:
        """Put a champion release in production for `model_id` (catalog from models/<id>.yaml)."""
        catalog = load_model_catalog(self.models_dir, model_id)
        champion = seed_champion(
            self.clients.ssm,
            self.clients.s3,
            self.config_bucket,
            catalog,
            account=ACCOUNT,
            region=REGION,
            performance=performance,
        )
        self.prepare_jobs(model_id)
        from promotion.production.config import parse_config

        model_uri = parse_config(champion.config).source.model_data_url
        if self.jobs is not None and model_uri:
            channels = {"train": catalog.training.train_data, "validation": catalog.training.validation_data}
            hyperparameters = sagemaker_jobs.CHAMPIONS[self.champion]
            self.jobs.train_artifact(f"{model_id}-champion", hyperparameters, channels, model_uri)
        if catalog.rollout is not None and model_uri:
            from promotion.rollout.weights import champion_variant_name, endpoint_config_name, model_name

            release = champion.release_id
            endpoints.seed_endpoint(
                self.clients.sagemaker,
                catalog.rollout.endpoint_name,
                model_name=model_name(model_id, release),
                variant=champion_variant_name(model_id, release),
                config=endpoint_config_name(model_id, release),
                image=catalog.rollout.serving_image,
                model_url=model_uri,
                role_arn=json.loads(self._function_env("TRAINING_ROLE_ARNS"))[model_id],
                instance_type=catalog.rollout.instance_type,
            )
            if self.traffic is not None:  # the champion has served for a month: its endpoint is InService
                self.traffic.lifecycle.complete_now(catalog.rollout.endpoint_name)
        return champion

    def prepare_jobs(self, model_id: str) -> None:
        """The model's training and holdout data at the catalog's S3 locations, for the local SageMaker jobs."""
        if self.jobs is None:
            return
        catalog = load_model_catalog(self.models_dir, model_id)
        holdout = catalog.comparison.holdout_data if catalog.comparison else None
        self.jobs.seed_data(catalog.training.train_data, catalog.training.validation_data, holdout)

    def production_snapshot(self, model_id: str) -> ProductionSnapshot:
        """Parameters under the model's prefix, the config object's text, the endpoint's config and served weights."""
        catalog = load_model_catalog(self.models_dir, model_id)
        current = snapshot(self.clients.ssm, self.clients.s3, self.config_bucket, catalog)
        if catalog.rollout is None:
            return current
        served = endpoints.endpoint_state(self.clients.sagemaker, catalog.rollout.endpoint_name)
        if served is None:
            return current
        return current.model_copy(update={"endpoint_config": served[0], "endpoint_weights": served[1]})

    def _endpoint_names(self) -> list[str]:
        """The production endpoints of every catalog (the simulator serves their callers)."""
        from promotion.contract.catalog import load_catalogs
        from promotion.core.errors import CatalogError

        try:
            catalogs = load_catalogs(self.models_dir)
        except CatalogError:  # a stack without model catalogs (the runtime's own test app) has no endpoints
            return []
        return sorted({c.rollout.endpoint_name for c in catalogs.values() if c.rollout})

    def demo_approver(self, model_id: str) -> str:
        approval = load_model_catalog(self.models_dir, model_id).approval
        return approval.demo_approver or approval.approvers[0].name

    # -- executions ------------------------------------------------------------------------------------------
    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self.clients.stepfunctions.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def _approval_requested(self, execution_arn: str) -> bool:
        """Whether the AwaitApproval Lambda has stored this execution's task token (from the invocation record)."""
        if self.lambdas is None:
            return True
        for call in list(self.lambdas.invocations):
            event = call.event if isinstance(call.event, dict) else {}
            claim = (event.get("state") or {}).get("claim") or {}
            if "task_token" in event and claim.get("execution_arn") == execution_arn and call.error is None:
                return True
        return False

    def _approval_pending(self, execution_arn: str) -> bool:
        """True once AwaitApproval's Lambda has run and its task waits for the token (TaskSubmitted)."""
        if not self._approval_requested(execution_arn):
            return False  # cheap check first: the history grows long during a rollout, reading it is not free
        in_approval = False
        for event in self.history(execution_arn):
            if event["type"] == "TaskStateEntered":
                in_approval = event["stateEnteredEventDetails"]["name"] == APPROVAL_STATE
            elif event["type"] == "TaskSubmitted" and in_approval:
                return True
        return False

    def wait_for_approval_request(self, execution_arn: str, timeout_s: float = 30.0) -> None:
        """Poll until the execution waits in AwaitApproval (its candidate registered, its token stored)."""
        deadline = time.monotonic() + timeout_s
        while not self._approval_pending(execution_arn):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} never reached {APPROVAL_STATE} within {timeout_s:g} s")
            time.sleep(_POLL_S)

    def wait(
        self,
        execution_arn: str,
        *,
        decision: Decision | None = None,
        model: str | None = None,
        tuning_job_name: str | None = None,
        timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Poll until the execution ends, answering AwaitApproval once with `decision`; DescribeExecution's answer.
        Past `timeout_s` the execution is stopped (status ABORTED, error LocalTimeout)."""
        sfn = self.clients.stepfunctions
        deadline = time.monotonic() + timeout_s
        answered = decision is None or decision.decision == "none"
        stopped = False
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                if stopped:  # moto's StopExecution does not keep the error and cause it was given
                    described.update(error="LocalTimeout", cause=f"still running after {timeout_s:g} s: stopped")
                return described
            if not answered and self._approval_pending(execution_arn):
                assert decision is not None and model is not None and tuning_job_name is not None
                self.send_decision(model, tuning_job_name, decision)
                answered = True
            if not stopped and time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn)
                stopped = True
            time.sleep(_POLL_S)

    def run(
        self,
        event: dict[str, Any],
        *,
        decision: Decision | None = None,
        seed: bool = False,
        timeout_s: float = 120.0,
    ) -> RunResult:
        """Send `event` through the default bus and follow the execution it starts to its end.

        `decision` answers AwaitApproval (default: approve as the catalog's demo approver); `seed` puts a
        champion in production first. Production is snapshotted before the event and after the end."""
        started = time.monotonic()
        model = model_of(event)
        if model is None:
            raise UsageError("the event names no model (no 'promotion:model' tag in detail.Tags)")
        if seed:
            self.seed_champion(model)
        else:
            self.prepare_jobs(model)
        if decision is None:
            decision = Decision.approve(self.demo_approver(model))
        before = self.production_snapshot(model)
        self._iam_mark = len(self.iam.enforcer.records) if self.iam is not None else 0
        letters = len(self.dead_letters)
        executions = self.send_event(event)
        if not executions:
            self._drain()
            refused = self.dead_letters[letters:]
            return RunResult(
                status="NOT_STARTED",
                execution_name=None,
                error="DeliveryFailed" if refused else "NoMatchingRule",
                cause=(
                    f"EventBridge could not start the execution ({refused[-1]['error']}); the event is in the "
                    "rule's dead-letter queue"
                    if refused
                    else "no rule of the stack matched the event, so no execution started"
                ),
                production_before=before,
                production_after=self.production_snapshot(model),
                model=model,
                duration_s=time.monotonic() - started,
                iam=self.iam_summary(),
            )
        arn = executions[0]
        tuning_job_name = str(event.get("detail", {}).get("HyperParameterTuningJobName", ""))
        described = self.wait(arn, decision=decision, model=model, tuning_job_name=tuning_job_name, timeout_s=timeout_s)
        self._drain()
        return self.result(arn, described, model=model, before=before, started=started)

    def export_report(self, history: list[dict[str, Any]], execution_name: str) -> dict[str, str] | None:
        """Copy the decision report PublishResult wrote (decision.json, report.html) to a local folder, so it reads
        without AWS; None when the execution wrote none."""
        report_key = published_report_key(history)
        if report_key is None:
            return None
        folder = self.reports_dir / execution_name
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, str] = {}
        for kind, name in (("json", "decision.json"), ("html", "report.html")):
            key = report_key.rsplit("/", 1)[0] + "/" + name
            body = self.clients.s3.get_object(Bucket=self.config_bucket, Key=key)["Body"].read()
            (folder / name).write_bytes(body)
            paths[kind] = str(folder / name)
        return paths

    def _model_data_check(self, role_arn: str, url: str) -> str | None:
        """What SageMaker meets downloading an endpoint model's data with the model's role: the object must exist
        and, with IAM enforced, the role must be allowed s3:GetObject on it. None when it can; otherwise why."""
        from local.iam.actions import Need
        from local.iam.enforcer import AccessDenied

        bucket, _, key = url.removeprefix("s3://").partition("/")
        try:
            self.clients.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            return f"no object at {url}: {error.response['Error']['Code']}"
        if self.iam is not None:
            try:
                need = Need("s3:GetObject", {"BucketName": bucket, "ObjectName": key})
                self.iam.authorize_job(role_arn, [need], "sagemaker:DownloadModelData")
            except AccessDenied as denied:
                return str(denied)
        return None

    def _advance_sagemaker(self) -> bool:
        """While a task waits for its token: simulated time passes to the next thing SageMaker has pending (an
        endpoint change completes, a job ends; the traffic simulator serves that time), which then happens and
        puts its event."""
        if self.traffic is None or self.jobs is None:
            return False
        from promotion.core import clock

        # One advance at a time: two waiting executions must not both move the clock over the same gap.
        with self._advance_lock:
            change, job = self.traffic.lifecycle.next_change(), self.jobs.next_end()
            upcoming = min((when for when in (change, job) if when is not None), key=lambda item: item[1], default=None)
            if upcoming is None:
                return False
            self.traffic.on_wait(max(0.0, (upcoming[1] - clock.now()).total_seconds()))
            if change is not None and upcoming == change:
                self.clients.sagemaker.describe_endpoint(EndpointName=change[0])  # settles it if on_wait did not
            self.jobs.end_due()
            return True

    def _drain(self) -> None:
        """Let asynchronous Lambda deliveries (EventBridge targets) finish before production is read."""
        if self.lambdas is not None:
            self.lambdas.drain()

    def result(
        self,
        execution_arn: str,
        described: dict[str, Any],
        *,
        model: str | None,
        before: ProductionSnapshot | None,
        started: float,
    ) -> RunResult:
        """A RunResult for an ended execution."""
        status = described["status"]
        history = self.history(execution_arn)
        output = json.loads(described["output"]) if described.get("output") else final_document(history)
        return RunResult(
            status=status,
            execution_name=described["name"],
            execution_arn=execution_arn,
            states=states_from_history(history, status),
            output=output,
            report=self.export_report(history, described["name"]),
            error=described.get("error"),
            cause=described.get("cause"),
            production_before=before,
            production_after=self.production_snapshot(model) if model else None,
            model=model,
            duration_s=time.monotonic() - started,
            iam=self.iam_summary(),
        )

    def iam_summary(self) -> IamSummary:
        """The IAM enforcement's record since the current run started."""
        if self.iam is None:
            return IamSummary(enforced=False)
        records = self.iam.enforcer.records[self._iam_mark :]
        denials = [r for r in records if not r.decision.allowed]
        return IamSummary(
            enforced=True,
            authorized=len(records),
            denied=[r.message for r in denials if r.fatal],
            silent_denials=[r.message for r in denials if not r.fatal],
        )
