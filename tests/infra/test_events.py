"""Event routing: the tuning-job rule, the product bus and its policy, the bus rules, DLQs and retries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.infra.conftest import ROOT, Synth, as_list, flat, machine_id

pytestmark = pytest.mark.xdist_group("infra")

SAMPLE_EVENTS = ROOT.parent / "shared" / "events"
TUNING_JOB_PATTERN = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker HyperParameter Tuning Job State Change"],
    "detail": {
        "HyperParameterTuningJobStatus": ["Completed"],
        "Tags": {"promotion:model": [{"exists": True}]},
    },
}


def sample(name: str) -> dict[str, Any]:
    for directory in (SAMPLE_EVENTS, ROOT / "tests" / "data" / "events"):
        if (directory / name).is_file():
            return dict(json.loads((directory / name).read_text()))
    pytest.skip(f"sample event {name} not found")


def rules(synth: Synth) -> dict[str, dict[str, Any]]:
    """The rules on events (not the schedules)."""
    return {
        k: r["Properties"] for k, r in synth.resources("AWS::Events::Rule").items() if "EventPattern" in r["Properties"]
    }


def test_the_schedules_are_the_hourly_cleanup_and_the_hourly_drift_checks(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """The rollback window ends within the hour: an hourly rule invokes the cleanup; another starts the drift checks
    that are due (each model's schedule_hours); both with a DLQ and retries."""
    schedules = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    targets = {}
    for schedule in schedules:
        assert schedule["ScheduleExpression"] == "rate(1 hour)"
        (target,) = schedule["Targets"]
        assert_target_has_dlq_and_retries(synth, target)
        targets[flat(target["Arn"])] = schedule
    assert set(targets) == {
        f"<{functions_by_step['clean_retired']}.Arn>",
        f"<{functions_by_step['start_drift_checks']}.Arn>",
    }


def rule_with_source(synth: Synth, source: str, detail_type: str | None = None) -> dict[str, Any]:
    (rule,) = [
        r
        for r in rules(synth).values()
        if r["EventPattern"]["source"] == [source]
        and (detail_type is None or r["EventPattern"]["detail-type"] == [detail_type])
        and (
            detail_type is not None
            or "HyperParameter" in r["EventPattern"]["detail-type"][0]
            or source != "aws.sagemaker"
        )
    ]
    return rule


def assert_target_has_dlq_and_retries(synth: Synth, target: dict[str, Any]) -> dict[str, Any]:
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 2
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = synth.template["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get("KmsMasterKeyId")
    (policy,) = [
        p["Properties"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    return dict(queue)


def test_tuning_job_rule_pattern_is_exact(synth: Synth) -> None:
    rule = rule_with_source(synth, "aws.sagemaker")
    assert rule["EventPattern"] == TUNING_JOB_PATTERN
    assert "EventBusName" not in rule  # the default bus, where SageMaker puts its events
    assert rule["State"] == "ENABLED"


def test_tuning_job_rule_matches_the_real_event_only_when_tagged_and_completed(synth: Synth) -> None:
    pattern = EventPattern.load(json.dumps(rule_with_source(synth, "aws.sagemaker")["EventPattern"]))
    event = sample("tuning-job-completed.json")
    assert pattern.matches_event(event)
    untagged = copy.deepcopy(event)
    del untagged["detail"]["Tags"]["promotion:model"]
    failed = copy.deepcopy(event)
    failed["detail"]["HyperParameterTuningJobStatus"] = "Failed"
    assert not pattern.matches_event(untagged)
    assert not pattern.matches_event(failed)


def test_tuning_job_rule_starts_the_state_machine_with_the_event(synth: Synth) -> None:
    (target,) = rule_with_source(synth, "aws.sagemaker")["Targets"]
    assert target["Arn"] == {"Ref": machine_id(synth)}
    assert not {"Input", "InputPath", "InputTransformer"} & target.keys()  # the whole event is the input
    assert_target_has_dlq_and_retries(synth, target)


def package_rule(synth: Synth, statuses: list[str]) -> dict[str, Any]:
    """The default-bus rule on SageMaker's model package changes with these approval statuses."""
    (rule,) = [
        r
        for r in rules(synth).values()
        if r["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]
        and r["EventPattern"]["detail"].get("ModelApprovalStatus") == statuses
    ]
    return rule


def test_rejections_in_the_model_registry_start_the_operator_rollback_machine_with_the_event(synth: Synth) -> None:
    """A rollback request is a rejection of the live release's package: SageMaker's own event on the default bus,
    which no person can put (an `aws.` source); the machine reads the package back and ignores other rejections."""
    rule = package_rule(synth, ["Rejected"])
    assert "EventBusName" not in rule  # the default bus, where SageMaker puts its events
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["churn", "fraud-detection"], "ModelApprovalStatus": ["Rejected"]},
    }
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    assert pattern.matches_event(sample("model-package-rejected.json"))
    assert not pattern.matches_event(sample("model-package-approved.json"))
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": machine_id(synth, "OperatorRollbackStateMachineArn")}
    assert not {"Input", "InputPath", "InputTransformer"} & target.keys()  # the whole event is the input
    assert_target_has_dlq_and_retries(synth, target)


def test_model_registry_decisions_reach_the_decision_function(synth: Synth, functions_by_step: dict[str, str]) -> None:
    """Approvals are SageMaker's own events on the default bus: a decided candidate of a catalog's package group."""
    rule = package_rule(synth, ["Approved", "Rejected"])
    assert "EventBusName" not in rule  # the default bus, where SageMaker puts its events
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["churn", "fraud-detection"],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    approved = sample("model-package-approved.json")
    assert pattern.matches_event(approved)
    for change in ({"ModelApprovalStatus": "PendingManualApproval"}, {"ModelPackageGroupName": "someone-else"}):
        other = copy.deepcopy(approved)
        other["detail"].update(change)
        assert not pattern.matches_event(other), change
    (target,) = rule["Targets"]
    assert flat(target["Arn"]) == f"<{functions_by_step['approval_decision']}.Arn>"
    queue = assert_target_has_dlq_and_retries(synth, target)
    # Invocations that fail after Lambda's own retries land in the same queue.
    (invoke_config,) = [
        c["Properties"]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": functions_by_step["approval_decision"]}
    ]
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == target["DeadLetterConfig"]["Arn"]
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_operator_requests_in_the_model_registry_reach_the_control_function(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """An operator's pause, resume, abort or promote-now is a candidate's model lifecycle set to stage Rollout with
    the request as its status; the function's answers (`PauseAccepted`, `AbortRefused`...) are not delivered again."""
    (rule,) = [
        r
        for r in rules(synth).values()
        if r["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]
        and "ModelLifeCycle" in r["EventPattern"]["detail"]
    ]
    assert "EventBusName" not in rule  # the default bus, where SageMaker puts its events
    assert rule["EventPattern"]["detail"] == {
        "ModelPackageGroupName": ["churn", "fraud-detection"],
        "ModelLifeCycle": {"Stage": ["Rollout"], "StageStatus": ["Pause", "Resume", "Abort", "PromoteNow"]},
    }
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    approved = sample("model-package-approved.json")
    assert not pattern.matches_event(approved)  # an approval is no request
    for status in ("Pause", "Resume", "Abort", "PromoteNow"):
        asked = copy.deepcopy(approved)
        asked["detail"]["ModelLifeCycle"] = {"Stage": "Rollout", "StageStatus": status, "StageDescription": "why"}
        assert pattern.matches_event(asked), status
    for lifecycle in (
        {"Stage": "Rollout", "StageStatus": "PauseAccepted"},
        {"Stage": "Rollout", "StageStatus": "AbortRefused"},
        {"Stage": "Production", "StageStatus": "Pause"},
    ):
        answered = copy.deepcopy(approved)
        answered["detail"]["ModelLifeCycle"] = lifecycle
        assert not pattern.matches_event(answered), lifecycle
    (target,) = rule["Targets"]
    assert flat(target["Arn"]) == f"<{functions_by_step['operator_control']}.Arn>"
    assert_target_has_dlq_and_retries(synth, target)


def test_no_rule_takes_requests_from_the_product_bus(synth: Synth) -> None:
    """A decision or a rollback request anyone could put on a bus would name its own sender: none is routed."""
    (bus_id,) = synth.resources("AWS::Events::EventBus")
    assert [r for r in rules(synth).values() if r.get("EventBusName") == {"Ref": bus_id}] == []


def test_every_catalog_has_its_model_package_group(synth: Synth) -> None:
    groups = [
        g["Properties"]["ModelPackageGroupName"] for g in synth.resources("AWS::SageMaker::ModelPackageGroup").values()
    ]
    assert sorted(groups) == ["churn", "fraud-detection"]  # the infra tests synthesize two catalogs


def test_only_the_publishing_functions_may_put_events_on_the_product_bus(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """An explicit deny in the bus's policy: no identity policy in the account can let anyone else publish."""
    (bus,) = synth.resources("AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"].startswith("promotion-")
    (statement,) = bus["Properties"]["Policy"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert flat(statement["Resource"]).endswith(f":event-bus/{bus['Properties']['Name']}")
    allowed = sorted(flat(arn) for arn in as_list(statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]))
    roles = synth.resources("AWS::IAM::Role")
    publishers = sorted(
        f"<{role_id}.Arn>"
        for role_id in roles
        for step in ("await_approval", "publish_result")
        if synth.resources("AWS::Lambda::Function")[functions_by_step[step]]["Properties"]["Role"]
        == {"Fn::GetAtt": [role_id, "Arn"]}
    )
    assert allowed == publishers and len(publishers) == 2
    assert not synth.resources("AWS::Events::EventBusPolicy")


def is_drift_rule(rule: dict[str, Any]) -> bool:
    names = rule["EventPattern"].get("detail", {}).get("ProcessingJobName", [])
    return bool(names) and all("-drift-" in name.get("prefix", "") for name in names)


def state_change_rules(synth: Synth) -> dict[str, dict[str, Any]]:
    """The default-bus rules on SageMaker's job and endpoint state changes that complete waiting steps, by detail
    type (the drift checks' rule is monitoring's, not a waiting step's)."""
    return {
        rule["EventPattern"]["detail-type"][0]: rule
        for rule in rules(synth).values()
        if rule["EventPattern"]["detail-type"][0].endswith("State Change")
        and rule["EventPattern"]["detail-type"][0].split(" ")[1] in ("Training", "Processing", "Endpoint")
        and not is_drift_rule(rule)
    }


def test_drift_checks_of_monitored_models_reach_act_on_drift_check(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """A settled drift check (<model>-drift-...) of a monitored model reaches ActOnDriftCheck, with retries and a
    DLQ; the churn copy is not monitored, so its jobs are not delivered."""
    (rule,) = [r for r in rules(synth).values() if is_drift_rule(r)]
    (target,) = rule["Targets"]
    assert flat(target["Arn"]) == f"<{functions_by_step['act_on_drift_check']}.Arn>"
    assert_target_has_dlq_and_retries(synth, target)
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    ended = {"ProcessingJobName": "fraud-detection-drift-26120317", "ProcessingJobStatus": "Completed"}
    assert pattern.matches_event(sagemaker_event("SageMaker Processing Job State Change", ended))
    for change in (
        {"ProcessingJobStatus": "InProgress"},
        {"ProcessingJobName": "fraud-detection-20261120-140541-481646-cmp"},  # a promotion's job: not drift's
        {"ProcessingJobName": "churn-drift-26120317"},  # churn is not monitored
    ):
        other = sagemaker_event("SageMaker Processing Job State Change", {**ended, **change})
        assert not pattern.matches_event(other), change


def sagemaker_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "d2921b5a-b0ad-cace-a8e3-0f159d018e06",
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-20T14:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_sagemakers_settled_state_changes_of_the_products_jobs_and_endpoints_reach_resume_waiting_step(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """The waiting steps are completed by SageMaker's own events (promotion.jobs.callbacks): only settled statuses of
    the
    catalogs' jobs (named <model-id>-...) and production endpoints are delivered, each with retries and a DLQ."""
    found = state_change_rules(synth)
    assert set(found) == {
        "SageMaker Training Job State Change",
        "SageMaker Processing Job State Change",
        "SageMaker Endpoint State Change",
    }
    queues = set()
    for rule in found.values():
        assert "EventBusName" not in rule  # the default bus, where SageMaker puts its events
        (target,) = rule["Targets"]
        assert flat(target["Arn"]) == f"<{functions_by_step['resume_waiting_step']}.Arn>"
        assert_target_has_dlq_and_retries(synth, target)
        queues.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    (queue,) = queues  # one queue for the three rules, also the function's asynchronous on-failure destination
    (invoke_config,) = [
        c["Properties"]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": functions_by_step["resume_waiting_step"]}
    ]
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}

    training = EventPattern.load(json.dumps(found["SageMaker Training Job State Change"]["EventPattern"]))
    ours = {"TrainingJobName": "fraud-detection-20261120-140541-481646", "TrainingJobStatus": "Completed"}
    assert training.matches_event(sagemaker_event("SageMaker Training Job State Change", ours))
    for change in (
        {"TrainingJobStatus": "InProgress"},  # a secondary status change: not delivered
        {"TrainingJobName": "another-teams-job"},
        {"TrainingJobName": "fraud-detectionx-1"},  # the prefix is the model id and its dash
    ):
        other = sagemaker_event("SageMaker Training Job State Change", {**ours, **change})
        assert not training.matches_event(other), change
    for status in ("Failed", "Stopped"):
        failed = sagemaker_event("SageMaker Training Job State Change", {**ours, "TrainingJobStatus": status})
        assert training.matches_event(failed)

    endpoint = EventPattern.load(json.dumps(found["SageMaker Endpoint State Change"]["EventPattern"]))
    served = {"EndpointName": "fraud-detection-prod", "EndpointStatus": "IN_SERVICE"}
    assert endpoint.matches_event(sagemaker_event("SageMaker Endpoint State Change", served))
    for status in ("UPDATING", "Updating", "CREATING", "SYSTEM_UPDATING"):
        changing = {**served, "EndpointStatus": status}
        assert not endpoint.matches_event(sagemaker_event("SageMaker Endpoint State Change", changing)), status
    described = {**served, "EndpointStatus": "InService"}  # DescribeEndpoint's spelling, taken too
    assert endpoint.matches_event(sagemaker_event("SageMaker Endpoint State Change", described))
    elsewhere = {**served, "EndpointName": "someone-elses-endpoint"}
    assert not endpoint.matches_event(sagemaker_event("SageMaker Endpoint State Change", elsewhere))
