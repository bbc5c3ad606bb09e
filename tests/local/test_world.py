"""Token resolution and the resources built in moto from the synthesized template."""

from __future__ import annotations

import json

import pytest

from local.runtime import LocalRuntime
from local.template import StackTemplate
from local.tokens import Physical, Resolver, TokenError
from local.world import name_resources


@pytest.fixture
def resolver() -> Resolver:
    physical = {
        "Table1A2B3C4D": Physical("table", {"Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/table"}),
        "Fn": Physical("fn", {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:fn"}),
    }
    return Resolver(physical, account="123456789012", region="us-east-1", stack_name="S")


def test_ref_getatt_and_join_resolve_like_cloudformation(resolver: Resolver) -> None:
    value = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":x:", {"Ref": "AWS::Region"}, ":", {"Ref": "Table1A2B3C4D"}],
        ]
    }
    assert resolver.resolve(value) == "arn:aws:x:us-east-1:table"
    assert resolver.resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert resolver.resolve({"Fn::GetAtt": "Fn.Arn"}) == "arn:aws:lambda:us-east-1:123456789012:function:fn"


def test_sub_select_split(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Sub": "${AWS::AccountId}/${Fn.Arn}/${Table1A2B3C4D}/${!Literal}"}) == (
        "123456789012/arn:aws:lambda:us-east-1:123456789012:function:fn/table/${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}-${Fn}", {"X": {"Ref": "AWS::Region"}}]}) == "us-east-1-fn"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}) == "b"


@pytest.mark.parametrize(
    "token",
    [{"Ref": "Missing"}, {"Fn::GetAtt": ["Fn", "StreamArn"]}, {"Fn::ImportValue": "x"}],
)
def test_unresolvable_tokens_are_errors(resolver: Resolver, token: dict[str, object]) -> None:
    with pytest.raises(TokenError):
        resolver.resolve(token)


def test_physical_names_are_readable_and_deterministic(mini_stack: StackTemplate) -> None:
    first = name_resources(mini_stack, "123456789012", "us-east-1")
    second = name_resources(mini_stack, "123456789012", "us-east-1")
    assert first == second
    names = {logical_id: physical.ref for logical_id, physical in first.items()}
    assert names["ConfigBucket2112C5EC"] == "configbucket"
    assert names["StateTable9728C7E5"] == "statetable"
    assert names["EchoFunction7EBBA557"] == "echofunction"


def test_the_state_machine_runs_the_synthesized_definition_with_tokens_resolved(
    runtime: LocalRuntime, mini_stack: StackTemplate
) -> None:
    described = runtime.clients.stepfunctions.describe_state_machine(stateMachineArn=runtime.state_machine_arn)
    definition = json.loads(described["definition"])
    assert "Fn::" not in described["definition"] and '"Ref"' not in described["definition"]
    assert runtime.world is not None
    functions = {spec.logical_id: spec.arn for spec in runtime.world.functions.values()}
    assert definition["States"]["Echo"]["Resource"] == functions["EchoFunction7EBBA557"]
    assert definition["States"]["AwaitToken"]["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert definition["States"]["AwaitToken"]["Parameters"]["FunctionName"] == functions["AwaitTokenFunctionB06D091D"]
    # Apart from the tokens, the definition is the template's, state for state.
    template_text = "".join(
        part if isinstance(part, str) else "TOKEN"
        for part in mini_stack.resources["MiniMachineFC9EB22F"]["Properties"]["DefinitionString"]["Fn::Join"][1]
    )
    assert set(json.loads(template_text.replace("TOKEN", ""))["States"]) == set(definition["States"])


def test_resources_exist_in_moto_as_the_template_says(runtime: LocalRuntime, mini_stack: StackTemplate) -> None:
    clients = runtime.clients
    assert clients.s3.get_bucket_versioning(Bucket="configbucket")["Status"] == "Enabled"
    table = clients.dynamodb.describe_table(TableName="statetable")["Table"]
    assert table["KeySchema"] == mini_stack.resources["StateTable9728C7E5"]["Properties"]["KeySchema"]
    bus = runtime.product_bus
    assert clients.events.describe_event_bus(Name=bus)["Name"] == bus
    rule = clients.events.describe_rule(Name="startrule")
    assert json.loads(rule["EventPattern"]) == mini_stack.resources["StartRule40F02F2E"]["Properties"]["EventPattern"]
    targets = clients.events.list_targets_by_rule(Rule="decisionrule", EventBusName=bus)["Targets"]
    assert targets[0]["Arn"].endswith(":function:decidefunction")
    assert clients.sns.list_topics()["Topics"][0]["TopicArn"].endswith(":notifications")
