"""SageMaker Processing entry point: the drift check (promotion_ml.drift) of one window of the endpoint's captured
requests against the live release's training data profile.

    input/reference/profile.json    the live release's training data profile (the data-quality gate's)
    input/capture-<yyyymmddhh>/     one captured hour of the live variant: SageMaker's *.jsonl files
    output/drift.json               rows read, PSI per feature, the drifted features and the verdict

Arguments: ``--max-psi X --min-rows N`` and ``--feature NAME`` per feature in the request's CSV order (repeated).

Exit status 0 whatever the verdict (it is in the report); 1 on an error and 2 on bad arguments, with the reason in
``/opt/ml/output/message`` (SageMaker's ExitMessage of a processing job).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if importlib.util.find_spec("promotion_ml") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promotion_ml.drift import measure_drift
from promotion_ml.runtime import ProcessingLayout, run_processing_job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-psi", type=float, required=True)
    parser.add_argument("--min-rows", type=int, required=True)
    parser.add_argument("--feature", dest="features", action="append", required=True, help="one feature, in order")
    return parser


def run(args: argparse.Namespace, layout: ProcessingLayout) -> dict[str, Any]:
    reference = json.loads((layout.input_dir / "reference" / "profile.json").read_text(encoding="utf-8"))
    files = sorted(path for folder in sorted(layout.input_dir.glob("capture-*")) for path in folder.rglob("*.jsonl"))
    report = measure_drift(files, reference, args.features, args.max_psi, args.min_rows)
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    (layout.output_dir / "drift.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", "utf-8")
    return report


def _summarize(report: Mapping[str, Any]) -> None:
    print(f"drift: {report['verdict']} over {report['rows']} requests ({report['unreadable']} unreadable)", flush=True)
    for name in report["drifted"][:20]:
        print(f"  {name}: PSI {report['psi'][name]:.4f} (limit {report['max_psi']:g})", flush=True)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the job; the exit status says whether it ran, not what it found."""
    return run_processing_job(
        lambda: build_parser().parse_args(argv), run, _summarize, os.environ if environ is None else environ
    )


if __name__ == "__main__":
    sys.exit(main())
