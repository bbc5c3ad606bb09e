"""Scanners on the synthesized app: checkov on the CloudFormation template (every failed check fixed or accepted
in .checkov-skips.yaml with its reason), asl-validator on the state machine's definition with real-looking ARNs.

Both tools are installed by `make tools`, which `make test` runs first: checkov in its own venv (.venv-tools, from
requirements-tools.txt: its pins conflict with requirements-dev.txt), asl-validator from package-lock.json.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ROOT, STACK_NAME, Synth, machine

pytestmark = pytest.mark.xdist_group("infra")

CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
SKIPS_FILE = ROOT / ".checkov-skips.yaml"
CHECKOV_SECONDS = 120  # measured: about 4 s
ASL_SECONDS = 30  # measured: about 0.5 s

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
}
# Resource type -> (the property that names it, its ARN, what Ref gives), each formatted with {name}.
RESOURCE_SHAPES: dict[str, tuple[str, str, str]] = {
    "AWS::Lambda::Function": ("FunctionName", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{name}}", "{name}"),
    "AWS::SNS::Topic": ("TopicName", f"arn:aws:sns:{REGION}:{ACCOUNT}:{{name}}", "arn"),
    "AWS::SQS::Queue": (
        "QueueName",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{name}}",
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{name}}",
    ),
    "AWS::DynamoDB::Table": ("TableName", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{name}}", "{name}"),
    "AWS::S3::Bucket": ("BucketName", "arn:aws:s3:::{name}", "{name}"),
    "AWS::Events::EventBus": ("Name", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{{name}}", "{name}"),
    "AWS::IAM::Role": ("RoleName", f"arn:aws:iam::{ACCOUNT}:role/{{name}}", "{name}"),
    "AWS::StepFunctions::StateMachine": (
        "StateMachineName",
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{{name}}",
        "arn",
    ),
}


def tool(path: Path, what: str) -> Path:
    """The installed tool, or a skip saying how to install it (a failure under CI, where `make test` installs it)."""
    if path.is_file():
        return path
    message = f"{what} is not installed ({path.relative_to(ROOT)}): run `make tools` (`make test` runs it first)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# ---------------------------------------------------------------------------------------------------- checkov


def load_skips() -> list[dict[str, Any]]:
    return list(yaml.safe_load(SKIPS_FILE.read_text())["skips"])


def accepted_by(finding: dict[str, Any], skips: list[dict[str, Any]]) -> list[int]:
    """Indexes of the skips that accept a failed check."""
    return [
        index
        for index, skip in enumerate(skips)
        if skip["check"] == finding["check_id"]
        and any(fnmatch.fnmatchcase(finding["resource"], pattern) for pattern in skip["resources"])
    ]


def test_every_checkov_skip_names_one_check_narrow_resources_and_a_reason() -> None:
    skips = load_skips()
    assert skips
    for skip in skips:
        assert set(skip) == {"check", "resources", "reason"}, skip
        assert skip["check"].startswith("CKV_AWS_"), skip
        assert skip["resources"], skip
        for pattern in skip["resources"]:
            kind, _, logical_id = pattern.partition(".")
            assert kind.startswith("AWS::") and "*" not in kind, f"{skip['check']}: {pattern} (one resource type)"
            assert logical_id.rstrip("*"), f"{skip['check']}: {pattern} must name a logical id prefix"
        assert len(skip["reason"]) >= 80, skip
    checks = [skip["check"] for skip in skips]
    assert len(checks) == len(set(checks)), "one entry per check: list its resource patterns together"


def test_checkov_finds_no_failed_check_that_is_not_accepted(synth: Synth, tmp_path: Path) -> None:
    checkov = tool(CHECKOV, "checkov")
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(checkov),
            "--file",
            str(synth.template_path),
            "--framework",
            "cloudformation",
            "--compact",
            "--output",
            "json",
            "--skip-download",  # no Prisma Cloud look-ups: runs offline, same checks
        ],
        cwd=tmp_path,  # no .checkov.yaml of a working directory changes the run
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    # checkov exits 1 when a check failed, 0 when none did; anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-4000:]
    reports = json.loads(result.stdout)
    (report,) = [
        r for r in (reports if isinstance(reports, list) else [reports]) if r["check_type"] == "cloudformation"
    ]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] >= 50 and summary["passed"] >= 100, f"checkov scanned too little: {summary}"

    skips = load_skips()
    failed = report["results"]["failed_checks"]
    unaccepted = [f"{f['check_id']} {f['resource']}: {f['check_name']}" for f in failed if not accepted_by(f, skips)]
    assert not unaccepted, "checkov failed checks that are neither fixed nor in .checkov-skips.yaml:\n" + "\n".join(
        unaccepted
    )
    used = {index for finding in failed for index in accepted_by(finding, skips)}
    stale = [f"{skip['check']} {skip['resources']}" for index, skip in enumerate(skips) if index not in used]
    assert not stale, f"entries of .checkov-skips.yaml that match no failed check any more (remove them): {stale}"
    assert seconds < CHECKOV_SECONDS, f"checkov took {seconds:.1f} s"


def test_dead_letter_queues_are_encrypted(synth: Synth) -> None:
    """What the CKV_AWS_27 skip relies on: SSE-SQS (or a KMS key) on every queue."""
    queues = synth.resources("AWS::SQS::Queue")
    assert queues
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id


def test_functions_invoked_asynchronously_have_an_on_failure_destination(synth: Synth) -> None:
    """What the CKV_AWS_116 skip relies on: every function an EventBridge rule invokes (asynchronously) sends its
    failed invocations to an on-failure destination."""
    functions = synth.resources("AWS::Lambda::Function")
    targeted = {
        target["Arn"]["Fn::GetAtt"][0]
        for rule in synth.resources("AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
        if isinstance(target["Arn"], dict) and target["Arn"].get("Fn::GetAtt", [""])[0] in functions
    }
    assert len(targeted) >= 1  # approval_decision (rollback requests start a state machine, synchronously)
    destinations = {
        config["Properties"]["FunctionName"]["Ref"]: config["Properties"]
        for config in synth.resources("AWS::Lambda::EventInvokeConfig").values()
    }
    for logical_id in sorted(targeted):
        assert logical_id in destinations, f"{logical_id} is a rule target without an EventInvokeConfig"
        on_failure = destinations[logical_id].get("DestinationConfig", {}).get("OnFailure", {})
        assert on_failure.get("Destination"), f"{logical_id} has no on-failure destination"


# ---------------------------------------------------------------------------------------------------- asl-validator


def resolve(token: Any, resources: dict[str, Any]) -> str:
    """A Ref / Fn::GetAtt of the template as the value CloudFormation would give it in a plausible deployment."""
    if isinstance(token, str):
        return token
    if "Ref" in token and token["Ref"] in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[token["Ref"]]
    logical_id, attribute = (token["Ref"], "Ref") if "Ref" in token else token.get("Fn::GetAtt", (None, None))
    resource = resources.get(logical_id)
    if resource is None or resource["Type"] not in RESOURCE_SHAPES:
        pytest.fail(f"no plausible value for {token} ({resource and resource['Type']}): add it to RESOURCE_SHAPES")
    name_property, arn, ref = RESOURCE_SHAPES[resource["Type"]]
    given = resource["Properties"].get(name_property)
    name = given if isinstance(given, str) else f"{STACK_NAME}-{logical_id}"[:64]  # CloudFormation's made-up name
    if attribute == "Arn" or (attribute == "Ref" and ref == "arn"):
        return arn.format(name=name)
    if attribute == "Ref":
        return ref.format(name=name)
    if attribute == "Name":
        return str(name)
    pytest.fail(f"no plausible value for {token}: attribute {attribute}")


def deployable_definition(synth: Synth, output: str = "StateMachineArn") -> dict[str, Any]:
    """A state machine's ASL as Step Functions would receive it: the Fn::Join resolved with plausible ARNs."""
    body = machine(synth, output)["Properties"]["DefinitionString"]
    if isinstance(body, dict):
        delimiter, parts = body["Fn::Join"]
        body = delimiter.join(resolve(part, synth.template["Resources"]) for part in parts)
    return dict(json.loads(body))


def asl_validate(definition: dict[str, Any], path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    path.write_text(json.dumps(definition, indent=2))
    started = time.perf_counter()
    result = subprocess.run(
        [str(tool(ASL_VALIDATOR, "asl-validator")), "--json-path", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result, time.perf_counter() - started


def test_the_definition_has_no_token_left_and_real_arns(synth: Synth) -> None:
    text = json.dumps(deployable_definition(synth))
    assert "${" not in text and "Fn::" not in text and '"Ref"' not in text
    assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:" in text
    assert "arn:aws:states:::lambda:invoke.waitForTaskToken" in text


@pytest.mark.parametrize("output", ["StateMachineArn", "OperatorRollbackStateMachineArn"])
def test_asl_validator_accepts_the_definition(synth: Synth, tmp_path: Path, output: str) -> None:
    result, seconds = asl_validate(deployable_definition(synth, output), tmp_path / "definition.json")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert seconds < ASL_SECONDS, f"asl-validator took {seconds:.1f} s"


@pytest.mark.parametrize(
    ("state", "field", "value", "reported"),
    [
        ("WriteConfig", "Next", "NoSuchState", "NoSuchState"),  # a transition to no state
        ("WriteParameters", "Resource", "not-an-arn", "/States/WriteParameters/Resource"),  # the ARN check
    ],
)
def test_asl_validator_rejects_a_broken_definition(
    synth: Synth, tmp_path: Path, state: str, field: str, value: str, reported: str
) -> None:
    """The validator really checks: the same definition with one defect fails, naming it."""
    broken = copy.deepcopy(deployable_definition(synth))
    broken["States"][state][field] = value
    result, _ = asl_validate(broken, tmp_path / "broken.json")
    assert result.returncode != 0
    assert reported in result.stdout + result.stderr
