"""Cold start of each Lambda handler: import + init time in a fresh interpreter, beside a bare `import boto3`
plus one client measured in the same run. Writes bench/results/cold_start.json."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
REPEATS = 5

BASELINE = """
import time, json
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
boto3.client("s3", region_name="us-east-1")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "init_s": t2 - t1}))
"""

HANDLER = """
import time, json, sys, importlib.util, resource
sys.path.insert(0, {layer!r})
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t1 = time.perf_counter()
from promotion.core.clients import client
client({service!r})
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "init_s": t2 - t1,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

FIRST_CLIENT = {
    "claim_promotion": "dynamodb",
    "validate_candidate": "sagemaker",
    "await_approval": "dynamodb",
    "backup_production": "s3",
    "write_parameters": "ssm",
    "write_config": "s3",
    "trigger_pipeline": "sagemaker",
    "resume_waiting_step": "sagemaker",
    "rollback": "ssm",
    "publish_result": "s3",
    "approval_decision": "dynamodb",
    "rollback_request": "ssm",
}


def _run(code: str) -> dict[str, float]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _median(samples: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(sample[key] for sample in samples), 4)


def main() -> dict[str, object]:
    layer = str(ROOT / "layers" / "promotion" / "python")
    baseline = [_run(BASELINE) for _ in range(REPEATS)]
    result: dict[str, object] = {
        "repeats": REPEATS,
        "python": sys.version.split()[0],
        "baseline_boto3": {"import_s": _median(baseline, "import_s"), "init_s": _median(baseline, "init_s")},
        "handlers": {},
    }
    handlers: dict[str, object] = {}
    for function in sorted(FIRST_CLIENT):
        path = str(ROOT / "functions" / function / "handler.py")
        samples = [_run(HANDLER.format(layer=layer, path=path, service=FIRST_CLIENT[function])) for _ in range(REPEATS)]
        handlers[function] = {
            "import_s": _median(samples, "import_s"),
            "init_s": _median(samples, "init_s"),
            "total_s": round(_median(samples, "import_s") + _median(samples, "init_s"), 4),
            "max_rss_mb": _median(samples, "max_rss_mb"),
        }
    result["handlers"] = handlers
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cold_start.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
