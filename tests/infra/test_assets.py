"""Layer preparation without a synth: the pip build is cached by requirements hash and fails with what to run."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from promotion.contract.catalog import load_catalogs
from stacks.assets import (
    LAYER_LOCK,
    REQUIREMENTS_HASH_FILE,
    AssetError,
    check_layer_lock,
    ensure_dependencies_layer,
    stage_promotion_layer,
)
from tests.infra.conftest import ROOT

pytestmark = pytest.mark.xdist_group("infra")


def test_dependencies_layer_is_not_rebuilt_when_requirements_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyyaml==6.0.3\n")
    layer = tmp_path / "build" / "layer-deps"
    (layer / "python").mkdir(parents=True)
    (layer / REQUIREMENTS_HASH_FILE).write_text(hashlib.sha256(requirements.read_bytes()).hexdigest() + "\n")

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run for unchanged requirements")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert ensure_dependencies_layer(requirements, layer) == layer


def test_a_failing_pip_says_what_to_run_and_leaves_no_half_layer(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this is not a requirement line !!\n")  # rejected by pip before any download
    layer = tmp_path / "build" / "layer-deps"
    with pytest.raises(AssetError) as raised:
        ensure_dependencies_layer(requirements, layer)
    message = str(raised.value)
    assert "could not build the Lambda dependencies layer" in message
    assert "Build it by hand with:" in message
    for part in (
        "--require-hashes",
        "--platform manylinux2014_x86_64",
        "--only-binary=:all:",
        "--python-version 3.14",
        str(requirements),
    ):
        assert part in message
    assert not layer.exists()
    assert list((tmp_path / "build").iterdir()) == []


def test_promotion_layer_is_staged_fresh(tmp_path: Path) -> None:
    staging = tmp_path / "promotion-layer"
    (staging / "catalog").mkdir(parents=True)
    (staging / "catalog" / "removed-model.yaml").write_text("stale")
    catalogs = load_catalogs(ROOT / "models")
    stage_promotion_layer(ROOT / "layers" / "promotion" / "python" / "promotion", catalogs, staging)
    assert sorted(p.name for p in (staging / "catalog").iterdir()) == sorted(f"{m}.yaml" for m in catalogs)
    assert load_catalogs(staging / "catalog") == catalogs
    assert (staging / "python" / "promotion" / "__init__.py").is_file()


def test_a_missing_package_is_reported(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="promotion package is missing"):
        stage_promotion_layer(tmp_path / "nowhere", {}, tmp_path / "staging")


def _distributions(site: Path) -> dict[str, list[str]]:
    """name -> unconditional Requires-Dist names, from the layer's *.dist-info/METADATA."""
    import re

    found: dict[str, list[str]] = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        lines = metadata.read_text(encoding="utf-8").splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Name:"))
        requires = [
            re.split(r"[ ;<>=!~\[(]", line.split(":", 1)[1].strip(), maxsplit=1)[0]
            for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
        found[re.sub(r"[-_.]+", "-", name).lower()] = [re.sub(r"[-_.]+", "-", r).lower() for r in requires]
    return found


def test_the_layer_bundles_its_whole_closure_but_no_aws_sdk(synth: Any) -> None:
    """The Lambda runtime provides boto3 and botocore; a copy in the layer (/opt/python comes first on sys.path)
    would shadow them and mismatch the runtime's boto3. Everything else the layer's packages need is in it."""
    site = ROOT / "build" / "layer-deps" / "python"
    bundled = _distributions(site)
    assert bundled, f"no layer built at {site}"
    assert not {"boto3", "botocore", "s3transfer"} & set(bundled)
    assert not any((site / name).exists() for name in ("boto3", "botocore", "s3transfer"))
    runtime_provided = {"boto3", "botocore"}
    missing = {
        f"{name} needs {needed}"
        for name, requires in bundled.items()
        for needed in requires
        if needed not in bundled and needed not in runtime_provided
    }
    assert missing == set()


def test_the_layer_lock_pins_requirements_txt_with_a_sha256_for_each_wheel() -> None:
    """requirements-layer.txt is what the layer is built from: requirements.txt's versions, each with a hash."""
    check_layer_lock(ROOT / "requirements.txt", ROOT / LAYER_LOCK)


def test_a_stale_or_unhashed_lock_stops_the_synth_and_says_how_to_refresh_it(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyyaml==6.0.3\n")
    lock = tmp_path / LAYER_LOCK
    lock.write_text("pyyaml==6.0.2 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(AssetError, match=r"does not pin requirements\.txt's versions .* run `make layer-lock`"):
        check_layer_lock(requirements, lock)
    lock.write_text("pyyaml==6.0.3\n")
    with pytest.raises(AssetError, match=r"has no SHA-256 for \['pyyaml'\]"):
        check_layer_lock(requirements, lock)
    lock.unlink()
    with pytest.raises(AssetError, match="is missing: run `make layer-lock`"):
        check_layer_lock(requirements, lock)


def test_pip_refuses_a_wheel_whose_bytes_are_not_the_locked_ones(tmp_path: Path) -> None:
    """The hash is enforced, not decorative: a lock naming other bytes builds no layer."""
    lock = tmp_path / LAYER_LOCK
    lock.write_text("pyyaml==6.0.3 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    layer = tmp_path / "build" / "layer-deps"
    with pytest.raises(AssetError, match="DO NOT MATCH THE HASHES"):
        ensure_dependencies_layer(lock, layer)
    assert not layer.exists()
