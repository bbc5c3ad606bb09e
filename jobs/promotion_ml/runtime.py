"""The SageMaker container layout (``/opt/ml/...``) and how a job reports failure there.

Every path can be moved, so the same entry points run on SageMaker and in a temporary folder locally:
``SAGEMAKER_BASE_DIR`` (the training toolkit's own variable, default ``/opt/ml``) moves the whole tree, and the
``SM_*`` variables SageMaker sets move single folders, as they do on SageMaker.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
PROCESSING_ROOT_ENV = "PROCESSING_ROOT"


def _base_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR)


@dataclass(frozen=True)
class TrainingLayout:
    """Where a training job finds its configuration and data and puts its model and outputs."""

    model_dir: Path
    input_config_dir: Path
    input_data_dir: Path
    output_dir: Path
    output_data_dir: Path
    channel_env: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TrainingLayout:
        base = _base_dir(environ)
        return cls(
            model_dir=Path(environ.get("SM_MODEL_DIR") or base / "model"),
            input_config_dir=Path(environ.get("SM_INPUT_CONFIG_DIR") or base / "input" / "config"),
            input_data_dir=Path(environ.get("SM_INPUT_DIR") or base / "input") / "data",
            output_dir=Path(environ.get("SM_OUTPUT_DIR") or base / "output"),
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR") or base / "output" / "data"),
            channel_env={k: v for k, v in environ.items() if k.startswith("SM_CHANNEL_")},
        )

    @property
    def hyperparameters_path(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

    @property
    def failure_path(self) -> Path:
        return self.output_dir / "failure"

    def channel(self, name: str) -> Path:
        """``SM_CHANNEL_<NAME>`` if set, else ``<input>/data/<name>``."""
        return Path(self.channel_env.get(f"SM_CHANNEL_{name.upper()}") or self.input_data_dir / name)


@dataclass(frozen=True)
class ProcessingLayout:
    """Where a processing job finds its inputs and puts its outputs and exit message."""

    input_dir: Path
    output_dir: Path
    message_path: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessingLayout:
        base = _base_dir(environ)
        root = Path(environ.get(PROCESSING_ROOT_ENV) or base / "processing")
        return cls(
            input_dir=root / "input",
            output_dir=root / "output",
            message_path=base / "output" / "message",
        )


def write_failure(path: Path, message: str) -> None:
    """Write the reason a job failed where SageMaker reads it (it shows the first 1 KB); never raise."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message, encoding="utf-8")
    except OSError as error:
        print(f"could not write the failure reason to {path}: {error}", file=sys.stderr)


def run_processing_job(
    parse: Callable[[], T],
    run: Callable[[T, ProcessingLayout], Mapping[str, Any]],
    summarize: Callable[[Mapping[str, Any]], None],
    environ: Mapping[str, str],
) -> int:
    """A processing entry point's main: its exit status says whether it ran, not what it found. Bad arguments exit 2
    and any error 1, each with the reason in the exit message (SageMaker's ExitMessage); argparse has printed the
    usage, the traceback goes to the job's log."""
    layout = ProcessingLayout.from_environ(environ)
    try:
        args = parse()
    except SystemExit as stop:
        if stop.code in (0, None):
            return 0
        write_failure(layout.message_path, "invalid arguments; see the job's log for the usage")
        return 2
    try:
        report = run(args, layout)
    except Exception as error:  # every failure must reach the exit message
        traceback.print_exc()
        write_failure(layout.message_path, f"{type(error).__name__}: {error}")
        return 1
    summarize(report)
    return 0
