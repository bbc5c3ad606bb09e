"""Finding the synthesized stack: the local runtime runs the template `python app.py` wrote, never a copy of the flow.

`cdk.out` is re-synthesized when it is missing or older than any source it is built from (app.py, stacks/,
functions/, layers/, models/, jobs/), so a local run can never use a stale definition without saying so.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.errors import SetupError

# Everything the synthesized template is built from; a change under any of them makes cdk.out stale.
SYNTH_SOURCES = ("app.py", "stacks", "functions", "layers", "models", "jobs")  # jobs/: the job image's content
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class TemplateError(SetupError):
    """The stack cannot be synthesized or read; the message says which file and what is wrong."""


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized CloudFormation stack and the cloud assembly it lives in."""

    name: str
    path: Path
    assembly_dir: Path
    body: dict[str, Any]
    # asset object key (as the template's Code.S3Key names it) -> staged asset directory
    assets_by_key: dict[str, Path] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body.get("Resources", {})
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one CloudFormation type, by logical id, in template order."""
        return {logical_id: r for logical_id, r in self.resources.items() if r.get("Type") == resource_type}

    def asset_dir(self, logical_id: str, code: Any) -> Path | None:
        """Where a Lambda function's or layer's code was staged: `Metadata.aws:asset:path` when CDK wrote it
        (the CDK CLI asks for it), else the asset whose object key the template's `S3Key` names."""
        metadata = self.resources[logical_id].get("Metadata", {})
        asset_path = metadata.get("aws:asset:path")
        if isinstance(asset_path, str):
            candidate = Path(asset_path)
            return candidate if candidate.is_absolute() else self.assembly_dir / candidate
        if isinstance(code, dict) and isinstance(code.get("S3Key"), str):
            return self.assets_by_key.get(code["S3Key"])
        return None


def newest_source_mtime(root: Path, sources: Iterable[str] = SYNTH_SOURCES) -> tuple[float, Path | None]:
    """The newest modification time among the synth sources under `root` (and the file that has it)."""
    newest, newest_path = 0.0, None
    for name in sources:
        top = root / name
        if not top.exists():
            continue
        paths = [top] if top.is_file() else (p for p in top.rglob("*") if p.is_file())
        for path in paths:
            if _IGNORED_PARTS.intersection(path.parts) or path.suffix == ".pyc":
                continue
            mtime = path.stat().st_mtime
            if mtime > newest:
                newest, newest_path = mtime, path
    return newest, newest_path


def _stack_templates(assembly_dir: Path) -> dict[str, Path]:
    """Stack name -> template file, from the cloud assembly manifest (falls back to *.template.json)."""
    manifest_path = assembly_dir / "manifest.json"
    stacks: dict[str, Path] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        for artifact_id, artifact in manifest.get("artifacts", {}).items():
            if artifact.get("type") == "aws:cloudformation:stack":
                template_file = artifact.get("properties", {}).get("templateFile", f"{artifact_id}.template.json")
                stacks[artifact.get("displayName", artifact_id).split("/")[-1]] = assembly_dir / template_file
    if not stacks:
        for path in sorted(assembly_dir.glob("*.template.json")):
            stacks[path.name.removesuffix(".template.json")] = path
    return stacks


def needs_synth(root: Path, assembly_dir: Path) -> str | None:
    """Why cdk.out must be synthesized again, or None when it is up to date."""
    templates = _stack_templates(assembly_dir) if assembly_dir.is_dir() else {}
    if not templates:
        return f"{assembly_dir} has no synthesized stack"
    oldest_template = min(path.stat().st_mtime for path in templates.values() if path.exists())
    newest, newest_path = newest_source_mtime(root)
    if newest > oldest_template:
        return f"{newest_path} is newer than the synthesized template"
    return None


def synthesize(root: Path, reason: str) -> None:
    """Run `python app.py` in `root` (the CDK app writes cdk.out itself; no CDK CLI needed)."""
    print(f"local: synthesizing the CDK app ({reason}) ...", file=sys.stderr, flush=True)
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    completed = subprocess.run(
        [sys.executable, "app.py"], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout)[-4000:]
        raise TemplateError(f"`python app.py` failed in {root} (exit {completed.returncode}):\n{tail}")


def _assets_by_key(assembly_dir: Path, template_path: Path) -> dict[str, Path]:
    assets_file = template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
    if not assets_file.exists():
        return {}
    manifest = json.loads(assets_file.read_text(encoding="utf-8"))
    by_key: dict[str, Path] = {}
    for asset in manifest.get("files", {}).values():
        source = asset.get("source", {}).get("path")
        if not source:
            continue
        for destination in asset.get("destinations", {}).values():
            by_key[destination["objectKey"]] = assembly_dir / source
    return by_key


def _choose_stack(templates: dict[str, Path], stack_name: str | None) -> tuple[str, Path]:
    if stack_name is not None:
        if stack_name not in templates:
            raise TemplateError(f"no stack {stack_name!r} in cdk.out (stacks: {', '.join(sorted(templates))})")
        return stack_name, templates[stack_name]
    with_machine = {
        name: path
        for name, path in templates.items()
        if path.exists() and '"AWS::StepFunctions::StateMachine"' in path.read_text(encoding="utf-8")
    }
    candidates = with_machine or templates
    if len(candidates) != 1:
        raise TemplateError(f"several stacks in cdk.out ({', '.join(sorted(candidates))}); name one")
    return next(iter(candidates.items()))


def load_stack(
    root: Path,
    *,
    stack_name: str | None = None,
    assembly_dir: Path | None = None,
    synth: bool = True,
    template: Path | None = None,
) -> StackTemplate:
    """The synthesized stack of the CDK app in `root`, synthesizing first when cdk.out is missing or stale.

    `template`: run this template file instead (a reviewer's changed copy of the one you would deploy); its code
    assets are the cloud assembly's (cdk.out, synthesized as usual), which the copy's asset paths name."""
    assembly = assembly_dir or root / "cdk.out"
    if synth:
        if not (root / "app.py").exists():
            raise TemplateError(f"no CDK app at {root / 'app.py'}: nothing to synthesize the state machine from")
        # Parallel test workers and a CLI run may all find cdk.out stale at once: one synthesizes, the rest wait.
        lock_name = "local-synth-" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16] + ".lock"
        with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            reason = needs_synth(root, assembly)
            if reason is not None:
                synthesize(root, reason)
    templates = _stack_templates(assembly) if assembly.is_dir() else {}
    if not templates:
        raise TemplateError(f"no synthesized stack in {assembly}; run `python app.py` in {root}")
    name, path = _choose_stack(templates, stack_name)
    assets = _assets_by_key(assembly, path)
    if template is not None:
        if not template.is_file():
            raise TemplateError(f"template file not found: {template}")
        path = template
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TemplateError(f"cannot read {path}: {error}") from error
    return StackTemplate(name=name, path=path, assembly_dir=assembly, body=body, assets_by_key=assets)
