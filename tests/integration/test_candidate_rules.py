"""ValidateCandidate's verdict to the letter, from SageMaker's answers (tests/data/events/world.json, changed one
fact at a time) and the champion's config in moto S3: every reason, warning and check, and the candidate and
champion it records."""

from __future__ import annotations

import copy
import math
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.intake.candidate import (
    low_accuracy_warning,
    meets_production_threshold,
    objective_gain,
    validate_candidate,
)
from tests.conftest import CONFIG_BUCKET, REGION
from tests.fakes import WorldSageMaker
from tests.integration.helpers import world

TUNING = "fraud-xgb-tuning-0042"
TRAINING = "fraud-xgb-tuning-0042-017-5a1c9e2f"
TUNING_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{TUNING}"
TRAINING_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{TRAINING}"
HYPERPARAMETERS = {
    "max_depth": 6,
    "eta": 0.0834,
    "num_round": 240,
    "subsample": 0.85,
    "min_child_weight": 3.0,
    "objective": "binary:logistic",
    "eval_metric": "auc",
}
METRICS = {"validation:auc": 0.9712, "validation:accuracy": 0.9431, "validation:f1": 0.8712}


def judge(aws: dict[str, Any], catalog: ModelCatalog, the_world: dict[str, Any] | None = None) -> Any:
    return validate_candidate(WorldSageMaker(the_world or world()), aws["s3"], CONFIG_BUCKET, catalog, TUNING)


def changed(change: Any) -> dict[str, Any]:
    """world.json with one fact changed by `change(tuning_job, best, training_job)`."""
    document = copy.deepcopy(world())
    tuning = document["DescribeHyperParameterTuningJob"][TUNING]
    change(tuning, tuning["BestTrainingJob"], document["DescribeTrainingJob"][TRAINING])
    return document


def champion_config(aws: dict[str, Any], catalog: ModelCatalog, performance: dict[str, float]) -> None:
    body = yaml.safe_dump(
        {
            "model": catalog.id,
            "release_id": "20261001-000000-champ0",
            "algorithm": "xgboost",
            "hyperparameters": {"max_depth": 5},
            "performance": performance,
            "tested_date": "2026-10-01T00:00:00Z",
            "approved_by": "bob@example.com",
            "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-detection/1",
            "source": {"tuning_job_arn": "arn:old", "training_job_name": "old-job"},
            "previous_release_id": None,
        }
    )
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=body.encode())


def test_the_seed_candidate_passes_with_every_fact_recorded(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert judge(aws, catalog).model_dump(mode="json") == {
        "verdict": "PASSED",
        "reasons": [],
        "warnings": [],
        "checks": [
            {"name": "hyperparameter_schema", "passed": True, "value": None, "threshold": None, "detail": "7 valid"},
            {"name": "accuracy_threshold", "passed": True, "value": 0.9431, "threshold": 0.9, "detail": ""},
        ],
        "candidate": {
            "tuning_job_name": TUNING,
            "tuning_job_arn": TUNING_ARN,
            "training_job_name": TRAINING,
            "training_job_arn": TRAINING_ARN,
            "model_data_url": f"s3://fraud-detection-models/tuning/{TRAINING}/output/model.tar.gz",
            "training_image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "objective_metric": "validation:auc",
            "objective_type": "Maximize",
            "objective_value": 0.9712,
            "hyperparameters": HYPERPARAMETERS,
            "metrics": METRICS,
        },
        "champion": None,
        "approval_timeout_seconds": 72 * 3600,
        "training_wait_seconds": catalog.training.max_runtime_seconds + 3600,
        "comparison_wait_seconds": (catalog.comparison.max_runtime_seconds if catalog.comparison else 0) + 3600,
        "data_quality_wait_seconds": (catalog.data_quality.max_runtime_seconds if catalog.data_quality else 0) + 3600,
    }


def test_a_catalog_without_a_comparison_waits_only_the_margin_for_it(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    assert judge(aws, catalog.model_copy(update={"comparison": None})).comparison_wait_seconds == 3600


def test_the_champion_is_read_from_the_config_and_must_be_beaten_by_the_required_gain(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    champion_config(aws, catalog, {"validation:auc": 0.95, "validation:accuracy": 0.92})
    passed = judge(aws, catalog)
    assert passed.champion is not None
    assert passed.champion.model_dump() == {
        "release_id": "20261001-000000-champ0",
        "objective_value": 0.95,
        "performance": {"validation:auc": 0.95, "validation:accuracy": 0.92},
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-detection/1",
    }
    assert passed.checks[-1].model_dump() == {
        "name": "beats_champion",
        "passed": True,
        "value": 0.0212,
        "threshold": 0.001,
        "detail": "validation:auc 0.9712 vs champion 0.95 (Maximize)",
    }
    champion_config(aws, catalog, {"validation:auc": 0.9709})  # a gain of 0.0003, under the required 0.001
    beaten = judge(aws, catalog)
    assert (beaten.verdict, beaten.checks[-1].passed) == ("REJECTED", False)
    assert beaten.reasons == [
        "challenger validation:auc 0.9712 does not beat champion 20261001-000000-champ0 (0.9709) by the required "
        "0.001 (Maximize); gain 0.000300"
    ]
    champion_config(aws, catalog, {"validation:auc": 0.9702})  # exactly the required gain
    assert judge(aws, catalog).verdict == "PASSED"


def test_no_gain_is_no_promotion_even_when_the_catalog_requires_none(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    catalog = catalog.model_copy(
        update={"thresholds": catalog.thresholds.model_copy(update={"min_gain_over_champion": 0.0})}
    )
    champion_config(aws, catalog, {"validation:auc": 0.9712})
    assert judge(aws, catalog).checks[-1].passed is False


def test_a_champion_without_the_objective_on_record_is_no_obstacle(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    champion_config(aws, catalog, {"validation:accuracy": 0.92})
    validation = judge(aws, catalog)
    assert validation.verdict == "PASSED"
    assert validation.checks[-1].model_dump() == {
        "name": "beats_champion",
        "passed": True,
        "value": None,
        "threshold": None,
        "detail": "champion has no objective value on record",
    }


def test_an_unreadable_champion_config_rejects_the_candidate(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=catalog.config.key, Body=b"model: [unclosed")
    validation = judge(aws, catalog)
    assert validation.champion is None
    (reason,) = validation.reasons
    assert reason.startswith(
        f"the current production config s3://{CONFIG_BUCKET}/{catalog.config.key} is unreadable: production config "
        "is not valid YAML"
    )


def test_a_missing_tuning_or_training_job_is_a_rejection_and_a_refusal_is_raised(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    missing = validate_candidate(WorldSageMaker({}), aws["s3"], CONFIG_BUCKET, catalog, "nope")
    assert (missing.verdict, missing.reasons) == (
        "REJECTED",
        [
            "tuning job nope not found: An error occurred (ValidationException) when calling the "
            "DescribeHyperParameterTuningJob operation: Could not find tuning job nope"
        ],
    )
    no_training = changed(lambda tuning, best, training: best.update(TrainingJobName="gone"))
    assert judge(aws, catalog, no_training).reasons == [
        "best training job gone not found: An error occurred (ValidationException) when calling the "
        "DescribeTrainingJob operation: Could not find training job gone"
    ]
    denied = boto3.client("sagemaker", region_name=REGION)

    def refuse(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Describe")

    denied.describe_hyper_parameter_tuning_job = refuse  # type: ignore[method-assign]
    with pytest.raises(ClientError, match="AccessDenied"):
        validate_candidate(denied, aws["s3"], CONFIG_BUCKET, catalog, TUNING)
    other_validation = boto3.client("sagemaker", region_name=REGION)

    def malformed(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "1 validation error"}}, "Describe")

    other_validation.describe_hyper_parameter_tuning_job = malformed  # type: ignore[method-assign]
    with pytest.raises(ClientError, match="1 validation error"):
        validate_candidate(other_validation, aws["s3"], CONFIG_BUCKET, catalog, TUNING)
    seeded = WorldSageMaker(world())

    def training_denied(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": "Throttled"}}, "DescribeTrainingJob")

    seeded.describe_training_job = training_denied  # type: ignore[method-assign]
    with pytest.raises(ClientError, match="Throttled"):
        validate_candidate(seeded, aws["s3"], CONFIG_BUCKET, catalog, TUNING)


def test_a_resource_not_found_answer_is_a_missing_job(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    gone = WorldSageMaker(world())

    def not_found(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": "Job NOT found"}}, "DescribeTrainingJob")

    gone.describe_training_job = not_found  # type: ignore[method-assign]
    validation = validate_candidate(gone, aws["s3"], CONFIG_BUCKET, catalog, TUNING)
    assert validation.reasons == [
        f"best training job {TRAINING} not found: An error occurred (ResourceNotFound) when calling the "
        "DescribeTrainingJob operation: Job NOT found"
    ]


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        (
            lambda tuning, best, training: tuning.update(HyperParameterTuningJobStatus="Stopped"),
            [f"tuning job {TUNING} is Stopped, not Completed"],
        ),
        (
            lambda tuning, best, training: tuning.pop("BestTrainingJob"),
            [f"tuning job {TUNING} has no BestTrainingJob (no training job succeeded)"],
        ),
        (
            lambda tuning, best, training: best.pop("TrainingJobName"),
            [f"tuning job {TUNING} has no BestTrainingJob (no training job succeeded)"],
        ),
        (
            lambda tuning, best, training: (
                tuning.update(HyperParameterTuningJobStatus="Failed"),
                tuning.pop("BestTrainingJob"),
            ),
            [
                f"tuning job {TUNING} is Failed, not Completed",
                f"tuning job {TUNING} has no BestTrainingJob (no training job succeeded)",
            ],
        ),
        (
            lambda tuning, best, training: tuning["HyperParameterTuningJobConfig"][
                "HyperParameterTuningJobObjective"
            ].update(Type="Sideways"),
            ["tuning objective type 'Sideways' is neither Maximize nor Minimize"],
        ),
        (
            lambda tuning, best, training: tuning["HyperParameterTuningJobConfig"][
                "HyperParameterTuningJobObjective"
            ].update(Type="Minimize"),
            ["tuning objective Minimize validation:auc differs from the catalog's Maximize validation:auc"],
        ),
        (
            lambda tuning, best, training: tuning["HyperParameterTuningJobConfig"][
                "HyperParameterTuningJobObjective"
            ].update(MetricName="validation:f1"),
            ["tuning objective Maximize validation:f1 differs from the catalog's Maximize validation:auc"],
        ),
        (
            lambda tuning, best, training: training.update(TrainingJobStatus="Stopped"),
            [f"best training job {TRAINING} is Stopped, not Completed"],
        ),
        (
            lambda tuning, best, training: best["TunedHyperParameters"].update(max_depth="7"),
            [
                f"best training job {TRAINING} ran with max_depth='6', but tuning job {TUNING} reports "
                "max_depth='7' as the tuned value (TunedHyperParameters)"
            ],
        ),
        (
            lambda tuning, best, training: best["TunedHyperParameters"].update(gamma="1"),
            [
                f"best training job {TRAINING} ran with gamma=None, but tuning job {TUNING} reports gamma='1' as "
                "the tuned value (TunedHyperParameters)"
            ],
        ),
        (
            lambda tuning, best, training: training["FinalMetricDataList"].append(
                {"MetricName": "validation:logloss", "Value": math.nan}
            ),
            ["metric validation:logloss has no finite value (nan)"],
        ),
        (
            lambda tuning, best, training: training["FinalMetricDataList"].append(
                {"MetricName": "validation:logloss", "Value": True}
            ),
            ["metric validation:logloss has no finite value (True)"],
        ),
        (
            lambda tuning, best, training: training["FinalMetricDataList"].append(
                {"MetricName": "validation:logloss"}
            ),
            ["metric validation:logloss has no finite value (None)"],
        ),
        (
            lambda tuning, best, training: (
                training.update(FinalMetricDataList=[m for m in training["FinalMetricDataList"]
                                                     if m["MetricName"] != "validation:auc"]),
                best.pop("FinalHyperParameterTuningJobObjectiveMetric"),
            ),
            ["objective metric validation:auc is missing from the best training job's final metrics"],
        ),
        (
            lambda tuning, best, training: training.update(
                FinalMetricDataList=[m for m in training["FinalMetricDataList"]
                                     if m["MetricName"] != "validation:accuracy"]
            ),
            ["accuracy metric validation:accuracy is missing from the best training job's final metrics"],
        ),
    ],
    ids=[
        "tuning-stopped",
        "no-best",
        "best-without-name",
        "failed-and-no-best",
        "objective-type-invalid",
        "objective-type-differs",
        "objective-metric-differs",
        "training-stopped",
        "tuned-disagrees",
        "tuned-not-run",
        "metric-nan",
        "metric-bool",
        "metric-without-value",
        "objective-missing",
        "accuracy-missing",
    ],
)  # fmt: skip
def test_each_problem_is_named(aws: dict[str, Any], catalog: ModelCatalog, change: Any, reasons: list[str]) -> None:
    validation = judge(aws, catalog, changed(change))
    assert (validation.verdict, validation.reasons) == ("REJECTED", reasons)


def test_a_metric_entry_without_a_name_is_skipped(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    unnamed = changed(lambda tuning, best, training: training["FinalMetricDataList"].append({"Value": 1.0}))
    validation = judge(aws, catalog, unnamed)
    assert validation.verdict == "PASSED"
    assert validation.candidate is not None and validation.candidate.metrics == METRICS


def test_the_tuning_jobs_reported_objective_stands_in_for_a_missing_final_metric(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    def drop_auc(tuning: Any, best: Any, training: Any) -> None:
        training["FinalMetricDataList"] = [
            m for m in training["FinalMetricDataList"] if m["MetricName"] != "validation:auc"
        ]
        best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] = 0.9655

    validation = judge(aws, catalog, changed(drop_auc))
    assert validation.verdict == "PASSED"
    assert validation.candidate is not None
    assert (validation.candidate.objective_value, validation.candidate.metrics["validation:auc"]) == (0.9655, 0.9655)
    for bad in (True, math.inf, "0.97"):

        def drop_and_spoil(tuning: Any, best: Any, training: Any, bad: Any = bad) -> None:
            drop_auc(tuning, best, training)
            best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] = bad

        assert judge(aws, catalog, changed(drop_and_spoil)).reasons == [
            "objective metric validation:auc is missing from the best training job's final metrics"
        ]


def test_a_tuned_value_written_differently_is_the_same_number(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    assert (
        judge(
            aws, catalog, changed(lambda t, best, tr: best["TunedHyperParameters"].update(min_child_weight="3.0"))
        ).verdict
        == "PASSED"
    )
    assert (
        judge(
            aws, catalog, changed(lambda t, best, tr: best["TunedHyperParameters"].update(min_child_weight="three"))
        ).verdict
        == "REJECTED"
    )


@pytest.mark.parametrize(
    ("accuracy", "reasons", "warnings"),
    [
        (0.9, [], []),
        (0.85, ["validation:accuracy 0.8500 is below the production threshold 0.9"], []),
        (0.8, ["validation:accuracy 0.8000 is below the production threshold 0.9"], []),
        (
            0.75,
            ["validation:accuracy 0.7500 is below the production threshold 0.9"],
            ["low accuracy: validation:accuracy 0.7500 is below 0.8"],
        ),
    ],
)
def test_the_accuracy_thresholds_decide_and_warn(
    aws: dict[str, Any], catalog: ModelCatalog, accuracy: float, reasons: list[str], warnings: list[str]
) -> None:
    def set_accuracy(tuning: Any, best: Any, training: Any) -> None:
        for metric in training["FinalMetricDataList"]:
            if metric["MetricName"] == "validation:accuracy":
                metric["Value"] = accuracy

    validation = judge(aws, catalog, changed(set_accuracy))
    assert (validation.reasons, validation.warnings) == (reasons, warnings)
    check = next(one for one in validation.checks if one.name == "accuracy_threshold")
    assert (check.passed, check.value, check.threshold) == (not reasons, accuracy, 0.9)


def test_an_out_of_range_hyperparameter_fails_the_schema_check_with_its_problems(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    def too_deep(tuning: Any, best: Any, training: Any) -> None:
        training["HyperParameters"]["max_depth"] = "42"
        best["TunedHyperParameters"]["max_depth"] = "42"

    validation = judge(aws, catalog, changed(too_deep))
    assert validation.reasons == ["invalid hyperparameters: max_depth: 42 is above the maximum 10"]
    assert validation.checks[0].model_dump() == {
        "name": "hyperparameter_schema",
        "passed": False,
        "value": None,
        "threshold": None,
        "detail": "max_depth: 42 is above the maximum 10",
    }
    assert validation.candidate is not None and validation.candidate.hyperparameters == {}


def test_arns_and_artifacts_come_from_wherever_sagemaker_gives_them(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    def sparse(tuning: Any, best: Any, training: Any) -> None:
        training.pop("ModelArtifacts")
        training.pop("AlgorithmSpecification")
        tuning.pop("HyperParameterTuningJobArn")

    candidate = judge(aws, catalog, changed(sparse)).candidate
    assert candidate is not None
    assert (
        candidate.training_job_arn,
        candidate.model_data_url,
        candidate.training_image,
        candidate.tuning_job_arn,
    ) == (
        TRAINING_ARN,
        None,
        None,
        "",
    )


def test_the_catalogs_objective_stands_when_the_tuning_job_names_none(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    def no_objective(tuning: Any, best: Any, training: Any) -> None:
        tuning["HyperParameterTuningJobConfig"].pop("HyperParameterTuningJobObjective")

    validation = judge(aws, catalog, changed(no_objective))
    assert validation.verdict == "PASSED"
    assert validation.candidate is not None
    assert (validation.candidate.objective_metric, validation.candidate.objective_type) == (
        "validation:auc",
        "Maximize",
    )


def test_the_rules_at_their_boundaries() -> None:
    assert meets_production_threshold(0.9, 0.9) and not meets_production_threshold(0.8999, 0.9)
    assert not meets_production_threshold(math.nan, 0.9) and not meets_production_threshold(math.inf, 0.9)
    assert low_accuracy_warning(0.7999, 0.8) and not low_accuracy_warning(0.8, 0.8)
    assert low_accuracy_warning(math.nan, 0.8) and low_accuracy_warning(math.inf, 0.8)
    assert objective_gain(0.3, 0.1, "Maximize") == pytest.approx(0.2)
    assert objective_gain(0.1, 0.3, "Minimize") == pytest.approx(0.2)


def test_a_bad_metric_before_the_good_ones_loses_none_of_them(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    def bad_first(tuning: Any, best: Any, training: Any) -> None:
        training["FinalMetricDataList"][:0] = [{"Value": 1.0}, {"MetricName": "validation:logloss", "Value": math.nan}]

    validation = judge(aws, catalog, changed(bad_first))
    assert validation.reasons == ["metric validation:logloss has no finite value (nan)"]
    assert validation.candidate is not None and validation.candidate.metrics == METRICS


def test_a_tuned_value_that_differs_in_its_last_digit_is_a_disagreement(
    aws: dict[str, Any], catalog: ModelCatalog
) -> None:
    def nearly(tuning: Any, best: Any, training: Any) -> None:
        best["TunedHyperParameters"]["eta"] = "0.08340000001"

    assert judge(aws, catalog, changed(nearly)).reasons == [
        f"best training job {TRAINING} ran with eta='0.0834', but tuning job {TUNING} reports eta='0.08340000001' "
        "as the tuned value (TunedHyperParameters)"
    ]


def test_the_objective_is_the_best_training_jobs_own_final_metric(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    """The tuning job's summary value stands in only for a missing final metric: the training job's own wins."""

    def summary_differs(tuning: Any, best: Any, training: Any) -> None:
        best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] = 0.9655
        best.pop("TrainingJobArn")

    validation = judge(aws, catalog, changed(summary_differs))
    assert validation.verdict == "PASSED"
    assert validation.candidate is not None
    assert (validation.candidate.objective_value, validation.candidate.metrics) == (0.9712, METRICS)
    assert validation.candidate.training_job_arn == TRAINING_ARN  # from DescribeTrainingJob, where it is required


def test_every_schema_problem_is_in_the_check_in_order(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    def two_wrong(tuning: Any, best: Any, training: Any) -> None:
        for values in (training["HyperParameters"], best["TunedHyperParameters"]):
            values.update(max_depth="42", num_round="0")

    validation = judge(aws, catalog, changed(two_wrong))
    (schema,) = [check for check in validation.checks if check.name == "hyperparameter_schema"]
    assert (schema.passed, schema.detail) == (
        False,
        "max_depth: 42 is above the maximum 10; num_round: 0 is below the minimum 50",
    )


def set_objective(value: float) -> Any:
    def change(tuning: Any, best: Any, training: Any) -> None:
        for metric in training["FinalMetricDataList"]:
            if metric["MetricName"] == "validation:auc":
                metric["Value"] = value

    return change


def test_a_gain_of_exactly_the_required_amount_beats_the_champion(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    """0.75 - 0.5 is exactly 0.25 in binary floating point: the boundary itself, with no rounding either way."""
    catalog = catalog.model_copy(
        update={"thresholds": catalog.thresholds.model_copy(update={"min_gain_over_champion": 0.25})}
    )
    champion_config(aws, catalog, {"validation:auc": 0.5})
    validation = judge(aws, catalog, changed(set_objective(0.75)))
    assert validation.checks[-1].model_dump() == {
        "name": "beats_champion",
        "passed": True,
        "value": 0.25,
        "threshold": 0.25,
        "detail": "validation:auc 0.75 vs champion 0.5 (Maximize)",
    }
    assert validation.verdict == "PASSED"


def test_the_gain_is_recorded_to_ten_decimals(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    """Enough to show any gain a metric can have, without the float noise of a subtraction (0.0212000000000001)."""
    champion_config(aws, catalog, {"validation:auc": 0.95})
    validation = judge(aws, catalog, changed(set_objective(0.97123456789012)))
    assert validation.checks[-1].value == 0.0212345679


def test_the_waits_come_from_the_catalog(aws: dict[str, Any], catalog: ModelCatalog) -> None:
    catalog = catalog.model_copy(
        update={
            "approval": catalog.approval.model_copy(update={"timeout_hours": 2.5}),
            "training": catalog.training.model_copy(update={"max_runtime_seconds": 5400}),
        }
    )
    validation = judge(aws, catalog)
    assert (validation.approval_timeout_seconds, validation.training_wait_seconds) == (9000, 5400 + 3600)
