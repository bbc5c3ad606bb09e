"""The readable form of a local run: the execution timeline, then production before and after."""

from __future__ import annotations

from typing import Any

import yaml

from local.production import ProductionSnapshot
from local.runtime import RunResult


def _release(config: str | None) -> str:
    if config is None:
        return "absent"
    try:
        document: Any = yaml.safe_load(config)
    except yaml.YAMLError:
        return "unreadable"
    release = document.get("release_id") if isinstance(document, dict) else None
    return f"release {release}" if release else "present (no release_id)"


def _production(before: ProductionSnapshot | None, after: ProductionSnapshot | None) -> list[str]:
    if before is None or after is None:
        return []
    lines = ["Production before -> after:"]
    paths = sorted(set(before.parameters) | set(after.parameters))
    width = max((len(path) for path in paths), default=0)
    for path in paths:
        old, new = before.parameters.get(path, "(absent)"), after.parameters.get(path, "(absent)")
        mark = "   " if old == new else " * "
        lines.append(f" {mark}{path:<{width}}  {old} -> {new}")
    if not paths:
        lines.append("   (no parameters)")
    config_mark = "   " if before.config == after.config else " * "
    lines.append(f" {config_mark}config: {_release(before.config)} -> {_release(after.config)}")
    if before.endpoint_weights or after.endpoint_weights:
        lines.append(f"    endpoint weights: {before.endpoint_weights} -> {after.endpoint_weights}")
    return lines


def timeline(result: RunResult) -> str:
    """Execution header, one line per state visit (status, duration), outcome and the production diff."""
    outcome = result.outcome or "-"
    lines = [
        f"Local promotion run of {result.model or 'unknown model'}: execution {result.execution_name or '-'}",
        f"Status {result.status}, outcome {outcome}, {result.duration_s:.2f} s",
        "",
    ]
    if result.states:
        width = max(len(state.name) for state in result.states)
        for number, state in enumerate(result.states, start=1):
            duration = "" if state.duration_ms is None else f"{state.duration_ms:8.0f} ms"
            lines.append(f"  {number:>3}  {state.name:<{width}}  {state.status:<9}{duration}")
        lines.append("")
    if result.error or result.cause:
        lines.append(f"Error: {result.error}: {result.cause}")
    output = result.output if isinstance(result.output, dict) else {}
    reason = (output.get("result") or {}).get("reason") if isinstance(output.get("result"), dict) else None
    if reason:
        lines.append(f"Reason: {reason}")
    lines.extend(_production(result.production_before, result.production_after))
    return "\n".join(lines).rstrip() + "\n"
