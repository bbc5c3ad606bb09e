"""The decision report as a self-contained HTML page: readable in a browser without AWS, with the comparison plots
embedded (base64 PNGs from the comparison job) and the rollout drawn as inline SVG. Pure Python, because
PublishResult renders it inside a Lambda."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

OUTCOME_COLOURS = {
    "PROMOTED": "#1a7f37",
    "ROLLED_BACK": "#bf8700",
    "REJECTED": "#9a6700",
    "FAILED": "#cf222e",
    "DUPLICATE": "#57606a",
}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
.badge{display:inline-block;padding:.25rem .7rem;border-radius:1rem;color:#fff;font-weight:600}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
th{background:#f6f8fa} .pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
.reason{font-size:1.05rem;margin:.6rem 0 1rem} .muted{color:#57606a} img{max-width:480px;margin:.4rem}
code{background:#f6f8fa;padding:.1rem .3rem;border-radius:.2rem}
td{overflow-wrap:anywhere} ul.values{margin:0;padding-left:1.1rem}
.glance{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.2rem;margin:1rem 0 1.5rem;padding:1rem 1.2rem;
border:1px solid #d0d7de;border-left:6px solid var(--outcome);border-radius:.4rem;background:#f6f8fa}
.glance dt{font-weight:600;color:#57606a} .glance dd{margin:0}
h3{font-size:1rem;margin:1.2rem 0 .3rem} details{margin:.4rem 0} summary{cursor:pointer;color:#57606a}
pre{white-space:pre-wrap;font-size:.8rem}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_e(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(column))}</td>" for column in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: object) -> str:
    if value is True:
        return '<span class="pass">pass</span>'
    if value is False:
        return '<span class="fail">fail</span>'
    if isinstance(value, float):
        return _e(f"{value:.6g}")
    if isinstance(value, (dict, list)):
        return f"<code>{_e(json.dumps(value, default=str))}</code>"
    return _e(value)


def _value(value: object) -> str:
    """A value in a key/value table: yes/no for booleans, a list for lists, numbers and text as they are."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if not value:
            return '<span class="muted">none</span>'
        return '<ul class="values">' + "".join(f"<li>{_cell(item)}</li>" for item in value) + "</ul>"
    return _cell(value)


def _key_values(values: Mapping[str, Any] | None, *, skip: tuple[str, ...] = (), verbatim: bool = False) -> str:
    """Rows of label / value, leaving out what is absent (None, empty) and the keys in `skip`; field names read as
    words unless `verbatim` (hyperparameter names are shown exactly)."""
    rows = [
        f"<tr><th>{_e(key if verbatim else str(key).replace('_', ' '))}</th><td>{_value(value)}</td></tr>"
        for key, value in (values or {}).items()
        if key not in skip and value is not None and value not in ("", {})
    ]
    return f"<table>{''.join(rows)}</table>" if rows else '<p class="muted">none</p>'


def _started_by(trigger: Mapping[str, str]) -> str:
    """Why the tuning job started, from its `promotion:*` tags: a data scientist's launch, or drift's retraining with
    the check, the feature and its PSI."""
    if not trigger:
        return "a data scientist (no trigger tag)"
    if trigger.get("promotion:trigger") == "drift":
        feature, psi = trigger.get("promotion:drift-feature", "?"), trigger.get("promotion:drift-psi", "?")
        verified = trigger.get("promotion:trigger-verified", "true")
        return (
            f"drift: feature {feature} at PSI {psi} against release {trigger.get('promotion:drift-release', '?')}'s "
            f"training data (drift check {trigger.get('promotion:drift-check', '?')})"
            + ("" if verified == "true" else f"; NOT VERIFIED ({verified.removeprefix('false: ')})")
        )
    return ", ".join(f"{key}={value}" for key, value in sorted(trigger.items()))


def _error(error: Mapping[str, Any]) -> str:
    """A caught error: its name and message; Lambda's stack trace folded away."""
    cause = error.get("Cause")
    parsed: Any = None
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        trace = "".join(parsed.get("stackTrace") or [])
        folded = f"<details><summary>stack trace</summary><pre>{_e(trace)}</pre></details>" if trace else ""
        return _key_values({"error": error.get("Error"), "message": parsed.get("errorMessage")}) + folded
    return _key_values({"error": error.get("Error"), "cause": cause})


def _glance(report: Mapping[str, Any]) -> str:
    """The answers an operator looks for first: outcome, why, who decided, what failed, what production runs."""
    outcome = str(report.get("outcome", "UNKNOWN"))
    approval = report.get("approval") or {}
    rollback = report.get("rollback") or {}
    backup = report.get("backup") or {}
    error = report.get("error") or {}
    decision = approval.get("decision")
    if decision in ("approve", "reject"):
        verb = "approved" if decision == "approve" else "rejected"
        comment = f" — “{_e(approval.get('comment'))}”" if approval.get("comment") else ""
        decided = f"{verb} by <b>{_e(approval.get('decided_by'))}</b> at {_e(approval.get('decided_at'))}{comment}"
    elif decision == "expired":
        decided = "no decision before the approval timeout (expired)"
    else:
        decided = '<span class="muted">no decision recorded</span>'
    failed = report.get("failed_state") or rollback.get("failed_state")
    failure = ""
    if failed or error:
        failure = f"<b>{_e(failed)}</b> " if failed else ""
        failure += f"<code>{_e(error.get('Error'))}</code>" if error else ""
    if report.get("rollback_error"):
        production = "ROLLBACK FAILED: production may differ from its backup (see below)"
    elif rollback:
        production = _e(rollback.get("reason"))
    elif outcome == "PROMOTED":
        production = f"release {_e(report.get('release_id'))} is in production"
    elif backup:
        production = "written and not restored (see below)"
    else:
        production = "untouched"
    rows = [
        ("why", _e(report.get("reason"))),
        ("approval", decided),
        ("failed step", failure),
        ("production", production),
        ("previous release", _e(backup.get("previous_release_id") or (report.get("champion") or {}).get("release_id"))),
    ]
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows if value)
    return f'<dl class="glance" style="--outcome:{OUTCOME_COLOURS.get(outcome, "#57606a")}">{items}</dl>'


def last_look_per_stage(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rollout as a reader wants it: each stage's last look (its verdict and the numbers behind it)."""
    last: dict[Any, Mapping[str, Any]] = {}
    for look in history:
        last[look.get("stage")] = look
    return [dict(look) for _, look in sorted(last.items(), key=lambda item: float(item[0] or 0))]


def rollout_svg(stages: Sequence[Mapping[str, Any]], width: int = 640, height: int = 220) -> str:
    """Challenger traffic share per stage as bars, coloured by the stage's outcome."""
    if not stages:
        return '<p class="muted">no rollout stages ran</p>'
    margin, bar_gap = 40, 12
    slot = (width - 2 * margin) / len(stages)
    parts = [
        f'<svg role="img" aria-label="rollout" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
    ]
    parts.append(
        f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" y2="{height - margin}" stroke="#57606a"/>'
    )
    for index, stage in enumerate(stages):
        share = float(stage.get("challenger_percent") or 0) / 100
        outcome = str(stage.get("outcome", ""))
        colour = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INVALID": "#8250df"}.get(outcome, "#bf8700")
        bar_height = max(2.0, share * (height - 2 * margin))
        x = margin + index * slot + bar_gap / 2
        y = height - margin - bar_height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - bar_gap:.1f}" height="{bar_height:.1f}" fill="{colour}"/>'
        )
        label = f"{'shadow' if stage.get('stage') == 0 else f'{share * 100:g}%'} {outcome}"
        centre = x + (slot - bar_gap) / 2
        parts.append(
            f'<text x="{centre:.1f}" y="{height - margin + 16}" font-size="12" text-anchor="middle">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_report_html(report: Mapping[str, Any], images: Mapping[str, bytes] | None = None) -> str:
    """The whole page for one execution's decision report (`decision.json`)."""
    outcome = str(report.get("outcome", "UNKNOWN"))
    colour = OUTCOME_COLOURS.get(outcome, "#57606a")
    candidate = report.get("candidate") or {}
    champion = report.get("champion") or {}
    metrics = candidate.get("metrics") or {}
    champion_metrics = champion.get("performance") or {}
    metric_rows = [
        {"metric": name, "challenger": value, "champion": champion_metrics.get(name)}
        for name, value in sorted(metrics.items())
    ]
    approval = report.get("approval") or {}
    rollback = report.get("rollback") or {}
    comparison = report.get("comparison") or {}
    stages = last_look_per_stage((report.get("rollout") or {}).get("history") or [])
    failure = [
        "<h2>Failure and rollback</h2>",
        _error(report["error"]) if report.get("error") else "",
        "<h3>What was restored</h3>" if rollback else "",
        _key_values(rollback, skip=("error",)) if rollback else '<p class="muted">no rollback ran</p>',
    ]
    if report.get("rollback_error"):
        failure += ["<h3>Rollback failed</h3>", _error(report["rollback_error"])]
    went_wrong = bool(report.get("error") or rollback or report.get("rollback_error"))
    sections = [
        f"<h1>{_e(report.get('model'))} release {_e(report.get('release_id'))}</h1>",
        f'<span class="badge" style="background:{colour}">{_e(outcome)}</span>',
        _glance(report),
        *(failure if went_wrong else []),
        "<h2>Execution</h2>",
        _key_values(
            {
                "execution": report.get("execution_name"),
                "tuning job": (report.get("tuning_job") or {}).get("name"),
                "tuning job started by": _started_by((report.get("tuning_job") or {}).get("started_by") or {}),
                "best training job": candidate.get("training_job_name"),
                "decided at": report.get("decided_at"),
                "champion release": champion.get("release_id"),
            }
        ),
        "<h2>What was promoted</h2>",
        _key_values(candidate.get("hyperparameters"), verbatim=True),
        _table(metric_rows, ["metric", "challenger", "champion"]),
        "<h2>Checks</h2>",
        _table(list(report.get("checks") or []), ["name", "passed", "value", "threshold", "detail"]),
        "<h2>Approval</h2>",
        _key_values(approval) if approval else '<p class="muted">no approval recorded</p>',
    ]
    data_quality = report.get("data_quality") or {}
    if data_quality:
        sections += [
            "<h2>Data quality (training, validation and holdout data)</h2>",
            _key_values(data_quality, skip=("polls", "failures", "image")),
        ]
    if comparison:
        sections += [
            "<h2>Offline comparison (champion vs challenger)</h2>",
            _key_values(comparison.get("summary") or comparison, skip=("plots", "polls")),
        ]
    for name, data in (images or {}).items():
        encoded = base64.b64encode(data).decode()
        sections.append(f'<img alt="{_e(name)}" src="data:image/png;base64,{encoded}"/>')
    sections += ["<h2>Rollout</h2>", rollout_svg(stages)]
    if stages:
        columns = sorted({key for stage in stages for key in stage})
        sections.append(_table(stages, columns))
    if report.get("operator_interventions"):
        columns = ["at", "request", "by", "identity", "reason", "outcome", "detail"]
        sections += ["<h2>Operator interventions</h2>", _table(report["operator_interventions"], columns)]
    if not went_wrong:
        sections += failure
    if report.get("cost"):
        sections += ["<h2>Cost</h2>", _key_values(report["cost"])]
    body = "\n".join(sections)
    title = f"{_e(report.get('model'))} {_e(report.get('release_id'))} {_e(outcome)}"
    head = f'<meta charset="utf-8"><title>{title}</title><style>{STYLE}</style>'
    return f'<!doctype html><html lang="en"><head>{head}</head><body>{body}</body></html>'
