"""What watching a model costs on AWS per day (us-east-1 list prices of bench/cost_model.py and
promotion.result.cost, dated there), from its catalog: the resources its `monitoring` section makes, priced for a
stated traffic. Drift checks and retrainings are SageMaker compute; capture is S3; the verdicts are CloudWatch
custom metrics (Embedded Metric Format); the schedule and SageMaker's events on the default bus cost nothing.

Assumptions, each written into the result: the endpoint's traffic (requests per second), a captured request's size
(a JSON line of about 300 bytes for the fraud model's ten features, as bench_drift.py measures), a drift check's
billed minutes (start-up, the job, the upload), how many requests SageMaker batches into one capture file, and a
retraining trial's minutes.

Run: .venv/bin/python bench/bench_monitoring_cost.py [--requests-per-second 100]
Writes bench/results/monitoring_cost.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "layers" / "promotion" / "python"))
sys.path.insert(0, str(ROOT))

from bench.cost_model import PRICES, Price  # noqa: E402
from promotion.contract.catalog import ModelCatalog, load_catalogs  # noqa: E402
from promotion.result.cost import PRICE_TABLE_DATE, SAGEMAKER_HOURLY  # noqa: E402

S3_STORAGE = Price(0.023, 1, "GB-month", "https://aws.amazon.com/s3/pricing/", "S3 Standard, first 50 TB")
CUSTOM_METRIC = Price(
    0.30, 1, "metric-month", "https://aws.amazon.com/cloudwatch/pricing/", "first 10,000 metrics; EMF metrics count"
)
DAYS_PER_MONTH = 30.4
# DriftChecksStarted, DriftChecksSkipped, DriftDetected, CapturedRows, UnreadableRows, DriftCheckFailed,
# RetrainingsStarted, RetrainingsHeldBack
DRIFT_COUNTS = 8
CAPTURED_BYTES = 300  # measured: bench/results/drift.json, 211 MB for 720,000 captured requests
CHECK_BILLED_MINUTES = 5.0
REQUESTS_PER_CAPTURE_FILE = 250
TRIAL_MINUTES = 10.0


def monitoring_cost(catalog: ModelCatalog, requests_per_second: float) -> dict[str, Any]:
    """Per day: each resource, its quantity and its cost."""
    monitoring, quality = catalog.monitoring, catalog.data_quality
    assert monitoring is not None and quality is not None and quality.feature_names is not None
    checks = 24 / monitoring.schedule_hours
    captured_per_day = requests_per_second * 86_400 * monitoring.capture_percent / 100
    stored_gb = captured_per_day * CAPTURED_BYTES * monitoring.capture_retention_days / 1e9
    capture_files = captured_per_day / REQUESTS_PER_CAPTURE_FILE
    processing = SAGEMAKER_HOURLY["processing"][monitoring.instance_type]
    metrics = len(quality.feature_names) + DRIFT_COUNTS
    lambda_seconds = 2 * checks * 1.0 * 0.25  # two invocations per check, about 1 s at 256 MB
    items: dict[str, dict[str, Any]] = {
        "drift checks (processing jobs)": {
            "quantity": f"{checks:g} x {CHECK_BILLED_MINUTES:g} min on {monitoring.instance_type}",
            "usd": checks * CHECK_BILLED_MINUTES / 60 * processing,
        },
        "captured requests stored (S3)": {
            "quantity": f"{stored_gb:.1f} GB kept {monitoring.capture_retention_days} days",
            "usd": stored_gb * S3_STORAGE.unit_price / DAYS_PER_MONTH,
        },
        "capture files written and read (S3 requests)": {
            "quantity": f"{capture_files:,.0f} PUTs, as many GETs",
            "usd": capture_files
            * (PRICES["s3.put_tier_request"].unit_price + PRICES["s3.get_tier_request"].unit_price),
        },
        "custom metrics (CloudWatch EMF)": {
            "quantity": f"{metrics} metrics ({len(quality.feature_names)} FeatureDrift, {DRIFT_COUNTS} counts)",
            "usd": metrics * CUSTOM_METRIC.unit_price / DAYS_PER_MONTH,
        },
        "StartDriftChecks and ActOnDriftCheck (Lambda)": {
            "quantity": f"{2 * checks:g} invocations",
            "usd": 2 * checks * PRICES["lambda.request"].unit_price
            + lambda_seconds * PRICES["lambda.gb_second"].unit_price,
        },
        "schedule and SageMaker events (EventBridge, default bus)": {"quantity": "free", "usd": 0.0},
    }
    watching = sum(item["usd"] for item in items.values())
    retraining = monitoring.retraining
    per_retraining = (
        retraining.max_jobs * TRIAL_MINUTES / 60 * SAGEMAKER_HOURLY["training"][catalog.training.instance_type]
        if retraining is not None
        else 0.0
    )
    return {
        "model": catalog.id,
        "per_day_usd": {name: round(item["usd"], 4) for name, item in items.items()},
        "quantities": {name: item["quantity"] for name, item in items.items()},
        "watching_usd_per_day": round(watching, 3),
        "retraining_usd_each": round(per_retraining, 3),
        "retrainings_at_most_per_day": round(24 / retraining.min_interval_hours, 2) if retraining else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests-per-second", type=float, default=100.0)
    args = parser.parse_args()
    catalogs = load_catalogs(ROOT / "models")
    result = {
        "benchmark": "monitoring_cost",
        "price_table": f"us-east-1 list prices recorded {PRICE_TABLE_DATE} (bench/cost_model.py, "
        "promotion.result.cost)",
        "assumptions": {
            "requests_per_second": args.requests_per_second,
            "captured_request_bytes": CAPTURED_BYTES,
            "drift_check_billed_minutes": CHECK_BILLED_MINUTES,
            "requests_per_capture_file": REQUESTS_PER_CAPTURE_FILE,
            "retraining_trial_minutes": TRIAL_MINUTES,
        },
        "models": [
            monitoring_cost(catalog, args.requests_per_second)
            for catalog in catalogs.values()
            if catalog.monitoring is not None
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "monitoring_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
