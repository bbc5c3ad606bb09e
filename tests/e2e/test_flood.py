"""Duplicates and floods: many tuning-job events for several models, shuffled and duplicated, sent through the
default bus as fast as the runtime takes them. None may be lost, each distinct tuning job is decided exactly once
(redeliveries end Duplicate), the promotions of one model never interleave and happen in tuning-job order, and each
model ends on its newest tuning job.

The models are copies of models/fraud-detection.yaml with their own ids, prefixes, config keys and endpoints,
synthesized with the product's app (`python app.py` with PROMOTION_MODELS_DIR and CDK_OUTDIR) into
.local-runs/test-stack, which is synthesized again only when the app's sources change. Each distinct tuning job has
a world entry whose objective beats the one before it. The lock-wait loop
(WaitForModelLock, 300 s) is compressed to `WAIT_FACTOR * 300` s, so waiting executions poll the lock about as
often as a promotion takes a step instead of spinning on it.

Promotions of a model follow tuning-job completion order: an execution's first look at the lock only writes its
claim and waits one WaitForModelLock period (the settle window), so an older tuning job whose event arrives moments
after a newer one's still claims first and goes first
(test_an_older_tuning_job_delivered_just_after_a_newer_one_is_promoted_first). In a compressed flood the settle
window is 0.6 s while the runtime runs every Lambda of every execution one at a time, so a first look can come later
than that; the flood tests then check what must hold anyway: a newer tuning job promoted first makes the older one
rightly rejected (it does not beat the new champion), never lost, never interleaved.

bench/bench_flood.py runs the full size (100 events, 20 models) with these helpers.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.runtime import Decision, LocalRuntime
from local.sfn_bridge import TimeCompression
from local.timeline import StateRecord, states_from_history
from tests.conftest import EVENTS, ROOT

BASE_MODEL = "fraud-detection"
ACCOUNT, REGION = "123456789012", "us-east-1"
WAIT_FACTOR = 0.002  # WaitForModelLock 300 s -> 0.6 s; a 15-minute Bake -> 1.8 s
FIRST_STATE_OF_A_PROMOTION, LAST_STATE = "BackupProduction", "PublishResult"  # operator contract


# -- models, the test stack, world and events ---------------------------------------------------------------------
TEST_STACK = ROOT / ".local-runs" / "test-stack"
TEST_STACK_FLOOD_MODELS = 4


def model_ids(count: int) -> list[str]:
    return [f"model-{index:02d}" for index in range(1, count + 1)]


def flood_catalog(base: dict[str, Any], model: str) -> dict[str, Any]:
    """A copy of the fraud-detection catalog with its own id, SSM prefix, config key and endpoint, without
    `comparison` settings (optional: the product then skips the comparison job) or monitoring. A flood is about claims,
    locks and ordering."""
    catalog = {key: value for key, value in copy.deepcopy(base).items() if key not in ("comparison", "monitoring")}
    catalog["id"] = model
    catalog["parameter_store"]["prefix"] = f"/{model}/hyperparameters"
    catalog["config"]["key"] = f"{model}/production-model-config.yaml"
    if catalog.get("rollout"):
        catalog["rollout"]["endpoint_name"] = f"{model}-prod"
    return catalog


def quick_rollout_catalog(base: dict[str, Any]) -> dict[str, Any]:
    """fraud-detection itself with a two-stage rollout and one look per bake: every state of the machine still
    runs (DeployChallenger, ShiftTraffic, Bake, EvaluateStage, PromoteChallenger, ...), in half the invocations."""
    catalog = copy.deepcopy(base)
    if catalog.get("rollout"):
        catalog["rollout"].update(stages=[50, 100], bake_minutes=5, min_bake_minutes=5, look_minutes=5)
        # The 100 % stage is judged against the champion's 50 % stage alone (15,000 requests in a five-minute bake):
        # ruling out 1.5x there was a coin toss for a challenger as good as the champion, which failed fault cases
        # that only shift the traffic draws. The matrix tests fault handling, not the gate: rule out 2x at both.
        catalog["rollout"].setdefault("gates", {})["rule_out_ratios"] = [2.0, 2.0]
    return catalog


def _base_catalog() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "models" / f"{BASE_MODEL}.yaml").read_text()))


def synthesize_catalogs(folder: Path, catalogs: dict[str, dict[str, Any]]) -> tuple[Path, Path]:
    """(models dir, cloud assembly) of the product's app with these catalogs, synthesized with `python app.py`
    (PROMOTION_MODELS_DIR, CDK_OUTDIR) when missing or older than the app's sources or the catalogs. Parallel callers
    wait on a lock; the first one synthesizes."""
    from local.template import needs_synth

    models_dir, assembly = folder / "models", folder / "cdk.out"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        texts = {f"{model}.yaml": yaml.safe_dump(catalog, sort_keys=False) for model, catalog in catalogs.items()}
        current = {path.name: path.read_text() for path in models_dir.glob("*.yaml")} if models_dir.is_dir() else {}
        if current != texts:
            shutil.rmtree(models_dir, ignore_errors=True)
            models_dir.mkdir(parents=True)
            for name, text in texts.items():
                (models_dir / name).write_text(text)
        stale = needs_synth(ROOT, assembly)
        if stale is None and current != texts:
            stale = "the catalogs changed"
        if stale is not None:
            shutil.rmtree(assembly, ignore_errors=True)
            env = {**os.environ, "PROMOTION_MODELS_DIR": str(models_dir), "CDK_OUTDIR": str(assembly)}
            done = subprocess.run(
                [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, f"synth of {folder} ({stale}) failed: {done.stderr[-3000:]}"
    return models_dir, assembly


def shared_stack() -> tuple[Path, Path]:
    """The product's app with test catalogs, kept under .local-runs/test-stack and synthesized again only when
    the app changed: fraud-detection with a quick rollout (the fault matrix) and four flood models."""
    base = _base_catalog()
    catalogs = {BASE_MODEL: quick_rollout_catalog(base)}
    catalogs.update({model: flood_catalog(base, model) for model in model_ids(TEST_STACK_FLOOD_MODELS)})
    return synthesize_catalogs(TEST_STACK, catalogs)


HELD_STACK = ROOT / ".local-runs" / "held-stack"
NO_ROLLOUT_MODEL = "model-without-rollout"
SHADOW_MODEL = "fraud-shadow"


@cache
def held_stack() -> tuple[Path, Path]:
    """(models dir, cloud assembly): fraud-detection with the quick two-stage rollout (50 %, 100 %, one look each)
    that holds a stage still inconclusive after its look for an operator, at most an hour; a model whose rollout
    begins with a shadow stage; and a model without rollout settings (it must synthesize: no endpoint, no rollout
    grants)."""
    base = _base_catalog()
    held = quick_rollout_catalog(base)
    held["rollout"].update(on_inconclusive="hold", max_bake_extensions=0, hold_hours=1)
    without = flood_catalog(base, NO_ROLLOUT_MODEL)
    without.pop("rollout", None)
    # A shadow stage before the two quick live stages (no comparison job: the shadow is the point).
    shadowed = flood_catalog(base, SHADOW_MODEL)
    shadowed["rollout"].update(
        stages=[50, 100], bake_minutes=5, min_bake_minutes=5, look_minutes=5, shadow={"sampling_percent": 100}
    )
    return synthesize_catalogs(HELD_STACK, {BASE_MODEL: held, NO_ROLLOUT_MODEL: without, SHADOW_MODEL: shadowed})


def held_runtime(tmp_path: Path, **options: Any) -> LocalRuntime:
    """A runtime on the held stack (held_stack), reports under `tmp_path`."""
    models_dir, assembly = held_stack()
    return LocalRuntime(
        ROOT,
        synth=False,
        assembly_dir=assembly,
        models_dir=models_dir,
        world=json.loads((EVENTS / "world.json").read_text()),
        reports_dir=tmp_path / "reports",
        **options,
    )


def synthesize(root: Path, models: int) -> tuple[Path, Path]:
    """(models dir, cloud assembly) with `models` flood models under `root` (the bench's 20-model stack)."""
    base = _base_catalog()
    return synthesize_catalogs(root, {model: flood_catalog(base, model) for model in model_ids(models)})


def seed_champions(runtime: LocalRuntime, models: list[str]) -> None:
    """Each model's champion, without a production endpoint: DeployChallenger then skips the A/B rollout. (The
    local traffic simulator has one simulated clock that every Wait of every execution advances, so concurrent
    rollouts of several models would corrupt each other's metric windows; a flood is not about rollouts.)"""
    from promotion.contract.catalog import load_catalog

    for model in models:
        runtime.seed_champion(model)
        rollout = load_catalog(runtime.models_dir / f"{model}.yaml").rollout
        if rollout is not None:
            runtime.clients.sagemaker.delete_endpoint(EndpointName=rollout.endpoint_name)


@dataclass(frozen=True)
class Job:
    model: str
    index: int  # 1, 2, ...: the tuning-job order within the model
    name: str
    arn: str
    best: str
    time: datetime
    auc: float
    hyperparameters: dict[str, str]


def jobs_of(models: list[str], per_model: int) -> list[Job]:
    base = json.loads((EVENTS / "world.json").read_text())
    raw = next(iter(base["DescribeTrainingJob"].values()))["HyperParameters"]
    template = {name: value for name, value in raw.items() if not name.startswith("_")}  # SageMaker's own
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    jobs = []
    for number, model in enumerate(models):
        for index in range(1, per_model + 1):
            name = f"{model}-tune-{index:03d}"
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            hyperparameters = {
                **template,
                "max_depth": str(3 + index % 8),
                "num_round": str(100 + 10 * index),
                "eta": f"{0.05 + 0.01 * index:.2f}",
            }
            jobs.append(
                Job(
                    model=model,
                    index=index,
                    name=name,
                    arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{name}",
                    best=f"{name}-001-{digest}",
                    time=start + timedelta(minutes=10 * index, seconds=number),
                    auc=round(0.9650 + 0.003 * index, 4),  # the seeded champion has 0.9601; the margin is 0.001
                    hyperparameters=hyperparameters,
                )
            )
    return jobs


def flood_world(jobs: list[Job]) -> dict[str, Any]:
    base = json.loads((EVENTS / "world.json").read_text())
    tuning_template = next(iter(base["DescribeHyperParameterTuningJob"].values()))
    training_template = next(iter(base["DescribeTrainingJob"].values()))
    world: dict[str, Any] = {"DescribeHyperParameterTuningJob": {}, "DescribeTrainingJob": {}}
    for job in jobs:
        tuning = copy.deepcopy(tuning_template)
        when = job.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        tuning.update(HyperParameterTuningJobName=job.name, HyperParameterTuningJobArn=job.arn)
        tuning.update(HyperParameterTuningEndTime=when, LastModifiedTime=when)
        tuning["BestTrainingJob"].update(
            TrainingJobName=job.best,
            TrainingJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job.best}",
            TuningJobName=job.name,
            TunedHyperParameters={k: v for k, v in job.hyperparameters.items() if k in ("max_depth", "num_round")},
            FinalHyperParameterTuningJobObjectiveMetric={"MetricName": "validation:auc", "Value": job.auc},
        )
        training = copy.deepcopy(training_template)
        training.update(
            TrainingJobName=job.best,
            TrainingJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job.best}",
            TuningJobArn=job.arn,
            HyperParameters={**job.hyperparameters, "_tuning_objective_metric": "validation:auc"},
            FinalMetricDataList=[
                {"MetricName": "validation:auc", "Value": job.auc, "Timestamp": when},
                {"MetricName": "validation:accuracy", "Value": 0.9431, "Timestamp": when},
            ],
        )
        training["ModelArtifacts"] = {
            "S3ModelArtifacts": f"s3://{job.model}-models/tuning/{job.best}/output/model.tar.gz"
        }
        world["DescribeHyperParameterTuningJob"][job.name] = tuning
        world["DescribeTrainingJob"][job.best] = training
    return world


def tuning_event(job: Job, delivery: int) -> dict[str, Any]:
    document = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    document["id"] = f"{hashlib.sha256(f'{job.name}/{delivery}'.encode()).hexdigest()[:32]}"
    document["time"] = job.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    document["resources"] = [job.arn]
    document["detail"].update(
        HyperParameterTuningJobName=job.name,
        HyperParameterTuningJobArn=job.arn,
        Tags={"promotion:model": job.model, "team": "risk-ml"},
    )
    return document


def flood_events(
    jobs: list[Job], duplicates: int, *, seed: int, ordered: bool = True
) -> list[tuple[Job, dict[str, Any]]]:
    """Every job's event once plus `duplicates` redeliveries of random jobs, shuffled. With `ordered`, each model's
    first deliveries keep tuning-job order (models interleave at random, duplicates land anywhere after the first)."""
    rng = random.Random(seed)
    if ordered:
        queues = {model: [job for job in jobs if job.model == model] for model in dict.fromkeys(j.model for j in jobs)}
        sequence: list[Job] = []
        while any(queues.values()):
            model = rng.choice([m for m, queue in queues.items() if queue])
            sequence.append(queues[model].pop(0))
    else:
        sequence = rng.sample(jobs, len(jobs))
    deliveries = [(job, tuning_event(job, 0)) for job in sequence]
    for number in range(duplicates):
        job = rng.choice(jobs)
        first = next(i for i, (j, _) in enumerate(deliveries) if j == job)
        deliveries.insert(rng.randint(first + 1, len(deliveries)), (job, tuning_event(job, number + 1)))
    return deliveries


# -- driving the flood -----------------------------------------------------------------------------------------------
@dataclass
class Approvals:
    """Answers AwaitApproval as each model's demo approver. The promotions waiting for a decision are found in the
    in-process Lambda invocation record (AwaitApproval returned), and only those are checked against the execution
    history: moto's GetExecutionHistory is slow, LocalRuntime.wait polls it every 10 ms for one execution."""

    seen: int = 0  # Lambda invocations already looked at
    awaiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # execution ARN -> (model, tuning job)
    approved: dict[str, str] = field(default_factory=dict)  # execution ARN -> tuning job name

    def answer(self, runtime: LocalRuntime, running: set[str]) -> None:
        assert runtime.lambdas is not None
        approval_function = await_approval_function(runtime)
        invocations = runtime.lambdas.invocations
        for call in invocations[self.seen :]:
            if call.function == approval_function and call.error is None:
                claim = call.event["state"]["claim"]
                self.awaiting[claim["execution_arn"]] = (claim["model"], claim["tuning_job_name"])
        self.seen = len(invocations)
        for arn, (model, job) in list(self.awaiting.items()):
            if arn not in running:
                del self.awaiting[arn]
            elif runtime.approval_pending(arn):
                runtime.send_decision(model, job, Decision.approve(runtime.demo_approver(model), "approved"))
                self.approved[arn] = job
                del self.awaiting[arn]


def wait_for(
    runtime: LocalRuntime,
    arns: list[str],
    *,
    approvals: Approvals | None = None,
    approve: bool = True,
    timeout_s: float = 300.0,
) -> dict[str, dict[str, Any]]:
    """Wait until the executions end, approving every promotion that asks (unless `approve` is False);
    DescribeExecution of each."""
    sfn = runtime.clients.stepfunctions
    approvals = approvals or Approvals()
    deadline = time.monotonic() + timeout_s
    ended: dict[str, dict[str, Any]] = {}
    while True:
        unknown = [arn for arn in arns if arn not in ended]
        if len(unknown) > 5:  # one listing instead of a DescribeExecution each
            listing = set()
            for machine in runtime.live.world.state_machines.values():
                for page in sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine, statusFilter="RUNNING"
                ):
                    listing.update(execution["executionArn"] for execution in page["executions"])
            unknown = [arn for arn in unknown if arn not in listing]
        for arn in unknown:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                ended[arn] = described
        running = set(arns) - set(ended)
        if not running:
            break
        if approve:
            approvals.answer(runtime, running)
        if time.monotonic() > deadline:
            for arn in running:
                sfn.stop_execution(executionArn=arn)
            raise AssertionError(f"{len(running)} executions still running after {timeout_s} s: stopped them")
        time.sleep(0.02)
    runtime.drain()
    return ended


@dataclass
class Flood:
    deliveries: list[tuple[Job, list[str]]] = field(default_factory=list)  # (job, executions it started)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)  # execution ARN -> DescribeExecution
    approvals: Approvals = field(default_factory=Approvals)
    send_s: float = 0.0
    total_s: float = 0.0


def runtime_for(models_dir: Path, assembly: Path, world: dict[str, Any], reports: Path) -> LocalRuntime:
    return LocalRuntime(
        ROOT,
        synth=False,
        assembly_dir=assembly,
        models_dir=models_dir,
        world=world,
        reports_dir=reports,
        time_compression=TimeCompression(wait_factor=WAIT_FACTOR),
    )


def await_approval_function(runtime: LocalRuntime) -> str:
    return runtime.live.world.functions[runtime.lambda_states()["AwaitApproval"]].name


def send_all(runtime: LocalRuntime, deliveries: list[tuple[Job, dict[str, Any]]], flood: Flood) -> None:
    started = time.monotonic()
    for job, document in deliveries:
        flood.deliveries.append((job, runtime.send_event(document)))
    flood.send_s += time.monotonic() - started


def drive(runtime: LocalRuntime, flood: Flood, *, timeout_s: float = 600.0) -> None:
    """Answer every promotion's approval (as the model's demo approver) and wait until every execution ended."""
    started = time.monotonic()
    arns = [arn for _, started_arns in flood.deliveries for arn in started_arns if arn not in flood.ended]
    flood.ended.update(wait_for(runtime, arns, approvals=flood.approvals, timeout_s=timeout_s))
    flood.total_s += time.monotonic() - started


# -- what happened -----------------------------------------------------------------------------------------------
@dataclass
class Execution:
    arn: str
    job: Job
    status: str
    states: list[StateRecord]
    outcome: str | None
    cause: str | None

    @property
    def duplicate(self) -> bool:
        return bool(self.states) and self.states[-1].name == "Duplicate"

    def interval(self) -> tuple[datetime, datetime] | None:
        """From entering BackupProduction to leaving the last PublishResult: the span it may write production."""
        starts = [s.entered for s in self.states if s.name == FIRST_STATE_OF_A_PROMOTION]
        ends = [s.exited or s.entered for s in self.states if s.name == LAST_STATE]
        return (starts[0], ends[-1]) if starts and ends else None


def executions(runtime: LocalRuntime, flood: Flood) -> list[Execution]:
    found = []
    for job, arns in flood.deliveries:
        for arn in arns:
            described = flood.ended[arn]
            output = json.loads(described["output"]) if described.get("output") else {}
            result = output.get("result") if isinstance(output, dict) else None
            found.append(
                Execution(
                    arn=arn,
                    job=job,
                    status=described["status"],
                    states=states_from_history(runtime.history(arn), described["status"]),
                    outcome=result.get("outcome") if isinstance(result, dict) else None,
                    cause=described.get("cause"),
                )
            )
    return found


def lambda_order(runtime: LocalRuntime) -> dict[str, list[tuple[int, str]]]:
    """Execution ARN -> [(global invocation index, function name)]: invocations are serialized, so the index is an
    exact clock for who wrote when."""
    assert runtime.lambdas is not None
    order: dict[str, list[tuple[int, str]]] = {}
    for index, call in enumerate(runtime.lambdas.invocations):
        event = call.event if isinstance(call.event, dict) else {}
        state = event.get("state", event) if isinstance(event.get("state", event), dict) else {}
        claim = state.get("claim") if isinstance(state, dict) else None
        arn = claim.get("execution_arn") if isinstance(claim, dict) else event.get("execution_arn")
        if isinstance(arn, str):
            order.setdefault(arn, []).append((index, call.function))
    return order


def check_flood(runtime: LocalRuntime, flood: Flood, jobs: list[Job], *, all_promoted: bool) -> dict[str, Any]:
    """Assert the flood's invariants (with `all_promoted`: every distinct tuning job was promoted); the numbers."""
    from promotion.production.config import parse_config
    from promotion.result.audit import list_audit_records

    found = executions(runtime, flood)
    by_job: dict[str, list[Execution]] = {}
    for execution in found:
        by_job.setdefault(execution.job.name, []).append(execution)
    deliveries = len(flood.deliveries)
    # None lost: every delivery started exactly one execution, and every execution ended by itself.
    assert all(len(arns) == 1 for _, arns in flood.deliveries), [
        job.name for job, arns in flood.deliveries if len(arns) != 1
    ]
    assert set(by_job) == {job.name for job in jobs}
    assert all(e.status in ("SUCCEEDED", "FAILED") for e in found), {e.status for e in found}
    promoted = [e for e in found if e.outcome == "PROMOTED"]
    duplicates = [e for e in found if e.duplicate]
    for name, runs in by_job.items():
        decided = [e for e in runs if not e.duplicate]
        assert len(decided) == 1, f"{name}: {len(decided)} executions went past the claim"
        assert all(e.status == "SUCCEEDED" for e in runs if e.duplicate)
    assert len(duplicates) == deliveries - len(jobs)
    table = runtime.function_env("PROMOTION_TABLE")
    for model in dict.fromkeys(job.model for job in jobs):
        mine = sorted((e for e in found if e.job.model == model and not e.duplicate), key=lambda e: e.job.index)
        winners = [e for e in mine if e.outcome == "PROMOTED"]
        if all_promoted:
            assert winners == mine, [(e.job.name, e.outcome, e.cause) for e in mine if e not in winners]
        # A tuning job claimed after a newer one was promoted no longer beats the champion; nothing else may fail.
        assert mine[-1] in winners, f"{model}: its newest tuning job was not promoted"
        for loser in (e for e in mine if e not in winners):
            assert loser.cause is not None and "does not beat champion" in loser.cause, loser.cause
        # In tuning-job order, one at a time: the spans that write production never overlap.
        spans = sorted((e.interval(), e.job.index) for e in winners if e.interval() is not None)
        assert [index for _, index in spans] == [e.job.index for e in winners], f"{model}: promoted out of order"
        for (earlier, _), (later, _) in itertools.pairwise(spans):
            assert earlier is not None and later is not None
            assert later[0] >= earlier[1], f"{model}: two promotions interleaved"
        # The audit trail and the config chain agree: each release replaced the one before it.
        records = [r for r in list_audit_records(runtime.clients.dynamodb, table, model) if r.outcome == "PROMOTED"]
        assert [r.tuning_job_name for r in records] == [e.job.name for e in winners]
        for previous, record in itertools.pairwise(records):
            assert record.previous_release_id == previous.release_id
        final = runtime.production_snapshot(model)
        assert final.config is not None
        config = parse_config(final.config)
        assert config.source.tuning_job_arn == winners[-1].job.arn
        assert config.release_id == records[-1].release_id
        expected = {
            f"/{model}/hyperparameters/{name}": value for name, value in winners[-1].job.hyperparameters.items()
        }
        assert dict(final.parameters.items()) == {k: _normalized(k, v) for k, v in expected.items()}
    # The same from the serialized Lambda invocations: per model, promotions never interleave.
    order = lambda_order(runtime)
    backup, publish = _function(runtime, FIRST_STATE_OF_A_PROMOTION), _function(runtime, LAST_STATE)
    for model in dict.fromkeys(job.model for job in jobs):
        spans = []
        for execution in (e for e in promoted if e.job.model == model):
            calls = order[execution.arn]
            spans.append(
                (min(i for i, f in calls if f == backup), max(i for i, f in calls if f == publish), execution.job.index)
            )
        spans.sort()
        assert [index for _, _, index in spans] == sorted(index for _, _, index in spans)
        for (_, end, _), (start, _, _) in itertools.pairwise(spans):
            assert start > end
    claims = _function(runtime, "ClaimPromotion")
    assert runtime.lambdas is not None
    latencies = sorted(
        (flood.ended[e.arn]["stopDate"] - flood.ended[e.arn]["startDate"]).total_seconds() for e in promoted
    )
    return {
        "events": deliveries,
        "distinct_tuning_jobs": len(jobs),
        "models": len({job.model for job in jobs}),
        "executions": len(found),
        "promoted": len(promoted),
        "duplicates": len(duplicates),
        "rejected_not_better": sum(1 for e in found if e.cause and "does not beat champion" in e.cause),
        "lock_waits": sum(1 for call in runtime.lambdas.invocations if call.function == claims) - len(found),
        "lambda_invocations": len(runtime.lambdas.invocations),
        "promotion_latency_s": {
            "median": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "p95": round(latencies[int(len(latencies) * 0.95)], 2) if latencies else None,
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "send_s": round(flood.send_s, 3),
        "total_s": round(flood.total_s, 3),
    }


def _normalized(path: str, value: str) -> str:
    """The parameter as the catalog's type writes it back (e.g. min_child_weight '3' -> '3.0')."""
    from promotion.contract.catalog import catalog_for
    from promotion.contract.hyperparameters import from_parameter_value, to_parameter_value

    name = path.rsplit("/", 1)[1]
    spec = catalog_for(BASE_MODEL, ROOT / "models").hyperparameters[name]
    return to_parameter_value(from_parameter_value(value, spec))


def _function(runtime: LocalRuntime, state: str) -> str:
    return runtime.live.world.functions[runtime.lambda_states()[state]].name


def run_flood(
    models_dir: Path, assembly: Path, jobs: list[Job], deliveries: list[tuple[Job, dict[str, Any]]], reports: Path
) -> tuple[LocalRuntime, Flood]:
    """Seed every model's champion, send every delivery at once, drive to the end. The runtime is left started."""
    runtime = runtime_for(models_dir, assembly, flood_world(jobs), reports).start()
    seed_champions(runtime, list(dict.fromkeys(job.model for job in jobs)))
    flood = Flood()
    send_all(runtime, deliveries, flood)
    drive(runtime, flood)
    return runtime, flood


def run_one_by_one(
    models_dir: Path, assembly: Path, jobs: list[Job], deliveries: list[tuple[Job, dict[str, Any]]], reports: Path
) -> tuple[LocalRuntime, Flood]:
    """The same deliveries, each sent only after the previous one's execution ended."""
    runtime = runtime_for(models_dir, assembly, flood_world(jobs), reports).start()
    seed_champions(runtime, list(dict.fromkeys(job.model for job in jobs)))
    flood = Flood()
    for delivery in deliveries:
        send_all(runtime, [delivery], flood)
        drive(runtime, flood)
    return runtime, flood


# -- the tests (small size) ---------------------------------------------------------------------------------------
MODELS, JOBS_PER_MODEL, DUPLICATES = 4, 3, 8  # 20 events: 12 distinct tuning jobs over 4 models, 8 redeliveries


@pytest.fixture(scope="session")
def flood_stack() -> tuple[Path, Path]:
    return shared_stack()


@pytest.mark.parametrize(
    ("ordered", "models", "per_model", "duplicates"),
    [(True, MODELS, JOBS_PER_MODEL, DUPLICATES), (False, 2, 3, 2)],
    ids=["per-model-order", "fully-shuffled"],
)
def test_a_flood_of_duplicated_events_loses_nothing_and_promotes_each_model_in_order(
    flood_stack: tuple[Path, Path], tmp_path: Path, ordered: bool, models: int, per_model: int, duplicates: int
) -> None:
    models_dir, assembly = flood_stack
    jobs = jobs_of(model_ids(models), per_model)
    deliveries = flood_events(jobs, duplicates, seed=7 if ordered else 11, ordered=ordered)
    runtime, flood = run_flood(models_dir, assembly, jobs, deliveries, tmp_path / "reports")
    try:
        numbers = check_flood(runtime, flood, jobs, all_promoted=False)
    finally:
        runtime.stop()
    print(f"flood ({'per-model order' if ordered else 'fully shuffled'}): {json.dumps(numbers)}")
    assert numbers["events"] == models * per_model + duplicates
    assert numbers["duplicates"] == duplicates
    assert numbers["promoted"] + numbers["rejected_not_better"] == models * per_model


def test_an_older_tuning_job_delivered_just_after_a_newer_one_is_promoted_first(
    flood_stack: tuple[Path, Path], tmp_path: Path
) -> None:
    models_dir, assembly = flood_stack
    older, newer = jobs_of(model_ids(1), 2)
    runtime = LocalRuntime(
        ROOT,
        synth=False,
        assembly_dir=assembly,
        models_dir=models_dir,
        world=flood_world([older, newer]),
        reports_dir=tmp_path / "reports",
        # A lock look every 3 s: a settle window of one look must outlast a loaded machine's scheduling.
        time_compression=TimeCompression(wait_factor=0.01),
    ).start()
    try:
        seed_champions(runtime, [older.model])
        flood = Flood()
        send_all(runtime, [(newer, tuning_event(newer, 0))], flood)
        claims = _function(runtime, "ClaimPromotion")
        deadline = time.monotonic() + 30
        assert runtime.lambdas is not None
        while not any(call.function == claims for call in runtime.lambdas.invocations):
            assert time.monotonic() < deadline, "the newer tuning job was never claimed"
            time.sleep(0.01)
        send_all(runtime, [(older, tuning_event(older, 0))], flood)  # moments later: both are in flight
        drive(runtime, flood)
        found = {e.job.name: e for e in executions(runtime, flood)}
    finally:
        runtime.stop()
    assert [found[job.name].outcome for job in (older, newer)] == ["PROMOTED", "PROMOTED"], {
        name: e.cause for name, e in found.items()
    }


def test_models_without_rollout_settings_synthesize() -> None:
    models_dir, assembly = held_stack()  # it holds one (the synth is the operator controls' stack)
    assert not yaml.safe_load((models_dir / f"{NO_ROLLOUT_MODEL}.yaml").read_text()).get("rollout")
    template = next(assembly.glob("*.template.json")).read_text()
    assert f"/{NO_ROLLOUT_MODEL}/hyperparameters" in template  # the model is in the stack (its parameter grants)
    assert f"{NO_ROLLOUT_MODEL}-prod" not in template  # and no endpoint of it is
