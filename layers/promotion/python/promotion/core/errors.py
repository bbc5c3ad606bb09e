"""Domain errors. A Lambda's exception class name becomes the Step Functions error name, so these names are
part of the state machine's contract (Retry and Catch match on them)."""

from __future__ import annotations

# Step Functions' SendTask* answer these when the task no longer waits (it timed out, the execution ended).
TASK_GONE_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# The error AwaitApproval's task fails with when an approver rejects the candidate (the state machine catches it).
REJECTION_ERROR = "PromotionRejected"


class PromotionError(Exception):
    """Base of every error the promotion flow raises on purpose."""


class StepInputInvalid(PromotionError):
    """A step found the execution document without a section or field an earlier step writes, or with one of the
    wrong shape (an execution started by hand with another input, an edited output): the message says which, and
    the step did nothing."""


class CatalogError(PromotionError):
    """A model catalog file is missing, unreadable or invalid (message names the file and the field)."""


class UnknownModel(PromotionError):
    """An event names a model that has no catalog file."""


class MalformedEvent(PromotionError):
    """An event does not have the shape its source documents."""


class HyperparameterValidationError(PromotionError):
    """Hyperparameters do not satisfy the catalog's schema; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid hyperparameters: " + "; ".join(problems))


class ConfigSchemaError(PromotionError):
    """A production config document failed schema validation; nothing was written."""


class ApprovalNotRecorded(PromotionError):
    """The execution was told it is approved, but the approval path recorded no such approval of this release by a
    catalog approver (a forged or replayed task output): production is not written."""


class AuditRecordExists(PromotionError):
    """Another execution already wrote this release's audit record; it is not overwritten."""


class BackupMissing(PromotionError):
    """No backup exists for the release, so production must not be written (or cannot be restored)."""


class UnrestorableParameter(PromotionError):
    """A parameter under the model's prefix that a backup cannot restore exactly: a SecureString is read encrypted
    (the product is not granted its key), and a rollback would write the ciphertext back as its value."""


class BackupTampered(PromotionError):
    """A backup record names parameters, a config key or an endpoint that are not its model's in the catalog (or
    another model or release): restoring it would write outside the model's production, so nothing is restored."""


class ParameterVerificationError(PromotionError):
    """A parameter read back from Parameter Store differs from what was written."""


class JobNotOurs(PromotionError):
    """A SageMaker job with the name this release uses already exists but is not the job this release asked for
    (another role, image, hyperparameters, data or release): it is not adopted, and its results are not trusted."""


class ResourceNotOurs(PromotionError):
    """A SageMaker model or endpoint config with the name this release uses already exists but is not what this
    release asked for (another image, artifact, role or variants): it is not adopted, and nothing is served from it."""


class ArtifactChanged(PromotionError):
    """The model artifact to deploy is not the one the comparison evaluated (its SHA-256 differs): something wrote
    over the training job's output in between. Nothing is deployed from it."""


class PipelineFailed(PromotionError):
    """The production pipeline's training job failed or was stopped."""


class TransientAwsError(PromotionError):
    """An AWS call was throttled or the service was briefly unavailable after client retries; safe to retry."""


class LockLost(PromotionError):
    """The promotion no longer holds its model's lock (lease expired and taken over)."""


class EndpointBusy(PromotionError):
    """SageMaker refused an endpoint change because another one is in progress (ValidationException 'Cannot update
    in-progress endpoint'); the state machine retries the step after a wait."""


def _error_detail(error: BaseException) -> dict[str, object]:
    response = getattr(error, "response", None)
    detail = response.get("Error") if isinstance(response, dict) else None
    return detail if isinstance(detail, dict) else {}


def aws_error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError (its `Error.Code`), "" for anything else: the one place the
    response's shape is read, so each caller only names the codes it handles."""
    return str(_error_detail(error).get("Code", ""))


def aws_error_message(error: BaseException) -> str:
    """The AWS error message of a botocore ClientError (its `Error.Message`), "" for anything else."""
    return str(_error_detail(error).get("Message", ""))


def is_endpoint_busy(error: Exception) -> bool:
    """SageMaker's refusal of a change (UpdateEndpoint, weights, delete) while the endpoint is not InService."""
    return aws_error_code(error) == "ValidationException" and "in-progress endpoint" in aws_error_message(error)
