"""The tuning-job event model: one job named by both its name and its ARN."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promotion.contract.events import TuningJobStateChange
from tests.conftest import load_event


def _event(name: str, arn_name: str) -> dict[str, object]:
    event = load_event("tuning-job-completed.json")
    event["detail"]["HyperParameterTuningJobName"] = name
    event["detail"]["HyperParameterTuningJobArn"] = (
        f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{arn_name}"
    )
    return event


def test_sagemaker_writes_the_name_lower_case_in_the_arn() -> None:
    parsed = TuningJobStateChange.model_validate(_event("Fraud-XGB-Tuning-7", "fraud-xgb-tuning-7"))
    assert parsed.detail.HyperParameterTuningJobName == "Fraud-XGB-Tuning-7"


def test_an_arn_of_another_job_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match HyperParameterTuningJobName"):
        TuningJobStateChange.model_validate(_event("fraud-xgb-tuning-0042", "fraud-xgb-tuning-0099"))


def test_a_hand_sent_arn_in_another_case_dedupes_against_sagemakers_own() -> None:
    parsed = TuningJobStateChange.model_validate(_event("fraud-xgb-tuning-0042", "Fraud-XGB-Tuning-0042"))
    assert parsed.detail.HyperParameterTuningJobArn.endswith("/fraud-xgb-tuning-0042")
