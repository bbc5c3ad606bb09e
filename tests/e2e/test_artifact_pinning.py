"""The challenger the endpoint serves is the artifact the comparison evaluated (issue 19: the deployed artifact was
not pinned between comparison and deployment), and SageMaker must be able to download it with the model's role."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from local.iam.model import Role
from local.iam.policy import Policy
from local.lambdas import FunctionSpec
from local.production import load_model_catalog
from local.runtime import LocalRuntime
from promotion.contract.names import model_name, release_artifact_key, release_id_for, training_job_name
from tests.e2e.conftest import event, runtime_with, world

MODEL = "fraud-detection"


def release_of(runtime: LocalRuntime) -> str:
    detail = event()
    moment = datetime.fromisoformat(detail["time"].replace("Z", "+00:00"))
    return release_id_for(detail["detail"]["HyperParameterTuningJobArn"], moment)


def training_output(runtime: LocalRuntime) -> tuple[str, str]:
    """(bucket, key) of the production pipeline's model.tar.gz for the shared event's release."""
    catalog = load_model_catalog(runtime.models_dir, MODEL)
    bucket, _, prefix = catalog.training.output_path.removeprefix("s3://").partition("/")
    return bucket, f"{prefix.rstrip('/')}/{training_job_name(MODEL, release_of(runtime))}/output/model.tar.gz"


def around_state(
    runtime: LocalRuntime,
    state: str,
    before: Callable[[], None] = lambda: None,
    after: Callable[[], None] = lambda: None,
) -> None:
    """Run `before()` and `after()` around each invocation of the function behind `state`."""
    logical_id = runtime.lambda_states()[state]
    assert runtime.lambdas is not None

    def wrap(spec: FunctionSpec, call: Callable[[], Any]) -> Any:
        if spec.logical_id != logical_id:
            return call()
        before()
        result = call()
        after()
        return result

    runtime.lambdas.around_handler = wrap


def test_the_endpoint_serves_a_pinned_copy_of_exactly_what_the_comparison_evaluated(
    synthesized: Path, tmp_path: Path
) -> None:
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        result = runtime.run(event(), seed=True)
        assert result.outcome == "PROMOTED", result.cause
        bucket, key = training_output(runtime)
        trained = runtime.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        release = release_of(runtime)
        pinned_key = release_artifact_key(MODEL, release)
        pinned = runtime.clients.s3.get_object(Bucket=runtime.config_bucket, Key=pinned_key)
        pinned_bytes = pinned["Body"].read()
        sagemaker = runtime.clients.sagemaker
        rollout = result.output["rollout"]
        model = sagemaker.describe_model(ModelName=rollout["challenger_model"])
    assert pinned_bytes == trained
    assert rollout["artifact_sha256"] == hashlib.sha256(trained).hexdigest()
    assert result.output["comparison"]["challenger_sha256"] == rollout["artifact_sha256"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{runtime.config_bucket}/{pinned_key}"
    assert pinned["Metadata"]["promotion-source"] == f"s3://{bucket}/{key}"


def test_an_artifact_overwritten_after_the_comparison_is_never_deployed(synthesized: Path, tmp_path: Path) -> None:
    """Something that can write the training output replaces model.tar.gz between the comparison's verdict and
    DeployChallenger: ArtifactChanged, Rollback, and the endpoint never serves it."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        bucket, key = training_output(runtime)

        def tamper() -> None:
            runtime.clients.s3.put_object(Bucket=bucket, Key=key, Body=b"not the model that was compared")

        around_state(runtime, "DeployChallenger", before=tamper)
        result = runtime.run(event(), seed=True)
        models = [m["ModelName"] for m in runtime.clients.sagemaker.list_models()["Models"]]
        challenger = model_name(MODEL, release_of(runtime))
    assert result.error == "ROLLED_BACK", result.cause
    assert "ArtifactChanged" in str(result.output["error"])
    assert "changed after the comparison" in str(result.output["error"])
    assert result.production_after == result.production_before  # parameters, config, endpoint config and weights
    assert challenger not in models  # no SageMaker model was created from it


def test_an_endpoint_update_whose_model_data_cannot_be_downloaded_fails_as_on_sagemaker(
    synthesized: Path, tmp_path: Path
) -> None:
    """SageMaker downloads each variant's model data with the model's role when it provisions the new config: a
    missing object fails the update (FailureReason in SageMaker's words), and the promotion rolls back."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        pinned_key = release_artifact_key(MODEL, release_of(runtime))

        def lose_the_copy() -> None:
            runtime.clients.s3.delete_object(Bucket=runtime.config_bucket, Key=pinned_key)

        around_state(runtime, "DeployChallenger", after=lose_the_copy)
        result = runtime.run(event(), seed=True)
    assert result.error == "ROLLED_BACK", result.cause
    assert 'Failed to download model data for container "container_2"' in str(result.cause), result.cause
    assert result.production_after == result.production_before


def test_the_model_role_must_be_allowed_to_read_the_model_data(synthesized: Path, tmp_path: Path) -> None:
    """The runtime's check of a download: the object must exist and the role's policies must allow s3:GetObject."""
    with runtime_with(synthesized, tmp_path, world(), scenario="good") as runtime:
        assert runtime.iam is not None
        key = "releases/fraud-detection/r1/model.tar.gz"
        runtime.clients.s3.put_object(Bucket=runtime.config_bucket, Key=key, Body=b"model")
        url = f"s3://{runtime.config_bucket}/{key}"
        trust = {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
        bare = f"arn:aws:iam::{runtime.iam.account}:role/NoS3"
        runtime.iam.model.roles[bare] = Role("NoS3", bare, (), Policy.parse("trust", trust, resource_policy=True))
        pipeline = next(a for a, r in runtime.iam.model.roles.items() if r.logical_id.startswith("TrainingFraud"))
        denied = runtime.model_data_check(bare, url)
        allowed = runtime.model_data_check(pipeline, url)
        missing = runtime.model_data_check(pipeline, url + ".missing")
    assert denied is not None and "s3:GetObject" in denied
    assert allowed is None
    assert missing is not None and "no object" in missing
