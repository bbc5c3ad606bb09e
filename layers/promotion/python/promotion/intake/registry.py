"""Candidates in the SageMaker Model Registry: who approved is what AWS says, not what a message claims.

Each candidate that passes validation becomes a model package in its model's package group (the catalog's
`approval.model_package_group`), `PendingManualApproval`, with the candidate's and the champion's metrics. An
approver decides by changing that package's status (Studio's Model Registry, `aws sagemaker
update-model-package`, or `promote approve|reject`). SageMaker then puts a `SageMaker Model Package State Change`
event on the default bus; the decision function reads the package back (`DescribeModelPackage`) and trusts only
its `LastModifiedBy.IamIdentity.Arn`, the principal AWS authenticated for the UpdateModelPackage call.

The package follows the promotion afterwards: `promotion:outcome` says how it ended, `promotion:production` says
which package is the model's current release (`current`) and which were (`retired`, `rolled-back`).

Rolling back is the same gesture on the live release's package: an operator sets it to Rejected, and the operator
rollback state machine (promotion.production.operator_rollback) reads it back and trusts the same `LastModifiedBy`
field.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import MODEL_TAG, RELEASE_TAG, TUNING_JOB_TAG
from promotion.contract.state import PromotionState

PENDING_STATUS = "PendingManualApproval"
APPROVED_STATUS = "Approved"
REJECTED_STATUS = "Rejected"
DECIDED_STATUSES = (APPROVED_STATUS, REJECTED_STATUS)

METADATA_MODEL = MODEL_TAG  # the package names its model under the key the tuning job's tag uses
METADATA_RELEASE = RELEASE_TAG
METADATA_TUNING_JOB = TUNING_JOB_TAG
METADATA_EXECUTION = "promotion:execution"
METADATA_OUTCOME = "promotion:outcome"
METADATA_PRODUCTION = "promotion:production"
MAX_METADATA_PROPERTIES = 50  # CreateModelPackage's limit on CustomerMetadataProperties
MAX_METADATA_VALUE = 256
MAX_DESCRIPTION = 1024  # ModelPackageDescription and ApprovalDescription
SUPPORTED_TYPES = ["text/csv", "application/json"]  # what jobs/serving/serve.py reads and answers


def client_token(execution_arn: str) -> str:
    """CreateModelPackage's idempotency token: a retried AwaitApproval gets the same package, not a second one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, execution_arn))


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _metadata(state: PromotionState) -> dict[str, str]:
    claim, validation = state.claim, state.validation
    properties = {
        METADATA_MODEL: claim.model or "",
        METADATA_RELEASE: claim.release_id or "",
        METADATA_TUNING_JOB: claim.tuning_job_name or "",
        METADATA_EXECUTION: claim.execution_name or claim.execution_arn,
        METADATA_OUTCOME: "waiting for approval",
    }
    if validation is not None and validation.candidate is not None:
        for name, value in sorted(validation.candidate.metrics.items()):
            properties[f"candidate:{name}"] = f"{value:.6g}"
    champion = validation.champion if validation is not None else None
    properties["champion:release-id"] = (champion.release_id if champion else None) or "none"
    if champion is not None:
        for name, value in sorted(champion.performance.items()):
            properties[f"champion:{name}"] = f"{value:.6g}"
    # Keys beyond the limit are dropped (the report keeps them all); values are cut to the API's limit.
    kept = list(properties.items())[:MAX_METADATA_PROPERTIES]
    return {key[:128]: value[:MAX_METADATA_VALUE] for key, value in kept}


def register_candidate(sagemaker: Any, state: PromotionState, catalog: ModelCatalog, serving_image: str) -> str:
    """Create (once per execution) the candidate's model package, waiting for an approver; its ARN."""
    claim, validation = state.claim, state.validation
    candidate = validation.candidate if validation is not None else None
    if candidate is None:
        raise ValueError("only a validated candidate is registered")
    container: dict[str, Any] = {"Image": serving_image}
    if candidate.model_data_url:
        container["ModelDataUrl"] = candidate.model_data_url
    description = (
        f"{claim.model} release {claim.release_id}: best training job {candidate.training_job_name} of tuning job "
        f"{candidate.tuning_job_name}; {candidate.objective_metric} {candidate.objective_value}"
    )
    response = sagemaker.create_model_package(
        ModelPackageGroupName=catalog.model_package_group,
        ModelPackageDescription=description[:MAX_DESCRIPTION],
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": SUPPORTED_TYPES,
            "SupportedResponseMIMETypes": SUPPORTED_TYPES,
        },
        ModelApprovalStatus=PENDING_STATUS,
        CustomerMetadataProperties=_metadata(state),
        ClientToken=client_token(claim.execution_arn),
    )
    return str(response["ModelPackageArn"])


@dataclass(frozen=True)
class PackageState:
    """A model package as DescribeModelPackage answers: AWS's own record of its status and who last changed it."""

    arn: str
    group: str | None  # None: an unversioned package, in no group
    status: str | None
    identity: str | None  # LastModifiedBy.IamIdentity.Arn (CreatedBy's for a package never updated)
    comment: str

    @property
    def account(self) -> str:
        return account_of(self.arn)


def describe_package(sagemaker: Any, package_arn: str) -> PackageState:
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    last = described.get("LastModifiedBy") or described.get("CreatedBy") or {}
    return PackageState(
        arn=str(described["ModelPackageArn"]),
        group=described.get("ModelPackageGroupName"),
        status=described.get("ModelApprovalStatus"),
        identity=(last.get("IamIdentity") or {}).get("Arn"),
        comment=str(described.get("ApprovalDescription") or ""),
    )


def return_to_pending(sagemaker: Any, package_arn: str, why: str) -> None:
    """Undo a decision that does not count: the package waits for an approver again, saying why."""
    sagemaker.update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=PENDING_STATUS, ApprovalDescription=why[:MAX_DESCRIPTION]
    )


def keep_live(sagemaker: Any, package_arn: str, why: str) -> None:
    """Undo a rejection of the live release that rolled nothing back: production still serves it, so its package
    says Approved again, with the reason."""
    sagemaker.update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=APPROVED_STATUS, ApprovalDescription=why[:MAX_DESCRIPTION]
    )


def record_outcome(
    sagemaker: Any,
    package_arn: str,
    outcome: str,
    *,
    production: str | None = None,
    reject_because: str | None = None,
) -> None:
    """Say on the package how its promotion ended (and whether it is the model's current release); a candidate that
    was never decided is marked Rejected with the reason."""
    properties = {METADATA_OUTCOME: outcome[:MAX_METADATA_VALUE]}
    if production is not None:
        properties[METADATA_PRODUCTION] = production
    request: dict[str, Any] = {"ModelPackageArn": package_arn, "CustomerMetadataProperties": properties}
    if reject_because is not None:
        request.update(ModelApprovalStatus=REJECTED_STATUS, ApprovalDescription=reject_because[:MAX_DESCRIPTION])
    sagemaker.update_model_package(**request)
