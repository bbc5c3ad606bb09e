"""`promote plan` against the local runtime: what a promotion of a tuning job would do, read with the caller's own
credentials (the stack's approvers' policy), and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from local.least_privilege import promote
from tests.e2e.conftest import runtime_with, world

MODEL = "fraud-detection"
JOB = "fraud-xgb-tuning-0042"
ALICE = ("arn:aws:iam::123456789012:role/DataScientists", "alice@example.com")  # (role, session)


def test_plan_shows_the_verdict_the_diff_the_schedule_and_the_cost_and_writes_nothing(
    synthesized: Path, tmp_path: Path
) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        runtime.seed_champion(MODEL)
        before = runtime.production_snapshot(MODEL)
        assert runtime.iam is not None
        mark = len(runtime.iam.enforcer.records)
        shown = promote(runtime, "approver", "alice@example.com", "plan", MODEL, JOB, role="DataScientists")
        printed = promote(runtime, "approver", "alice@example.com", "plan", MODEL, JOB, "--json", role="DataScientists")
        # The plan is one indented object; a function running meanwhile on another thread may print a log line too.
        planned, _ = json.JSONDecoder().raw_decode(printed, printed.index("{\n"))
        unknown = promote(
            runtime, "approver", "alice@example.com", "plan", MODEL, "no-such-job", role="DataScientists", exit_code=1
        )
        no_model = promote(
            runtime, "approver", "alice@example.com", "plan", "churn", JOB, role="DataScientists", exit_code=2
        )
        calls = [
            r
            for r in runtime.iam.enforcer.records[mark:]
            if (r.request.principal.arn, r.request.principal.session) == ALICE
        ]
        executions = runtime.clients.stepfunctions.list_executions(stateMachineArn=runtime.state_machine_arn)
        after = runtime.production_snapshot(MODEL)
    assert "validation PASSED" in shown and "Rollout schedule" in shown and "SageMaker compute in all" in shown
    assert planned["would_start"] is True and planned["validation"]["verdict"] == "PASSED"
    changed = {one["name"]: (one["production"], one["candidate"]) for one in planned["parameters"] if one["changed"]}
    assert changed["max_depth"] == ("5", "6") and "objective" not in changed  # the champion's binary:logistic stays
    assert [stage["percent"] for stage in planned["stages"]] == [1, 10, 50, 100]
    assert {stage["shortest_minutes"] for stage in planned["stages"]} == {15}  # the first look after 10 minutes
    assert {stage["longest_minutes"] for stage in planned["stages"]} == {180}  # 4 looks of 15 min, 2 extensions
    rollout = next(phase for phase in planned["phases"] if phase["name"] == "rollout")
    assert (rollout["shortest_hours"], rollout["longest_hours"]) == (1, 12)
    costs = {cost["what"]: cost for cost in planned["costs"]}
    assert costs["production training job"]["longest_usd"] == 0.23  # ml.m5.xlarge for its 1-hour max run time
    assert planned["total_usd"]["longest"] > planned["total_usd"]["shortest"] > 0
    assert "tuning job no-such-job not found" in unknown and "validation REJECTED" in unknown
    assert "no catalog of churn" in no_model
    # Reads only, every one allowed by the approvers' policy: nothing written, nothing started.
    assert calls and all(r.decision.allowed for r in calls)
    actions = {r.request.action for r in calls}
    assert actions <= {
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:DescribeTrainingJob",
        "ssm:GetParametersByPath",
        "s3:GetObject",
        "s3:ListBucket",
    }, actions
    assert executions["executions"] == []
    assert after == before
