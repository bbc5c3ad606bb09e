"""The readable form of a local run: the execution timeline, then production before and after."""

from __future__ import annotations

from typing import Any

import yaml

from local.production import ProductionSnapshot
from local.runtime import MonitoringLoop, RunResult


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
    if before.endpoint_config != after.endpoint_config:
        lines.append(f"    endpoint config: {before.endpoint_config} -> {after.endpoint_config}")
    if before.endpoint_weights or after.endpoint_weights:
        lines.append(f"    endpoint weights: {before.endpoint_weights} -> {after.endpoint_weights}")
    return lines


LOOP_STATES = frozenset({"Bake", "EvaluateStage", "StageVerdict", "ShiftTraffic"})


def _rollout(output: Any) -> list[str]:
    """One line per rollout stage: its last look's verdict and the numbers it judged on."""
    rollout = output.get("rollout") if isinstance(output, dict) else None
    if not isinstance(rollout, dict) or not rollout.get("history"):
        return []
    last: dict[int, dict[str, Any]] = {}
    for look in rollout["history"]:
        last[look["stage"]] = look
    lines = ["Rollout stages (last look of each):"]
    for stage, look in sorted(last.items()):
        rates = [look.get("champion_error_rate"), look.get("challenger_error_rate")]
        champion_rate, challenger_rate = ("-" if rate is None else f"{rate:.2%}" for rate in rates)
        lines.append(
            f"  stage {stage} at {look['challenger_percent']:g} %: {look['outcome']:<12} look {look['look']:>2}, "
            f"requests {look['challenger_requests']:,} challenger / {look['champion_requests']:,} champion, "
            f"5XX rate {challenger_rate} challenger / {champion_rate} champion"
        )
    return [*lines, ""]


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
        repeats = 0
        for number, state in enumerate(result.states, start=1):
            # A rollout loops Bake -> EvaluateStage dozens of times: show the first and last visit of each run of
            # loop states and count the rest, so the timeline stays readable.
            previous = result.states[number - 2].name if number > 1 else None
            following = result.states[number].name if number < len(result.states) else None
            if state.name in LOOP_STATES and previous in LOOP_STATES and following in LOOP_STATES:
                repeats += 1
                continue
            if repeats:
                lines.append(f"       ... {repeats} more loop states (bake and evaluate looks) ...")
                repeats = 0
            duration = "" if state.duration_ms is None else f"{state.duration_ms:8.0f} ms"
            lines.append(f"  {number:>3}  {state.name:<{width}}  {state.status:<9}{duration}")
        lines.append("")
        lines.extend(_rollout(result.output))
    if result.error or result.cause:
        lines.append(f"Error: {result.error}: {result.cause}")
    output = result.output if isinstance(result.output, dict) else {}
    reason = (output.get("result") or {}).get("reason") if isinstance(output.get("result"), dict) else None
    if reason:
        lines.append(f"Reason: {reason}")
    lines.extend(_production(result.production_before, result.production_after))
    if result.iam is not None:
        lines.append(result.iam.line())
        lines.extend(f"  denied: {message}" for message in result.iam.denied)
        lines.extend(f"  denied silently on AWS: {message}" for message in result.iam.silent_denials)
    return "\n".join(lines).rstrip() + "\n"


def monitoring(loop: MonitoringLoop) -> str:
    """The monitoring hour after the promotion: what was captured, the drift check, its verdict, the retraining it
    started or held back, and the next promotion that retraining's completion started."""
    run = loop.run
    lines = ["", "Monitoring (the next hour on the endpoint):"]
    captured = run.captured
    lines.append(
        f"  captured: {captured.requests} requests in {captured.files} files on variant {captured.variant}"
        + (f" ({captured.reason})" if captured.reason else "")
    )
    for check in run.checks:
        lines.append(f"  drift check: {check.get('status')} {check.get('processing_job_name') or ''}".rstrip())
        lines.append(f"    {check.get('reason')}")
    for outcome in run.outcomes:
        if not isinstance(outcome, dict):
            lines.append(f"  ActOnDriftCheck failed: {outcome}")
            continue
        verdict = outcome.get("verdict") or {}
        lines.append(f"  verdict: {verdict.get('status', outcome.get('action'))}: {outcome.get('reason')}")
        retraining = outcome.get("retraining")
        if retraining:
            lines.append(f"  retraining: {retraining.get('status')}: {retraining.get('reason')}")
    if loop.next_execution is not None:
        result = loop.next_result
        lines.append(f"  next promotion: {loop.next_execution}: {' -> '.join(loop.next_states)}")
        lines.append(f"    {result.get('outcome', '?')}: {result.get('reason', '')}")
    return "\n".join(lines) + "\n"
