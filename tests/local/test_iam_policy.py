"""AWS's policy evaluation logic as local.iam models it, against the cases the IAM User Guide spells out."""

from __future__ import annotations

from typing import Any

import pytest

from local.iam.actions import RULES, action_exists, arn_for, needs_for
from local.iam.policy import Policy, Principal, Request, UnsupportedPolicy, evaluate, wildcard_match

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/step"
ME = Principal(arn=ROLE, session="fn")
OBJECT = "arn:aws:s3:::bucket/archive/m/r1/backup.json"


def policy(*statements: dict[str, Any], resource_policy: bool = False) -> Policy:
    return Policy.parse("test", {"Statement": list(statements)}, resource_policy=resource_policy)


def request(action: str = "s3:GetObject", resource: str = OBJECT, **context: Any) -> Request:
    return Request(ME, action, resource, {"aws:SecureTransport": "true", **context})


def allow(
    action: Any = "s3:GetObject", resource: Any = "arn:aws:s3:::bucket/archive/m/*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_identity_allow_grants_and_nothing_else_does() -> None:
    assert evaluate(request(), [policy(allow())]).allowed
    assert evaluate(request(), []).reason == "no-identity-allow"
    # PutObject on the prefix does not grant GetObject on it: the BackupProduction bug of issue 13.
    assert not evaluate(request(), [policy(allow("s3:PutObject"))]).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert evaluate(request(), [policy(allow(), deny)]).reason == "explicit-identity-deny"
    bucket_policy = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        resource_policy=True,
    )
    assert evaluate(request(), [policy(allow())], bucket_policy).allowed
    plain_http = request(**{"aws:SecureTransport": "false"})
    assert evaluate(plain_http, [policy(allow())], bucket_policy).reason == "explicit-resource-deny"


def test_actions_are_case_insensitive_resources_are_not() -> None:
    assert evaluate(request(), [policy(allow("S3:getobject"))]).allowed
    assert not evaluate(request(), [policy(allow(resource="arn:aws:s3:::BUCKET/*"))]).allowed
    assert wildcard_match("arn:aws:states:*:1:execution:m:*", "arn:aws:states:us-east-1:1:execution:m:a:b")
    assert not wildcard_match("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/abbc")


def test_not_action_and_not_resource() -> None:
    everything_but_delete = {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    assert evaluate(request(), [policy(everything_but_delete)]).allowed
    assert not evaluate(request("s3:DeleteObject"), [policy(everything_but_delete)]).allowed
    not_archive = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::bucket/archive/*"}
    assert not evaluate(request(), [policy(not_archive)]).allowed


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            {"iam:PassedToService": "sagemaker.amazonaws.com"},
            True,
        ),
        (
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            {"iam:PassedToService": "ec2.amazonaws.com"},
            False,
        ),
        # A key absent from the request: false, except for negated operators and ...IfExists.
        ({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {}, False),
        ({"StringNotEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}, {}, True),
        ({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, {}, True),
        ({"StringLike": {"s3:prefix": ["data/train/*"]}}, {"s3:prefix": "data/train/part-1"}, True),
        ({"StringLike": {"s3:prefix": ["data/train/*"]}}, {"s3:prefix": "data/holdout/"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:1:rule/r"}},
            {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"},
            True,
        ),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"Null": {"aws:SourceArn": "false"}}, {}, False),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["a", "c"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:TagKeys": ["a", "c"]}, True),
        # Keys are case-insensitive.
        (
            {"StringEquals": {"CloudWatch:Namespace": "ModelPromotion"}},
            {"cloudwatch:namespace": "ModelPromotion"},
            True,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    statement = allow("*", "*", Condition=condition)
    assert evaluate(request(**context), [policy(statement)]).allowed is expected


def test_unmodelled_policy_elements_fail_loudly() -> None:
    with pytest.raises(UnsupportedPolicy, match="DateGreaterThan"):
        policy(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}))
    with pytest.raises(UnsupportedPolicy, match="Federated"):
        policy({"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "*"}, resource_policy=True)


def test_a_grant_to_the_account_delegates_a_grant_to_the_role_grants() -> None:
    to_account = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "events:PutEvents"},
        resource_policy=True,
    )
    put = request("events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/b")
    assert not evaluate(put, [], to_account).allowed
    assert evaluate(put, [policy(allow("events:PutEvents", "*"))], to_account).allowed
    to_role = policy(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "events:PutEvents"}, resource_policy=True
    )
    assert evaluate(put, [], to_role).allowed


def test_a_kms_key_policy_must_allow_even_when_iam_does() -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    decrypt = request("kms:Decrypt", key)
    iam_allows = [policy(allow("kms:Decrypt", key))]
    services_only = policy(
        {"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:*"}, resource_policy=True
    )
    enables_iam = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"},
        resource_policy=True,
    )
    assert not evaluate(decrypt, iam_allows, services_only, resource_policy_required=True).allowed
    assert evaluate(decrypt, iam_allows, enables_iam, resource_policy_required=True).allowed
    assert not evaluate(decrypt, [], enables_iam, resource_policy_required=True).allowed


def test_a_service_principal_is_granted_only_by_the_resource_policy_with_its_source() -> None:
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    permission = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": function,
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"}},
        },
        resource_policy=True,
    )
    events = Principal(service="events.amazonaws.com")
    right = Request(events, "lambda:InvokeFunction", function, {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"})
    wrong = Request(events, "lambda:InvokeFunction", function, {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/x"})
    assert evaluate(right, [], permission).allowed
    assert not evaluate(wrong, [], permission).allowed


def test_skipping_a_statement_is_how_least_privilege_is_measured() -> None:
    grants = policy(allow(Sid="ReadArchive"), allow("s3:*", "*", Sid="Everything"))
    assert evaluate(request(), [grants], skip=frozenset({"test ReadArchive"})).allowed
    assert not evaluate(request(), [grants], skip=frozenset({"test ReadArchive", "test Everything"})).allowed


def test_every_mapped_action_is_in_the_service_authorization_reference() -> None:
    probe = {
        "Bucket": "b",
        "Key": "k",
        "CopySource": {"Bucket": "src", "Key": "k"},
        "Name": "/p/x",
        "Names": ["/p/x"],
        "Path": "/p",
        "TableName": "t",
        "HyperParameterTuningJobName": "j",
        "TrainingJobName": "j",
        "ProcessingJobName": "j",
        "ModelName": "m",
        "EndpointConfigName": "c",
        "EndpointName": "e",
        "Entries": [{"Source": "s", "DetailType": "d"}],
        "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "executionArn": "arn:aws:states:us-east-1:1:execution:m:e",
        "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m",
        "Namespace": "N",
        "QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
        "FunctionName": "f",
        "ModelPackageGroupName": "g",
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/g/1",
        "ModelPackageName": "arn:aws:sagemaker:us-east-1:1:model-package/g/1",
    }
    for service, operation in RULES:
        for need in needs_for(service, operation, probe):
            assert action_exists(need.action), f"{service}:{operation} -> {need.action}"


def test_arns_follow_the_reference_formats() -> None:
    assert arn_for("s3:GetObject", {"BucketName": "b", "ObjectName": "a/k"}, region="r", account="1") == [
        "arn:aws:s3:::b/a/k"
    ]
    assert arn_for(
        "sagemaker:UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c"}, region="r", account="1"
    ) == ["arn:aws:sagemaker:r:1:endpoint/e", "arn:aws:sagemaker:r:1:endpoint-config/c"]
    assert arn_for("cloudwatch:GetMetricData", {}, region="r", account="1") == ["*"]
    head = needs_for("s3", "HeadObject", {"Bucket": "b", "Key": "k", "VersionId": "v1"})
    assert [n.action for n in head] == ["s3:GetObjectVersion"]
    # SageMaker names are lower case in ARNs; a role in the request is passed.
    create = needs_for(
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "Fraud-X", "RoleArn": ROLE, "Tags": [{"Key": "promotion:model", "Value": "m"}]},
    )
    assert [(n.action, n.fields.get("TrainingJobName"), n.resource) for n in create] == [
        ("sagemaker:CreateTrainingJob", "fraud-x", None),
        ("sagemaker:AddTags", "fraud-x", None),
        ("iam:PassRole", None, ROLE),
    ]


def test_for_any_value_with_a_missing_key_is_false_even_if_exists() -> None:
    """AWS: ForAnyValue over an absent (or empty) set matches nothing, IfExists or not."""
    for operator in ("ForAnyValue:StringEquals", "ForAnyValue:StringEqualsIfExists", "ForAnyValue:StringNotEquals"):
        statement = allow("*", "*", Condition={operator: {"aws:TagKeys": ["a"]}})
        assert not evaluate(request(), [policy(statement)]).allowed, operator


def test_a_condition_key_the_runtime_never_supplies_fails_loudly() -> None:
    statement = allow("*", "*", Condition={"StringEquals": {"aws:PrincipalTag/team": "ml"}})
    with pytest.raises(UnsupportedPolicy, match="aws:PrincipalTag/team is not modelled"):
        evaluate(request(), [policy(statement)])


def test_arn_operators_match_each_arn_part_on_its_own() -> None:
    statement = allow("*", "*", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/r"}})
    same_account = request(**{"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/r"})
    # `*` in the region part must not swallow the account part as well.
    other_account = request(**{"aws:SourceArn": "arn:aws:events:us-east-1:999999999999:rule/r"})
    assert evaluate(same_account, [policy(statement)]).allowed
    assert not evaluate(other_account, [policy(statement)]).allowed


def test_not_principal_is_refused_rather_than_approximated() -> None:
    with pytest.raises(UnsupportedPolicy, match="NotPrincipal"):
        policy({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "*"}, resource_policy=True)


def test_index_queries_and_qualified_invokes_are_authorized_on_what_aws_checks() -> None:
    (index,) = needs_for("dynamodb", "Query", {"TableName": "t", "IndexName": "i"})
    assert arn_for(index.action, index.fields, region="r", account="1") == ["arn:aws:dynamodb:r:1:table/t/index/i"]
    (by_arn,) = needs_for("lambda", "Invoke", {"FunctionName": "arn:aws:lambda:r:1:function:f", "Qualifier": "live"})
    assert by_arn.resource == "arn:aws:lambda:r:1:function:f:live"
    (projected,) = needs_for(
        "dynamodb",
        "Query",
        {"TableName": "t", "ProjectionExpression": "#s, pk", "ExpressionAttributeNames": {"#s": "status"}},
    )
    assert projected.context == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES", "dynamodb:Attributes": ["status", "pk"]}


def test_an_item_request_names_its_partition_key_and_leading_keys_hold_a_role_to_its_items() -> None:
    """dynamodb:LeadingKeys is the item's partition key (`pk` in the product's table): ActOnDriftCheck may touch the
    RETRAIN# items and no claim, lock or audit record."""
    (get,) = needs_for("dynamodb", "GetItem", {"TableName": "t", "Key": {"pk": {"S": "RETRAIN#m"}, "sk": {"S": "x"}}})
    assert get.context["dynamodb:LeadingKeys"] == ["RETRAIN#m"]
    (put,) = needs_for("dynamodb", "PutItem", {"TableName": "t", "Item": {"pk": {"S": "LOCK#m"}, "sk": {"S": "x"}}})
    assert put.context["dynamodb:LeadingKeys"] == ["LOCK#m"]
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"
    records = policy(
        allow(
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            table,
            Condition={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["RETRAIN#m"]}},
        )
    )
    assert evaluate(request("dynamodb:GetItem", table, **{"dynamodb:LeadingKeys": ["RETRAIN#m"]}), [records]).allowed
    assert not evaluate(request("dynamodb:PutItem", table, **{"dynamodb:LeadingKeys": ["LOCK#m"]}), [records]).allowed
