"""The promotion end to end: the state machine `python app.py` synthesized, run on moto with the real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.faults import FaultInjector
from local.runtime import Decision, LocalRuntime
from promotion.production.config import parse_config
from tests.e2e.conftest import BEST_JOB, event, runtime_with, world

PREFIX = "/fraud-detection/hyperparameters"


def test_a_completed_tuning_job_promotes_exactly_its_best_hyperparameters(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.outcome == "PROMOTED"
    assert result.exit_code == 0
    after = result.production_after
    assert after is not None
    assert after.parameters == {
        f"{PREFIX}/max_depth": "6",
        f"{PREFIX}/num_round": "240",
        f"{PREFIX}/eta": "0.0834",
        f"{PREFIX}/subsample": "0.85",
        f"{PREFIX}/min_child_weight": "3.0",
        f"{PREFIX}/objective": "binary:logistic",
        f"{PREFIX}/eval_metric": "auc",
    }
    assert after.config is not None
    config = parse_config(after.config)
    assert config.hyperparameters["max_depth"] == 6
    assert isinstance(config.hyperparameters["max_depth"], int)
    assert config.source.training_job_name == BEST_JOB
    assert config.approved_by == "Alice Martin"
    before = result.production_before
    assert before is not None
    assert before.config is not None
    assert config.previous_release_id == parse_config(before.config).release_id
    names = [state.name for state in result.states]
    # The first look at the lock only writes the claim and settles for one lock period; the second takes the lock.
    assert names[:6] == [
        "ClaimPromotion",
        "ClaimOutcome",
        "WaitForModelLock",
        "ClaimPromotion",
        "ClaimOutcome",
        "ValidateCandidate",
    ]
    assert "BackupProduction" in names
    assert "Rollback" not in names
    assert result.report is not None
    report = json.loads(Path(result.report["json"]).read_text())
    assert report["outcome"] == "PROMOTED"
    assert report["approval"]["decided_by"] == "Alice Martin"


FAILABLE = [
    "BackupProduction",
    "WriteParameters",
    "WriteConfig",
    "TriggerPipeline",
    "CompareWithChampion",
    "PublishResult",
]


@pytest.mark.parametrize("state", FAILABLE)
def test_a_failure_from_backup_on_rolls_production_back_byte_for_byte(
    synthesized: Path, tmp_path: Path, state: str
) -> None:
    with runtime_with(synthesized, tmp_path, world(), fail_at=[state]) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.status == "FAILED"
    names = [record.name for record in result.states]
    assert "Rollback" in names
    assert result.production_after == result.production_before
    assert result.exit_code == 1
    assert isinstance(result.output, dict)
    assert "InjectedFault" in json.dumps(result.output.get("error"))
    assert result.output["rollback"]["restored"] is (state != "BackupProduction")


def test_a_failed_rollback_is_reported_as_such(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), fail_at=["WriteConfig", "Rollback"]) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.status == "FAILED"
    assert result.error == "FAILED"
    assert result.cause is not None
    assert "ROLLBACK FAILED" in result.cause


def _world_with_training(**changes: Any) -> dict[str, Any]:
    the_world = world()
    training = the_world["DescribeTrainingJob"][BEST_JOB]
    for key, value in changes.items():
        if key == "metrics":
            training["FinalMetricDataList"] = [{"MetricName": k, "Value": v} for k, v in value.items()]
        else:
            training["HyperParameters"].update(value)
    return the_world


REJECTIONS = {
    "out-of-range": (
        _world_with_training(hyperparameters={"max_depth": "42"}),
        "max_depth: 42 is above the maximum 10",
    ),
    "missing": (_world_with_training(hyperparameters={}), None),
    "low-accuracy": (
        _world_with_training(metrics={"validation:auc": 0.9712, "validation:accuracy": 0.85}),
        "validation:accuracy 0.8500 is below the production threshold 0.9",
    ),
    "not-better": (
        _world_with_training(metrics={"validation:auc": 0.90, "validation:accuracy": 0.95}),
        "does not beat champion",
    ),
}
del REJECTIONS["missing"]
_missing = world()
del _missing["DescribeTrainingJob"][BEST_JOB]["HyperParameters"]["eta"]
REJECTIONS["missing"] = (_missing, "eta: missing (required by the catalog schema)")


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_bad_candidates_end_with_a_specific_reason_and_write_nothing(
    synthesized: Path, tmp_path: Path, case: str
) -> None:
    the_world, fragment = REJECTIONS[case]
    with runtime_with(synthesized, tmp_path, the_world) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.status == "FAILED"
    assert result.error == "REJECTED"
    assert fragment is not None
    assert result.cause is not None
    assert fragment in result.cause
    assert result.production_after == result.production_before
    assert "BackupProduction" not in [state.name for state in result.states]


@pytest.mark.parametrize(
    ("bad_event", "fragment"),
    [
        (event(Tags={"promotion:model": "churn"}), "no catalog for model 'churn'"),
        (event(HyperParameterTuningJobArn="not-an-arn"), "malformed tuning job event"),
    ],
)
def test_bad_events_that_reach_the_machine_are_rejected(
    runtime: LocalRuntime, bad_event: dict[str, Any], fragment: str
) -> None:
    runtime.seed_champion("fraud-detection")
    before = runtime.production_snapshot("fraud-detection")
    arns = runtime.send_event(bad_event)
    assert len(arns) == 1
    described = runtime.wait(arns[0])
    assert described["status"] == "FAILED"
    assert described["error"] == "REJECTED"
    assert fragment in described["cause"]
    assert runtime.production_snapshot("fraud-detection") == before


def test_events_the_rule_does_not_match_start_nothing(runtime: LocalRuntime) -> None:
    assert runtime.send_event(event(HyperParameterTuningJobStatus="Failed")) == []
    assert runtime.send_event(event(Tags={"team": "risk-ml"})) == []
    wrong_type = event()
    wrong_type["detail-type"] = "SageMaker Training Job State Change"
    assert runtime.send_event(wrong_type) == []


def test_a_duplicate_event_makes_no_second_promotion(runtime: LocalRuntime) -> None:
    first = runtime.run(event(), seed=True)
    assert first.outcome == "PROMOTED"
    second = runtime.run(event())
    assert second.status == "SUCCEEDED"
    assert [state.name for state in second.states][-1] == "Duplicate"
    assert second.production_after == first.production_after


def test_every_read_of_the_promotion_table_is_strongly_consistent(synthesized: Path, tmp_path: Path) -> None:
    """Claims, locks, approvals and callback records decide who may write production. DynamoDB's default read is
    eventually consistent and may return an item as it was before a write that already succeeded (a lock just
    released, a decision just recorded); moto always answers the latest, so the runtime cannot show the race, and
    this pins the read mode each decision relies on."""
    injector = FaultInjector()
    with runtime_with(synthesized, tmp_path, world(), faults=injector) as runtime:
        result = runtime.run(event(), seed=True, decision=Decision.approve("Bob Chen", "looks right"))
        assert result.outcome == "PROMOTED"
    reads = [
        call
        for call in injector.calls
        if call.service == "dynamodb" and call.operation in ("GetItem", "Query", "BatchGetItem", "Scan")
    ]
    assert reads, "a promotion reads its claims, lock and approval"
    eventual = [f"{call.state or call.function} {call.operation} {call.resource}" for call in reads]
    assert [
        line for call, line in zip(reads, eventual, strict=True) if call.params.get("ConsistentRead") is not True
    ] == []
