"""Drift of the features the endpoint is asked about, against the live release's training data.

SageMaker's data capture writes one JSON object per captured request (``captureData.endpointInput``: the body as
sent, ``encoding`` CSV for the ``text/csv`` content type the endpoint configs name, BASE64 otherwise); a body may hold
several rows. Each row's features are compared, one by one, with the training data profile the data-quality gate
kept of the release (its deciles and their shares), by the population stability index: the same measure, bins and
floor as the gate's shift check (promotion_ml.quality), so the two read alike.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promotion_ml.quality import population_stability_index, shares

REPORT_VERSION = 1


def captured_bodies(files: Iterable[Path]) -> Iterator[str | None]:
    """Each captured request's body as text; None for one that cannot be read as CSV (JSON, bad base64)."""
    for file in files:
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)["captureData"]["endpointInput"]
                    encoding, data = str(request.get("encoding", "")).upper(), str(request["data"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    yield None
                    continue
                if encoding == "CSV":
                    yield data
                elif encoding == "BASE64":
                    try:
                        yield base64.b64decode(data, validate=True).decode("utf-8")
                    except (binascii.Error, UnicodeDecodeError):
                        yield None
                else:
                    yield None


def feature_rows(bodies: Iterable[str | None], width: int) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """(rows of `width` numbers, how many rows or bodies could not be read so)."""
    rows: list[list[float]] = []
    unreadable = 0
    for body in bodies:
        if body is None:
            unreadable += 1
            continue
        for fields in csv.reader(io.StringIO(body)):
            if not fields:
                continue
            try:
                values = [float(field) if field.strip() else math.nan for field in fields]
            except ValueError:
                unreadable += 1
                continue
            if len(values) != width:
                unreadable += 1
                continue
            rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, width), unreadable


def measure_drift(
    files: Sequence[Path], reference: Mapping[str, Any], feature_names: Sequence[str], max_psi: float, min_rows: int
) -> dict[str, Any]:
    """The report: rows read, PSI per feature (those the profile knows), the drifted ones and the verdict."""
    table, unreadable = feature_rows(captured_bodies(files), len(feature_names))
    known = reference.get("features") or {}
    psi: dict[str, float] = {}
    unmeasured = []
    for index, name in enumerate(feature_names):
        profile = known.get(name)
        if profile is None:
            unmeasured.append(name)
            continue
        if table.shape[0]:
            psi[name] = round(
                population_stability_index(profile["shares"], shares(table[:, index], profile["cuts"])), 4
            )
    rows = int(table.shape[0])
    drifted = sorted((name for name, value in psi.items() if value > max_psi), key=lambda name: -psi[name])
    verdict = "TOO_FEW_ROWS" if rows < min_rows else "DRIFT" if drifted else "NO_DRIFT"
    return {
        "report_version": REPORT_VERSION,
        "verdict": verdict,
        "rows": rows,
        "unreadable": unreadable,
        "files": len(files),
        "max_psi": max_psi,
        "min_rows": min_rows,
        "psi": psi,
        "drifted": drifted,
        "unmeasured": unmeasured,
    }
