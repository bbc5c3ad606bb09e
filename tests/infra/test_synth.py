"""The synth as a whole: cdk-nag clean with reasoned acknowledgments, cfn-lint clean, clear failures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import ROOT, Synth, as_list, flat, run_app

pytestmark = pytest.mark.xdist_group("infra")


def cfn_lint() -> str:
    local = Path(sys.executable).with_name("cfn-lint")
    found = str(local) if local.is_file() else shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint is not installed (it is in requirements-dev.txt)")
    return found


def test_cdk_nag_reports_nothing_unacknowledged(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_every_acknowledgment_has_a_reason(synth: Synth) -> None:
    acknowledged = [
        rule
        for resource in synth.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged
    for rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-"), rule
        assert len(rule["reason"]) >= 40, rule


def test_wildcard_acknowledgments_name_resources_the_policy_really_has(synth: Synth) -> None:
    """An IAM5 acknowledgment is precise: its resource appears in the acknowledged policy (no stale or broad ones)."""
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        resources = {
            flat(resource)
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for resource in as_list(statement["Resource"])
        }
        for rule in policy.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            if rule["id"].startswith("AwsSolutions-IAM5[Resource::"):
                resource = rule["id"].removeprefix("AwsSolutions-IAM5[Resource::").removesuffix("]")
                assert resource in resources, (logical_id, rule["id"])


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    result = subprocess.run(
        [cfn_lint(), "--format", "parseable", str(synth.template_path)], capture_output=True, text=True, check=False
    )
    # cfn-lint's exit code is a bit field: 2 errors, 4 warnings (CDK's redundant DependsOn: W3005), 8 informational.
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert result.returncode & 2 == 0 and not errors, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode & 1 == 0, result.stderr[-2000:]


def test_synth_is_reasonably_fast(synth: Synth) -> None:
    assert synth.seconds < 120, f"python app.py took {synth.seconds:.1f} s"


def test_an_invalid_catalog_fails_the_synth_naming_file_and_field(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["thresholds"]["pass"] = 1.5
    (models / "fraud-detection.yaml").write_text(yaml.safe_dump(document))
    started = time.perf_counter()
    result = run_app(tmp_path / "cdk.out", models)
    assert result.returncode == 1
    assert "fraud-detection.yaml" in result.stderr
    assert "thresholds.pass" in result.stderr
    assert result.stderr.startswith("synth failed: invalid model catalog")
    assert "Traceback" not in result.stderr and "jsii" not in result.stderr
    assert not (tmp_path / "cdk.out").exists()
    assert time.perf_counter() - started < 30  # fails before jsii starts


def test_a_models_folder_without_catalogs_fails_clearly(tmp_path: Path) -> None:
    result = run_app(tmp_path / "cdk.out", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"synth failed: no model catalogs (*.yaml) in {tmp_path}"


def test_a_catalog_that_could_overflow_the_execution_history_fails_the_synth(tmp_path: Path) -> None:
    """Step Functions keeps 25,000 events per execution: a week's bake per stage looked at every 5 minutes cannot."""
    models = tmp_path / "models"
    models.mkdir()
    document = yaml.safe_load((ROOT / "models" / "fraud-detection.yaml").read_text())
    document["rollout"]["bake_minutes"] = 7 * 24 * 60
    document["rollout"]["look_minutes"] = 5
    (models / "fraud-detection.yaml").write_text(yaml.safe_dump(document))
    result = run_app(tmp_path / "cdk.out", models)
    assert result.returncode == 1
    assert result.stderr.startswith("synth failed: model fraud-detection: a promotion could need")
    assert "set by rollout.bake_minutes" in result.stderr
    assert not (tmp_path / "cdk.out").exists()
