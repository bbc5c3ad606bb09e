"""Fault matrix: every Lambda state of the synthesized state machine, under each kind of failure AWS can throw at it.

The states come from the synthesized definition (`LocalRuntime.lambda_states()`), never from a list here, and what
each state calls comes from a clean run recorded by `local.faults.FaultInjector` at collection time (the plan). Per
Lambda state S:

* throttle-<service>: the first call S makes to a service is throttled twice (S's first service, and each other
  service once, at the first state that calls it), with that service's own throttling error (SSM, SageMaker,
  EventBridge `ThrottlingException`, S3 `SlowDown` 503, DynamoDB `ProvisionedThroughputExceededException`, SNS
  `Throttled` 429). Transient: the promotion must end PROMOTED with production equal to a clean run's (Rollback:
  ROLLED_BACK with production equal to before).
* denied: S's role allows nothing, every call S makes is refused with AccessDenied. Never retried: production after
  equals before, byte for byte, and nothing was written at all when S comes before BackupProduction.
* crash: the Lambda runtime dies after S's handler ran (all its side effects happened, its answer is lost).
* midwrite-transient / midwrite-fatal, for each S that writes production several times (or once): the middle
  write (the 3rd of 7 PutParameter in WriteParameters, the config PutObject in WriteConfig) fails with the
  service's internal error for the rest of that invocation (so the handler's own backoff gives up and the state
  machine's retry gets through), or with a non-retryable error.
* timeout: `Sandbox.Timedout` after the handler ran, for the last state that writes production.

The runs use the product's app synthesized with a test catalog (tests.e2e.test_flood.shared_stack): fraud-detection
as in models/, but with a two-stage rollout of one look per bake, so every state still runs in half the invocations.

Rollback only runs after a failure, so its cases add a primary one: the Lambda behind the last state that writes
production in the clean run crashes after writing, and Rollback gets the fault on top.

Each case records itself under .local-runs/fault-matrix/;
`PYTHONPATH=layers/promotion/python:jobs:. .venv/bin/python -m tests.e2e.test_fault_matrix` sums them up into
bench/results/fault_matrix.json.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.faults import ACCESS_DENIED, INTERNAL_ERROR, THROTTLING, Call, Crash, Fault, FaultInjector, service_error
from local.production import ProductionSnapshot, model_of
from local.runtime import LocalRuntime, RunResult
from tests.conftest import ROOT
from tests.e2e.conftest import event, world
from tests.e2e.test_flood import shared_stack, wait_for

RECORDS = ROOT / ".local-runs" / "fault-matrix"
BACKUP_STATE, ROLLBACK_STATE, PUBLISH_STATE = "BackupProduction", "Rollback", "PublishResult"  # operator contract
CLAIM_FAILED_STATE = "ClaimFailed"
# A non-retryable error for a write, as the service would answer it (anything else: AccessDenied).
FATAL_WRITE_ERRORS = {("ssm", "PutParameter"): "ParameterMaxVersionLimitExceeded"}


@dataclass(frozen=True)
class StatePlan:
    name: str
    catch: str | None  # where States.ALL goes: Rollback (after the backup), PublishResult (before it), ...
    calls: tuple[Call, ...]  # the AWS calls it made in a run that reaches it

    @property
    def services(self) -> tuple[str, ...]:
        """The services it calls, in the order of their first call."""
        return tuple(dict.fromkeys(call.service for call in self.calls))

    def first_call(self, service: str = "*") -> Call | None:
        return next((call for call in self.calls if service in ("*", call.service)), None)

    @property
    def writes(self) -> tuple[Call, ...]:
        """Its production writes."""
        return tuple(call for call in self.calls if call.production_write)


@dataclass(frozen=True)
class Plan:
    states: dict[str, StatePlan]
    promoted: dict[str, Any]  # canonical production after a clean run
    start: str  # the state machine's first state
    primary: str  # the state whose crash makes Rollback run in Rollback's cases
    clean_writes: int


@dataclass(frozen=True)
class Case:
    id: str
    state: str
    kind: str
    expect: str  # promoted | restored | untouched | rollback_failed
    faults: tuple[Fault, ...] = ()
    crashes: tuple[Crash, ...] = ()


# -- the plan: derived from the synthesized definition and a recorded clean run --------------------------------
@contextmanager
def _quiet_moto() -> Iterator[None]:
    """moto logs every failed state at ERROR; the plan's own rollback run is expected to have one."""
    logger = logging.getLogger("moto")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _catch_targets(definition: dict[str, Any]) -> dict[str, str | None]:
    targets: dict[str, str | None] = {}
    for name, state in definition.get("States", {}).items():
        catch_all = [c["Next"] for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
        targets[name] = catch_all[0] if catch_all else None
    return targets


def _state_plans(calls: list[Call], names: list[str], catches: dict[str, str | None]) -> dict[str, StatePlan]:
    plans = {}
    for name in names:
        mine = tuple(call for call in calls if call.state == name)
        plans[name] = StatePlan(name=name, catch=catches.get(name), calls=mine)
    return plans


@cache
def _stack() -> tuple[Path, Path]:
    return shared_stack()


def runtime_for(reports: Path, injector: FaultInjector | None) -> LocalRuntime:
    """A fresh runtime on the shared test stack (tests.e2e.test_flood.shared_stack: the product's app with
    fraud-detection's rollout cut to two stages of one look each, so that a run takes half the invocations)."""
    models_dir, assembly = _stack()
    return LocalRuntime(
        ROOT,
        synth=False,
        assembly_dir=assembly,
        models_dir=models_dir,
        world=world(),
        reports_dir=reports,
        faults=injector,
    )


# Lambda states a promotion without an operator never runs, and where their faults are tested instead.
NOT_IN_A_PROMOTION = {
    "AwaitOperator": "runs only while a rollout is held; tests/e2e/test_operator_controls.py fails it mid-hold",
}


@cache
def plan() -> Plan:
    """The plan, made once per test run: under xdist the first worker records it and the others read its copy (each
    would otherwise run the same two promotions at collection)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _record_plan()
    shared = Path(tempfile.gettempdir()) / f"fault-plan-{run_id}"
    shared.mkdir(exist_ok=True)
    with (shared / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = shared / "plan.pickle"
        if stored.exists():
            recorded: Plan = pickle.loads(stored.read_bytes())
            return recorded
        made = _record_plan()
        stored.write_bytes(pickle.dumps(made))
        return made


def _record_plan() -> Plan:
    """Record a clean run and a run whose Rollback restores a written production (on the shared test stack)."""
    with _quiet_moto():
        clean = FaultInjector()
        with runtime_for(RECORDS / "reports", clean) as runtime:
            lambda_states = runtime.lambda_states()
            definition = next(iter(runtime.live.world.definitions.values()))
            catches = _catch_targets(definition)
            result = promote(runtime)
        order = [
            state
            for state in dict.fromkeys([c.state for c in clean.calls if c.state] + sorted(lambda_states))
            if state not in NOT_IN_A_PROMOTION
        ]
        plans = _state_plans(clean.calls, order, catches)
        guarded_writers = [s.name for s in plans.values() if s.catch == ROLLBACK_STATE and s.writes]
        primary = guarded_writers[-1] if guarded_writers else BACKUP_STATE
        rolled = FaultInjector(crashes=[Crash(state=primary, when="after", kind="crash", times=1)])
        with runtime_for(RECORDS / "reports", rolled) as runtime:
            promote(runtime)
    if ROLLBACK_STATE in plans:
        plans[ROLLBACK_STATE] = _state_plans(rolled.calls, [ROLLBACK_STATE], catches)[ROLLBACK_STATE]
    promoted = canonical(result.production_after) if result.promoted else {"not promoted": result.cause}
    return Plan(
        states=plans,
        promoted=promoted,
        start=definition["StartAt"],
        primary=primary,
        clean_writes=len(clean.production_writes()),
    )


def canonical(snapshot: ProductionSnapshot | None) -> dict[str, Any]:
    """Production without what differs from run to run: when it was approved, and which champion it replaced
    (the champion is seeded anew by every run, `previous_release_id` is checked against it separately)."""
    assert snapshot is not None
    config = yaml.safe_load(snapshot.config) if snapshot.config else None
    if isinstance(config, dict):
        config.pop("approved_at", None)
        config.pop("previous_release_id", None)
    return {
        "parameters": snapshot.parameters,
        "config": config,
        "endpoint_config": snapshot.endpoint_config,
        "endpoint_weights": snapshot.endpoint_weights,
    }


def _throttled_services(the_plan: Plan) -> dict[str, list[str]]:
    """State -> the services whose first call is throttled: each state's first service, and each other service once,
    at the first state that calls it (every state throttled, every service's own throttling error tried)."""
    chosen = {name: list(state.services[:1]) for name, state in the_plan.states.items()}
    covered = {service for services in chosen.values() for service in services}
    for name, state in the_plan.states.items():
        for service in state.services:
            if service not in covered:
                chosen[name].append(service)
                covered.add(service)
    return chosen


def cases() -> list[Case]:
    the_plan = plan()
    throttled = _throttled_services(the_plan)
    found: list[Case] = []
    for state in the_plan.states.values():
        rollback = state.name == ROLLBACK_STATE
        primary = (Crash(state=the_plan.primary, when="after", kind="crash", times=1),) if rollback else ()
        after_fault = "restored" if rollback else "promoted"
        for service in throttled[state.name] or ["*"]:
            first = state.first_call(service)
            operation = first.operation if first else "*"
            found.append(
                Case(
                    id=f"{state.name}-throttle-{service}",
                    state=state.name,
                    kind="throttle",
                    expect=after_fault,
                    faults=(Fault(service, operation, THROTTLING, state=state.name, times=2),),
                    crashes=primary,
                )
            )
        denied_expect = "rollback_failed" if rollback else ("untouched" if _before_backup(state) else "restored")
        found.append(
            Case(  # the function's role allows nothing: every call it makes is refused
                id=f"{state.name}-denied",
                state=state.name,
                kind="denied",
                expect=denied_expect,
                faults=(Fault("*", "*", ACCESS_DENIED, state=state.name, times=None),),
                crashes=primary,
            )
        )
        found.append(
            Case(
                id=f"{state.name}-crash",
                state=state.name,
                kind="crash",
                expect="rollback_failed" if rollback else ("untouched" if _before_backup(state) else "restored"),
                crashes=(*primary, Crash(state=state.name, when="after", kind="crash", times=1)),
            )
        )
        if state.name == the_plan.primary:  # a timeout is a crash with another name: one case shows it
            found.append(
                Case(
                    id=f"{state.name}-timeout",
                    state=state.name,
                    kind="timeout",
                    expect="restored",
                    crashes=(Crash(state=state.name, when="after", kind="timeout", times=1),),
                )
            )
        if not state.writes:
            continue
        target = state.writes[min(3, len(state.writes)) - 1]
        fatal = FATAL_WRITE_ERRORS.get((target.service, target.operation)) or ACCESS_DENIED
        scope = {"state": state.name, "resource": target.resource}
        found.append(
            Case(
                id=f"{state.name}-midwrite-transient",
                state=state.name,
                kind="midwrite-transient",
                expect=after_fault,
                faults=(
                    Fault(target.service, target.operation, INTERNAL_ERROR, times=1, rest_of_invocation=True, **scope),
                ),
                crashes=primary,
            )
        )
        found.append(
            Case(
                id=f"{state.name}-midwrite-fatal",
                state=state.name,
                kind="midwrite-fatal",
                expect="rollback_failed" if rollback else "restored",
                faults=(Fault(target.service, target.operation, fatal, times=None, **scope),),
                crashes=primary,
            )
        )
    return found


def _before_backup(state: StatePlan) -> bool:
    """States whose failure goes to PublishResult or ClaimFailed: nothing of production is written before them."""
    return state.catch in (PUBLISH_STATE, CLAIM_FAILED_STATE)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        try:
            planned = cases()
        except Exception as error:  # the plan's own run failed: one case says why instead of a collection error
            metafunc.parametrize("case", [pytest.param(error, id="plan")])
            return
        metafunc.parametrize("case", [pytest.param(c, id=c.id) for c in planned])


# -- running one case --------------------------------------------------------------------------------------------
@dataclass
class Observed:
    case: str
    kind: str
    state: str
    expect: str
    status: str
    outcome: str | None
    error: str | None
    fired: list[tuple[str, str]]
    production_writes: int
    production_writes_attempted: int
    invocations_of_state: int
    entries_of_state: int
    restored: bool
    promoted: bool
    retried_by_state_machine: bool
    seconds: float


def run_case(case: Case, tmp_path: Path) -> tuple[RunResult, FaultInjector, Observed]:
    injector = FaultInjector(case.faults, case.crashes)
    started = time.monotonic()
    with runtime_for(tmp_path / "reports", injector) as runtime:
        result = promote(runtime)
        if case.state == ROLLBACK_STATE and case.kind in ("crash", "timeout"):
            # The report says to finish the job with the operator rollback: it must bring production back.
            model = model_of(event())
            assert model is not None
            (finished,) = runtime.request_rollback(model, "finish the rollback cut short")
            assert finished["status"] == "SUCCEEDED", finished
            result = result.model_copy(update={"production_after": runtime.production_snapshot(model)})
        assert runtime.lambdas is not None
        logical_id = runtime.lambda_states()[case.state]
        invocations = sum(1 for call in runtime.lambdas.invocations if call.function == _name_of(runtime, logical_id))
    entries = sum(1 for record in result.states if record.name == case.state)
    observed = Observed(
        case=case.id,
        kind=case.kind,
        state=case.state,
        expect=case.expect,
        status=result.status,
        outcome=result.outcome,
        error=result.error,
        fired=injector.fired,
        production_writes=len(injector.production_writes()),
        production_writes_attempted=len(injector.production_writes(succeeded_only=False)),
        invocations_of_state=invocations,
        entries_of_state=entries,
        restored=result.production_after == result.production_before,
        promoted=result.promoted,
        retried_by_state_machine=invocations > entries,
        seconds=round(time.monotonic() - started, 2),
    )
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / f"{case.id}.json").write_text(json.dumps(asdict(observed), indent=2))
    print(f"fault-matrix {case.id}: {observed.status} {observed.outcome} writes={observed.production_writes}")
    return result, injector, observed


def promote(runtime: LocalRuntime) -> RunResult:
    """LocalRuntime.run(event(), seed=True), approving from the Lambda invocation record instead of polling the
    execution history (tests.e2e.test_flood.wait_for): the same run, far less CPU."""
    started = time.monotonic()
    document = event()
    model = model_of(document)
    assert model is not None
    runtime.seed_champion(model)
    before = runtime.production_snapshot(model)
    (arn,) = runtime.send_event(document)
    described = wait_for(runtime, [arn], timeout_s=300)[arn]
    return runtime.result(arn, described, model=model, before=before, started=started)


def _name_of(runtime: LocalRuntime, logical_id: str) -> str:
    return runtime.live.world.functions[logical_id].name


def test_the_clean_run_promotes_and_every_lambda_state_is_covered() -> None:
    the_plan = plan()
    assert "not promoted" not in the_plan.promoted, the_plan.promoted
    assert the_plan.clean_writes > 0
    covered = {case.state for case in cases()}
    with runtime_for(RECORDS / "reports", None) as runtime:
        assert covered == set(runtime.lambda_states()) - set(NOT_IN_A_PROMOTION)
    kinds = {(case.state, case.kind) for case in cases()}
    for state in covered:
        assert {(state, "denied"), (state, "crash")} <= kinds
        assert any(kind == "throttle" for s, kind in kinds if s == state)


def test_fault_case(case: Case, tmp_path: Path) -> None:
    if isinstance(case, Exception):
        raise AssertionError(f"the fault matrix could not be planned: {case!r}") from case
    result, injector, observed = run_case(case, tmp_path)
    the_plan = plan()
    assert injector.fired, f"{case.id}: the fault never fired (calls seen: {injector.summary()})"
    assert any(where == case.state for _, where in injector.fired), injector.fired
    before, after = result.production_before, result.production_after
    document = json.dumps([result.output, result.error, result.cause])  # a Fail state leaves error and cause only
    if case.expect == "promoted":
        assert result.promoted, (result.status, result.error, result.cause)
        assert canonical(after) == the_plan.promoted
        assert after is not None and before is not None and after.config and before.config
        assert yaml.safe_load(after.config)["previous_release_id"] == yaml.safe_load(before.config)["release_id"]
        return
    assert result.status == "FAILED", (result.status, result.error, result.cause)
    if case.kind in ("denied", "midwrite-fatal"):
        codes = {call.injected for call in injector.calls if call.injected and call.state == case.state}
        assert any(code in document for code in codes if code), f"none of {codes} is in the execution's document"
    if case.kind in ("crash", "timeout") and case.state != ROLLBACK_STATE:
        assert ("Runtime.ExitError" if case.kind == "crash" else "Sandbox.Timedout") in document
    if case.kind in ("denied", "crash", "timeout", "midwrite-fatal"):
        # Not retryable: the state ran once each time it was entered.
        assert observed.invocations_of_state == observed.entries_of_state, observed
    if case.expect == "untouched":
        assert after == before
        assert injector.production_writes(succeeded_only=False) == []
        assert result.error != "PromotionFailed", result.cause
        assert ROLLBACK_STATE not in [record.name for record in result.states]
    elif case.expect == "restored":
        assert after == before, "production differs from before the promotion"
    elif case.expect == "rollback_failed":
        assert result.cause is not None and "ROLLBACK FAILED" in result.cause, result.cause
        if case.kind in ("crash", "timeout"):
            # Rollback died part way (its later runs restore the endpoint, then the config); the config still named
            # the release being rolled back, so the operator rollback the report asks for finished the job.
            assert "restore it with the operator rollback" in result.cause
            assert after == before
        else:
            assert after != before  # the rollback stopped part way: the report says so, an operator restores
    else:
        raise AssertionError(case.expect)


# -- a crashed ClaimPromotion must not block its tuning job ---------------------------------------------------
def test_a_redelivered_event_promotes_after_claimpromotion_crashed(tmp_path: Path) -> None:
    first_state = plan().start
    injector = FaultInjector(crashes=[Crash(state=first_state, when="after", kind="crash", times=1)])
    with runtime_for(tmp_path, injector) as runtime:
        crashed = runtime.run(event(), seed=True, timeout_s=60)
        assert crashed.status == "FAILED"
        assert (crashed.error, [s.name for s in crashed.states][-1]) == ("Runtime.ExitError", CLAIM_FAILED_STATE)
        again = runtime.run(event(), timeout_s=60)
    assert again.promoted, [state.name for state in again.states]


def test_injected_errors_are_shaped_as_the_services_send_them() -> None:
    assert service_error("s3", THROTTLING, "PutObject") == ("SlowDown", 503)
    assert service_error("s3", THROTTLING, "HeadObject") == ("503", 503)  # HEAD: no body, the status is the code
    assert service_error("s3", ACCESS_DENIED, "GetObject") == ("AccessDenied", 403)
    assert service_error("ssm", THROTTLING, "PutParameter") == ("ThrottlingException", 400)
    assert service_error("ssm", ACCESS_DENIED) == ("AccessDeniedException", 400)
    assert service_error("ssm", INTERNAL_ERROR) == ("InternalServerError", 500)
    assert service_error("dynamodb", THROTTLING) == ("ProvisionedThroughputExceededException", 400)
    assert service_error("sns", THROTTLING) == ("Throttled", 429)
    assert service_error("ssm", "ParameterMaxVersionLimitExceeded") == ("ParameterMaxVersionLimitExceeded", 400)
    assert Crash.parse("WriteConfig:after:timeout") == Crash(state="WriteConfig", when="after", kind="timeout")
    # `--fail-at STATE` and `Crash(state=STATE)` are one thing with one set of defaults: the function fails before it
    # runs, raising InjectedFault, on every invocation
    assert Crash.parse("WriteConfig") == Crash(state="WriteConfig")
    assert Crash(state="WriteConfig") == Crash(state="WriteConfig", when="before", kind="error", nth=1, times=None)


# -- the counts ----------------------------------------------------------------------------------------------------
def summarize(records: Path = RECORDS) -> dict[str, Any]:
    """Counts over the recorded cases of the current plan."""
    wanted = {case.id for case in cases()}
    observed = [json.loads(path.read_text()) for path in sorted(records.glob("*.json")) if path.stem in wanted]
    return {
        "cases": len(wanted),
        "recorded": len(observed),
        "promoted_after_retry": sum(1 for o in observed if o["expect"] == "promoted" and o["promoted"]),
        "retried_by_state_machine": sum(1 for o in observed if o["retried_by_state_machine"]),
        "restored_byte_for_byte": sum(1 for o in observed if o["expect"] != "promoted" and o["restored"]),
        "rollback_failed_reported": sum(1 for o in observed if o["expect"] == "rollback_failed"),
        "production_writes_seen": sum(o["production_writes"] for o in observed),
        "production_writes_attempted": sum(o["production_writes_attempted"] for o in observed),
        "faults_fired": sum(len(o["fired"]) for o in observed),
        "by_kind": {
            kind: sum(1 for o in observed if o["kind"] == kind) for kind in sorted({o["kind"] for o in observed})
        },
        "seconds": math.fsum(o["seconds"] for o in observed),
    }


if __name__ == "__main__":
    import contextlib
    import os

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the plan's runs log to stdout
        counts = summarize()
    counts["source"] = "tests/e2e/test_fault_matrix.py records of the last `make test` (.local-runs/fault-matrix)"
    (ROOT / "bench" / "results" / "fault_matrix.json").write_text(json.dumps(counts, indent=2) + "\n")
    print(json.dumps(counts, indent=2))
