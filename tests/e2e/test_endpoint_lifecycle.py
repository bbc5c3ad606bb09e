"""The production endpoint as SageMaker runs it (local.endpoints.EndpointLifecycle): changes take time, an endpoint
that is changing refuses other changes, a failed update leaves the old config serving. The rollout waits for and
confirms every change, and Rollback restores the endpoint one waited-for call at a time, whatever the moment a
failure strikes: production (parameters, config, endpoint config and served weights) ends exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from local.faults import Crash, FaultInjector
from local.runtime import LocalRuntime, RunResult
from tests.e2e.conftest import event, runtime_with, world

ENDPOINT = "fraud-detection-prod"


def _started(runtime: LocalRuntime) -> None:
    """The champion on its endpoint, InService (what `run(seed=True)` does first)."""
    runtime.seed_champion("fraud-detection")


def _lifecycle(runtime: LocalRuntime):  # type: ignore[no-untyped-def]
    assert runtime.traffic is not None
    return runtime.traffic.lifecycle


def _entered(result: RunResult, state: str) -> int:
    return sum(1 for record in result.states if record.name == state)


def test_an_endpoint_refuses_changes_while_it_updates_and_shows_new_weights_only_when_done(
    synthesized: Path, tmp_path: Path
) -> None:
    with runtime_with(synthesized, tmp_path, world()) as runtime:
        _started(runtime)
        sagemaker = runtime.clients.sagemaker
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert described["EndpointStatus"] == "InService"
        champion = described["ProductionVariants"][0]["VariantName"]
        config = described["EndpointConfigName"]

        with pytest.raises(ClientError) as unknown:
            sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "nobody", "DesiredWeight": 1.0}]
            )
        assert unknown.value.response["Error"]["Code"] == "ValidationException"
        assert '"nobody" is/are not present' in unknown.value.response["Error"]["Message"]

        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": champion, "DesiredWeight": 0.5}]
        )
        updating = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert updating["EndpointStatus"] == "Updating"
        assert updating["ProductionVariants"][0]["CurrentWeight"] == 1.0  # still served at the old weight
        assert updating["ProductionVariants"][0]["DesiredWeight"] == 0.5
        for refused in (
            lambda: sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config),
            lambda: sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": champion, "DesiredWeight": 1.0}]
            ),
            lambda: sagemaker.delete_endpoint(EndpointName=ENDPOINT),
        ):
            with pytest.raises(ClientError) as busy:
                refused()
            assert busy.value.response["Error"]["Code"] == "ValidationException"
            arn = updating["EndpointArn"]
            assert busy.value.response["Error"]["Message"] == f'Cannot update in-progress endpoint "{arn}".'

        runtime.traffic.on_wait(60)  # type: ignore[union-attr]
        done = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert done["EndpointStatus"] == "InService"
        assert done["ProductionVariants"][0]["CurrentWeight"] == 0.5

        _lifecycle(runtime).fail_next_update(ENDPOINT, "ping health check failed")
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
        runtime.traffic.on_wait(600)  # type: ignore[union-attr]
        failed = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert failed["EndpointStatus"] == "InService"  # back on what it served, with the reason
        assert failed["EndpointConfigName"] == config
        assert failed["FailureReason"] == "ping health check failed"


def test_a_failed_endpoint_update_rolls_back_naming_sagemakers_failure_reason(
    synthesized: Path, tmp_path: Path
) -> None:
    reason = "The primary container for production variant challenger did not pass the ping health check."
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        _lifecycle(runtime).fail_next_update(ENDPOINT, reason)  # DeployChallenger's UpdateEndpoint
        result = runtime.run(event(), seed=True)
    assert result.error == "ROLLED_BACK", result.cause
    assert reason in result.output["rollback"]["error"]
    assert "the update failed" in result.output["rollback"]["error"]
    assert result.production_after == result.production_before


def test_an_endpoint_change_refused_as_in_progress_is_retried_after_the_wait(synthesized: Path, tmp_path: Path) -> None:
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        _lifecycle(runtime).interfere(ENDPOINT, seconds=150)  # someone's change starts before DeployChallenger's
        result = runtime.run(event(), seed=True)
        refused = list(_lifecycle(runtime).refused)
        assert result.execution_arn is not None
        history = runtime.history(result.execution_arn)
    assert result.outcome == "PROMOTED", result.cause
    assert refused and all(message.startswith("Cannot update in-progress endpoint") for message in refused)
    # DeployChallenger is a `.waitForTaskToken` task: its failed attempts are TaskFailed events.
    failed_attempts = [
        e for e in history if e["type"] == "TaskFailed" and e["taskFailedEventDetails"].get("error") == "EndpointBusy"
    ]
    assert len(failed_attempts) == len(refused) >= 2  # 60 s, then 120 s more: the 150 s change is over


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_a_failure_during_a_stages_weight_change_rolls_the_endpoint_back_exactly(
    synthesized: Path, tmp_path: Path, stage: int
) -> None:
    """ShiftTraffic's weights were asked for (the endpoint is Updating) and its Lambda died: Rollback finds the
    endpoint changing, waits, takes traffic off the challenger, puts the original config back, and confirms it."""
    injector = FaultInjector(crashes=[Crash(state="ShiftTraffic", nth=stage, when="after", kind="crash", times=1)])
    with runtime_with(synthesized, tmp_path, world(), scenario="good", faults=injector) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.error == "ROLLED_BACK", result.cause
    assert _entered(result, "ShiftTraffic") == stage
    assert _entered(result, "WaitForRollbackEndpoint") >= 2  # waited for the weights, then for the config
    rollback = result.output["rollback"]
    assert rollback["endpoint_pending"] is False
    assert rollback["endpoint_action"].startswith(f"endpoint {ENDPOINT} back on ")
    before, after = result.production_before, result.production_after
    assert before is not None and after is not None
    assert after == before  # parameters, config text, endpoint config and served weights
    assert len(after.endpoint_weights) == 1


@pytest.mark.parametrize("state", ["PromoteChallenger", "RetireChampion"])
def test_a_failure_after_the_challenger_became_the_only_variant_rolls_back_exactly(
    synthesized: Path, tmp_path: Path, state: str
) -> None:
    """The backed-up weights name the champion, which the endpoint no longer has: Rollback puts the original
    config back (no weight call on a variant that is gone) and waits until it serves."""
    injector = FaultInjector(crashes=[Crash(state=state, when="after", kind="crash", times=1)])
    with runtime_with(synthesized, tmp_path, world(), scenario="good", faults=injector) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.error == "ROLLED_BACK", result.cause
    assert _entered(result, "WaitForRollbackEndpoint") >= 1
    assert result.production_after == result.production_before


def test_an_operators_rollback_waits_for_the_endpoint_until_it_serves_the_previous_release(
    synthesized: Path, tmp_path: Path
) -> None:
    """The operator rollback state machine: parameters and config at once, then UpdateEndpoint back to the previous
    release's config, waited for (WaitForEndpointRestore) until it serves; only then RolledBack."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        promoted = runtime.run(event(), seed=True)
        assert promoted.outcome == "PROMOTED", promoted.cause
        (ended,) = runtime.request_rollback("fraud-detection", "FPR doubled")
        history = runtime.history(ended["executionArn"])
        after = runtime.production_snapshot("fraud-detection")
    assert ended["status"] == "SUCCEEDED", ended
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered[0] == "BeginRollback" and entered[-1] == "RolledBack"
    assert entered.count("WaitForEndpointRestore") >= 2  # UpdateEndpoint takes minutes: polled until InService
    assert after == promoted.production_before  # parameters, config, endpoint config and served weights


def test_a_throttled_step_of_an_operators_rollback_is_retried_with_the_lock_still_held(
    synthesized: Path, tmp_path: Path
) -> None:
    """A transient error while the endpoint is being restored is retried by the machine (TransientAwsError), not
    recorded as a failed rollback: the lock is not given up half way, and the rollback completes."""
    from local.faults import THROTTLING, Fault

    # Counted over the rollback_request function's calls only: its 1st DescribeEndpoint is BeginRollback's, the
    # 2nd the first ContinueRollback's.
    template = json.loads((synthesized / "cdk.out" / "ModelPromotion.template.json").read_text())
    (function,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function" and logical_id.startswith("FunctionsRollbackRequestFunction")
    ]
    throttle = Fault("sagemaker", "DescribeEndpoint", THROTTLING, function=function, nth=2)
    injector = FaultInjector(faults=[throttle])
    with runtime_with(synthesized, tmp_path, world(), scenario="good", faults=injector) as runtime:
        promoted = runtime.run(event(), seed=True)
        assert promoted.outcome == "PROMOTED", promoted.cause
        (ended,) = runtime.request_rollback("fraud-detection", "FPR doubled")
        history = runtime.history(ended["executionArn"])
        after = runtime.production_snapshot("fraud-detection")
    assert injector.fired, "the throttle never fired"
    assert ended["status"] == "SUCCEEDED", ended
    failed = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == ["TransientAwsError"]
    assert after == promoted.production_before
