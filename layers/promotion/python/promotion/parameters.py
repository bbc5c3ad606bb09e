"""WriteParameters: one Parameter Store parameter per hyperparameter, with throttling backoff and read-back.

Parameter Store throttles bursts of PutParameter (`ThrottlingException`, `TooManyUpdates`); botocore's standard
retry mode absorbs short bursts, and this module backs off further (exponential, full jitter) before giving up
with TransientAwsError, which the state machine retries. Non-transient errors (AccessDenied, validation) propagate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from promotion.catalog import ModelCatalog
from promotion.config import require_backup
from promotion.errors import ParameterVerificationError, TransientAwsError
from promotion.hyperparameters import HyperparameterValue, to_parameter_value
from promotion.models import ParametersWritten
from promotion.production import read_parameters

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyUpdates",
        "TooManyRequestsException",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
    }
)
T = TypeVar("T")


def is_transient(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in TRANSIENT_CODES


def with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 6,
    base_seconds: float = 0.2,
    cap_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying transient AWS errors with exponential backoff and full jitter."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as error:
            if not is_transient(error):
                raise
            if attempt == attempts - 1:
                code = error.response["Error"]["Code"]
                raise TransientAwsError(f"still throttled ({code}) after {attempts} attempts: {error}") from error
            sleep(random.uniform(0, min(cap_seconds, base_seconds * 2**attempt)))
    raise AssertionError("unreachable")


def desired_parameters(catalog: ModelCatalog, hyperparameters: dict[str, HyperparameterValue]) -> dict[str, str]:
    """Path -> string value of every hyperparameter, as the training job expects it."""
    return {catalog.parameter_path(name): to_parameter_value(value) for name, value in sorted(hyperparameters.items())}


def write_hyperparameters(
    ssm: Any,
    s3: Any,
    bucket: str,
    catalog: ModelCatalog,
    release_id: str,
    hyperparameters: dict[str, HyperparameterValue],
    sleep: Callable[[float], None] = time.sleep,
) -> ParametersWritten:
    """Make the model's prefix hold exactly the release's hyperparameters, then read every one back."""
    require_backup(s3, bucket, catalog.id, release_id)
    desired = desired_parameters(catalog, hyperparameters)
    for path, value in desired.items():
        with_backoff(
            lambda path=path, value=value: ssm.put_parameter(  # type: ignore[misc]
                Name=path, Value=value, Type="String", Overwrite=True
            ),
            sleep=sleep,
        )
    current = with_backoff(lambda: read_parameters(ssm, catalog), sleep=sleep)
    stale = sorted(set(current) - set(desired))
    for path in stale:
        with_backoff(lambda path=path: delete_parameter_if_present(ssm, path), sleep=sleep)  # type: ignore[misc]
    verify_parameters(ssm, catalog, desired, sleep=sleep)
    return ParametersWritten(written=desired, removed=stale, verified=True)


def delete_parameter_if_present(ssm: Any, path: str) -> None:
    """Delete one parameter; one already absent is fine (writes and restores are retried)."""
    try:
        ssm.delete_parameter(Name=path)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise


def verify_parameters(
    ssm: Any, catalog: ModelCatalog, desired: dict[str, str], sleep: Callable[[float], None] = time.sleep
) -> None:
    """Read the prefix back: it must hold exactly `desired`, or ParameterVerificationError lists the differences."""
    current = with_backoff(lambda: read_parameters(ssm, catalog), sleep=sleep)
    problems = [
        f"{path}: expected {value!r}, found {current[path].value if path in current else 'nothing'!r}"
        for path, value in desired.items()
        if path not in current or current[path].value != value
    ]
    problems += [f"{path}: unexpected parameter still present" for path in sorted(set(current) - set(desired))]
    if problems:
        raise ParameterVerificationError("Parameter Store does not hold what was written: " + "; ".join(problems))
