"""Finding and synthesizing the stack: cdk.out is used when fresh, re-synthesized when any source is newer."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from local.template import StackTemplate, TemplateError, load_stack, needs_synth


def test_a_fresh_assembly_needs_no_synth(mini_root: Path) -> None:
    assert needs_synth(mini_root, mini_root / "cdk.out") is None


def test_a_missing_assembly_needs_a_synth(tmp_path: Path) -> None:
    assert "no synthesized stack" in str(needs_synth(tmp_path, tmp_path / "cdk.out"))


def test_a_newer_function_file_makes_the_assembly_stale(mini_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "app"
    shutil.copytree(mini_root, copy)
    handler = copy / "functions" / "echo" / "handler.py"
    later = time.time() + 60
    os.utime(handler, (later, later))
    assert str(handler) in str(needs_synth(copy, copy / "cdk.out"))


def test_the_stack_with_the_state_machine_is_chosen(mini_stack: StackTemplate) -> None:
    assert mini_stack.name == "MiniStack"
    assert len(mini_stack.of_type("AWS::StepFunctions::StateMachine")) == 1


def test_code_assets_resolve_from_the_s3_key_without_asset_metadata(mini_stack: StackTemplate) -> None:
    # `python app.py` (no CDK CLI) writes no aws:asset:path metadata: the assets manifest maps S3Key to the asset.
    ((logical_id, echo),) = ((k, v) for k, v in mini_stack.of_type("AWS::Lambda::Function").items() if "Echo" in k)
    asset = mini_stack.asset_dir(logical_id, echo["Properties"]["Code"])
    assert asset is not None and (asset / "handler.py").read_text().count('WHO = "echo"') == 1


def test_asset_metadata_wins_when_cdk_wrote_it(mini_stack: StackTemplate) -> None:
    body = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "asset.abc"}}}}
    stack = StackTemplate(name="S", path=mini_stack.path, assembly_dir=mini_stack.assembly_dir, body=body)
    assert stack.asset_dir("Fn", {"S3Key": "ignored.zip"}) == mini_stack.assembly_dir / "asset.abc"


def test_a_failing_synth_says_why(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise SystemExit('the catalog is broken')\n")
    with pytest.raises(TemplateError, match="the catalog is broken"):
        load_stack(tmp_path)


def test_no_app_no_stack(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no CDK app"):
        load_stack(tmp_path)
