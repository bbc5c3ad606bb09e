"""promote --local's wire: a real boto3 client whose calls go through promote.local.Forwarder to local.gateway.Gateway
(over HTTP on 127.0.0.1) and come back as botocore gives them: datetimes, S3's streamed bodies, and AWS's errors
raised as the client's own exception classes. The runtime behind the gateway is a stand-in that records what it is
asked; tests/e2e/test_local_up.py drives the real one."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from local.gateway import Gateway, People
from local.paths import ROOT
from promote.local import Forwarder, LocalUnavailable, read_connection
from promote.wire import TOKEN_HEADER, Caller, decode, encode

WHEN = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class StandInPeople:
    """What Gateway asks of the runtime's people: one call as a person."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def person_call(self, kind: Any, role: str, session: str, service: str, operation: str, **params: Any) -> Any:
        self.calls.append((kind, role, session, service, operation, params))
        if operation == "get_object":
            return {"Body": StreamingBody(io.BytesIO(b"release: r1\n"), 12), "LastModified": WHEN}
        if operation == "describe_model_package":
            raise ClientError(
                {
                    "Error": {"Code": "ValidationException", "Message": "Model package does not exist"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "DescribeModelPackage",
            )
        if operation == "get_item":
            raise RuntimeError("a bug")
        if operation == "list_objects_v2":  # as the runtime's client leaves it: keys already URL-decoded
            return {"EncodingType": "url", "Contents": [{"Key": "reports/a%2Bb.json"}], "KeyCount": 1}
        return {"CreationTime": WHEN}


class StandInRuntime:
    models_dir = ROOT / "models"
    table_name, config_bucket = "table", "bucket"

    def __init__(self) -> None:
        self.people = StandInPeople()
        self.clients = type("Clients", (), {"region": "us-east-1"})()


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    runtime = StandInRuntime()
    opened = Gateway(runtime, port=0)  # type: ignore[arg-type]
    opened.start(tmp_path / "up.json")
    yield opened, runtime, tmp_path / "up.json"
    opened.close()


def client(connection_file: Path, service: str, identity: str, policy: str | None = None) -> Any:
    forwarder = Forwarder(read_connection(connection_file), Caller(identity=identity, policy=policy))
    made = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x").client(
        service
    )
    made.meta.events.register_first("before-parameter-build", forwarder.keep_params)
    made.meta.events.register_first("before-call", forwarder.send)
    return made


def test_values_botocore_has_and_json_has_not_travel_and_come_back() -> None:
    value = {"When": WHEN, "Blob": b"\x00\xff", "List": [WHEN, {"Nested": b"x"}], "Plain": 1}
    assert decode(json.loads(json.dumps(encode(value)))) == value
    body = decode(json.loads(json.dumps(encode({"Body": StreamingBody(io.BytesIO(b"abc"), 3)}))))["Body"]
    assert body.read() == b"abc"


def test_a_call_is_made_as_the_catalog_person_and_its_answer_comes_back_typed(gateway: Any) -> None:
    _, runtime, connection = gateway
    s3 = client(connection, "s3", "omar@example.com")
    answer = s3.get_object(Bucket="bucket", Key="production-model-config.yaml")
    assert answer["Body"].read() == b"release: r1\n" and answer["LastModified"] == WHEN
    sagemaker = client(connection, "sagemaker", "alice@example.com")
    sagemaker.update_model_package(ModelPackageArn="arn:x", ModelApprovalStatus="Approved")
    assert runtime.people.calls == [
        ("operator", "PlatformOnCall", "omar@example.com", "s3", "get_object",
         {"Bucket": "bucket", "Key": "production-model-config.yaml"}),
        ("approver", "DataScientists", "alice@example.com", "sagemaker", "update_model_package",
         {"ModelPackageArn": "arn:x", "ModelApprovalStatus": "Approved"}),
    ]  # fmt: skip


def test_anyone_else_is_played_by_role_and_session_with_the_policy_asked_for(gateway: Any) -> None:
    _, runtime, connection = gateway
    client(connection, "sagemaker", "DataScientists/mallory@example.com", "approver").update_model_package(
        ModelPackageArn="arn:x", ModelApprovalStatus="Approved"
    )
    client(connection, "sagemaker", "Intruders/eve").update_model_package(
        ModelPackageArn="arn:x", ModelApprovalStatus="Approved"
    )
    played = [(kind, role, session) for kind, role, session, *_ in runtime.people.calls]
    assert played == [("approver", "DataScientists", "mallory@example.com"), (None, "Intruders", "eve")]


def test_aws_errors_are_raised_as_botocore_raises_them(gateway: Any) -> None:
    _, _, connection = gateway
    sagemaker = client(connection, "sagemaker", "omar@example.com")
    with pytest.raises(sagemaker.exceptions.ClientError) as raised:
        sagemaker.describe_model_package(ModelPackageName="missing")
    assert raised.value.response["Error"] == {"Code": "ValidationException", "Message": "Model package does not exist"}
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError, match=r"InternalFailure.*local runtime: RuntimeError: a bug"):
        client(connection, "dynamodb", "omar@example.com").get_item(TableName="t", Key={"pk": {"S": "x"}})


def test_unknown_people_a_wrong_token_and_a_stopped_runtime_are_refused(gateway: Any, tmp_path: Path) -> None:
    opened, runtime, connection = gateway
    with pytest.raises(LocalUnavailable, match=re.escape("'nobody@example.com' is none of the catalogs' people")):
        client(connection, "s3", "nobody@example.com").list_buckets()
    request = urllib.request.Request(f"{opened.url}/call", data=b"{}", headers={TOKEN_HEADER: "guess"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert runtime.people.calls == []  # nothing was made
    opened.close()
    with pytest.raises(LocalUnavailable, match="does not answer"):
        client(connection, "s3", "omar@example.com").list_buckets()
    with pytest.raises(LocalUnavailable, match="python -m local up"):
        read_connection(tmp_path / "absent.json")


def test_the_connection_file_is_its_owners_only(gateway: Any) -> None:
    _, _, connection = gateway
    assert connection.stat().st_mode & 0o077 == 0


def test_an_operator_of_any_model_gets_the_operators_policy() -> None:
    people = People(ROOT / "models")
    assert people.resolve(Caller(identity="omar@example.com")).kind == "operator"
    assert people.resolve(Caller(identity="bob@example.com")).kind == "approver"
    assert people.resolve(Caller(identity="PlatformOnCall/omar@example.com")).kind == "operator"
    assert people.resolve(Caller(identity="PlatformOnCall/someone")).kind is None
    assert people.resolve(Caller(identity="alice@example.com", policy="none")).kind is None


def test_an_old_connection_file_does_not_lend_its_permissions(tmp_path: Path) -> None:
    old = tmp_path / "up.json"
    old.write_text("{}")
    old.chmod(0o644)
    opened = Gateway(StandInRuntime(), port=0)  # type: ignore[arg-type]
    try:
        opened.start(old)
        assert old.stat().st_mode & 0o077 == 0
        assert read_connection(old).url == opened.url
    finally:
        opened.close()


def test_an_s3_listing_is_decoded_once(gateway: Any) -> None:
    """botocore URL-decodes the keys of a listing it asked to be URL-encoded: the runtime's client did; this one
    must not again (a key with a literal %2B stays as it is)."""
    _, _, connection = gateway
    listed = client(connection, "s3", "omar@example.com").list_objects_v2(Bucket="bucket", Prefix="reports/")
    assert [item["Key"] for item in listed["Contents"]] == ["reports/a%2Bb.json"]
