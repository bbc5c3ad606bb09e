"""Data-quality checks on the data a promotion trains and compares on, before anything uses it.

Every channel (train, validation, holdout; built-in XGBoost CSV, label first, no header) is checked for:

* ``schema.columns``: every row has the expected number of fields (the catalog's columns, else the champion's
  training data's, else the train channel's);
* ``schema.numeric``: every field is a number or empty;
* ``rows.minimum``: at least the catalog's rows for the channel;
* ``nulls.fraction``: each column's share of empty / NaN fields at most ``max_null_fraction`` (the label: none);
* ``constant.column``: no feature with a single value;
* ``label.values``: labels among the catalog's values (0 and 1);
* ``label.balance``: the positive rate within the catalog's bounds;
* ``shift.psi``: the train and holdout channels' features against the champion's training data, by the population
  stability index over the champion's deciles (0.1 is a moderate shift, 0.25 a large one by the usual reading).

The champion's training data is known by its profile (``profile.json``, written by this job for every candidate's
train channel and kept in the release's report folder): its deciles and their shares per feature. Without one (the
first release, or a champion older than the check) the shift is not measured and the report says so.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROFILE_VERSION = 1
CHANNELS = ("train", "validation", "holdout")
SHIFT_CHANNELS = ("train", "holdout")
LABEL = "label"
_EMPTY_BIN_SHARE = 1e-4  # PSI's usual floor for an empty bin (ln of zero otherwise)
_NULL_TEXT = frozenset({"", "nan", "NaN", "NA", "null"})
_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Thresholds:
    """The catalog's `data_quality` limits (promotion.contract.catalog.DataQuality)."""

    min_rows: Mapping[str, int] = field(default_factory=lambda: {"train": 1000, "validation": 200, "holdout": 1000})
    max_null_fraction: float = 0.0
    label_values: tuple[float, ...] = (0.0, 1.0)
    min_positive_rate: float = 0.001
    max_positive_rate: float = 0.5
    max_psi: float = 0.25
    bins: int = 10

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        known = {key: values[key] for key in asdict(cls()) if key in values}
        if "label_values" in known:
            known["label_values"] = tuple(float(v) for v in known["label_values"])
        return cls(**known)


@dataclass(frozen=True)
class Finding:
    """One check on one channel (and column): what was measured against what was allowed."""

    check: str
    channel: str
    column: str | None
    passed: bool
    value: float | str | None = None
    threshold: float | str | None = None
    detail: str = ""

    def sentence(self) -> str:
        where = f"channel {self.channel}" + (f", column {self.column}" if self.column else "")
        limit = f" (limit {self.threshold})" if self.threshold is not None else ""
        return f"{self.check} on {where}: {self.detail or self.value}{limit}"


@dataclass
class Table:
    """A channel as read: the parsed rows (NaN for empty fields) and what reading it found wrong."""

    values: NDArray[np.float64]
    findings: list[Finding]
    rows: int


def column_names(count: int, names: Sequence[str] | None) -> list[str]:
    """The label, then the catalog's feature names, else `feature_<n>` (1-based)."""
    features = list(names) if names and len(names) == count - 1 else [f"feature_{i}" for i in range(1, count)]
    return [LABEL, *features]


def read_channel(folder: Path, channel: str, expected_columns: int | None) -> Table:
    """Every *.csv of a channel, field by field: a wrong field count or a field that is not a number is a finding
    (the first such row), not an exception, so the report names it."""
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    # Parsed rows go into float arrays every _CHUNK_ROWS rows: Python lists of floats take about four times the
    # memory of the array (a million-row channel would otherwise peak at several hundred MB).
    blocks: list[NDArray[np.float64]] = []
    chunk: list[list[float]] = []
    width = expected_columns
    findings: list[Finding] = []
    widths: dict[int, int] = {}
    bad_width: tuple[str, int, int] | None = None
    bad_value: tuple[str, int, int, str] | None = None
    for file in files:
        fast = _load_clean(file, width)
        if fast is not None:
            width = width or int(fast.shape[1])
            widths[width] = widths.get(width, 0) + int(fast.shape[0])
            blocks.append(fast)
            continue
        with file.open(newline="", encoding="utf-8", errors="replace") as handle:
            for number, record in enumerate(csv.reader(handle), start=1):
                if not record:
                    continue
                widths[len(record)] = widths.get(len(record), 0) + 1
                width = width or len(record)
                if len(record) != width:
                    if expected_columns is not None:
                        bad_width = bad_width or (file.name, number, len(record))
                    continue
                parsed = []
                for index, raw in enumerate(record):
                    text = raw.strip()
                    if text in _NULL_TEXT:
                        parsed.append(math.nan)
                        continue
                    try:
                        parsed.append(float(text))
                    except ValueError:
                        bad_value = bad_value or (file.name, number, index, text[:40])
                        parsed.append(math.nan)
                chunk.append(parsed)
                if len(chunk) >= _CHUNK_ROWS:
                    blocks.append(np.array(chunk, dtype=np.float64))
                    chunk = []
    if chunk:
        blocks.append(np.array(chunk, dtype=np.float64))
    rows = sum(int(block.shape[0]) for block in blocks)
    if bad_width is not None:
        name, number, width = bad_width
        findings.append(
            Finding(
                "schema.columns",
                channel,
                None,
                False,
                value=width,
                threshold=expected_columns,
                detail=f"{name} row {number} has {width} fields, not {expected_columns} "
                f"(field counts seen: {dict(sorted(widths.items()))})",
            )
        )
    elif rows:
        findings.append(Finding("schema.columns", channel, None, True, value=width, threshold=expected_columns))
    if bad_value is not None:
        name, number, index, text = bad_value
        findings.append(
            Finding(
                "schema.numeric",
                channel,
                f"#{index}",
                False,
                value=text,
                detail=f"{name} row {number} field {index} is {text!r}, not a number",
            )
        )
    if not rows:
        return Table(np.empty((0, expected_columns or 0)), findings, 0)
    return Table(np.concatenate(blocks), findings, rows)


def _load_clean(file: Path, width: int | None) -> NDArray[np.float64] | None:
    """A file every field of which is a number, with `width` fields per row, read by numpy's C parser (a tenth of the
    time and memory of reading field by field); None for anything else (empty fields, text, ragged rows, an empty
    file), which read_channel then reads field by field to name the first problem."""
    if file.stat().st_size == 0:
        return None
    try:
        table = np.loadtxt(file, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    if table.shape[0] == 0 or (width is not None and table.shape[1] != width) or np.isnan(table).any():
        return None
    return table


def _cuts(values: NDArray[np.float64], bins: int) -> list[float]:
    """The interior decile cut points of the non-null values (fewer for a discrete feature)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return []
    cuts = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(c) for c in cuts]


def shares(values: NDArray[np.float64], cuts: Sequence[float]) -> NDArray[np.float64]:
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(cuts), present, side="left"), minlength=len(cuts) + 1)
    return counts / max(int(present.size), 1)


def population_stability_index(
    expected: Sequence[float] | NDArray[np.float64], actual: Sequence[float] | NDArray[np.float64]
) -> float:
    """PSI = sum((a - e) * ln(a / e)) over the bins, empty bins floored at 1e-4."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _EMPTY_BIN_SHARE)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _EMPTY_BIN_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def profile(table: Table, names: Sequence[str], bins: int) -> dict[str, Any]:
    """What the next promotion compares its data with: per feature the cut points and the shares between them."""
    features = {}
    for index, name in enumerate(names[1:], start=1):
        column = table.values[:, index]
        cuts = _cuts(column, bins)
        features[name] = {"cuts": cuts, "shares": [float(s) for s in shares(column, cuts)]}
    labels = table.values[:, 0]
    return {
        "profile_version": PROFILE_VERSION,
        "columns": len(names),
        "rows": table.rows,
        "positive_rate": float(np.nanmean(labels)) if table.rows else None,
        "features": features,
    }


def check_channel(
    table: Table,
    channel: str,
    names: Sequence[str],
    thresholds: Thresholds,
    reference: Mapping[str, Any] | None,
) -> list[Finding]:
    """Every check but the schema's (read_channel made those) on one channel."""
    findings = list(table.findings)
    minimum = int(thresholds.min_rows.get(channel, 1))
    findings.append(Finding("rows.minimum", channel, None, table.rows >= minimum, value=table.rows, threshold=minimum))
    if table.rows == 0 or table.values.shape[1] != len(names):
        return findings
    nulls = np.isnan(table.values).mean(axis=0)
    for index, name in enumerate(names):
        limit = 0.0 if name == LABEL else thresholds.max_null_fraction
        share = float(nulls[index])
        findings.append(
            Finding("nulls.fraction", channel, name, share <= limit, value=round(share, 6), threshold=limit)
        )
    for index, name in enumerate(names[1:], start=1):
        present = table.values[:, index][~np.isnan(table.values[:, index])]
        distinct = int(np.unique(present).size)
        detail = f"a single value ({present[0]:g})" if distinct == 1 else "no value" if distinct == 0 else ""
        findings.append(
            Finding("constant.column", channel, name, distinct > 1, value=distinct, threshold=2, detail=detail)
        )
    labels = table.values[:, 0][~np.isnan(table.values[:, 0])]
    outside = sorted({float(v) for v in np.unique(labels)} - set(thresholds.label_values))
    findings.append(
        Finding(
            "label.values",
            channel,
            LABEL,
            not outside,
            value=", ".join(f"{v:g}" for v in outside[:5]) or "ok",
            threshold=", ".join(f"{v:g}" for v in thresholds.label_values),
            detail=f"labels {', '.join(f'{v:g}' for v in outside[:5])} are not among the allowed values"
            if outside
            else "",
        )
    )
    rate = float(np.mean(labels == max(thresholds.label_values))) if labels.size else 0.0
    findings.append(
        Finding(
            "label.balance",
            channel,
            LABEL,
            thresholds.min_positive_rate <= rate <= thresholds.max_positive_rate,
            value=round(rate, 6),
            threshold=f"{thresholds.min_positive_rate:g}..{thresholds.max_positive_rate:g}",
            detail=f"positive rate {rate:.4%}",
        )
    )
    if reference is not None and channel in SHIFT_CHANNELS:
        for index, name in enumerate(names[1:], start=1):
            known = reference.get("features", {}).get(name)
            if known is None:  # a feature the champion's data did not have (added, or renamed): said, not skipped
                findings.append(
                    Finding(
                        "shift.unmeasured",
                        channel,
                        name,
                        True,
                        detail="not measured: the champion's training data profile has no such feature",
                    )
                )
                continue
            psi = population_stability_index(known["shares"], shares(table.values[:, index], known["cuts"]))
            findings.append(
                Finding(
                    "shift.psi",
                    channel,
                    name,
                    psi <= thresholds.max_psi,
                    value=round(psi, 4),
                    threshold=thresholds.max_psi,
                    detail=f"PSI {psi:.4f} against the champion's training data",
                )
            )
    return findings


def check_data(
    folders: Mapping[str, Path],
    thresholds: Thresholds,
    reference: Mapping[str, Any] | None,
    feature_names: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(report, the train channel's profile) for the channels in `folders`."""
    expected = len(feature_names) + 1 if feature_names else (reference or {}).get("columns")
    tables: dict[str, Table] = {}
    if expected is None and "train" in folders:
        first = read_channel(folders["train"], "train", None)
        expected = int(first.values.shape[1]) if first.rows else None
    for channel, folder in folders.items():
        tables[channel] = read_channel(folder, channel, expected)
    names = column_names(expected or 0, feature_names)
    findings = [
        finding
        for channel, table in tables.items()
        for finding in check_channel(table, channel, names, thresholds, reference)
    ]
    failures = [f for f in findings if not f.passed]
    train = tables.get("train")
    train_profile = (
        profile(train, names, thresholds.bins) if train is not None and train.rows and not failures else None
    )
    report = {
        "report_version": 1,
        "passed": not failures,
        "reference": "the champion's training data profile" if reference is not None else None,
        "thresholds": {**asdict(thresholds), "min_rows": dict(thresholds.min_rows)},
        "channels": {channel: {"rows": table.rows} for channel, table in tables.items()},
        "failures": [asdict(f) | {"sentence": f.sentence()} for f in failures],
        "findings": [asdict(f) for f in findings],
    }
    return report, train_profile
