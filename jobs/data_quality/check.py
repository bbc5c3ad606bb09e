"""SageMaker Processing entry point: the data-quality gate (promotion_ml.quality) on the data a promotion is about
to train and compare on, before the production pipeline starts.

    input/train/, input/validation/, input/holdout/   *.csv, label first, no header (the channels present)
    input/reference/profile.json                       the champion's training data profile (absent: no shift check)
    output/report.json                                 every finding, the failures first, and whether all passed
    output/profile.json                                this training data's profile (the next promotion's reference)

Arguments: ``--limit NAME=JSON`` per limit of the catalog's data_quality (repeated), ``--feature NAME`` per feature
in the CSV's order after the label (repeated; optional). One value per argument: SageMaker takes at most 256
characters per container argument.

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

from promotion_ml.quality import CHANNELS, Thresholds, check_data
from promotion_ml.runtime import ProcessingLayout, run_processing_job


def _limit(text: str) -> tuple[str, Any]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=JSON")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--limit", dest="limits", action="append", default=[], type=_limit, metavar="NAME=JSON", help="one limit"
    )
    parser.add_argument("--feature", dest="features", action="append", default=[], help="one feature name, in order")
    return parser


def run(args: argparse.Namespace, layout: ProcessingLayout) -> dict[str, Any]:
    folders = {c: layout.input_dir / c for c in CHANNELS if (layout.input_dir / c).is_dir()}
    reference_path = layout.input_dir / "reference" / "profile.json"
    reference = json.loads(reference_path.read_text(encoding="utf-8")) if reference_path.is_file() else None
    report, train_profile = check_data(
        folders, Thresholds.from_mapping(dict(args.limits)), reference, args.features or None
    )
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    (layout.output_dir / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", "utf-8")
    if train_profile is not None:
        (layout.output_dir / "profile.json").write_text(json.dumps(train_profile, allow_nan=False) + "\n", "utf-8")
    return report


def _summarize(report: Mapping[str, Any]) -> None:
    failures = report["failures"]
    print(f"data quality: {'PASS' if not failures else 'FAIL'}; {len(failures)} failed checks", flush=True)
    for failure in failures[:20]:
        print(f"  {failure['sentence']}", flush=True)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the job; the exit status says whether it ran, not what it found."""
    return run_processing_job(
        lambda: build_parser().parse_args(argv), run, _summarize, os.environ if environ is None else environ
    )


if __name__ == "__main__":
    sys.exit(main())
