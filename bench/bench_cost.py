"""Cost of one promotion: a real run on the embedded local runtime, priced with bench/cost_model.py.

What is counted, and how:
* state transitions: the execution's own history (every state entered, every retry);
* Lambda: every in-process invocation (`lambdas.invocations`, duration) x the function's MemorySize from the
  synthesized template; requests;
* AWS requests: a botocore hook (`before-parameter-build` + `after-call` on boto3's default session, which the
  handlers' clients come from) records every request a handler makes, attributed to the invocation running in
  that thread; the runtime's own calls (seeding, traffic, snapshots) are not counted. Events that reach a
  function from a rule are priced as EventBridge prices them: AWS services' own events (SageMaker's state changes
  and Model Registry decisions) are free, anything else is a custom event;
* logs: the handlers' output plus Lambda's three platform lines, and the state machine's execution log (level ALL
  as the template says, with or without execution data: about one history event per record);
* X-Ray: one trace per execution plus one per asynchronously invoked function.

The training job, the comparison job and each endpoint change are one callback task each (promotion.jobs.callbacks):
however long SageMaker takes, they cost what the local run measures. The looks of each rollout stage follow the
evidence, so the promotion runs once per traffic seed (TRAFFIC_SEEDS) and the headline is the mean. Two figures:
as measured, and projected on AWS (Lambda time grows by a per-request latency and one billed cold start per
function). SageMaker compute is estimated apart from the catalog (instance types, upper-bound run times, rollout
bake time).

Writes bench/results/cost.json. Run: `.venv/bin/python -m bench cost` (`make bench` runs every benchmark).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "layers" / "promotion" / "python", ROOT / "jobs", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import boto3  # noqa: E402

from bench.cost_model import (  # noqa: E402
    BUDGET_PER_PROMOTION_USD,
    PRICES,
    SAGEMAKER_HOURLY,
    ComputeEstimate,
    PollLoop,
    Usage,
    compute_total,
    find_poll_loops,
    price_usage,
    request_units,
    sagemaker_estimate,
)
from promotion.contract.catalog import ModelCatalog  # noqa: E402
from promotion.result.cost import PRICE_TABLE_DATE, REGION, LambdaRun, summarize_history  # noqa: E402

RESULTS = ROOT / "bench" / "results"
EVENTS = ROOT / "tests" / "data" / "events"
# Per-request latency a handler spends on a call to an AWS service in the same region (assumed, for the projection).
AWS_REQUEST_MS = 20.0
# Lambda's START/END/REPORT lines per invocation, and the envelope of one Step Functions log record.
LAMBDA_PLATFORM_LOG_BYTES = 350
SFN_LOG_RECORD_OVERHEAD_BYTES = 250
DEFAULT_COLD_START_S = 1.0
# What a log record of a state machine whose LoggingConfiguration has IncludeExecutionData false leaves out: the
# states' and tasks' input, output and parameters ("execution data"); the event's type, ids, timestamps, names,
# resources and errors stay.
EXECUTION_DATA_FIELDS = frozenset({"input", "inputDetails", "output", "outputDetails", "parameters"})


@dataclass
class Request:
    service: str
    operation: str
    function: str | None  # the Lambda function whose invocation made it; None: the runtime (or a person) made it
    units: dict[str, float]


@dataclass(frozen=True)
class Timing:
    """One invocation seen by the recorder: wall time, and the part spent inside AWS requests (on moto that is
    the local emulation, running the SageMaker jobs included; on AWS it is network latency instead)."""

    function: str
    wall_ms: float
    in_requests_ms: float
    requests: int

    @property
    def handler_ms(self) -> float:
        return max(0.0, self.wall_ms - self.in_requests_ms)


@dataclass
class RequestRecorder:
    """Records every AWS request made through boto3's default session, attributed to the in-process Lambda
    invocation running in the calling thread, and each invocation's timing."""

    requests: list[Request] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    def _params(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cost_params"] = dict(params)
        context["cost_started"] = time.perf_counter()

    def _after(self, model: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        params = context.get("cost_params", {})
        if getattr(self._local, "function", None) is not None and "cost_started" in context:
            self._local.in_requests_ms += (time.perf_counter() - context["cost_started"]) * 1000
            self._local.requests += 1
        self.requests.append(
            Request(
                service=service,
                operation=model.name,
                function=getattr(self._local, "function", None),
                units=request_units(service, model.name, params, parsed),
            )
        )

    @contextmanager
    def installed(self, lambdas: Any) -> Iterator[None]:
        """Hook boto3's default session and the runtime's Lambda invoker (instance attribute, undone after)."""
        original = lambdas.invoke
        local = self._local

        def invoke(reference: str, event: Any) -> Any:
            spec = lambdas.resolve(reference)
            local.function = spec.name if spec is not None else reference
            local.in_requests_ms, local.requests = 0.0, 0
            started = time.perf_counter()
            try:
                return original(reference, event)
            finally:
                wall_ms = (time.perf_counter() - started) * 1000
                self.timings.append(Timing(local.function, wall_ms, local.in_requests_ms, local.requests))
                local.function = None

        session = boto3._get_default_session()
        session.events.register("before-parameter-build", self._params, unique_id="bench-cost-params")
        session.events.register("after-call", self._after, unique_id="bench-cost-after")
        lambdas.invoke = invoke
        try:
            yield
        finally:
            lambdas.invoke = original
            session.events.unregister("before-parameter-build", unique_id="bench-cost-params")
            session.events.unregister("after-call", unique_id="bench-cost-after")


def cold_start_seconds() -> float:
    """Median cold start of the handlers from bench/results/cold_start.json (INIT is billed since 2025-08-01)."""
    path = RESULTS / "cold_start.json"
    if not path.exists():
        return DEFAULT_COLD_START_S
    handlers = json.loads(path.read_text()).get("handlers", {})
    totals = [float(h["total_s"]) for h in handlers.values() if "total_s" in h]
    return statistics.median(totals) if totals else DEFAULT_COLD_START_S


def loop_runtime_seconds(loop: PollLoop) -> float | None:
    """How long a polling loop turns on AWS, when that differs from the local run: no loop of a normal promotion
    does (the jobs and endpoint changes are awaited by callback; the lock loop turns once, the look loop as here)."""
    if "ClaimPromotion" in loop.states:
        return 0.0  # waiting for another promotion's lock: none in a normal promotion
    return None


@dataclass
class FunctionProfile:
    """One function's average invocation in the measured run: what one more invocation would use."""

    memory_mb: int
    invocations: int = 0
    duration_ms: float = 0.0
    requests: int = 0
    units: dict[str, float] = field(default_factory=dict)
    log_bytes: int = 0

    def per_invocation(self, value: float) -> float:
        return value / self.invocations if self.invocations else 0.0


def _add_units(target: dict[str, float], units: Mapping[str, float], times: float = 1.0) -> None:
    for key, quantity in units.items():
        target[key] = target.get(key, 0.0) + quantity * times


def without_execution_data(event: Mapping[str, Any]) -> dict[str, Any]:
    """A history event as a log record without execution data shows it."""
    record: dict[str, Any] = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            record[key] = {k: v for k, v in value.items() if k not in EXECUTION_DATA_FIELDS}
        elif key not in EXECUTION_DATA_FIELDS:
            record[key] = value
    return record


def logs_execution_data(runtime: Any) -> bool:
    """Whether the promotion state machine's log records carry execution data (the synthesized template says)."""
    machines = runtime.stack.of_type("AWS::StepFunctions::StateMachine")
    promotion = next(
        (r for logical_id, r in machines.items() if "Promotion" in logical_id and "Operator" not in logical_id),
        next(iter(machines.values())),
    )
    logging = promotion.get("Properties", {}).get("LoggingConfiguration") or {}
    return bool(logging.get("IncludeExecutionData", False)) and logging.get("Level", "OFF") != "OFF"


def aws_event_functions(runtime: Any) -> set[str]:
    """The functions only rules on AWS services' own events (source aws.*) invoke: those events cost nothing."""
    by_id = {spec.logical_id: spec.name for spec in runtime.world.functions.values()}
    free: set[str] = set()
    paid: set[str] = set()
    for rule in runtime.stack.of_type("AWS::Events::Rule").values():
        properties = rule.get("Properties", {})
        sources = (properties.get("EventPattern") or {}).get("source") or []
        from_aws = bool(sources) and all(str(source).startswith("aws.") for source in sources)
        for target in properties.get("Targets") or []:
            arn = target.get("Arn")
            logical_id = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            if logical_id in by_id:
                (free if from_aws else paid).add(by_id[logical_id])
    return free - paid


def scenario(runtime: Any, event: dict[str, Any], catalog: ModelCatalog) -> dict[str, Any]:
    """Run one promotion on a started runtime and price it: as measured, and projected on AWS."""
    recorder = RequestRecorder()
    lambdas = runtime.lambdas
    first_invocation = len(lambdas.invocations)
    started = time.perf_counter()
    with recorder.installed(lambdas):
        result = runtime.run(event, seed=True)
    wall_s = time.perf_counter() - started
    history = runtime.history(result.execution_arn) if result.execution_arn else []
    summary = summarize_history(history)
    looks = (((result.output or {}) if isinstance(result.output, dict) else {}).get("rollout") or {}).get("history")
    stage_looks = [
        max(look["look"] for look in looks or [] if look["stage"] == stage)
        for stage in sorted({look["stage"] for look in looks or []})
    ]
    specs = {spec.name: spec for spec in runtime.world.functions.values()}
    by_id = {spec.logical_id: spec for spec in runtime.world.functions.values()}
    task_functions = {state: by_id[logical_id].name for state, logical_id in runtime.lambda_states().items()}
    invocations = lambdas.invocations[first_invocation:]
    handler_requests = [r for r in recorder.requests if r.function is not None]

    if len(recorder.timings) != len(invocations):
        raise RuntimeError(f"{len(recorder.timings)} invocations timed, {len(invocations)} made: the hook missed some")
    profiles = {name: FunctionProfile(memory_mb=spec.memory_mb) for name, spec in specs.items()}
    for timing in recorder.timings:
        profile = profiles[timing.function]
        profile.invocations += 1
        profile.duration_ms += timing.handler_ms
    for invocation in invocations:
        profiles[invocation.function].log_bytes += len(invocation.logs.encode()) + LAMBDA_PLATFORM_LOG_BYTES
    for request in handler_requests:
        assert request.function is not None
        profiles[request.function].requests += 1
        _add_units(profiles[request.function].units, request.units)

    # Functions the state machine does not invoke ran because an event reached them: SageMaker's own events (a
    # decision in the Model Registry, a job or endpoint that settled) are free; anything else was a custom event.
    free = aws_event_functions(runtime)
    bus_invocations = sum(
        1 for inv in invocations if inv.function not in task_functions.values() and inv.function not in free
    )
    with_data = logs_execution_data(runtime)
    sfn_log_bytes = sum(
        len(json.dumps(e if with_data else without_execution_data(e), default=str).encode())
        + SFN_LOG_RECORD_OVERHEAD_BYTES
        for e in history
    )
    lambda_log_bytes = sum(profile.log_bytes for profile in profiles.values())

    order = [state.name for state in result.states]
    definition = next(iter(runtime.world.definitions.values()))

    def loop_entries(loop: PollLoop) -> int:
        """How often the loop was entered from outside (e.g. once per rollout stage)."""
        inside = set(loop.states)
        return sum(
            1 for before, state in zip(["", *order], order, strict=False) if state in inside and before not in inside
        )

    def usage(
        *,
        aws: bool,
        one_look_per_stage: bool = False,
        state_machine_logs: bool = True,
    ) -> tuple[Usage, list[dict[str, Any]]]:
        units: dict[str, float] = {}
        for profile in profiles.values():
            _add_units(units, profile.units)
        _add_units(units, {"eventbridge.custom_event": bus_invocations})
        runs: list[LambdaRun] = []
        cold_s = cold_start_seconds() if aws else 0.0
        seen: set[str] = set()
        for timing in recorder.timings:
            extra_ms = 0.0
            if aws:
                extra_ms = AWS_REQUEST_MS * timing.requests + (0.0 if timing.function in seen else cold_s * 1000)
            seen.add(timing.function)
            runs.append(LambdaRun(timing.function, timing.handler_ms + extra_ms, profiles[timing.function].memory_mb))
        transitions = summary.state_transitions
        lambda_logs = lambda_log_bytes
        loop_rows = []
        for loop in find_poll_loops(definition):
            turns = summary.entries.get(loop.wait_state, 0)
            runtime_s = loop_runtime_seconds(loop)
            aws_turns = turns
            if aws and turns and runtime_s is not None and loop.wait_seconds is not None:
                aws_turns = max(1, math.ceil(runtime_s / loop.wait_seconds))
            if one_look_per_stage and loop.wait_seconds is None and turns:
                aws_turns = loop_entries(loop)
            extra_turns = aws_turns - turns
            transitions += extra_turns * len(loop.states)
            for state in loop.states:
                name = task_functions.get(state)
                if name is None or not extra_turns:
                    continue
                profile = profiles[name]
                duration = profile.per_invocation(profile.duration_ms) + AWS_REQUEST_MS * profile.per_invocation(
                    profile.requests
                )
                if extra_turns > 0:
                    runs.extend(LambdaRun(name, duration, profile.memory_mb) for _ in range(extra_turns))
                else:
                    for _ in range(-extra_turns):
                        runs.remove(next(run for run in reversed(runs) if run.function == name))
                _add_units(units, {k: profile.per_invocation(v) for k, v in profile.units.items()}, extra_turns)
                lambda_logs += round(extra_turns * profile.per_invocation(profile.log_bytes))
            loop_rows.append(
                {
                    "wait_state": loop.wait_state,
                    "wait_seconds": loop.wait_seconds,
                    "states": list(loop.states),
                    "turns_measured": turns,
                    "turns": aws_turns,
                    "runtime_s_assumed": runtime_s if aws else None,
                }
            )
        sfn_logs = round(sfn_log_bytes * transitions / max(1, summary.state_transitions)) if state_machine_logs else 0
        return (
            Usage(
                state_transitions=transitions,
                lambda_runs=runs,
                units=units,
                log_bytes=lambda_logs + sfn_logs,
                traces=1 + bus_invocations,
            ),
            loop_rows,
        )

    measured_usage, _ = usage(aws=False)
    projected_usage, loops = usage(aws=True)
    levers_usage, _ = usage(aws=True, one_look_per_stage=True, state_machine_logs=False)
    measured, projected, levers = (price_usage(u) for u in (measured_usage, projected_usage, levers_usage))
    return {
        "stage_looks": stage_looks,
        "run": {
            "status": result.status,
            "outcome": result.outcome,
            "execution_name": result.execution_name,
            "wall_s": round(wall_s, 3),
            "states": [state.name for state in result.states],
        },
        "counts": {
            "state_transitions": summary.state_transitions,
            "states_entered": summary.states_entered,
            "retries": summary.retries,
            "lambda_invocations": len(invocations),
            "lambda_invocations_by_function": dict(Counter(inv.function for inv in invocations)),
            "lambda_ms_total": round(sum(timing.wall_ms for timing in recorder.timings), 1),
            "lambda_ms_in_local_aws_emulation": round(sum(timing.in_requests_ms for timing in recorder.timings), 1),
            "lambda_ms_handler": round(sum(timing.handler_ms for timing in recorder.timings), 1),
            "lambda_memory_mb": sorted({run.memory_mb for run in measured_usage.lambda_runs}),
            "aws_requests_by_operation": dict(
                sorted(Counter(f"{r.service}:{r.operation}" for r in handler_requests).items())
            ),
            "product_bus_events_from_people": bus_invocations,
            "runtime_requests_not_counted": sum(1 for r in recorder.requests if r.function is None),
            "log_bytes": {"lambda": lambda_log_bytes, "state_machine": sfn_log_bytes},
            "state_machine_logs_execution_data": with_data,
            "xray_traces": measured_usage.traces,
            "failed_states": summary.failed_states,
        },
        "measured": measured.as_dict(),
        "projected_on_aws": {
            **projected.as_dict(),
            "assumptions": {
                "aws_request_latency_ms": AWS_REQUEST_MS,
                "cold_start_s_per_function": round(cold_start_seconds(), 3),
                "polling_loops": loops,
                "waits": "the training job, the comparison job and each endpoint change are one callback task each "
                "(SageMaker's state-change event completes it, promotion.jobs.callbacks): however long "
                "SageMaker takes, they cost the transitions and invocations measured here",
            },
        },
        "projected_on_aws_with_levers": {
            **levers.as_dict(),
            "assumptions": [
                "one evaluation per rollout stage (Bake the whole bake time, then EvaluateStage) instead of a look "
                "every look_minutes",
                "no state machine execution log (level OFF); the execution history and the decision report keep "
                "the details",
            ],
        },
        "meets_budget": {
            "budget_usd": BUDGET_PER_PROMOTION_USD,
            "measured": measured.total <= BUDGET_PER_PROMOTION_USD,
            "projected_on_aws": projected.total <= BUDGET_PER_PROMOTION_USD,
            "projected_on_aws_with_levers": levers.total <= BUDGET_PER_PROMOTION_USD,
        },
    }


def sagemaker_costs(catalog: ModelCatalog) -> list[ComputeEstimate]:
    """Upper bounds from the catalog: the production training job and the comparison job at their maximum run
    time, and the challenger variant for every rollout stage's bake (plus the allowed extensions)."""
    estimates = [
        sagemaker_estimate(
            "production training job (max_runtime_seconds)",
            "training",
            catalog.training.instance_type,
            catalog.training.instance_count,
            catalog.training.max_runtime_seconds / 3600,
        )
    ]
    if catalog.comparison is not None:
        estimates.append(
            sagemaker_estimate(
                "comparison processing job (max_runtime_seconds)",
                "processing",
                catalog.comparison.instance_type,
                1,
                catalog.comparison.max_runtime_seconds / 3600,
            )
        )
    if catalog.rollout is not None:
        rollout = catalog.rollout
        bakes = len(rollout.stages) + rollout.max_bake_extensions
        estimates.append(
            sagemaker_estimate(
                f"challenger variant during the rollout ({len(rollout.stages)} stages + "
                f"{rollout.max_bake_extensions} extensions x {rollout.bake_minutes:g} min bake)",
                "hosting",
                rollout.instance_type,
                rollout.initial_instance_count,
                bakes * rollout.bake_minutes / 60,
            )
        )
    return estimates


SCENARIOS: dict[str, tuple[str, ...]] = {"promotion": (), "rolled_back_at_TriggerPipeline": ("TriggerPipeline",)}
# The promotion again with other draws of the simulated callers: how many looks each stage takes (and so the
# transitions and metrics a promotion costs) follows the evidence, so the headline is the mean over these runs.
TRAFFIC_SEEDS: tuple[int, ...] = (7, 11, 23, 42, 101)


def run_scenario(name: str, traffic_seed: int = TRAFFIC_SEEDS[0]) -> dict[str, Any]:
    """One scenario on a fresh runtime (call it in a fresh process: handler modules and loggers are per process)."""
    from local.production import load_model_catalog, model_of
    from local.runtime import LocalRuntime

    event = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    world = json.loads((EVENTS / "world.json").read_text())
    model = model_of(event)
    if model is None:
        raise SystemExit("the sample event names no model")
    with (
        tempfile.TemporaryDirectory() as reports,
        LocalRuntime(
            ROOT, world=world, reports_dir=Path(reports), fail_at=SCENARIOS[name], traffic_seed=traffic_seed
        ) as runtime,
    ):
        return scenario(runtime, event, load_model_catalog(runtime.models_dir, model))


def main() -> dict[str, Any]:
    from local.production import load_model_catalog, model_of

    started = time.perf_counter()
    scenarios: dict[str, Any] = {name: run_in_subprocess(name) for name in SCENARIOS}
    runs = [scenarios["promotion"], *(run_in_subprocess("promotion", seed) for seed in TRAFFIC_SEEDS[1:])]
    seeded = [
        {
            "traffic_seed": seed,
            "outcome": run["run"]["outcome"],
            "state_transitions": run["counts"]["state_transitions"],
            "stage_looks": run["stage_looks"],
            "measured_usd": run["measured"]["total_usd"],
            "projected_on_aws_usd": run["projected_on_aws"]["total_usd"],
        }
        for seed, run in zip(TRAFFIC_SEEDS, runs, strict=True)
    ]

    def mean(key: str) -> float:
        return round(statistics.fmean(run[key] for run in seeded), 8)

    event = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    model = model_of(event)
    assert model is not None
    catalog = load_model_catalog(ROOT / "models", model)
    compute = sagemaker_costs(catalog)
    headline = scenarios["promotion"]
    result = {
        "benchmark": "cost of one promotion, priced from a local run (bench/cost_model.py)",
        "region": REGION,
        "price_table_date": PRICE_TABLE_DATE,
        "prices": {k: {"usd": p.amount, "per": p.per, "unit": p.unit, "source": p.source} for k, p in PRICES.items()},
        "model": model,
        "budget_usd_per_promotion": BUDGET_PER_PROMOTION_USD,
        "per_promotion_usd": {
            # Means over the seeded promotions (promotion_runs); `scenarios` details the first.
            "measured": mean("measured_usd"),
            "measured_max": max(run["measured_usd"] for run in seeded),
            "projected_on_aws": mean("projected_on_aws_usd"),
            "projected_on_aws_with_levers": headline["projected_on_aws_with_levers"]["total_usd"],
        },
        "meets_budget": {
            **headline["meets_budget"],
            "measured": mean("measured_usd") <= BUDGET_PER_PROMOTION_USD,
            "projected_on_aws": mean("projected_on_aws_usd") <= BUDGET_PER_PROMOTION_USD,
        },
        "promotion_runs": seeded,
        "scenarios": scenarios,
        "sagemaker_estimate": {
            "note": "upper bounds from the catalog; on-demand us-east-1 per instance-hour; priced apart from the "
            "orchestration budget",
            "hourly_usd": SAGEMAKER_HOURLY,
            "items": [estimate.as_dict() for estimate in compute],
            "total_usd": round(compute_total(compute), 4),
        },
        "bench_wall_s": round(time.perf_counter() - started, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cost.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_in_subprocess(name: str, traffic_seed: int = TRAFFIC_SEEDS[0]) -> dict[str, Any]:
    """One scenario in a fresh process (handler modules and loggers are per process)."""
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--scenario", name, "--traffic-seed", str(traffic_seed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"scenario {name} failed ({output.returncode}):\n{output.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--scenario" and sys.argv[3] == "--traffic-seed":
        outcome = run_scenario(sys.argv[2], int(sys.argv[4]))
        sys.stdout.flush()
        print(json.dumps(outcome))
        sys.exit(0)
    summary = main()
    print(json.dumps({k: summary[k] for k in ("per_promotion_usd", "meets_budget", "bench_wall_s")}, indent=2))
    print(f"SageMaker compute, estimated apart (upper bound): ${summary['sagemaker_estimate']['total_usd']}")
