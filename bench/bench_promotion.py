"""A full local promotion (the seed event, approved, trained, compared, rolled out to 100 %): wall time and the
number of state transitions, cold (first run in a fresh process, jobs not cached) and warm. Writes
bench/results/promotion.json."""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "promotion" / "python"), str(ROOT / "jobs")]

from local.runtime import LocalRuntime  # noqa: E402

RESULTS = ROOT / "bench" / "results"
EVENTS = ROOT / "tests" / "data" / "events"
RUNS = 5


def transitions(runtime: LocalRuntime, execution_arn: str) -> int:
    """Step Functions bills a state transition per state entered (plus the start)."""
    return sum(1 for event in runtime.history(execution_arn) if event["type"].endswith("StateEntered"))


def main() -> dict[str, object]:
    shutil.rmtree(ROOT / ".local-runs" / "job-cache", ignore_errors=True)  # the first run is really cold
    event = json.loads((EVENTS / "tuning-job-completed.json").read_text())
    world = json.loads((EVENTS / "world.json").read_text())
    samples: list[dict[str, float | int | str | None]] = []
    for index in range(RUNS):
        with LocalRuntime(ROOT, world=world) as runtime:
            started = time.perf_counter()
            result = runtime.run(event, seed=True)
            elapsed = time.perf_counter() - started
            assert result.execution_arn is not None
            samples.append(
                {
                    "run": index,
                    "outcome": result.outcome,
                    "wall_s": round(elapsed, 3),
                    "execution_s": round(result.duration_s, 3),
                    "states": len(result.states),
                    "state_transitions": transitions(runtime, result.execution_arn),
                    "rollout_loop_transitions": sum(
                        1 for state in result.states if state.name in ("Bake", "EvaluateStage", "StageVerdict")
                    ),
                    "lambda_invocations": len(runtime.lambdas.invocations) if runtime.lambdas else None,
                }
            )
    warm = [float(s["wall_s"]) for s in samples[1:]]  # type: ignore[arg-type]
    report = {
        "what": "local promotion of the seed event: claim, validate, approve, back up, write, train, compare, "
        "roll out 1/10/50/100 % with compressed bakes, publish",
        "runs": samples,
        "cold_wall_s": samples[0]["wall_s"],
        "warm_median_wall_s": round(statistics.median(warm), 3) if warm else None,
        "state_transitions_per_promotion": samples[-1]["state_transitions"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "note": "cold includes the real training and comparison jobs; later runs reuse their cached outputs "
        "(same entry points and inputs). rollout_loop_transitions: the bake/evaluate looks of the four stages.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "promotion.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
