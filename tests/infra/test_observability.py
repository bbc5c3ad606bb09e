"""Notifications and monitoring: an encrypted topic, alarms to it, a dashboard, the stack's outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Match, Template

from promotion.contract.names import METRICS_NAMESPACE
from promotion.contract.names import SERVICE as SERVICE_NAME
from promotion.contract.state import Approval, Claim, ClaimStatus, Outcome, PromotionState, Validation
from promotion.result.outcome import decide_outcome
from stacks.observability import (
    APPROVALS_EXPIRED_METRIC,
    EXPIRED_REASON_PREFIX,
    outcome_metric,
    step_name,
)
from tests.infra.conftest import STACK_NAME, Synth, as_list, flat, machine_id

pytestmark = pytest.mark.xdist_group("infra")


def alarm_named(synth: Synth, suffix: str) -> dict[str, Any]:
    (alarm,) = [
        resource["Properties"]
        for logical_id, resource in synth.resources("AWS::CloudWatch::Alarm").items()
        if re.fullmatch(rf"Monitoring{suffix}[0-9A-F]{{8}}", logical_id)
    ]
    return alarm


@pytest.fixture(scope="module")
def dashboard_body(synth: Synth) -> str:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    return flat(dashboard["Properties"]["DashboardBody"])


@pytest.fixture(scope="module")
def dashboard_metrics(synth: Synth) -> list[list[Any]]:
    """Every metric row of every graph widget (plain metrics and {"expression": ...} rows); references as TOKEN."""
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    widgets = json.loads("".join(part if isinstance(part, str) else "TOKEN" for part in parts))["widgets"]
    return [row for widget in widgets for row in widget["properties"].get("metrics", [])]


def expressions(rows: list[list[Any]]) -> list[str]:
    return [row[0]["expression"] for row in rows if len(row) == 1 and isinstance(row[0], dict)]


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


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"])
def test_state_machine_alarms_notify_the_topic(synth: Synth, template: Template, metric: str) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    promotion = machine_id(synth)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/States",
            "MetricName": metric,
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": promotion}}],
            "Statistic": "Sum",
            "Period": 300,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": topic_id}],
        },
    )


@pytest.mark.parametrize(
    ("alarm", "outcome"), [("PromotionsRolledBack", "ROLLED_BACK"), ("PromotionsFailed", "FAILED")]
)
def test_outcome_alarms_sum_the_product_metric_over_every_dimension_set(synth: Synth, alarm: str, outcome: str) -> None:
    """PublishResult's counts carry {model, service}: a Metrics Insights query finds them for every model, present
    and future, where a plain metric would need the exact dimension set."""
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    properties = alarm_named(synth, alarm)
    metric_name = outcome_metric(Outcome(outcome))
    (query,) = properties["Metrics"]
    assert query["Expression"] == f'SELECT SUM("{metric_name}") FROM "{METRICS_NAMESPACE}"'
    assert (query["Period"], query["ReturnData"]) == (300, True)
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "notBreaching"
    assert properties["AlarmActions"] == [{"Ref": topic_id}]


def test_outcome_metric_names_are_those_publish_result_emits() -> None:
    # functions/publish_result/handler.py: f"Promotion{result.outcome.title().replace('_', '')}"
    assert [outcome_metric(outcome) for outcome in Outcome] == [
        f"Promotion{outcome.title().replace('_', '')}" for outcome in Outcome
    ]
    assert outcome_metric(Outcome.ROLLED_BACK) == "PromotionRolledBack"
    assert outcome_metric(Outcome.PROMOTED) == "PromotionPromoted"


def test_expired_approvals_are_counted_from_publish_results_log_and_alarmed(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    publisher = synth.template["Resources"][functions_by_step["publish_result"]]["Properties"]
    (metric_filter,) = synth.resources("AWS::Logs::MetricFilter").values()
    properties = metric_filter["Properties"]
    assert properties["LogGroupName"] == publisher["LoggingConfig"]["LogGroup"]
    assert properties["FilterPattern"] == f'{{ ($.message = "result") && ($.reason = "{EXPIRED_REASON_PREFIX}*") }}'
    assert properties["MetricTransformations"] == [
        {"MetricName": APPROVALS_EXPIRED_METRIC, "MetricNamespace": METRICS_NAMESPACE, "MetricValue": "1"}
    ]
    alarm = alarm_named(synth, "ApprovalsExpired")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        METRICS_NAMESPACE,
        APPROVALS_EXPIRED_METRIC,
        "Sum",
    )
    assert "Dimensions" not in alarm  # a metric filter's metric has none
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_expired_reason_is_the_one_the_filter_matches() -> None:
    state = PromotionState(
        claim=Claim(
            status=ClaimStatus.CLAIMED,
            execution_name="e",
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:e",
            model="fraud-detection",
            release_id="r1",
        ),
        validation=Validation(verdict="PASSED", approval_timeout_seconds=7200),
        approval=Approval(decision="expired"),
    )
    outcome, reason = decide_outcome(state)
    assert outcome == Outcome.REJECTED
    assert reason.startswith(EXPIRED_REASON_PREFIX)


def test_dead_letter_queues_are_alarmed(synth: Synth) -> None:
    queues = set(synth.resources("AWS::SQS::Queue"))
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert alarmed == queues


def test_every_alarm_notifies_the_topic_and_shows_on_the_dashboard(synth: Synth, dashboard_body: str) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["Properties"]["AlarmName"].startswith(f"{STACK_NAME}-"), logical_id
        assert alarm["Properties"]["AlarmDescription"], logical_id
        assert f"<{logical_id}.Arn>" in dashboard_body, f"{logical_id} is missing from the alarm status widget"


def test_the_dashboard_is_named_after_the_stack(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"{STACK_NAME}-promotion"


def test_dashboard_shows_executions_by_outcome_and_time(dashboard_metrics: list[list[Any]]) -> None:
    states = {row[1] for row in dashboard_metrics if row and row[0] == "AWS/States"}
    assert states == {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
        "ExecutionTime",
    }


def test_dashboard_searches_the_product_metrics_with_their_dimension_set(
    dashboard_metrics: list[list[Any]], functions_by_step: dict[str, str]
) -> None:
    searches = expressions(dashboard_metrics)
    per_model = [
        s for s in searches if s.startswith(f'SEARCH(\'{{{METRICS_NAMESPACE},model,service}} service="{SERVICE_NAME}"')
    ]
    assert per_model
    names = set(re.findall(r'"([A-Za-z0-9]+)"', " ".join(per_model)))
    assert {outcome_metric(outcome) for outcome in Outcome} <= names
    assert "RolledBack" in names
    for function_dir in functions_by_step:
        assert {f"{step_name(function_dir)}Duration", f"{step_name(function_dir)}Failed"} <= names, function_dir
    # Bus targets emit with {service} only: searched over every dimension set of the namespace.
    anywhere = " ".join(s for s in searches if f'Namespace="{METRICS_NAMESPACE}"' in s)
    for name in (
        "DecisionAccepted",
        "DecisionRefused",
        "OperatorRollbackAccepted",
        "ControlAccepted",
        "ControlRefused",
        "RolloutHeld",
        "RetiredResourcesDeleted",
        APPROVALS_EXPIRED_METRIC,
    ):
        assert f'"{name}"' in anywhere, name


def test_dashboard_shows_lambda_errors_of_every_function(
    dashboard_metrics: list[list[Any]], functions_by_step: dict[str, str]
) -> None:
    errors = [row for row in dashboard_metrics if row[:2] == ["AWS/Lambda", "Errors"]]
    assert len(errors) == len(functions_by_step)


def test_dashboard_shows_each_rollout_endpoint_by_variant(synth: Synth, dashboard_metrics: list[list[Any]]) -> None:
    endpoints = {
        yaml.safe_load(path.read_text())["rollout"]["endpoint_name"] for path in synth.models_dir.glob("*.yaml")
    }
    searches = expressions(dashboard_metrics)
    for endpoint in endpoints:
        for metric in ("Invocations", "Invocation5XXErrors", "ModelLatency"):
            expected = (
                f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} EndpointName="{endpoint}" MetricName="{metric}"\''
            )
            assert any(s.startswith(expected) for s in searches), (endpoint, metric)


def test_step_metrics_are_emitted_with_the_dimension_set_the_dashboard_searches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a step handler prints (EMF) has exactly the {model, service} dimension set and the names searched."""
    from promotion.core.boundary import bind_claim, step_boundary
    from promotion.core.observability import metrics

    claim = Claim(
        status=ClaimStatus.CLAIMED, execution_name="e", execution_arn="arn", model="fraud-detection", release_id="r"
    )

    @metrics.log_metrics
    @step_boundary("WriteConfig")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bind_claim(claim)
        return {}

    handler({}, None)
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [["model", "service"]]
    assert (emf["service"], emf["model"]) == (SERVICE_NAME, "fraud-detection")
    assert {metric["Name"] for metric in directive["Metrics"]} == {"WriteConfigDuration", "WriteConfigSucceeded"}


def test_outputs(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {
        "StateMachineArn",
        "ConfigBucketName",
        "PromotionTableName",
        "EventBusName",
        "NotificationTopicArn",
        "TrainingRoleArnFraudDetection",
        "TuningRoleArnFraudDetection",
    } <= set(outputs)
    template.has_output("StateMachineArn", {"Value": {"Ref": Match.string_like_regexp("^PromotionStateMachine")}})
    assert json.dumps(outputs)  # plain JSON


def test_operator_rollbacks_that_did_not_end_rolled_back_alarm_the_topic(synth: Synth) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    alarm = alarm_named(synth, "OperatorRollbacksNotDone")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    (expression,) = [query for query in alarm["Metrics"] if "Expression" in query]
    assert expression["Expression"] == "failed + timedout + aborted" and expression.get("ReturnData", True)
    machine = {"Ref": machine_id(synth, "OperatorRollbackStateMachineArn")}
    watched = {
        query["MetricStat"]["Metric"]["MetricName"]
        for query in alarm["Metrics"]
        if "MetricStat" in query and query["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == machine
    }
    assert watched == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}


def test_only_cloudformation_and_listed_subscribers_may_subscribe_to_the_topic(synth: Synth) -> None:
    (policy,) = [p["Properties"] for p in synth.resources("AWS::SNS::TopicPolicy").values()]
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "SubscriptionsAreDeployed"]
    assert (deny["Effect"], deny["Action"], deny["Principal"]) == ("Deny", "sns:Subscribe", {"AWS": "*"})
    allowed = deny["Condition"]["StringNotLike"]["aws:PrincipalArn"]
    assert [flat(arn) for arn in as_list(allowed)] == [
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-*-cfn-exec-role-*"
    ]
    assert not synth.resources("AWS::SNS::Subscription")  # none unless the context names emails


def test_the_catalogs_chat_channels_receive_the_notifications_and_can_run_nothing(synth: Synth) -> None:
    """AWS Chatbot subscribed to the product's topic for each channel a catalog names; the channel role has no
    permission and the guardrail denies everything: notices only."""
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    slack = list(synth.resources("AWS::Chatbot::SlackChannelConfiguration").values())
    teams = list(synth.resources("AWS::Chatbot::MicrosoftTeamsChannelConfiguration").values())
    assert [(c["Properties"]["SlackWorkspaceId"], c["Properties"]["SlackChannelId"]) for c in slack] == [
        ("T0123ABCD", "C0456EFGH")
    ]
    assert [c["Properties"]["TeamsChannelId"] for c in teams] == ["19%3Aabc%40thread.tacv2"]
    for configuration in (*slack, *teams):
        props = configuration["Properties"]
        assert props["SnsTopicArns"] == [{"Ref": topic_id}]
        role_id = props["IamRoleArn"]["Fn::GetAtt"][0]
        role = synth.template["Resources"][role_id]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "chatbot.amazonaws.com"}
        assert "Policies" not in role and "ManagedPolicyArns" not in role
        assert not [
            p
            for p in synth.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"].get("Roles", [])
        ]
        (guardrail,) = props["GuardrailPolicies"]
        policy = synth.template["Resources"][guardrail["Ref"]]["Properties"]["PolicyDocument"]
        assert policy["Statement"] == [{"Effect": "Deny", "Action": "*", "Resource": "*"}]


def test_the_drift_of_monitored_models_is_on_the_dashboard_and_a_failed_check_is_alarmed(
    synth: Synth, dashboard_metrics: list[list[Any]]
) -> None:
    from stacks.observability import DRIFT_LOOP_METRICS

    searches = expressions(dashboard_metrics)
    (psi,) = [s for s in searches if "FeatureDrift" in s]
    assert psi.startswith(f'SEARCH(\'{{{METRICS_NAMESPACE},feature,model,service}} service="{SERVICE_NAME}"')
    assert psi.endswith("'Maximum', 3600)")
    (loop,) = [s for s in searches if "RetrainingsStarted" in s]
    assert all(f'"{name}"' in loop for name in DRIFT_LOOP_METRICS)
    (alarm,) = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith("-DriftChecksFailed")
    ]
    (query,) = alarm["Metrics"]
    assert query["Expression"] == f'SELECT SUM("DriftCheckFailed") FROM "{METRICS_NAMESPACE}"'
