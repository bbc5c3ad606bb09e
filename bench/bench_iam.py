"""The IAM enforcement and the least-privilege survey, measured: the product's scenarios run on the local runtime
with every call authorized against the synthesized template (local/least_privilege.py), then each statement of each
role is removed in turn and the recorded requests are evaluated again. Writes bench/results/iam.json: requests
authorized per scenario, statements per role, and each statement's verdict (needed, redundant, unexercised) with
the request that needs it.

    .venv/bin/python bench/bench_iam.py
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "promotion" / "python", ROOT / "jobs"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from local.least_privilege import run_scenarios, survey  # noqa: E402
from local.runtime import LocalRuntime  # noqa: E402
from local.template import load_stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
EVENTS = ROOT / "tests" / "data" / "events"


def overhead(event: dict[str, Any], world: dict[str, Any], repeats: int = 3) -> dict[str, float]:
    """Median wall time of one promotion (seeded champion, approval, jobs from the cache, four-stage rollout) with
    the IAM enforcement on and off, runs interleaved so both see the same machine load."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            for enforce in (True, False):
                runtime = LocalRuntime(
                    ROOT, synth=False, world=world, reports_dir=Path(folder) / "reports", enforce_iam=enforce
                )
                with runtime:
                    started = time.perf_counter()
                    result = runtime.run(event, seed=True)
                    timings[enforce].append(time.perf_counter() - started)
                assert result.outcome == "PROMOTED", result.cause
    on, off = statistics.median(timings[True]), statistics.median(timings[False])
    return {
        "promotion_seconds_enforced": round(on, 2),
        "promotion_seconds_not_enforced": round(off, 2),
        "overhead_percent": round(100 * (on - off) / off, 1),
        "repeats": repeats,
    }


def main() -> None:
    load_stack(ROOT)  # synthesize when cdk.out is stale
    event = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    world = json.loads((EVENTS / "world.json").read_text())
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' own logs: not the bench's output
        model, recorded, outcomes = run_scenarios(ROOT, event, world)
    ran = time.perf_counter() - started
    started = time.perf_counter()
    result = survey(model, recorded, outcomes)
    replayed = time.perf_counter() - started
    document = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "scenarios_seconds": round(ran, 1),
        "survey_seconds": round(replayed, 2),
        "enforcement_overhead": overhead(event, world),
        **result.summary(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "iam.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k not in ("findings", "roles")}, indent=2))
    for finding in result.findings:
        if finding.verdict != "needed" or finding.unused_actions:
            print(f"{finding.verdict:<12} {finding.statement} {finding.actions} unused={finding.unused_actions}")


if __name__ == "__main__":
    main()
