"""The candidate's model package, as the Model Registry shows it to approvers: its description, container, content
types and metadata within CreateModelPackage's limits, one package per execution however often AwaitApproval is
retried."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Champion, PromotionState
from promotion.intake.registry import _metadata, client_token, register_candidate
from tests.integration.helpers import validated_state

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1"


@pytest.fixture
def state(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, registry_as: Callable[..., None]
) -> PromotionState:
    """A validated candidate, with the Model Registry as SageMaker runs it (CreateModelPackage's ClientToken makes a
    retried call return the first package; moto alone creates another)."""
    validated = validated_state(aws, catalog, catalog_dir)
    assert validated.validation is not None
    champion = Champion(release_id="20261001-000000-champ0", performance={"validation:auc": 0.951234567})
    return validated.model_copy(update={"validation": validated.validation.model_copy(update={"champion": champion})})


def test_the_package_shows_the_candidate_the_champion_and_how_to_serve_it(
    aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState
) -> None:
    assert state.validation is not None and state.validation.candidate is not None
    candidate = state.validation.candidate
    arn = register_candidate(aws["sagemaker"], state, catalog, IMAGE)
    described = aws["sagemaker"].describe_model_package(ModelPackageName=arn)
    assert described["ModelPackageDescription"] == (
        f"fraud-detection release {state.claim.release_id}: best training job {candidate.training_job_name} of "
        f"tuning job fraud-xgb-tuning-0042; validation:auc 0.9712"
    )
    assert described["InferenceSpecification"]["Containers"] == [
        {"Image": IMAGE, "ModelDataUrl": candidate.model_data_url}
    ]
    assert described["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert described["InferenceSpecification"]["SupportedResponseMIMETypes"] == ["text/csv", "application/json"]
    assert described["CustomerMetadataProperties"] == {
        "promotion:model": "fraud-detection",
        "promotion:release-id": state.claim.release_id,
        "promotion:tuning-job": "fraud-xgb-tuning-0042",
        "promotion:execution": state.claim.execution_name,
        "promotion:outcome": "waiting for approval",
        "candidate:validation:accuracy": "0.9431",
        "candidate:validation:auc": "0.9712",
        "candidate:validation:f1": "0.8712",
        "champion:release-id": "20261001-000000-champ0",
        "champion:validation:auc": "0.951235",
    }


def test_a_candidate_without_model_data_is_registered_with_the_image_alone(
    aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState
) -> None:
    assert state.validation is not None and state.validation.candidate is not None
    bare = state.validation.candidate.model_copy(update={"model_data_url": None})
    state = state.model_copy(update={"validation": state.validation.model_copy(update={"candidate": bare})})
    arn = register_candidate(aws["sagemaker"], state, catalog, IMAGE)
    containers = aws["sagemaker"].describe_model_package(ModelPackageName=arn)["InferenceSpecification"]["Containers"]
    assert containers == [{"Image": IMAGE}]


def test_only_a_validated_candidate_is_registered(
    aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState
) -> None:
    assert state.validation is not None
    for unvalidated in (
        state.model_copy(update={"validation": None}),
        state.model_copy(update={"validation": state.validation.model_copy(update={"candidate": None})}),
    ):
        with pytest.raises(ValueError, match=r"^only a validated candidate is registered$"):
            register_candidate(aws["sagemaker"], unvalidated, catalog, IMAGE)


def test_one_package_per_execution_however_often_it_asks(
    aws: dict[str, Any], catalog: ModelCatalog, state: PromotionState
) -> None:
    first = register_candidate(aws["sagemaker"], state, catalog, IMAGE)
    assert register_candidate(aws["sagemaker"], state, catalog, IMAGE) == first
    other = state.model_copy(
        update={"claim": state.claim.model_copy(update={"execution_arn": state.claim.execution_arn + "-2"})}
    )
    assert register_candidate(aws["sagemaker"], other, catalog, IMAGE) != first
    assert client_token("arn:a") == str(uuid.uuid5(uuid.NAMESPACE_URL, "arn:a")) != client_token("arn:b")


def test_the_metadata_of_a_state_without_a_validation_names_no_champion(state: PromotionState) -> None:
    bare = state.model_copy(
        update={
            "validation": None,
            "claim": state.claim.model_copy(
                update={"model": None, "release_id": None, "tuning_job_name": None, "execution_name": ""}
            ),
        }
    )
    assert _metadata(bare) == {
        "promotion:model": "",
        "promotion:release-id": "",
        "promotion:tuning-job": "",
        "promotion:execution": state.claim.execution_arn,
        "promotion:outcome": "waiting for approval",
        "champion:release-id": "none",
    }


def test_the_metadata_stays_within_create_model_packages_limits(state: PromotionState) -> None:
    assert state.validation is not None and state.validation.candidate is not None
    metrics = {f"m{index:03d}{'x' * 140}": float(index) for index in range(60)}
    candidate = state.validation.candidate.model_copy(update={"metrics": metrics})
    champion = Champion(release_id="r" * 300, performance={})
    crowded = state.model_copy(
        update={"validation": state.validation.model_copy(update={"candidate": candidate, "champion": champion})}
    )
    metadata = _metadata(crowded)
    assert len(metadata) == 50
    assert max(len(key) for key in metadata) == 128
    assert f"candidate:m000{'x' * 140}"[:128] in metadata
    assert "champion:release-id" not in metadata  # past the 50th property: the report keeps it
    long_release = state.model_copy(
        update={
            "validation": state.validation.model_copy(update={"champion": champion}),
            "claim": state.claim.model_copy(update={"release_id": "r" * 300}),
        }
    )
    assert _metadata(long_release)["promotion:release-id"] == "r" * 256
    assert _metadata(long_release)["champion:release-id"] == "r" * 256


def test_the_account_is_the_arns_fifth_field() -> None:
    from promotion.intake.registry import account_of

    assert account_of("arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-detection/1") == "123456789012"
    assert account_of("arn:aws:s3:::bucket") == ""
    assert account_of("a:b:c:d:e") == "e"
    assert account_of("a:b:c:d") == ""
    assert account_of("not-an-arn") == ""
