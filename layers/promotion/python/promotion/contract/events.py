"""Models of the events the product consumes, parsed through Powertools' EventBridge model."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_TAG = "promotion:model"
# A tuning job's other `promotion:` tags say why it was started (drift's retraining: promotion.monitoring.retraining);
# the claim carries them into the promotion's state, audit record and decision report.
TRIGGER_TAG_PREFIX = "promotion:"
DRIFT_TRIGGER_TAG = "promotion:trigger"  # "drift" on a retraining drift started
# The source of the product's own events on its bus (results, approval requests): other systems subscribe to it.
RESULT_SOURCE = "promotion.results"
# Tags and metadata keys the product writes on what it creates (jobs, models, model packages): one spelling each.
RELEASE_TAG = "promotion:release-id"
TUNING_JOB_TAG = "promotion:tuning-job"
TUNING_JOB_DETAIL_TYPE = "SageMaker HyperParameter Tuning Job State Change"
MODEL_PACKAGE_DETAIL_TYPE = "SageMaker Model Package State Change"
TUNING_JOB_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$"
TUNING_JOB_ARN_PATTERN = (
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:hyper-parameter-tuning-job/[a-zA-Z0-9\-]{1,32}$"
)


class TuningJobDetail(BaseModel):
    """`detail` of a SageMaker tuning job state change; it carries no best training job (it must be looked up)."""

    model_config = ConfigDict(extra="allow")

    HyperParameterTuningJobName: Annotated[str, Field(pattern=TUNING_JOB_NAME_PATTERN)]
    HyperParameterTuningJobArn: Annotated[str, Field(pattern=TUNING_JOB_ARN_PATTERN)]
    HyperParameterTuningJobStatus: Literal[
        "Completed", "InProgress", "Failed", "Stopped", "Stopping", "Deleting", "DeleteFailed"
    ]
    Tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _name_and_arn_are_one_job(self) -> TuningJobDetail:
        """The claim dedupes and names the release by the ARN, validation describes the job by name: they must be
        the same job. SageMaker writes the name lower-case in the ARN; a hand-sent ARN in another case is made
        lower-case too, so that it dedupes against SageMaker's own event."""
        prefix, in_arn = self.HyperParameterTuningJobArn.rsplit("/", 1)
        if in_arn.lower() != self.HyperParameterTuningJobName.lower():
            raise ValueError(
                f"the ARN's tuning job {in_arn!r} does not match HyperParameterTuningJobName "
                f"{self.HyperParameterTuningJobName!r}"
            )
        self.HyperParameterTuningJobArn = f"{prefix}/{in_arn.lower()}"
        return self


class TuningJobStateChange(EventBridgeModel):
    """What SageMaker puts on the default bus when a tuning job changes state."""

    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker HyperParameter Tuning Job State Change"] = Field(alias="detail-type")
    detail: TuningJobDetail


MODEL_PACKAGE_ARN_PATTERN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:model-package/[\S]{1,2048}$"


class ModelPackageDetail(BaseModel):
    """`detail` of a model package state change: SageMaker's DescribeModelPackage fields. Only the ARN is used; the
    rest is read back from SageMaker (promotion.intake.registry), which says who made the change."""

    model_config = ConfigDict(extra="allow")

    ModelPackageArn: Annotated[str, Field(pattern=MODEL_PACKAGE_ARN_PATTERN)]
    ModelPackageGroupName: Annotated[str, Field(min_length=1, max_length=63)]
    ModelApprovalStatus: Literal["Approved", "Rejected", "PendingManualApproval"]


class ModelPackageStateChange(EventBridgeModel):
    """What SageMaker puts on the default bus when a model package changes (created, status or metadata updated).
    Only AWS services may put events with an `aws.` source, so a person cannot forge one; the package is read back
    anyway."""

    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    detail: ModelPackageDetail
