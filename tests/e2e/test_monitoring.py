"""The monitoring loop on the synthesized stack, with IAM enforced: the endpoint's requests are captured (SageMaker
data capture, written with the model's role), the hourly schedule starts a drift check of the last hour against the
live release's training data profile, and its verdict, brought back by SageMaker's event, starts a retraining only on
drift and only within the rate limits: one open retraining per model, one per min_interval_hours. The retraining's
tuning job runs, and its completion starts the next promotion like any other tuning job's."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from local.reporting import final_document
from local.runtime import LocalRuntime, MonitoringRun
from promotion.core import clock
from promotion.result.audit import read_audit_record
from promotion.result.publish import html_key
from tests.e2e.conftest import event, runtime_with, world

MODEL = "fraud-detection"


def verdict(run: MonitoringRun) -> dict[str, Any]:
    (outcome,) = run.outcomes
    assert outcome["action"] == "JUDGED", outcome
    return dict(outcome)


def tuning_jobs(runtime: LocalRuntime) -> list[str]:
    """The tuning jobs drift started (the world's is the data scientists' one the first promotion was of)."""
    listed = runtime.clients.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    seeded = event()["detail"]["HyperParameterTuningJobName"]
    return sorted(j["HyperParameterTuningJobName"] for j in listed if j["HyperParameterTuningJobName"] != seeded)


def test_after_a_promotion_drift_starts_one_retraining_whose_completion_starts_the_next_promotion(
    synthesized: Path, tmp_path: Path
) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        promoted = runtime.run(event(), seed=True)
        assert promoted.outcome == "PROMOTED", promoted.cause
        release = promoted.output["claim"]["release_id"]

        # The promoted release's endpoint config captures its requests; their amounts are 20x the training data's.
        first = runtime.monitor(MODEL, drift=True)
        assert first.captured.requests > 500 and first.captured.reason == ""
        (check,) = first.checks
        assert check["status"] == "STARTED" and check["release_id"] == release, check
        judged = verdict(first)
        assert judged["verdict"]["status"] == "DRIFT"
        assert judged["verdict"]["drifted"] == ["amount"], judged["verdict"]["psi"]
        retraining = judged["retraining"]
        assert retraining["status"] == "STARTED", retraining
        (job,) = tuning_jobs(runtime)
        assert job == retraining["tuning_job_name"]

        # Why it started is on the job itself (and so in the event of its completion).
        described = runtime.clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job)
        assert described["HyperParameterTuningJobStatus"] == "InProgress"
        tags = {
            t["Key"]: t["Value"]
            for t in runtime.clients.sagemaker.list_tags(ResourceArn=described["HyperParameterTuningJobArn"])["Tags"]
        }
        assert tags["promotion:model"] == MODEL and tags["promotion:trigger"] == "drift"
        assert tags["promotion:drift-feature"] == "amount" and float(tags["promotion:drift-psi"]) > 0.25
        assert tags["promotion:drift-release"] == release
        assert tags["promotion:drift-check"] == check["processing_job_name"]

        # A second violation while the retraining is open starts none.
        second = verdict(runtime.monitor(MODEL, drift=True))
        assert second["verdict"]["status"] == "DRIFT"
        assert second["retraining"]["status"] == "NOT_STARTED"
        assert "still InProgress: at most one open retraining per model" in second["retraining"]["reason"]
        assert tuning_jobs(runtime) == [job]

        # The tuning job ends; its completion event starts the next promotion, which claims the model and judges
        # the retrained candidate like any other (locally one trial at the ranges' middles: it does not beat the
        # champion, so validation rejects it, and production is untouched).
        before = runtime.production_snapshot(MODEL)
        (next_promotion,) = runtime.finish_retraining()
        ended = runtime.wait(next_promotion, timeout_s=120)
        history = runtime.history(next_promotion)
        started = next(e for e in history if e["type"] == "ExecutionStarted")
        assert f'"HyperParameterTuningJobName": "{job}"' in started["executionStartedEventDetails"]["input"]
        exited = [e["stateExitedEventDetails"]["name"] for e in history if "stateExitedEventDetails" in e]
        assert "ClaimPromotion" in exited and "ValidateCandidate" in exited, exited
        assert ended["status"] in ("SUCCEEDED", "FAILED"), ended
        assert runtime.production_snapshot(MODEL) == before or "PromoteChallenger" in exited
        # Operators read why that promotion started in its decision report and audit record.
        output = json.loads(ended["output"]) if ended.get("output") else final_document(history)
        next_release = output.get("claim", {}).get("release_id")
        assert next_release, output
        report_key = f"reports/{MODEL}/{next_release}/decision.json"
        report = json.loads(runtime.clients.s3.get_object(Bucket=runtime.config_bucket, Key=report_key)["Body"].read())
        expected = {k: v for k, v in tags.items() if k != "promotion:model"} | {"promotion:trigger-verified": "true"}
        assert report["tuning_job"]["started_by"] == expected
        html = runtime.clients.s3.get_object(Bucket=runtime.config_bucket, Key=html_key(report_key))
        assert "drift: feature amount at PSI" in html["Body"].read().decode()
        record = read_audit_record(runtime.clients.dynamodb, runtime.table_name, MODEL, next_release)
        assert record is not None and record.trigger["promotion:trigger"] == "drift"

        # Within min_interval_hours of the last retraining, drift starts none; after it, one more.
        third = verdict(runtime.monitor(MODEL, drift=True))
        assert third["retraining"]["status"] == "NOT_STARTED"
        assert "min_interval_hours 24" in third["retraining"]["reason"]
        clock.advance(timedelta(hours=24).total_seconds())
        fourth = verdict(runtime.monitor(MODEL, drift=True))
        assert fourth["retraining"]["status"] == "STARTED", fourth["retraining"]
        assert len(tuning_jobs(runtime)) == 2


def test_a_clean_window_starts_no_retraining_and_an_empty_one_no_check(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        champion = runtime.seed_champion(MODEL)
        clean = runtime.monitor(MODEL, drift=False)
        (check,) = clean.checks
        assert check["status"] == "STARTED" and check["release_id"] == champion.release_id
        judged = verdict(clean)
        assert judged["verdict"]["status"] == "NO_DRIFT", judged["verdict"]
        assert max(judged["verdict"]["psi"].values()) < 0.1  # the same population as the training data
        assert judged["retraining"] is None
        assert tuning_jobs(runtime) == []

        # No requests captured in the window: no job, and the check says why.
        quiet = runtime.monitor(MODEL, drift=False, requests=0)
        (check,) = quiet.checks
        assert check["status"] == "SKIPPED" and "no requests captured" in check["reason"]
        assert quiet.outcomes == []


def test_after_an_operator_rollback_the_restored_champion_is_watched(synthesized: Path, tmp_path: Path) -> None:
    """Nothing is re-pointed on a rollback: the check reads whatever release the production config names, on the
    endpoint's serving variant, so the restored champion is watched at the next hour."""
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        champion = runtime.seed_champion(MODEL)
        promoted = runtime.run(event())
        assert promoted.outcome == "PROMOTED", promoted.cause
        (check,) = runtime.monitor(MODEL, drift=False).checks
        assert check["release_id"] == promoted.output["claim"]["release_id"]
        (rolled_back,) = runtime.request_rollback(MODEL, "monitoring test")
        assert rolled_back["status"] == "SUCCEEDED", rolled_back
        watched = runtime.monitor(MODEL, drift=False)
        (check,) = watched.checks
        assert check["status"] == "STARTED" and check["release_id"] == champion.release_id, check
        assert verdict(watched)["verdict"]["status"] == "NO_DRIFT"


def test_local_run_with_the_drift_scenario_shows_the_whole_loop(synthesized: Path) -> None:
    """`python -m local run --scenario drift`: the promotion, then the monitoring hour on its endpoint, the drift its
    check finds, the retraining it starts and the next promotion that retraining's completion starts."""
    from typer.testing import CliRunner

    from local.__main__ import app
    from tests.conftest import EVENTS

    done = CliRunner().invoke(
        app,
        [
            "run",
            "--event",
            str(EVENTS / "tuning-job-completed.json"),
            "--world",
            str(EVENTS / "world.json"),
            "--scenario",
            "drift",
        ],
    )
    assert done.exit_code == 0, done.output  # the promotion itself was promoted
    text = done.output
    monitoring = text[text.index("Monitoring (the next hour on the endpoint):") :]
    assert "drift check: STARTED fraud-detection-drift-" in monitoring
    assert "verdict: DRIFT: 1 of 10 features drifted" in monitoring and "amount PSI" in monitoring
    assert "retraining: STARTED: tuning job fraud-detection-" in monitoring
    assert "next promotion: " in monitoring and "ClaimPromotion" in monitoring
