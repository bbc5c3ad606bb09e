"""The two Lambda layers' contents, prepared on the synth machine (no Docker).

- Dependencies layer: `pip install --require-hashes --platform manylinux2014_x86_64 --only-binary=:all:` of
  requirements-layer.txt (requirements.txt's pins with the SHA-256 of each wheel the Lambda runtime gets, written
  by `make layer-lock`) into `build/layer-deps/python`, rebuilt only when that file changes (its SHA-256 is kept
  beside the packages). A wheel whose bytes differ from the recorded hash is refused by pip.
- Promotion layer: the domain package plus every catalog, re-dumped from its validated model, staged fresh at each
  synth so the layer ships exactly the catalogs the stack was built from.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from promotion.contract.catalog import ModelCatalog, parse_catalog

LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
REQUIREMENTS_HASH_FILE = ".requirements.sha256"
LAYER_LOCK = "requirements-layer.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
IGNORED_FILES = ("__pycache__", "*.pyc")


class AssetError(RuntimeError):
    """A Lambda asset (layer contents, function code) could not be prepared; the message says what to do."""


def _platform() -> list[str]:
    return [
        "--platform", LAMBDA_PLATFORM, "--only-binary=:all:", "--python-version", LAMBDA_PYTHON_VERSION,
        "--implementation", "cp", "--no-deps",
    ]  # fmt: skip


def pip_command(requirements: Path, target: Path) -> list[str]:
    """The pip command that builds the dependencies layer for the Lambda runtime (x86_64, CPython 3.14). Without
    dependencies: the requirements list the closure, leaving out what the runtime provides (boto3, botocore); with
    hashes: every wheel must have the recorded SHA-256."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
        *_platform(), "--target", str(target / "python"), "-r", str(requirements),
    ]  # fmt: skip


def pins(requirements: Path) -> dict[str, str]:
    """{normalized name: version} of a requirements file's `name==version` lines."""
    found: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[_normalized(match[1])] = match[2]
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_layer_lock(requirements: Path, lock: Path) -> None:
    """The lock pins exactly requirements.txt's versions, each with a SHA-256: otherwise synth stops and says how to
    refresh it (a version bumped in one file and not the other would ship what nobody tested)."""
    if not lock.is_file():
        raise AssetError(f"{lock} is missing: run `make layer-lock` to write it from {requirements.name}")
    wanted, locked = pins(requirements), pins(lock)
    if wanted != locked:
        changed = sorted(set(wanted.items()) ^ set(locked.items()))
        raise AssetError(f"{lock.name} does not pin {requirements.name}'s versions ({changed}): run `make layer-lock`")
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    unhashed = [entry.split("==")[0] for entry in entries if _PIN.match(entry) and not _HASH.search(entry)]
    if unhashed:
        raise AssetError(f"{lock.name} has no SHA-256 for {unhashed}: run `make layer-lock`")


def write_layer_lock(requirements: Path, lock: Path) -> None:
    """Download the wheels pip picks for the Lambda runtime and write `lock`: requirements.txt's pins, each with its
    wheel's SHA-256 (one wheel per pin: the layer has one platform)."""
    with tempfile.TemporaryDirectory(prefix="layer-wheels-") as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", *_platform(),
            "--dest", scratch, "-r", str(requirements),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        wheels = {_normalized(path.name.split("-")[0]): path for path in Path(scratch).glob("*.whl")}
        lines = [
            "# The Lambda layer's wheels, pinned by SHA-256 (pip --require-hashes, stacks/assets.py): written by",
            f"# `make layer-lock` from {requirements.name} for {LAMBDA_PLATFORM}, CPython {LAMBDA_PYTHON_VERSION}.",
        ]
        for name, version in sorted(pins(requirements).items()):
            digest = hashlib.sha256(wheels[name].read_bytes()).hexdigest()
            lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
        lock.write_text("\n".join(lines) + "\n")


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


if __name__ == "__main__":  # `python -m stacks.assets lock` (make layer-lock)
    ROOT = Path(__file__).resolve().parents[1]
    if sys.argv[1:] != ["lock"]:
        raise SystemExit("usage: python -m stacks.assets lock")
    write_layer_lock(ROOT / "requirements.txt", ROOT / LAYER_LOCK)
