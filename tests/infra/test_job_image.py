"""The SageMaker job image: one Docker image asset built from jobs/, whose URI every function gets and resolves in
the deployment's own region (SageMaker pulls images only from the region of the job or endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT
from tests.infra.conftest import STACK_NAME, Synth, flat


def test_the_job_image_is_built_from_jobs_for_the_instances_sagemaker_runs(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / f"{STACK_NAME}.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/amd64"
    staged = synth.outdir / image["source"]["directory"]
    assert (staged / "Dockerfile").read_text() == (ROOT / "jobs" / "Dockerfile").read_text()
    for program in ("training/train.py", "comparison/compare.py", "serving/serve.py", "bin/train", "bin/serve"):
        assert (staged / program).read_bytes() == (ROOT / "jobs" / program).read_bytes(), program
    assert not list(Path(staged).rglob("__pycache__"))
    (destination,) = image["destinations"].values()
    # The bootstrap's repository of the deployment's account and region, not a fixed one.
    assert destination["repositoryName"] == "cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}"


def test_every_function_gets_the_same_region_agnostic_image_uri(synth: Synth) -> None:
    values = [
        f["Properties"]["Environment"]["Variables"]["JOB_IMAGE_URI"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if "JOB_IMAGE_URI" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert values and all(value == values[0] for value in values)
    assert values[0]["Fn::Sub"].startswith("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/")
    assert "us-east-1" not in flat(values[0]) and "683313688378" not in flat(values[0])
    assert synth.template["Outputs"]["JobImageUri"]["Value"] == values[0]
