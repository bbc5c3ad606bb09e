"""`python -m local`: run a promotion on the embedded local runtime (no AWS account, no Docker).

    python -m local run --event FILE [--world FILE] [--approve BY | --reject BY] [--fail-at STATE[:WHEN][:KIND]]
                        [--seed-champion/--no-seed-champion] [--json] [--verbose] [--timeout SECONDS]
                        [--template PATH] [--no-iam] [--scenario S]
    python -m local demo [--no-iam]
    python -m local up [--port N] [--connection FILE] [--idle] [--champion C] [--scenario S] [--no-iam]

`up` keeps the runtime running (a champion in production, the sample tuning job's promotion waiting for approval)
until Ctrl-C, and `promote --local --as PERSON ...` drives it (local/gateway.py).

`--fail-at STATE` makes the function behind STATE fail on every invocation, before it runs, raising InjectedFault;
`:after` fails it after its handler returned (its side effects happened), `:crash` / `:timeout` as a crashed or
timed-out Lambda runtime instead (local.faults.Crash: the same mechanism and defaults as the tests' fault injection).

Every AWS call is authorized against the template's IAM policies, as AWS does; `--no-iam` switches that off, and
the output then says so.

Exit codes: 0 promoted; 1 rejected, failed, rolled back or not started; 2 bad usage or input.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from local.endpoints import SCENARIOS
from local.errors import SetupError
from local.paths import ROOT
from local.people import Decision
from local.production import model_of

if TYPE_CHECKING:
    from local.reporting import RunResult

# The sample events (copies of the real shapes in shared/events), the same the tests load.
SAMPLES = ROOT / "tests" / "data" / "events"
EXIT_USAGE = 2
# `run --scenario` values that follow a good rollout with an hour of monitoring (local.runtime.monitoring_loop).
MONITORING_SCENARIOS: tuple[str, ...] = ("monitored", "drift")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run a promotion on the embedded local runtime.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise _fail(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(f"{what} file {path} is not readable JSON: {error}") from None


def _quiet_moto(verbose: bool) -> None:
    """moto logs expected interpreter events (a Choice probing an absent path) at ERROR; keep them for --verbose."""
    if not verbose:
        for name in ("moto", "local.lambdas"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _execute(
    event: dict[str, Any],
    world: dict[str, Any] | None,
    decision: Decision | None,
    *,
    fail_at: list[str],
    seed: bool,
    verbose: bool,
    timeout: float,
    champion: str = "weak",
    scenario: str = "good",
    template: Path | None = None,
    enforce_iam: bool = True,
) -> tuple[RunResult, str]:
    from local.faults import FaultInjector
    from local.runtime import LocalRuntime  # moto and the bridges: loaded once a run starts

    _quiet_moto(verbose)
    try:
        faults = FaultInjector.fail_at(fail_at) if fail_at else None
    except SetupError as error:
        raise _fail(str(error)) from None
    runtime = LocalRuntime(
        ROOT,
        template=template,
        enforce_iam=enforce_iam,
        world=world,
        faults=faults,
        function_logs=sys.stderr if verbose else None,
        champion="strong" if champion == "strong" else "twin" if champion == "twin" else "weak",
        scenario="good" if scenario in MONITORING_SCENARIOS else scenario,
    )
    try:
        runtime.start()
        result = runtime.run(event, decision=decision, seed=seed, timeout_s=timeout)
        if scenario not in MONITORING_SCENARIOS or result.outcome != "PROMOTED" or result.model is None:
            return result, ""
        from local.render import monitoring

        loop = runtime.monitoring_loop(result.model, drift=scenario == "drift", timeout_s=timeout)
        return result, monitoring(loop)
    except SetupError as error:
        raise _fail(str(error)) from None
    finally:
        runtime.stop()


def _report(result: RunResult, as_json: bool, monitored: str = "") -> None:
    from local.render import timeline

    if as_json:
        document = result.contract()
        if monitored:
            document["monitoring"] = monitored.strip().splitlines()
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        typer.echo(timeline(result) + monitored, nl=False)
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    event: Annotated[Path, typer.Option("--event", help="EventBridge event JSON (e.g. tuning-job-completed.json)")],
    world: Annotated[Path | None, typer.Option("--world", help="SageMaker world JSON (describe answers)")] = None,
    approve: Annotated[str | None, typer.Option("--approve", metavar="BY", help="approve AwaitApproval as BY")] = None,
    reject: Annotated[str | None, typer.Option("--reject", metavar="BY", help="reject AwaitApproval as BY")] = None,
    fail_at: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-at",
            metavar="STATE[:before|after][:error|crash|timeout]",
            help="the Lambda behind STATE fails on every invocation: by default before it runs, raising InjectedFault",
        ),
    ] = None,
    seed_champion: Annotated[
        bool, typer.Option("--seed-champion/--no-seed-champion", help="put a champion release in production first")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the timeline")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show handler and moto logs on stderr")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="stop the execution after SECONDS")] = 120.0,
    champion: Annotated[
        str,
        typer.Option(
            "--champion",
            help="the seeded champion model: weak (the challenger beats it), strong (the comparison rolls back) or "
            "twin (the challenger's configuration with another seed: only seed noise between them)",
        ),
    ] = "weak",
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help="how the challenger serves live traffic in the rollout: "
            "good | worse-errors | worse-latency | no-traffic | skewed-split; or, after a good rollout, an hour of "
            "monitoring: monitored (requests like the training data: no drift) | drift (amounts 20x: drift starts a "
            "retraining, whose tuning job's completion starts the next promotion)",
        ),
    ] = "good",
    template: Annotated[
        Path | None,
        typer.Option("--template", help="run this synthesized template (e.g. a changed copy of cdk.out's) instead"),
    ] = None,
    no_iam: Annotated[
        bool, typer.Option("--no-iam", help="do not enforce the template's IAM policies (the output says so)")
    ] = False,
) -> None:
    """Send EVENT through the stack's EventBridge rules and follow the promotion to its end.

    Without --approve or --reject, AwaitApproval is approved as the catalog's demo approver."""
    if approve is not None and reject is not None:
        raise _fail("--approve and --reject are mutually exclusive")
    document = _read_json(event, "event")
    if not isinstance(document, dict) or model_of(document) is None:
        raise _fail(f"event {event} names no model (detail.Tags['promotion:model'])")
    world_document = _read_json(world, "world") if world is not None else None
    decision = Decision.approve(approve) if approve else Decision.reject(reject) if reject else None
    if champion not in ("weak", "strong", "twin"):
        raise _fail(f"--champion must be weak, strong or twin, not {champion!r}")
    if scenario not in (*SCENARIOS, *MONITORING_SCENARIOS):
        raise _fail(f"--scenario must be one of {', '.join((*SCENARIOS, *MONITORING_SCENARIOS))}, not {scenario!r}")
    result, monitored = _execute(
        document,
        world_document,
        decision,
        fail_at=fail_at or [],
        seed=seed_champion,
        verbose=verbose,
        timeout=timeout,
        champion=champion,
        scenario=scenario,
        template=template,
        enforce_iam=not no_iam,
    )
    _report(result, as_json, monitored)


@app.command()
def demo(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show handler and moto logs on stderr")] = False,
    no_iam: Annotated[
        bool, typer.Option("--no-iam", help="do not enforce the template's IAM policies (the output says so)")
    ] = False,
) -> None:
    """A champion in production, the sample tuning-job event and its world, approved by the demo approver."""
    document = _read_json(SAMPLES / "tuning-job-completed.json", "event")
    world_document = _read_json(SAMPLES / "world.json", "world")
    result, _ = _execute(
        document, world_document, None, fail_at=[], seed=True, verbose=verbose, timeout=120.0, enforce_iam=not no_iam
    )
    _report(result, as_json=False)


def _announce(runtime: Any, seen: dict[str, str]) -> None:
    """One line per execution whose status or waiting state changed since the last look."""
    sfn = runtime.clients.stepfunctions
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            arn, status = execution["executionArn"], execution["status"]
            now = status
            if status == "RUNNING":
                for state in ("AwaitApproval", "AwaitOperator"):
                    if runtime.executions.task_waiting(arn, state):
                        now = f"waits in {state}"
            if seen.get(arn) == now:
                continue
            seen[arn] = now
            detail = ""
            if status != "RUNNING":
                described = sfn.describe_execution(executionArn=arn)
                detail = f" {described.get('error') or ''} {described.get('cause') or ''}".rstrip()
            typer.echo(f"[{machine['name']}] {execution['name']}: {now}{detail}")


@app.command()
def up(
    port: Annotated[int, typer.Option("--port", help="the gateway's port on 127.0.0.1 (0: any free one)")] = 4599,
    connection: Annotated[
        Path, typer.Option("--connection", help="where to write the connection file promote --local reads")
    ] = Path(".promote-local.json"),
    idle: Annotated[bool, typer.Option("--idle", help="start no promotion: only the champion in production")] = False,
    champion: Annotated[
        str, typer.Option("--champion", help="the seeded champion model: weak, strong or twin (as for run)")
    ] = "weak",
    scenario: Annotated[
        str, typer.Option("--scenario", help="how the challenger serves live traffic in the rollout (as for run)")
    ] = "good",
    template: Annotated[Path | None, typer.Option("--template", help="run this synthesized template instead")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show handler and moto logs on stderr")] = False,
    no_iam: Annotated[
        bool, typer.Option("--no-iam", help="do not enforce the template's IAM policies (the output says so)")
    ] = False,
) -> None:
    """Keep the stack running on the embedded local AWS for `promote --local`: a champion in production and the
    sample tuning job's promotion waiting for a data scientist, until Ctrl-C."""
    import signal
    import threading

    from local.gateway import Gateway
    from local.runtime import LocalRuntime

    _quiet_moto(verbose)
    if champion not in ("weak", "strong", "twin"):
        raise _fail(f"--champion must be weak, strong or twin, not {champion!r}")
    if scenario not in SCENARIOS:
        raise _fail(f"--scenario must be one of {', '.join(SCENARIOS)}, not {scenario!r}")
    document = _read_json(SAMPLES / "tuning-job-completed.json", "event")
    model = model_of(document) or ""
    runtime = LocalRuntime(
        ROOT,
        template=template,
        enforce_iam=not no_iam,
        world=_read_json(SAMPLES / "world.json", "world"),
        function_logs=sys.stderr if verbose else None,
        champion="strong" if champion == "strong" else "twin" if champion == "twin" else "weak",
        scenario=scenario,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    gateway: Gateway | None = None
    opened = None
    try:
        runtime.start()
        runtime.seed_champion(model)
        try:
            gateway = Gateway(runtime, port=port)
        except OSError as error:  # the port is taken (another `up`?): its connection file stays as it is
            raise _fail(f"cannot listen on 127.0.0.1:{port}: {error}; is another python -m local up running?") from None
        opened = gateway.start(connection)
        if not idle:
            runtime.send_event(document)
        typer.echo(
            f"local runtime up at {opened.url} ({'IAM NOT enforced' if no_iam else 'IAM enforced'}); "
            f"connection file {connection}. People:"
        )
        for session, label in opened.people.items():
            typer.echo(f"  {session}: {label}")
        typer.echo(
            "In another shell:\n"
            "  .venv/bin/python -m promote --local --as omar@example.com status\n"
            f"  .venv/bin/python -m promote --local --as alice@example.com approve {model} --comment 'looks good'\n"
            f"  .venv/bin/python -m promote --local --as omar@example.com history {model}\n"
            f"  .venv/bin/python -m promote --local --as omar@example.com rollback {model} --release RELEASE "
            "--reason '...'\n"
            "Ctrl-C stops it (everything is in memory)."
        )
        seen: dict[str, str] = {}
        while not stopping.wait(1.0):
            _announce(runtime, seen)
    except SetupError as error:
        raise _fail(str(error)) from None
    finally:
        if gateway is not None:
            gateway.close()
        if opened is not None:  # only the file this run wrote
            connection.unlink(missing_ok=True)
        runtime.stop()
    typer.echo("local runtime stopped")


if __name__ == "__main__":
    app()
