"""One synthesis of the real app (`python app.py`, cdk-nag included) shared by every infra test.

The app is synthesized once per session, from a models folder holding the real catalog plus a second model
(`churn`, its own Parameter Store prefix, config key and data), with one approval principal in the context: the
same template then shows that a second catalog file needs no code change. Under xdist (`make test` runs `-n 2`) the
workers share that one synth through a file lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Before aws_cdk (jsii) starts in this process.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from stacks.nag import flatten_cfn_reference

ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "ModelPromotion"
SECOND_MODEL = "churn"
TRACKING_SERVER = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/churn-team"


@dataclass(frozen=True)
class Synth:
    """What one `python app.py` run left behind."""

    outdir: Path
    models_dir: Path
    template: dict[str, Any]
    seconds: float

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{STACK_NAME}.template.json"

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == resource_type}


def run_app(outdir: Path, models_dir: Path, context: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """`python app.py` as `make synth` runs it, into `outdir`, on the catalogs of `models_dir`."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "PROMOTION_MODELS_DIR": str(models_dir),
        "CDK_CONTEXT_JSON": json.dumps(context or {}),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def second_model_catalog() -> dict[str, Any]:
    """The fraud-detection catalog turned into another model: only data, no code."""
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["id"] = SECOND_MODEL
    document["description"] = "Customer churn classifier (infra test copy)"
    document["parameter_store"]["prefix"] = f"/{SECOND_MODEL}/hyperparameters"
    document["config"]["key"] = f"{SECOND_MODEL}-model-config.yaml"
    document["training"]["train_data"] = "s3://churn-data/train/"
    document["training"]["validation_data"] = "s3://churn-data/validation/"
    document["training"]["output_path"] = "s3://churn-models/production/"
    document["comparison"]["holdout_data"] = "s3://churn-data/holdout/"
    document["rollout"]["endpoint_name"] = "churn-prod"
    # Its team's SageMaker managed MLflow server: every promotion of churn is recorded there.
    document["tracking"] = {"mlflow_uri": TRACKING_SERVER, "experiment": "churn-promotions"}
    # Not monitored: no capture, drift checks or retraining grants for churn.
    document.pop("monitoring", None)
    # Its team's chat channels (fraud-detection names none): AWS Chatbot posts every notice of the topic there.
    document["notifications"] = {
        "slack": [{"workspace_id": "T0123ABCD", "channel_id": "C0456EFGH"}],
        "teams": [
            {
                "team_id": "0a1b2c3d-0000-4000-8000-000000000001",
                "tenant_id": "0a1b2c3d-0000-4000-8000-000000000002",
                "channel_id": "19%3Aabc%40thread.tacv2",
            }
        ],
    }
    return dict(document)


def synthesize(workdir: Path) -> Synth:
    """Write the models folder and run the app once into `workdir`; fails the test session if the synth fails."""
    models = workdir / "models"
    outdir = workdir / "cdk.out"
    record = workdir / "synth.json"
    if not record.exists():
        models.mkdir(parents=True, exist_ok=True)
        for path in (ROOT / "models").glob("*.yaml"):
            (models / path.name).write_text(path.read_text())
        (models / f"{SECOND_MODEL}.yaml").write_text(yaml.safe_dump(second_model_catalog(), sort_keys=False))
        started = time.perf_counter()
        result = run_app(outdir, models, {})
        seconds = time.perf_counter() - started
        record.write_text(json.dumps({"returncode": result.returncode, "stderr": result.stderr, "seconds": seconds}))
    outcome = json.loads(record.read_text())
    if outcome["returncode"] != 0:
        pytest.fail(f"python app.py failed ({outcome['returncode']}):\n{outcome['stderr'][-6000:]}", pytrace=False)
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synth(outdir=outdir, models_dir=models, template=template, seconds=outcome["seconds"])


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # pytest 9 ignores xdist's `--dist loadgroup` grouping (xdist 3.8 renames `item._nodeid`, which pytest 9 no
    # longer reads), so under xdist the workers share one synth through a lock instead of each running their own.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return synthesize(tmp_path_factory.mktemp("synth"))
    shared = tmp_path_factory.getbasetemp().parent / f"infra-synth-{run_id}"
    shared.mkdir(exist_ok=True)
    with (shared / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return synthesize(shared)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    return Template.from_json(synth.template)


def flat(value: Any) -> str:
    """A CloudFormation value as one string, references as <LogicalId> / <LogicalId.Attr> (cdk-nag's notation)."""
    return flatten_cfn_reference(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def machine_id(synth: Synth, output: str = "StateMachineArn") -> str:
    """The logical id of a state machine the stack outputs: StateMachineArn (the promotion machine) or
    OperatorRollbackStateMachineArn (the machine that carries out operators' rollback requests)."""
    logical_id = str(synth.template["Outputs"][output]["Value"]["Ref"])
    assert synth.template["Resources"][logical_id]["Type"] == "AWS::StepFunctions::StateMachine"
    return logical_id


def machine(synth: Synth, output: str = "StateMachineArn") -> dict[str, Any]:
    return dict(synth.template["Resources"][machine_id(synth, output)])


def machine_definition(synth: Synth, output: str = "StateMachineArn") -> dict[str, Any]:
    """A state machine's ASL with every token replaced by its flattened reference (valid JSON, same structure)."""
    parts = machine(synth, output)["Properties"]["DefinitionString"]["Fn::Join"][1]
    return dict(json.loads("".join(part if isinstance(part, str) else flat(part) for part in parts)))


@pytest.fixture(scope="session")
def definition(synth: Synth) -> dict[str, Any]:
    """The promotion state machine's ASL with every token replaced by its flattened reference."""
    return machine_definition(synth)


@pytest.fixture(scope="session")
def functions_by_step(synth: Synth) -> dict[str, str]:
    """Step directory name (functions/<name>) -> logical id of the Lambda whose code asset is that directory."""
    handlers = {path.parent.name: path.read_bytes() for path in (ROOT / "functions").glob("*/handler.py")}
    found: dict[str, str] = {}
    for logical_id, resource in synth.resources("AWS::Lambda::Function").items():
        asset = synth.outdir / resource["Metadata"]["aws:asset:path"] / "handler.py"
        matches = [name for name, code in handlers.items() if asset.is_file() and asset.read_bytes() == code]
        assert len(matches) == 1, f"{logical_id}: its code asset matches {matches or 'no'} functions/<step>/handler.py"
        found[matches[0]] = logical_id
    return found


def role_statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement granted to one role: its inline policies and the AWS::IAM::Policy resources attached to it."""
    role = synth.template["Resources"][role_logical_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def function_role(synth: Synth, function_logical_id: str) -> str:
    role = synth.template["Resources"][function_logical_id]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])
