"""The embedded local runtime: the synthesized stack, live in moto, with its real handlers invoked in process.

`LocalRuntime` puts together the collaborators that each own one part, and drives a run with them:

* `local.live_stack.LiveStack`: moto started, the stack's resources built from `cdk.out`, boto3 clients on it;
* `local.routing.EventRouting`: events put on a bus, and what the stack's EventBridge rules start for them;
* `local.executions.Executions`: following executions to their end, answering AwaitApproval once;
* `local.people.People`: approvers and operators acting as their own IAM identity (decisions, rollback requests);
* `local.simulated_sagemaker.SimulatedSageMaker`: endpoints, traffic, local jobs and simulated time;
* `local.reporting`: the run's result, its IAM record and its decision report;
* `local.faults.FaultInjector`: AWS errors and Lambda failures to inject (`faults=`, or `fail_at=` for the CLI's).

An event goes through EventBridge exactly as on AWS (the rule CDK defined decides what starts), approvals are
answered with real decisions in the Model Registry, and the result reports the execution's states, output and
production before and after. The CLI (`python -m local`) and e2e tests use it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self, TextIO

from local import endpoints, events_bridge, registry, sagemaker_events, sagemaker_jobs, sfn_bridge
from local.data_capture import Captured, capture_requests
from local.errors import UsageError
from local.executions import Executions
from local.faults import FaultInjector, FaultScope, ProductionTargets
from local.iam.identities import Identities
from local.lambdas import InProcessLambdas
from local.live_stack import ACCOUNT, REGION, Clients, LiveStack, reset_domain_clients
from local.paths import ROOT
from local.people import Decision, People
from local.production import Champion, ProductionSnapshot, load_model_catalog, model_of, seed_champion, snapshot
from local.reporting import IamRecord, IamSummary, RunResult, export_report, final_document
from local.routing import EventRouting, Person
from local.sagemaker_world import load_world, seed_sagemaker
from local.simulated_sagemaker import SimulatedSageMaker
from local.template import StackTemplate, load_stack
from local.timeline import states_from_history
from local.world import World

__all__ = ["ROOT", "Decision", "IamSummary", "LocalRuntime", "MonitoringLoop", "MonitoringRun", "RunResult"]

DRIFT_FACTOR = 20.0  # the drift scenario's callers send amounts 20 times the training data's


@dataclass(frozen=True)
class MonitoringRun:
    """One monitoring run: what was captured, the checks the schedule started (or skipped, and why), and what
    ActOnDriftCheck made of each ended check (its verdict and any retraining)."""

    captured: Captured
    checks: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class MonitoringLoop:
    """A monitoring run and, when drift started a retraining, the promotion its tuning job's completion started."""

    run: MonitoringRun
    next_execution: str | None = None
    next_states: list[str] = field(default_factory=list)
    next_result: dict[str, Any] = field(default_factory=dict)


class LocalRuntime:
    """The stack in `root`'s cdk.out, running on moto in this process. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        root: Path = ROOT,
        *,
        stack_name: str | None = None,
        assembly_dir: Path | None = None,
        synth: bool = True,
        template: Path | None = None,
        world: Path | dict[str, Any] | None = None,
        time_compression: sfn_bridge.TimeCompression | None = None,
        faults: FaultInjector | None = None,
        fail_at: Iterable[str] = (),
        function_logs: TextIO | None = None,
        models_dir: Path | None = None,
        reports_dir: Path | None = None,
        champion: Literal["weak", "strong", "twin"] = "weak",
        scenario: str = "good",
        traffic_seed: int = 7,
        event_delivery: sagemaker_events.EventDelivery | None = None,
        jobs_dir: Path | None = None,
        enforce_iam: bool = True,
        after_step: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.root = root
        # Which stack: cdk.out's (synthesized first unless `synth` is False), or `template` (`local run --template`).
        self._stack_source = {"stack_name": stack_name, "assembly_dir": assembly_dir, "synth": synth}
        self.template = template
        self._world_source = world  # the SageMaker world (describe answers) seeded at start
        self.time = time_compression or sfn_bridge.TimeCompression()
        # local.faults, the one way to inject failures: `fail_at` is the CLI's spelling of crashes (Crash.parse).
        fail_at = tuple(fail_at)
        if faults is not None and fail_at:
            raise UsageError("give the crashes to the FaultInjector, or fail_at without one, not both")
        self.faults = faults if faults is not None else FaultInjector.fail_at(fail_at) if fail_at else None
        self.function_logs = function_logs
        self.models_dir = models_dir or root / "models"
        # Decision reports are copied here from the moto bucket, one folder per execution.
        self.reports_dir = reports_dir or root / ".local-runs" / "reports"
        # How good the seeded champion model is: "weak" (the tuned challenger beats it) or "strong" (it does not).
        self.champion = champion
        # How the endpoint's callers fare on the challenger during a rollout (local/endpoints.py), and their draws.
        self.scenario, self.traffic_seed = scenario, traffic_seed
        # How SageMaker's state-change events arrive (all, once, by default) and the record of those put.
        self.event_delivery = event_delivery or sagemaker_events.EventDelivery()
        self.jobs_dir = jobs_dir or root / ".local-runs" / "jobs" / uuid.uuid4().hex[:12]
        # local.iam: every AWS call is authorized against the template's policies (off only when asked, and said)
        self.enforce_iam = enforce_iam
        # Called with (state name, its function's result) after each Lambda task of an execution, before it goes on.
        self.after_step = after_step
        self.live = LiveStack()
        self.stack: StackTemplate | None = None
        self.iam: Identities | None = None
        self.lambdas: InProcessLambdas | None = None
        self.sagemaker: SimulatedSageMaker | None = None
        self.routing: EventRouting | None = None
        self.people: People | None = None
        self.executions = Executions(self.live, None)
        self.iam_record = IamRecord(None)
        self._bridges: list[tuple[Any, Any]] = []  # (hooks, bridge) activated, deactivated in reverse

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Synthesize if needed, start moto, build the world, activate the bridges, seed the SageMaker world."""
        self.stack = load_stack(self.root, template=self.template, **self._stack_source)  # type: ignore[arg-type]
        world_document = load_world(self._world_source) if self._world_source is not None else None
        try:
            live = self.live.start(self.stack)
            self.lambdas = InProcessLambdas(live.world.functions, REGION, echo=self.function_logs)
            self.lambdas.open()
            self.executions.lambdas = self.lambdas
            self.clients.environment_lock = self.lambdas.environment_lock
            if self.enforce_iam:
                self.iam = Identities(live.world, account=ACCOUNT, region=REGION)
                self.iam.attach()
                self.lambdas.identity = self.iam.lambda_identity
            self.iam_record = IamRecord(self.iam)
            if self.faults is not None:
                self.faults.attach(self._fault_scope())
                self.lambdas.around_handler = self.faults.around_handler
            self.sagemaker = SimulatedSageMaker(
                self.clients,
                self.iam,
                endpoint_names=self._endpoint_names(),
                scenario=self.scenario,
                traffic_seed=self.traffic_seed,
                event_delivery=self.event_delivery,
                jobs_dir=self.jobs_dir,
                cache_dir=self.root / ".local-runs" / "job-cache",
                project_image=live.optional_function_env("JOB_IMAGE_URI"),
            )
            self.routing = EventRouting(self.clients, self.lambdas, self.iam)
            self.people = People(
                self.clients, self.iam, self.models_dir, lambda: self.table_name, self.executions.drain
            )
            self._activate(
                sfn_bridge.HOOKS,
                sfn_bridge.StepFunctionsBridge(
                    lambdas=self.lambdas,
                    time=self.time,
                    on_wait=self.sagemaker.traffic.on_wait,
                    authorize_invoke=self.iam.authorize_invoke if self.iam is not None else None,
                    advance=self.sagemaker.advance,
                    after_invoke=self._after_step,
                ),
            )
            self._activate(
                events_bridge.HOOKS,
                events_bridge.EventsBridge(
                    start_execution=self.routing.start_execution,
                    invoke_async=self.routing.invoke_target,
                    dead_letter=self.routing.dead_letter,
                ),
            )
            self.sagemaker.activate()
            self._activate(registry.HOOKS, registry.RegistryBridge(caller=self.people.caller))
            from promotion.core import clock

            clock.reset()
            reset_domain_clients()
            if world_document is not None:
                seed_sagemaker(world_document, account=ACCOUNT, region=REGION)
        except BaseException:
            self.stop()
            raise
        return self

    def _after_step(self, state: str, result: Any) -> None:
        if self.after_step is not None:  # read at each call: a test may set it once the runtime runs
            self.after_step(state, result)

    def _activate(self, hooks: Any, bridge: Any) -> None:
        hooks.activate(bridge)
        self._bridges.append((hooks, bridge))

    def _fault_scope(self) -> FaultScope:
        """What the fault injector checks its states and functions against, and what production is."""
        live = self.live
        return FaultScope(
            states=live.lambda_states(),
            functions=frozenset(live.world.functions),
            production=lambda: ProductionTargets.of_catalogs(
                self.models_dir, live.optional_function_env("CONFIG_BUCKET") or ""
            ),
        )

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
            if self.live.running:
                attempt(self.executions.stop_all)
            if self.faults is not None:
                attempt(self.faults.detach)
            if self.iam is not None:
                attempt(self.iam.detach)
            if self.lambdas is not None:
                attempt(self.lambdas.close)
            while self._bridges:
                hooks, bridge = self._bridges.pop(0)
                attempt(hooks.deactivate, bridge)
            if self.sagemaker is not None:
                attempt(self.sagemaker.deactivate)
        finally:
            self.live.stop()
        if failures:
            raise failures[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the stack -------------------------------------------------------------------------------------------
    @property
    def clients(self) -> Clients:
        """boto3 clients on moto (made after the mock started)."""
        return self.live.clients

    @property
    def world(self) -> World | None:
        """The stack's resources in moto (None before start); `live.world` raises instead."""
        return self.live.built

    @property
    def state_machine_arn(self) -> str:
        return self.live.state_machine_arn

    @property
    def config_bucket(self) -> str:
        """The config bucket, as the template tells the functions (CONFIG_BUCKET)."""
        return self.live.function_env("CONFIG_BUCKET")

    @property
    def table_name(self) -> str:
        """The promotion table, as the template tells the functions (PROMOTION_TABLE)."""
        return self.live.function_env("PROMOTION_TABLE")

    @property
    def product_bus(self) -> str:
        """The product's own bus, as the template tells the functions (EVENT_BUS_NAME)."""
        return self.live.function_env("EVENT_BUS_NAME")

    def function_env(self, name: str) -> str:
        """The one value of `name` the stack's functions share."""
        return self.live.function_env(name)

    def lambda_states(self) -> dict[str, str]:
        """State name -> logical id of the function behind it, for every Lambda task of the promotion state machine."""
        return self.live.lambda_states()

    @property
    def traffic(self) -> endpoints.TrafficSimulator | None:
        """The endpoints' simulated callers; None before start."""
        return self.sagemaker.traffic if self.sagemaker is not None else None

    @property
    def jobs(self) -> sagemaker_jobs.LocalJobs | None:
        """The SageMaker jobs run locally; None before start."""
        return self.sagemaker.jobs if self.sagemaker is not None else None

    def _started(self) -> tuple[EventRouting, People, SimulatedSageMaker]:
        if self.routing is None or self.people is None or self.sagemaker is None:
            raise RuntimeError("the local runtime is not started")
        return self.routing, self.people, self.sagemaker

    # -- production ------------------------------------------------------------------------------------------
    def seed_champion(self, model_id: str, performance: dict[str, float] | None = None) -> Champion:
        """Put a champion release in production for `model_id` (catalog from models/<id>.yaml), with its training
        artifact and, for a catalog with a rollout, its endpoint serving."""
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
        if self.sagemaker is not None and model_uri:
            role_arn = json.loads(self.function_env("TRAINING_ROLE_ARNS"))[model_id] if catalog.rollout else None
            self.sagemaker.seed_champion_serving(
                model_id, catalog, champion.release_id, model_uri, self.champion, role_arn, self.config_bucket
            )
        return champion

    def prepare_jobs(self, model_id: str) -> None:
        """The model's training and holdout data at the catalog's S3 locations, for the local SageMaker jobs."""
        if self.sagemaker is not None:
            self.sagemaker.prepare_jobs(load_model_catalog(self.models_dir, model_id))

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

    def model_data_check(self, role_arn: str, url: str) -> str | None:
        """Whether SageMaker can download an endpoint model's data with the model's role (None) or why not."""
        return self._started()[2].model_data_check(role_arn, url)

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

    # -- events and people -----------------------------------------------------------------------------------
    def send_event(
        self, event: dict[str, Any], bus: str | None = None, *, as_person: Person | None = None
    ) -> list[str]:
        """Put an event on a bus (see EventRouting.send_event); the executions the stack's rules started for it."""
        return self._started()[0].send_event(event, bus, as_person=as_person)

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """Deliveries EventBridge gave up on (see EventRouting.dead_letter)."""
        return self.routing.dead_letters if self.routing is not None else []

    def executions_started_by(self, event_id: str) -> list[str]:
        """The executions the stack's rules started for one event (by its PutEvents id)."""
        return self._started()[0].started_by(event_id)

    def pending_package(self, model: str, tuning_job_name: str) -> str:
        """The candidate package AwaitApproval registered for this tuning job's promotion."""
        return self._started()[1].pending_package(model, tuning_job_name)

    def send_decision(self, model: str, tuning_job_name: str, decision: Decision) -> None:
        """A data scientist's decision in the Model Registry, as their IAM identity (see People.send_decision)."""
        self._started()[1].send_decision(model, tuning_job_name, decision)

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
        routing, people, _ = self._started()
        package_arn = self.release_package(model, release)
        role, session = people.operator_identity(model, by, role, session)
        before = set(routing.started_by_event)
        people.reject_release(model, package_arn, reason, role, session, grant)
        # The operator's change is the first event since: the executions it started (later ones come from the
        # rollback's own updates of the packages, which it ignores).
        fresh = [event_id for event_id in list(routing.started_by_event) if event_id not in before][:1]
        started = [arn for event_id in fresh for arn in routing.started_by(event_id)]
        self.drain()
        return [self.executions.wait(arn, timeout_s=timeout_s) for arn in started]

    def control_rollout(
        self,
        model: str,
        command: str,
        reason: str,
        *,
        by: str | None = None,
        role: str | None = None,
        session: str | None = None,
        grant: bool = True,
        package_arn: str | None = None,
    ) -> dict[str, str]:
        """An operator's pause, resume, abort or promote-now (`command`, as `promote` spells it) of the running
        rollout of `model`, made as `promote` makes it, as the catalog operator `by` (default: the first) or as
        `role`/`session`; `package_arn` names another package than the running candidate's. Returns, once the
        operator control function answered, the package's ModelLifeCycle (`StageStatus` says Accepted or Refused)."""
        from promotion.rollout.control import ControlRequest, candidate_packages

        _, people, _ = self._started()
        if package_arn is None:
            running, packages = candidate_packages(self.clients.dynamodb, self.table_name, model)
            if running is None or running not in packages:
                raise UsageError(f"no promotion of {model} with a registered candidate is running")
            package_arn = packages[running]
        request = next(one for one in ControlRequest if one.command == command)
        role, session = people.operator_identity(model, by, role, session)
        people.control_rollout(package_arn, request.value, reason, role, session, grant)
        self.drain()
        described = self.clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
        return dict(described.get("ModelLifeCycle") or {})

    def fire_schedule(self, rule_fragment: str, at: datetime) -> list[Any]:
        """Deliver one `Scheduled Event` of the stack's scheduled rule whose name contains `rule_fragment`, as
        EventBridge would at `at` (its `time`), to each Lambda target; their results, once they ran."""
        routing, _, _ = self._started()
        events = self.clients.events
        (rule,) = [
            one
            for one in events.list_rules()["Rules"]
            if rule_fragment.lower() in one["Name"].lower() and one.get("ScheduleExpression")
        ]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [rule["Arn"]],
            "detail": {},
        }
        assert self.lambdas is not None
        already = len(self.lambdas.invocations)
        functions = set()
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            spec = self.lambdas.resolve(str(target["Arn"]))
            functions.add(spec.name if spec is not None else "")
            routing.invoke_target(rule["Arn"], target, event)
        self.drain()
        return [
            call.result if call.error is None else call.error
            for call in self.lambdas.invocations[already:]
            if call.function in functions and call.event == event
        ]

    # -- monitoring ------------------------------------------------------------------------------------------
    def monitor(self, model: str, *, drift: bool, requests: int = 5000, at: datetime | None = None) -> MonitoringRun:
        """One monitoring run of `model`'s live release, as on AWS: an hour of callers on its endpoint (their
        features shifted with `drift`: the first feature, amounts, 20 times the training data's), SageMaker's
        capture of them, the hourly schedule at `at` (default: the next whole hour of simulated time, to which the
        clock moves), the drift check it starts, and, once SageMaker says that job ended, ActOnDriftCheck's verdict
        (and any retraining it started; its tuning job then runs: `finish_retraining`)."""
        from promotion.core import clock

        _, _, sagemaker = self._started()
        catalog = load_model_catalog(self.models_dir, model)
        if catalog.monitoring is None or catalog.rollout is None or catalog.comparison is None:
            raise UsageError(f"{model}'s catalog does not monitor it (no monitoring, rollout or holdout data)")
        now = clock.now()
        at = at or (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        if at > now:
            clock.advance((at - now).total_seconds())
        hour = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        captured = capture_requests(
            self.clients,
            self.iam.authorize_job if self.iam is not None else None,
            endpoint=catalog.rollout.endpoint_name,
            holdout_uri=catalog.comparison.holdout_data,
            hour=hour,
            requests=requests,
            seed=self.traffic_seed + int(hour.timestamp() // 3600),
            shift=(0, DRIFT_FACTOR) if drift else None,
        )
        assert self.lambdas is not None
        already = len(self.lambdas.invocations)
        results = self.fire_schedule("DriftCheckSchedule", at)
        checks = [check for result in results if isinstance(result, dict) for check in result.get("checks", [])]
        started = {c["processing_job_name"] for c in checks if c.get("processing_job_name")}
        while started & set(sagemaker.jobs.running) and sagemaker.advance():
            self.drain()
        self.drain()
        acting = {spec.name for spec in self.live.world.functions.values() if "ActOnDriftCheck" in spec.logical_id}
        outcomes = [
            call.result if call.error is None else call.error
            for call in self.lambdas.invocations[already:]
            if call.function in acting
        ]
        return MonitoringRun(captured=captured, checks=checks, outcomes=outcomes)

    def monitoring_loop(self, model: str, *, drift: bool, timeout_s: float = 120.0) -> MonitoringLoop:
        """After a promotion: an hour of monitoring (`monitor`) and, when it started a retraining, the tuning job's
        run and the next promotion it starts, followed to its end (the `local run --scenario drift|monitored` loop)."""
        run = self.monitor(model, drift=drift)
        started = [o["retraining"] for o in run.outcomes if isinstance(o, dict) and o.get("retraining")]
        if not any(one.get("status") == "STARTED" for one in started):
            return MonitoringLoop(run=run)
        executions = self.finish_retraining(timeout_s)
        if not executions:
            return MonitoringLoop(run=run)
        execution = executions[0]
        described = self.wait(execution, timeout_s=timeout_s)
        history = self.history(execution)
        return MonitoringLoop(
            run=run,
            next_execution=str(described["name"]),
            next_states=[s.name for s in states_from_history(history, described["status"])],
            next_result=final_document(history).get("result") or {},
        )

    def finish_retraining(self, timeout_s: float = 120.0) -> list[str]:
        """Let simulated time pass until every running tuning job has ended (SageMaker's event of each reaches the
        stack's rules); the promotion executions their completion started."""
        _, _, sagemaker = self._started()
        before = set(self.executions_of_state_machine())
        deadline = time.monotonic() + timeout_s
        while any(running.kind == "tuning" for running in list(sagemaker.jobs.running.values())):
            if time.monotonic() > deadline or not sagemaker.advance():
                break
            self.drain()
        self.drain()
        return [arn for arn in self.executions_of_state_machine() if arn not in before]

    def executions_of_state_machine(self) -> list[str]:
        """Every execution of the promotion state machine, oldest first."""
        listed = self.clients.stepfunctions.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return [item["executionArn"] for item in sorted(listed, key=lambda item: item["startDate"])]

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

    # -- executions ------------------------------------------------------------------------------------------
    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.executions.history(execution_arn)

    def drain(self) -> None:
        """Let asynchronous Lambda deliveries (EventBridge targets) finish before production is read."""
        self.executions.drain()

    def approval_pending(self, execution_arn: str) -> bool:
        """True once AwaitApproval's Lambda has run and its task waits for the token (TaskSubmitted)."""
        return self.executions.approval_pending(execution_arn)

    def wait_for_approval_request(self, execution_arn: str, timeout_s: float = 30.0) -> None:
        """Poll until the execution waits in AwaitApproval (its candidate registered, its token stored)."""
        self.executions.wait_for_approval_request(execution_arn, timeout_s)

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
        answer = None
        if decision is not None and decision.decision != "none":
            assert model is not None and tuning_job_name is not None

            def answer() -> None:
                self.send_decision(model, tuning_job_name, decision)

        return self.executions.wait(execution_arn, answer=answer, timeout_s=timeout_s)

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
        self.iam_record.mark()
        letters = len(self.dead_letters)
        executions = self.send_event(event)
        if not executions:
            self.drain()
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
                iam=self.iam_record.summary(),
            )
        arn = executions[0]
        tuning_job_name = str(event.get("detail", {}).get("HyperParameterTuningJobName", ""))
        described = self.wait(arn, decision=decision, model=model, tuning_job_name=tuning_job_name, timeout_s=timeout_s)
        self.drain()
        return self.result(arn, described, model=model, before=before, started=started)

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
            report=export_report(self.clients.s3, self.config_bucket, self.reports_dir, history, described["name"]),
            error=described.get("error"),
            cause=described.get("cause"),
            production_before=before,
            production_after=self.production_snapshot(model) if model else None,
            model=model,
            duration_s=time.monotonic() - started,
            iam=self.iam_record.summary(),
        )

    def iam_summary(self) -> IamSummary:
        """The IAM enforcement's record since the current run started."""
        return self.iam_record.summary()
