"""Notifications and monitoring: an encrypted topic, alarms to it, a dashboard, the stack's outputs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Synth, flat

pytestmark = pytest.mark.xdist_group("infra")


def test_topic_is_kms_encrypted_and_tls_only(synth: Synth) -> None:
    (topic_id, topic), *_ = synth.resources("AWS::SNS::Topic").items()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synth.template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key["KeyPolicy"]["Statement"]), (
        "alarms must be able to use the topic's key"
    )
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    assert {"Ref": topic_id} in policy["Properties"]["Topics"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut"])
def test_state_machine_alarms_notify_the_topic(synth: Synth, template: Template, metric: str) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    (machine_id,) = synth.resources("AWS::StepFunctions::StateMachine")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/States",
            "MetricName": metric,
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": topic_id}],
        },
    )


def test_dead_letter_queues_are_alarmed(synth: Synth) -> None:
    queues = set(synth.resources("AWS::SQS::Queue"))
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert alarmed == queues


def test_dashboard_shows_executions_time_and_lambda_errors(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = flat(dashboard["Properties"]["DashboardBody"])
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionTime"):
        assert f'"{metric}"' in body, metric
    assert body.count('"AWS/Lambda","Errors"') == 12


def test_outputs(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {
        "StateMachineArn",
        "ConfigBucketName",
        "PromotionTableName",
        "EventBusName",
        "NotificationTopicArn",
        "TrainingRoleArn",
    } <= set(outputs)
    template.has_output("StateMachineArn", {"Value": {"Ref": Match.string_like_regexp("^PromotionStateMachine")}})
    assert json.dumps(outputs)  # plain JSON
