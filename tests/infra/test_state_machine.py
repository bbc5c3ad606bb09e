"""The synthesized state machine is the one docs/state-machine.md specifies (the operator contract)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT, Synth, flat, machine, machine_definition

pytestmark = pytest.mark.xdist_group("infra")

CONTRACT = ROOT / "docs" / "state-machine.md"
ROW = re.compile(
    r"^\| (?P<name>[A-Z][A-Za-z]+) \| (?P<type>Task|Choice|Wait|Succeed|Pass|Fail)\b[^|]*\|(?P<dir>[^|]*)\|"
)
RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientAwsError",
]
# The steps that wait for SageMaker's state-change event (promotion.jobs.callbacks) and how long each may.
CALLBACK_TIMEOUTS = {
    "CheckDataQuality": ("TimeoutSecondsPath", "$.validation.data_quality_wait_seconds"),
    "TriggerPipeline": ("TimeoutSecondsPath", "$.validation.training_wait_seconds"),
    "CompareWithChampion": ("TimeoutSecondsPath", "$.validation.comparison_wait_seconds"),
    "DeployChallenger": ("TimeoutSeconds", 7200),
    "ShiftTraffic": ("TimeoutSeconds", 1800),  # new weights take seconds; meanwhile no look judges the challenger
    "PromoteChallenger": ("TimeoutSeconds", 7200),
}
RESULT_PATHS = {
    "ClaimPromotion": "$",
    "ValidateCandidate": "$.validation",
    "AwaitApproval": "$.approval",
    "CheckDataQuality": "$.data_quality",
    "BackupProduction": "$.backup",
    "WriteParameters": "$.parameters",
    "WriteConfig": "$.config",
    "TriggerPipeline": "$.pipeline",
    "CompareWithChampion": "$.comparison",
    "DeployChallenger": "$.rollout",
    "ShiftTraffic": "$.rollout",
    "EvaluateStage": "$.rollout",
    "AwaitOperator": "$.rollout.operator",
    "PromoteChallenger": "$.rollout",
    "RetireChampion": "$.rollout",
    "Rollback": "$.rollback",
    "PublishResult": "$.result",
}
TOUCHES_PRODUCTION = [
    "BackupProduction",
    "WriteParameters",
    "WriteConfig",
    "TriggerPipeline",
    "CompareWithChampion",
    "DeployChallenger",
    "ShiftTraffic",
    "EvaluateStage",
    "PromoteChallenger",
    "RetireChampion",
]


def contract_rows(path: Path = CONTRACT) -> dict[str, tuple[str, str]]:
    """State name -> (type, function dir or '') from the contract's table."""
    rows = {}
    for line in path.read_text().splitlines():
        if match := ROW.match(line):
            directory = re.search(r"functions/([a-z_]+)", match["dir"])
            rows[match["name"]] = (match["type"], directory.group(1) if directory else "")
    return rows


def catch(state: dict[str, Any]) -> list[tuple[list[str], str, str]]:
    return [(c["ErrorEquals"], c["Next"], c.get("ResultPath")) for c in state.get("Catch", [])]


def choices(state: dict[str, Any]) -> dict[str, str]:
    return {
        f"{c['Variable']} {'is present' if c.get('IsPresent') else '== ' + c.get('StringEquals', '?')}": c["Next"]
        for c in state["Choices"]
    }


def test_state_names_and_types_are_the_contracts(definition: dict[str, Any]) -> None:
    rows = contract_rows()
    assert len(rows) >= 20, "could not read the contract's state table"
    assert {name: state["Type"] for name, state in definition["States"].items()} == {
        name: kind for name, (kind, _) in rows.items()
    }
    assert definition["StartAt"] == "ClaimPromotion"


def test_each_task_runs_its_step_function(definition: dict[str, Any], functions_by_step: dict[str, str]) -> None:
    for name, (kind, directory) in contract_rows().items():
        if kind != "Task":
            continue
        state = definition["States"][name]
        target = state.get("Parameters", {}).get("FunctionName") or state["Resource"]
        assert target == f"<{functions_by_step[directory]}.Arn>", name


def test_result_paths(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert {name: states[name].get("ResultPath") for name in RESULT_PATHS} == RESULT_PATHS
    assert states["ClaimPromotion"]["ResultSelector"] == {"claim.$": "$"}
    assert states["ClaimPromotion"]["Parameters"] == {
        "event.$": "$$.Execution.Input",
        "execution_name.$": "$$.Execution.Name",
        "execution_arn.$": "$$.Execution.Id",
        "state.$": "$",
    }
    # Every other Lambda task: payload_response_only, the whole document as input.
    for name in set(RESULT_PATHS) - {"ClaimPromotion", "AwaitApproval", "AwaitOperator", *CALLBACK_TIMEOUTS}:
        assert "Parameters" not in states[name] and "InputPath" not in states[name], name
        assert states[name]["Resource"].endswith(".Arn>"), name


def test_await_approval_waits_for_the_task_token(definition: dict[str, Any]) -> None:
    state = definition["States"]["AwaitApproval"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["Payload"] == {"state.$": "$", "task_token.$": "$$.Task.Token"}
    assert state["TimeoutSecondsPath"] == "$.validation.approval_timeout_seconds"
    assert "TimeoutSeconds" not in state
    assert catch(state) == [
        (["States.Timeout"], "ApprovalExpired", "$.approval"),
        (["PromotionRejected"], "PublishResult", "$.error"),
        (["States.ALL"], "PublishResult", "$.error"),
    ]
    expired = definition["States"]["ApprovalExpired"]
    assert (expired["Result"], expired["ResultPath"], expired["Next"]) == (
        {"decision": "expired"},
        "$.approval",
        "PublishResult",
    )


def test_a_held_rollout_waits_for_an_operator_and_its_expiry_is_applied_by_the_next_look(
    definition: dict[str, Any],
) -> None:
    """AwaitOperator keeps the hold's task token for the operator control function; the answer (or the expiry) goes
    to $.rollout.operator, and EvaluateStage applies it at once; any other failure rolls back."""
    states = definition["States"]
    state = states["AwaitOperator"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["Payload"] == {"state.$": "$", "task_token.$": "$$.Task.Token"}
    assert state["TimeoutSecondsPath"] == "$.rollout.hold_seconds"
    assert not {"TimeoutSeconds", "HeartbeatSeconds"} & state.keys()
    assert (state["ResultPath"], state["Next"]) == ("$.rollout.operator", "EvaluateStage")
    assert catch(state) == [
        (["States.Timeout"], "OperatorHoldExpired", "$.rollout.operator"),
        (["States.ALL"], "Rollback", "$.error"),
    ]
    expired = states["OperatorHoldExpired"]
    assert (expired["Result"], expired["ResultPath"], expired["Next"]) == (
        {"decision": "expired"},
        "$.rollout.operator",
        "EvaluateStage",
    )


@pytest.mark.parametrize("name", sorted(CALLBACK_TIMEOUTS))
def test_sagemaker_work_is_waited_for_by_callback(definition: dict[str, Any], name: str) -> None:
    """No polling loop: the task completes with the step's section when SageMaker's event says the work is done,
    and a bounded timeout (the event never came) rolls back."""
    state = definition["States"][name]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["Payload"] == {
        "state.$": "$",
        "task_token.$": "$$.Task.Token",
        "attempt.$": "$$.State.RetryCount",  # a retry's newer token wins over a late write of an earlier attempt
    }
    key, value = CALLBACK_TIMEOUTS[name]
    assert state[key] == value
    assert not {"TimeoutSeconds", "TimeoutSecondsPath"} - {key} & state.keys()
    assert "HeartbeatSeconds" not in state
    # The data-quality gate runs before anything in production is written: nothing to roll back.
    after_failure = "PublishResult" if name == "CheckDataQuality" else "Rollback"
    assert catch(state) == [(["States.ALL"], after_failure, "$.error")]


def test_choices_and_waits(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert choices(states["ClaimOutcome"]) == {
        "$.claim.status == CLAIMED": "ValidateCandidate",
        "$.claim.status == WAIT": "WaitForModelLock",
        "$.claim.status == DUPLICATE": "Duplicate",
    }
    assert states["ClaimOutcome"]["Default"] == "PublishResult"
    assert choices(states["CandidateVerdict"]) == {"$.validation.verdict == PASSED": "AwaitApproval"}
    assert states["CandidateVerdict"]["Default"] == "PublishResult"
    assert choices(states["PublishFailed"]) == {
        "$.rollback is present": "PromotionFailed",
        "$.rollback_error is present": "PromotionFailed",
    }
    assert states["PublishFailed"]["Default"] == "Rollback"
    assert choices(states["Outcome"]) == {"$.result.outcome == PROMOTED": "Promoted"}
    assert states["Outcome"]["Default"] == "NotPromoted"
    assert (states["WaitForModelLock"]["Seconds"], states["WaitForModelLock"]["Next"]) == (300, "ClaimPromotion")
    verdict = states["ComparisonVerdict"]
    assert verdict["Choices"] == [
        {"Variable": "$.comparison.decision", "StringEquals": "PASS", "Next": "DeployChallenger"}
    ]
    assert verdict["Default"] == "Rollback"  # FAIL, INCONCLUSIVE
    # No polling loop is left but Rollback's: SageMaker's events complete the waiting tasks.
    assert {name for name, state in states.items() if state["Type"] == "Wait"} == {
        "WaitForModelLock",
        "Bake",
        "WaitForRollbackEndpoint",
    }
    # The Wait reads its length from the document and cannot catch: a BAKE goes to it only with a look_seconds
    # the Choice proved numeric and within [1, 86400]; any other BAKE rolls back.
    proven_bake = {
        "And": [
            {"Variable": "$.rollout.action", "StringEquals": "BAKE"},
            {"Variable": "$.rollout.look_seconds", "IsNumeric": True},
            {"Variable": "$.rollout.look_seconds", "NumericGreaterThanEquals": 1},
            {"Variable": "$.rollout.look_seconds", "NumericLessThanEquals": 86400},
        ],
        "Next": "Bake",
    }

    def routes(choice: dict[str, Any]) -> list[tuple[str, str]]:
        return [(c.get("StringEquals", f"proven {c['Next']}"), c["Next"]) for c in choice["Choices"]]

    stage = states["StageVerdict"]
    assert proven_bake in stage["Choices"]
    # Like the bake, the hold's timeout is a path: only a HOLD with a proven length reaches AwaitOperator.
    proven_hold = {
        "And": [
            {"Variable": "$.rollout.action", "StringEquals": "HOLD"},
            {"Variable": "$.rollout.hold_seconds", "IsNumeric": True},
            {"Variable": "$.rollout.hold_seconds", "NumericGreaterThanEquals": 1},
            {"Variable": "$.rollout.hold_seconds", "NumericLessThanEquals": 604800},
        ],
        "Next": "AwaitOperator",
    }
    assert proven_hold in stage["Choices"]
    assert routes(stage) == [
        ("NEXT_STAGE", "ShiftTraffic"),
        ("proven Bake", "Bake"),
        ("proven AwaitOperator", "AwaitOperator"),
        ("PROMOTE", "PromoteChallenger"),
    ]
    assert stage["Default"] == "Rollback"
    assert states["Bake"]["SecondsPath"] == "$.rollout.look_seconds"
    assert proven_bake in states["EndpointStatus"]["Choices"]
    assert routes(states["EndpointStatus"]) == [
        ("SHIFT", "ShiftTraffic"),
        ("proven Bake", "Bake"),
        ("DONE", "RetireChampion"),
        ("SKIPPED", "PublishResult"),
    ]
    assert states["EndpointStatus"]["Default"] == "Rollback"  # a BAKE without a valid look_seconds, or anything else
    # Every endpoint change's task completes only once SageMaker serves what it asked for.
    for name in ("DeployChallenger", "ShiftTraffic", "PromoteChallenger"):
        assert states[name]["Next"] == "EndpointStatus", name
    # Rollback restores the endpoint in a wait loop while it reports the endpoint still changing.
    assert states["RollbackEndpoint"]["Choices"] == [
        {
            "And": [
                {"Variable": "$.rollback.endpoint_pending", "IsPresent": True},
                {"Variable": "$.rollback.endpoint_pending", "BooleanEquals": True},
            ],
            "Next": "WaitForRollbackEndpoint",
        }
    ]
    assert states["RollbackEndpoint"]["Default"] == "PublishResult"
    assert (states["WaitForRollbackEndpoint"]["Seconds"], states["WaitForRollbackEndpoint"]["Next"]) == (
        60,
        "Rollback",
    )


def test_the_happy_path_order(definition: dict[str, Any]) -> None:
    states = definition["States"]
    nexts = {name: state.get("Next") for name, state in states.items()}
    assert nexts["AwaitApproval"] == "ApprovalGate"
    # Only an approval reaches the data-quality gate and then BackupProduction; any other task output goes to
    # PublishResult, writing nothing.
    gate = states["ApprovalGate"]
    assert gate["Choices"] == [
        {
            "And": [
                {"Variable": "$.approval.decision", "IsPresent": True},
                {"Variable": "$.approval.decision", "StringEquals": "approve"},
            ],
            "Next": "CheckDataQuality",
        }
    ]
    assert gate["Default"] == "ApprovalNotGranted"
    assert nexts["ApprovalNotGranted"] == "PublishResult"
    # The data is checked before anything in production is written: a failed check has nothing to restore.
    assert nexts["CheckDataQuality"] == "BackupProduction"
    assert catch(states["CheckDataQuality"]) == [(["States.ALL"], "PublishResult", "$.error")]
    assert states["CheckDataQuality"]["Resource"].endswith(".waitForTaskToken")
    assert states["CheckDataQuality"]["TimeoutSecondsPath"] == "$.validation.data_quality_wait_seconds"
    assert nexts["BackupProduction"] == "WriteParameters"
    assert nexts["WriteParameters"] == "WriteConfig"
    assert nexts["WriteConfig"] == "TriggerPipeline"
    assert nexts["TriggerPipeline"] == "CompareWithChampion"  # its task completes once the job Completed
    assert nexts["CompareWithChampion"] == "ComparisonVerdict"
    assert nexts["Rollback"] == "RollbackEndpoint"
    assert nexts["PublishResult"] == "Outcome"


def test_failures_after_backup_roll_back_and_rollback_always_publishes(definition: dict[str, Any]) -> None:
    states = definition["States"]
    for name in TOUCHES_PRODUCTION:
        assert catch(states[name]) == [(["States.ALL"], "Rollback", "$.error")], name
    assert catch(states["ValidateCandidate"]) == [(["States.ALL"], "PublishResult", "$.error")]
    # Without a claim there is no result to publish: the execution fails with ClaimPromotion's own error.
    assert catch(states["ClaimPromotion"]) == [(["States.ALL"], "ClaimFailed", "$.error")]
    assert states["ClaimFailed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    assert catch(states["Rollback"]) == [(["States.ALL"], "PublishResult", "$.rollback_error")]
    assert catch(states["PublishResult"]) == [(["States.ALL"], "PublishFailed", "$.error")]


def test_every_task_retries_transient_errors_only(definition: dict[str, Any]) -> None:
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}
    assert set(tasks) == set(RESULT_PATHS)
    for name, state in tasks.items():
        endpoint_busy = [{"ErrorEquals": ["EndpointBusy"], "IntervalSeconds": 60, "MaxAttempts": 5, "BackoffRate": 2}]
        assert state["Retry"] == [
            {
                "ErrorEquals": RETRYABLE,
                "IntervalSeconds": 2,
                "BackoffRate": 2,
                "MaxAttempts": 4,
                "JitterStrategy": "FULL",
            },
            *(endpoint_busy if name in ("DeployChallenger", "ShiftTraffic", "PromoteChallenger") else []),
        ], name
        errors = [error for retry in state["Retry"] for error in retry["ErrorEquals"]]
        assert "States.ALL" not in errors and not any("AccessDenied" in error for error in errors), name


def test_fail_states(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert states["NotPromoted"] == {"Type": "Fail", "ErrorPath": "$.result.outcome", "CausePath": "$.result.reason"}
    assert states["PromotionFailed"] == {
        "Type": "Fail",
        "Error": "PromotionFailed",
        "Cause": "publishing the result failed after rollback",
    }


def test_standard_machine_logs_everything_encrypted_and_traces(synth: Synth) -> None:
    props = machine(synth)["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "ModelPromotion-promotion"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    # No execution data in the log: AwaitApproval's input carries the task token.
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = synth.template["Resources"][log_group_id]["Properties"]
    assert log_group["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert "RetentionInDays" in log_group
    key_id = log_group["KmsKeyId"]["Fn::GetAtt"][0]
    assert synth.template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert flat(props["RoleArn"]).endswith(".Arn>")


def test_the_operator_rollback_machine_waits_for_the_endpoint_in_a_loop(synth: Synth) -> None:
    states = machine_definition(synth, "OperatorRollbackStateMachineArn")["States"]
    assert {name: state["Type"] for name, state in states.items()} == {
        "BeginRollback": "Task",
        "RestoreProgress": "Choice",
        "WaitForEndpointRestore": "Wait",
        "ContinueRollback": "Task",
        "RolledBack": "Succeed",
        "NotARollback": "Succeed",
        "RollbackRefused": "Fail",
        "RollbackFailed": "Fail",
    }
    progress = states["RestoreProgress"]
    assert [(c["Variable"], c["BooleanEquals"], c["Next"]) for c in progress["Choices"]] == [
        ("$.rollback.pending", True, "WaitForEndpointRestore"),
        ("$.rollback.accepted", True, "RolledBack"),
        ("$.rollback.ignored", True, "NotARollback"),  # a candidate's or an old release's rejection
    ]
    assert progress["Default"] == "RollbackRefused"
    assert (states["WaitForEndpointRestore"]["Seconds"], states["WaitForEndpointRestore"]["Next"]) == (
        60,
        "ContinueRollback",
    )
    for task in ("BeginRollback", "ContinueRollback"):
        assert states[task]["Next"] == "RestoreProgress"
        assert states[task]["ResultPath"] == "$.rollback"
        assert [c["ErrorEquals"] for c in states[task]["Catch"]] == [["States.ALL"]]
        assert states[task]["Retry"][0]["ErrorEquals"] == RETRYABLE
    assert states["ContinueRollback"]["Parameters"]["progress.$"] == "$.rollback"
    for task in ("BeginRollback", "ContinueRollback"):  # the audit record names the execution that rolled back
        assert states[task]["Parameters"]["execution.$"] == "$$.Execution.Id"
        assert states[task]["Parameters"]["event.$"] == "$$.Execution.Input"
    props = machine(synth, "OperatorRollbackStateMachineArn")["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
