"""The drift loop's metrics are emitted (Embedded Metric Format on stdout, which CloudWatch turns into metrics) with
exactly the dimension sets the dashboard searches: {model, service}, and {feature, model, service} for FeatureDrift."""

from __future__ import annotations

import json

import pytest

from promotion.contract.names import METRICS_NAMESPACE, SERVICE
from promotion.monitoring.drift import DriftVerdict
from promotion.monitoring.loop import _publish_metrics
from stacks.observability import DRIFT_LOOP_METRICS, DRIFT_METRIC


def test_every_drift_metric_carries_the_dimensions_the_dashboard_searches(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = DriftVerdict(
        model="fraud-detection",
        processing_job_name="fraud-detection-drift-26120317",
        status="DRIFT",
        reason="amount drifted",
        rows=900,
        unreadable=3,
        psi={"amount": 4.2, "hour_of_day": 0.01},
        drifted=["amount"],
    )
    _publish_metrics(verdict)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    by_name: dict[str, list[dict[str, object]]] = {}
    for blob in emitted:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        (dimensions,) = directive["Dimensions"]
        for metric in directive["Metrics"]:
            by_name.setdefault(metric["Name"], []).append({"dimensions": sorted(dimensions), **blob})
    for name in ("DriftDetected", "CapturedRows", "UnreadableRows"):
        (one,) = by_name[name]
        assert one["dimensions"] == ["model", "service"] and one["service"] == SERVICE, name
    assert {"DriftDetected", "CapturedRows", "UnreadableRows"} <= set(DRIFT_LOOP_METRICS)
    features = {blob["feature"]: blob[DRIFT_METRIC] for blob in by_name[DRIFT_METRIC]}
    assert features == {"amount": [4.2], "hour_of_day": [0.01]}  # EMF carries values as lists
    assert all(blob["dimensions"] == ["feature", "model", "service"] for blob in by_name[DRIFT_METRIC])
