"""The optional SageMaker Studio stack (stacks/studio.py): synthesized on its own with cdk-nag, least privilege,
and absent from the default synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from promotion.contract.catalog import ModelCatalog, load_catalogs
from stacks.studio import StudioStack
from tests.infra.conftest import ROOT, STACK_NAME, Synth, as_list, flat, run_app, second_model_catalog

BUS_NAME = json.loads((ROOT / "cdk.json").read_text())["context"]["busName"]
TRAINING_ROLE = "arn:aws:iam::111122223333:role/PromotionTuning"
TRACKING_SERVER = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/data-science"


def synthesize(outdir: Path, catalogs: dict[str, ModelCatalog], **options: Any) -> dict[str, Any]:
    """The Studio stack alone in an app, checked by cdk-nag as app.py checks; fails on any unacknowledged finding."""
    app = cdk.App(outdir=str(outdir))
    StudioStack(app, "Studio", catalogs=catalogs, bus_name=BUS_NAME, **options)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    app.synth()  # raises ValidationFailed on an unacknowledged finding
    report = json.loads((outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    return dict(json.loads((outdir / "Studio.template.json").read_text()))


@pytest.fixture(scope="module")
def catalogs() -> dict[str, ModelCatalog]:
    return load_catalogs(ROOT / "models")


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory, catalogs: dict[str, ModelCatalog]) -> dict[str, Any]:
    """No context beyond the bus: bucket, VPC and subnets become deploy-time parameters."""
    return synthesize(tmp_path_factory.mktemp("studio-minimal"), catalogs)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, catalogs: dict[str, ModelCatalog]) -> dict[str, Any]:
    """Two models, every option: config bucket, network, tuning jobs and an MLflow tracking server."""
    from promotion.contract.catalog import parse_catalog

    churn = parse_catalog(second_model_catalog())
    return synthesize(
        tmp_path_factory.mktemp("studio-full"),
        {**catalogs, churn.id: churn},
        config_bucket_name="promotion-config-bucket",
        vpc_id="vpc-0123456789abcdef0",
        subnet_ids="subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb",
        tuning_role_arn=TRAINING_ROLE,
        mlflow_tracking_server_arn=TRACKING_SERVER,
    )


def statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The execution role's statements by Sid."""
    found: dict[str, dict[str, Any]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found[statement["Sid"]] = statement
    return found


def resources_of(statement: dict[str, Any]) -> list[str]:
    return sorted(flat(resource) for resource in as_list(statement["Resource"]))


def test_the_domain_is_vpc_only_with_iam_auth_and_a_rotated_key(minimal: dict[str, Any]) -> None:
    template = Template.from_json(minimal)
    template.resource_count_is("AWS::SageMaker::Domain", 1)
    template.has_resource_properties(
        "AWS::SageMaker::Domain",
        {
            "AuthMode": "IAM",
            "AppNetworkAccessType": "VpcOnly",
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("StorageKey"), "Arn"]},
            "VpcId": {"Ref": "StudioVpcId"},
            "SubnetIds": {"Ref": "StudioSubnetIds"},
            "DefaultUserSettings": {
                "ExecutionRole": {"Fn::GetAtt": [Match.string_like_regexp("ExecutionRole"), "Arn"]},
                "SecurityGroups": [{"Fn::GetAtt": ["AppsSecurityGroup", "GroupId"]}],
            },
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})]}
            )
        },
    )
    assert set(minimal["Parameters"]) >= {"ConfigBucketName", "StudioVpcId", "StudioSubnetIds"}
    ingress = [r["Properties"] for r in minimal["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert {(rule["FromPort"], rule["ToPort"]) for rule in ingress} == {(2049, 2049), (8192, 65535)}
    assert all(rule["SourceSecurityGroupId"] == {"Fn::GetAtt": ["AppsSecurityGroup", "GroupId"]} for rule in ingress)


def test_the_execution_role_has_exactly_the_data_scientists_grants(minimal: dict[str, Any]) -> None:
    granted = statements(minimal)
    assert set(granted) == {
        "ReadCatalogData",
        "ListCatalogData0",
        "WriteTuningOutputs",
        "ListTuningOutputs0",
        "ReadPromotionRecords",
        "ListPromotionRecords0",
        "ReadProductionHyperparameters",
        "DecideOnCandidates",
        "SeeCandidateGroups",
    }
    assert resources_of(granted["ReadCatalogData"]) == [
        "arn:<AWS::Partition>:s3:::fraud-detection-data/holdout/*",
        "arn:<AWS::Partition>:s3:::fraud-detection-data/train/*",
        "arn:<AWS::Partition>:s3:::fraud-detection-data/validation/*",
    ]
    assert granted["ReadCatalogData"]["Action"] == "s3:GetObject"
    assert resources_of(granted["WriteTuningOutputs"]) == ["arn:<AWS::Partition>:s3:::fraud-detection-models/tuning/*"]
    assert resources_of(granted["ReadPromotionRecords"]) == [
        "arn:<AWS::Partition>:s3:::<ConfigBucketName>/archive/fraud-detection/*",
        "arn:<AWS::Partition>:s3:::<ConfigBucketName>/production-model-config.yaml",
        "arn:<AWS::Partition>:s3:::<ConfigBucketName>/reports/fraud-detection/*",
    ]
    ssm = granted["ReadProductionHyperparameters"]
    assert sorted(ssm["Action"]) == ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    assert resources_of(ssm) == [
        "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/fraud-detection/hyperparameters",
        "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/fraud-detection/hyperparameters/*",
    ]
    # Studio's Model Registry: decide on the catalogs' candidates, nothing else (no decision on the product bus).
    decide = granted["DecideOnCandidates"]
    assert sorted(decide["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
        "sagemaker:UpdateModelPackage",
    ]
    assert resources_of(decide) == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/fraud-detection/*"
    ]
    for statement in granted.values():
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in as_list(statement["Action"]))
        assert "*" not in resources_of(statement)


def test_options_add_only_scoped_grants(full: dict[str, Any]) -> None:
    granted = statements(full)
    assert resources_of(granted["ReadCatalogData"]) == sorted(
        f"arn:<AWS::Partition>:s3:::{bucket}-data/{prefix}/*"
        for bucket in ("fraud-detection", "churn")
        for prefix in ("holdout", "train", "validation")
    )
    records = granted["ListPromotionRecords0"]
    assert flat(records["Resource"]) == "arn:<AWS::Partition>:s3:::promotion-config-bucket"
    assert records["Condition"]["StringLike"]["s3:prefix"] == [
        "archive/churn/*",
        "archive/fraud-detection/*",
        "churn-model-config.yaml*",
        "production-model-config.yaml*",
        "reports/churn/*",
        "reports/fraud-detection/*",
    ]
    launch = granted["LaunchCatalogTuningJobs"]
    assert launch["Condition"] == {"StringEquals": {"aws:RequestTag/promotion:model": ["churn", "fraud-detection"]}}
    assert granted["WatchCatalogTuningJobs"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/promotion:model": ["churn", "fraud-detection"]}
    }
    assert granted["PassTuningRole"]["Resource"] == TRAINING_ROLE
    assert granted["PassTuningRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert granted["UseTrackingServer"]["Resource"] == TRACKING_SERVER
    domain = next(r for r in full["Resources"].values() if r["Type"] == "AWS::SageMaker::Domain")
    assert domain["Properties"]["SubnetIds"] == ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
    assert domain["Properties"]["VpcId"] == "vpc-0123456789abcdef0"
    assert "Parameters" not in full or not {"ConfigBucketName", "StudioVpcId"} & set(full["Parameters"])


def test_every_acknowledgment_is_reasoned(full: dict[str, Any]) -> None:
    rules = [
        rule
        for resource in full["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert rules and all(rule["id"].startswith("AwsSolutions-IAM5[") and len(rule["reason"]) >= 40 for rule in rules)


def test_cfn_lint_finds_no_errors(full: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "studio.template.json"
    path.write_text(json.dumps(full))
    lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(lint), "--format", "parseable", str(path)], capture_output=True, text=True, check=False
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert not errors, result.stdout


def test_the_default_synth_has_no_studio_stack(synth: Synth) -> None:
    templates = sorted(path.name for path in synth.outdir.glob("*.template.json"))
    assert templates == [f"{STACK_NAME}.template.json"]


def test_the_studio_context_adds_the_stack_to_the_app(tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"
    result = run_app(outdir, ROOT / "models", {"studio": "true", "configBucketName": "promotion-config-bucket"})
    assert result.returncode == 0, result.stderr[-4000:]
    studio = json.loads((outdir / "ModelPromotionStudio.template.json").read_text())
    assert (outdir / f"{STACK_NAME}.template.json").is_file()
    assert flat(statements(studio)["DecideOnCandidates"]["Resource"]).endswith("model-package/fraud-detection/*")
