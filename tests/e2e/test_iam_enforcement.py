"""The local runtime is as strict as AWS about permissions: every call is authorized against the synthesized
template's policies of the principal making it, and a missing permission fails as it would on a real account."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local.errors import UsageError
from local.iam.model import Role
from local.iam.policy import Policy, Principal
from local.runtime import LocalRuntime
from local.template import load_stack
from tests.conftest import EVENTS, load_event
from tests.e2e.conftest import event, runtime_with, world

pytestmark = pytest.mark.xdist_group("iam")
JOB = "fraud-xgb-tuning-0042"


def _template_without(root: Path, role_fragment: str, sid: str, destination: Path) -> Path:
    """A copy of the synthesized template with one statement (by Sid) removed from one role's policy."""
    stack = load_stack(root, synth=False)
    body = copy.deepcopy(stack.body)
    removed = 0
    for logical_id, resource in body["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith(role_fragment):
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            kept = [s for s in statements if s.get("Sid") != sid]
            removed += len(statements) - len(kept)
            resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed == 1, f"expected one {sid} statement in {role_fragment}*, removed {removed}"
    destination.write_text(json.dumps(body))
    return destination


def test_a_template_without_backups_write_grant_fails_closed_naming_the_denial(
    synthesized: Path, tmp_path: Path
) -> None:
    """Issue 13's acceptance: `local run --template` on a copy without BackupProduction's archive PutObject."""
    template = _template_without(
        synthesized, "FunctionsBackupProductionRoleDefaultPolicy", "WriteArchive", tmp_path / "tampered.json"
    )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    completed = subprocess.run(
        [
            sys.executable, "-m", "local", "run",
            "--event", str(EVENTS / "tuning-job-completed.json"),
            "--world", str(EVENTS / "world.json"),
            "--template", str(template),
            "--json",
        ],
        cwd=synthesized, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    assert document["production_after"] == document["production_before"]
    assert document["states"][-1]["status"] == "FAILED"
    failed = [s["name"] for s in document["states"] if s["status"] == "FAILED"]
    assert "BackupProduction" in failed
    denial = document["iam"]["denied"][0]
    assert "s3:PutObject" in denial
    assert "functionsbackupproductionrole" in denial
    assert '"arn:aws:s3:::storageconfigbucket/archive/fraud-detection/' in denial
    assert "AccessDenied" in document["cause"] and "s3:PutObject" in document["cause"]
    # The decision report says the same: which role lacked which action on which resource.
    report = Path(document["report"]["json"]).read_text()
    assert (
        "functionsbackupproductionrole" in report and "s3:PutObject" in report and "archive/fraud-detection/" in report
    )


def test_the_untampered_template_promotes_with_every_call_authorized(runtime: LocalRuntime) -> None:
    result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    assert result.iam is not None and result.iam.enforced
    assert result.iam.denied == [] and result.iam.silent_denials == []
    assert result.iam.authorized > 100
    assert result.report is not None
    principals = {
        r.request.principal.name.split("/")[1] for r in runtime.iam.enforcer.records if r.request.principal.arn
    }  # type: ignore[union-attr]
    # The functions' roles, the state machine's role, the rule target's role, the jobs' role and the approver.
    assert {
        "promotionstatemachinerole",
        "promotionstatemachineeventsrole",
        "DataScientists",  # the catalog approver's role, as the runtime plays it
    } <= principals
    assert sum(p.startswith("functions") for p in principals) >= 15
    assert any(p.startswith("trainingfrauddetection") for p in principals)  # the model's own pipeline role


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(runtime: LocalRuntime) -> None:
    """S3 API reference, GetObject: without s3:ListBucket the caller cannot tell a missing key from a forbidden one."""
    assert runtime.iam is not None
    bucket = runtime.config_bucket
    get_only = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    for name, statements in (("get-only", [get_only]), ("get-and-list", [get_only, listing])):
        arn = f"arn:aws:iam::123456789012:role/{name}"
        runtime.iam.model.roles[arn] = Role(name, arn, (Policy.parse(name, {"Statement": statements}),))
    s3 = boto3.client("s3", region_name="us-east-1")  # made after the enforcement hooked botocore
    with runtime.iam.enforcer.acting_as(Principal(arn="arn:aws:iam::123456789012:role/get-only")):
        with pytest.raises(ClientError) as forbidden:
            s3.get_object(Bucket=bucket, Key="archive/nothing-here.json")
        with pytest.raises(ClientError) as head:
            s3.head_object(Bucket=bucket, Key="archive/nothing-here.json")
    assert forbidden.value.response["Error"]["Code"] == "AccessDenied"
    assert forbidden.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert head.value.response["Error"]["Code"] == "403"
    with runtime.iam.enforcer.acting_as(Principal(arn="arn:aws:iam::123456789012:role/get-and-list")):
        with pytest.raises(ClientError) as missing:
            s3.get_object(Bucket=bucket, Key="archive/nothing-here.json")
        with pytest.raises(ClientError) as denied_put:
            s3.put_object(Bucket=bucket, Key="archive/x.json", Body=b"{}")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert denied_put.value.response["Error"]["Code"] == "AccessDenied"
    message = denied_put.value.response["Error"]["Message"]
    assert message == (
        "User: arn:aws:sts::123456789012:assumed-role/get-and-list/local is not authorized to perform: s3:PutObject "
        f'on resource: "arn:aws:s3:::{bucket}/archive/x.json" because no identity-based policy allows the '
        "s3:PutObject action"
    )


def test_nobody_but_the_publishing_functions_may_put_events_on_the_product_bus(runtime: LocalRuntime) -> None:
    """Decisions and rollback requests are Model Registry changes, not bus events: neither people's policies nor
    any other allow let anyone put an event on the product bus (its policy's explicit deny)."""
    decision = load_event("approval-approved.json")
    for kind in ("approver", "operator"):
        with pytest.raises(
            UsageError, match=f"promotion-{kind}/mallory is not authorized to perform: events:PutEvents"
        ):
            runtime.send_event(decision, bus=runtime.product_bus, as_person=(kind, "mallory"))
    from local.iam.model import Role
    from local.iam.policy import Policy

    assert runtime.iam is not None
    admin = f"arn:aws:iam::{runtime.iam.account}:role/Administrator"
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:*", "Resource": "*"}]}
    runtime.iam.model.roles[admin] = Role("Administrator", admin, (Policy.parse("AdministratorAccess", everything),))
    (publisher,) = [
        arn for arn, role in runtime.iam.model.roles.items() if role.logical_id.startswith("FunctionsPublish")
    ]
    entry = {"Source": "promotion.results", "DetailType": "Promotion Result", "Detail": "{}"}
    events = boto3.client("events", region_name="us-east-1")  # made after the enforcement hooked botocore
    with runtime.iam.person(admin, "eve"), pytest.raises(ClientError) as refused:
        events.put_events(Entries=[{**entry, "EventBusName": runtime.product_bus}])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "with an explicit deny in a resource-based policy" in str(refused.value)
    with runtime.iam.person(publisher, "publish-result"):
        published = events.put_events(Entries=[{**entry, "EventBusName": runtime.product_bus}])
    assert published["FailedEntryCount"] == 0


def test_without_enforcement_the_output_says_so(synthesized: Path, tmp_path: Path) -> None:
    from local.render import timeline

    with runtime_with(synthesized, tmp_path, world(), enforce_iam=False) as runtime:
        result = runtime.run(event(), seed=True)
    assert result.iam is not None and not result.iam.enforced
    assert "IAM: NOT enforced (--no-iam)" in timeline(result)


def test_people_cannot_read_the_approval_token_from_the_table(runtime: LocalRuntime) -> None:
    """The approval item holds the task token; `promote` reads only named attributes, and people's policies allow
    nothing else (DynamoDB fine-grained access: dynamodb:Attributes and dynamodb:Select)."""
    from local.least_privilege import promote
    from promotion.intake.approval import approval_key

    assert runtime.iam is not None
    (arn,) = runtime.send_event(event())
    runtime.wait_for_approval_request(arn)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for kind in ("approver", "operator"):
        role = runtime.iam.person_role(kind)
        assert role is not None
        with runtime.iam.person(role, "someone"):
            with pytest.raises(ClientError) as everything:
                dynamodb.query(
                    TableName=runtime.table_name,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": "MODEL#fraud-detection"}},
                )
            with pytest.raises(ClientError) as token:
                dynamodb.get_item(TableName=runtime.table_name, Key=approval_key("fraud-detection", JOB))
        assert everything.value.response["Error"]["Code"] == "AccessDeniedException"
        assert token.value.response["Error"]["Code"] == "AccessDeniedException"
    # What promote reads is allowed: the pending approval shows, without its token.
    shown = promote(runtime, "approver", "alice@example.com", "status", "fraud-detection")
    assert JOB in shown


def test_nobody_subscribes_to_the_topic_unless_the_deployment_says_so(runtime: LocalRuntime) -> None:
    """Approval requests and results go to the topic's subscribers: who they are is deployed (notificationEmails,
    notificationSubscribers), so even a principal whose own policies allow sns:Subscribe is refused by the topic."""
    from local.iam.model import Role
    from local.iam.policy import Policy

    assert runtime.iam is not None
    topic = runtime.function_env("NOTIFICATION_TOPIC_ARN")
    admin = f"arn:aws:iam::{runtime.iam.account}:role/Administrator"
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:*", "Resource": "*"}]}
    runtime.iam.model.roles[admin] = Role("Administrator", admin, (Policy.parse("AdministratorAccess", everything),))
    sns = boto3.client("sns", region_name="us-east-1")
    with runtime.iam.person(admin, "eve"), pytest.raises(ClientError) as refused:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="eve@example.com")
    assert refused.value.response["Error"]["Code"] == "AuthorizationError"
    assert "with an explicit deny in a resource-based policy" in str(refused.value)
    assert runtime.clients.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
