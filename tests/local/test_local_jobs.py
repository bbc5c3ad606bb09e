"""The local runtime's SageMaker jobs follow the container contract: only the stack's job image runs, its commands
map onto jobs/ and this interpreter, and metrics come from the log through the job's metric definitions only."""

from __future__ import annotations

import sys
from pathlib import Path

from local.sagemaker_jobs import PROGRAM_DIR, LocalJobs, metrics_from_log

PROJECT = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets-123456789012-us-east-1:abc"


def test_only_the_stacks_job_image_runs_locally(tmp_path: Path) -> None:
    jobs = LocalJobs(s3=None, work_dir=tmp_path, project_image=PROJECT)
    assert jobs.pull(PROJECT, role=None) is None
    refused = jobs.pull("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", role=None)
    assert refused is not None and refused.startswith("ClientError: the local runtime runs only the stack's job image")


def test_the_images_python3_and_program_folder_are_this_interpreter_and_jobs(tmp_path: Path) -> None:
    jobs = LocalJobs(s3=None, work_dir=tmp_path, project_image=PROJECT)
    command = jobs.local_command(["python3", "/opt/program/comparison/compare.py", "--alpha", "0.05"])
    assert command == [sys.executable, str(PROGRAM_DIR / "comparison" / "compare.py"), "--alpha", "0.05"]


def test_metrics_are_the_last_match_of_each_definition_and_nothing_else() -> None:
    log = "\n".join(
        [
            "[0]#011train-auc:0.90000#011validation-auc:0.80000",
            "[1]#011train-auc:0.95000#011validation-auc:0.85000",
            "validation-accuracy:0.975000",
            "validation-precision:0.5",
        ]
    )
    definitions = [
        {"Name": "validation:auc", "Regex": r".*\[[0-9]+\].*#011validation-auc:([0-9.]+).*"},
        {"Name": "validation:accuracy", "Regex": r".*validation-accuracy:([0-9.]+).*"},
        {"Name": "validation:f1", "Regex": r".*validation-f1:([0-9.]+).*"},
    ]
    # validation:f1 is never printed and validation:precision has no definition: neither exists.
    assert metrics_from_log(log, definitions) == {"validation:auc": 0.85, "validation:accuracy": 0.975}
    assert metrics_from_log(log, []) == {}
