"""WriteParameters: one Parameter Store parameter per hyperparameter, with throttling backoff and read-back.

Parameter Store throttles bursts of PutParameter (`ThrottlingException`, `TooManyUpdates`): every call goes through
`promotion.core.retry.with_backoff`, which gives up with TransientAwsError for the state machine to retry.
Non-transient errors (AccessDenied, validation) propagate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.hyperparameters import HyperparameterValue, to_parameter_value
from promotion.contract.state import ParametersWritten
from promotion.core.errors import ParameterVerificationError, aws_error_code
from promotion.core.retry import with_backoff
from promotion.production.config import require_backup
from promotion.production.read import read_parameters


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
        if aws_error_code(error) != "ParameterNotFound":
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
