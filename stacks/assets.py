"""The two Lambda layers' contents, prepared on the synth machine (no Docker).

- Dependencies layer: `pip install --platform manylinux2014_x86_64 --only-binary=:all:` of requirements.txt into
  `build/layer-deps/python`, rebuilt only when requirements.txt changes (its SHA-256 is kept beside the packages).
- Promotion layer: the domain package plus every catalog, re-dumped from its validated model, staged fresh at each
  synth so the layer ships exactly the catalogs the stack was built from.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from promotion.catalog import ModelCatalog, parse_catalog

LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
REQUIREMENTS_HASH_FILE = ".requirements.sha256"
IGNORED_FILES = ("__pycache__", "*.pyc")


class AssetError(RuntimeError):
    """A Lambda asset (layer contents, function code) could not be prepared; the message says what to do."""


def pip_command(requirements: Path, target: Path) -> list[str]:
    """The pip command that builds the dependencies layer for the Lambda runtime (x86_64, CPython 3.14). Without
    dependencies: requirements.txt lists the closure, leaving out what the runtime provides (boto3, botocore)."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--platform", LAMBDA_PLATFORM, "--only-binary=:all:", "--python-version", LAMBDA_PYTHON_VERSION,
        "--implementation", "cp", "--no-deps", "--target", str(target / "python"), "-r", str(requirements),
    ]  # fmt: skip


def ensure_dependencies_layer(requirements: Path, layer_dir: Path) -> Path:
    """`layer_dir` holding requirements.txt's packages under python/, built with pip only when requirements changed."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker = layer_dir / REQUIREMENTS_HASH_FILE
    if marker.is_file() and marker.read_text().strip() == digest and (layer_dir / "python").is_dir():
        return layer_dir
    layer_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the final place and swap, so an interrupted pip never leaves a half layer that looks complete.
    scratch = Path(tempfile.mkdtemp(prefix=f".{layer_dir.name}-", dir=layer_dir.parent))
    command = pip_command(requirements, scratch)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shown = shlex.join(pip_command(requirements, layer_dir))
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise AssetError(
                f"could not build the Lambda dependencies layer {layer_dir} (pip exited {result.returncode}):\n  "
                + "\n  ".join(detail)
                + f"\nBuild it by hand with:\n  {shown}\nthen write the SHA-256 of {requirements} to "
                f"{marker} (or just re-run the synth once pip works)."
            )
        (scratch / REQUIREMENTS_HASH_FILE).write_text(digest + "\n")
        shutil.rmtree(layer_dir, ignore_errors=True)
        scratch.rename(layer_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return layer_dir


def stage_promotion_layer(package_dir: Path, catalogs: Mapping[str, ModelCatalog], staging_dir: Path) -> Path:
    """Stage `python/promotion/**` and `catalog/<id>.yaml` (validated, re-dumped) into a fresh `staging_dir`."""
    if not (package_dir / "__init__.py").is_file():
        raise AssetError(f"the promotion package is missing: {package_dir}/__init__.py not found")
    shutil.rmtree(staging_dir, ignore_errors=True)
    shutil.copytree(package_dir, staging_dir / "python" / "promotion", ignore=shutil.ignore_patterns(*IGNORED_FILES))
    catalog_dir = staging_dir / "catalog"
    catalog_dir.mkdir(parents=True)
    for model_id, catalog in sorted(catalogs.items()):
        target = catalog_dir / f"{model_id}.yaml"
        text = yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True), sort_keys=False, allow_unicode=True)
        # The dump must read back as the same catalog, or the Lambdas would run on something else than was checked.
        if parse_catalog(yaml.safe_load(text), target) != catalog:
            raise AssetError(f"catalog {model_id} does not survive a YAML round trip; refusing to ship it")
        target.write_text(f"# Generated at synth from the validated model catalog {model_id}; do not edit.\n{text}")
    return staging_dir
