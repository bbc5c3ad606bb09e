"""Which AWS errors are worth another try, and the backoff the steps use before handing one to the state machine.

botocore's standard retry mode absorbs short bursts inside each call; `with_backoff` backs off further (exponential,
full jitter) and then gives up with TransientAwsError, which the state machine's Retry takes over. Anything else
(AccessDenied, validation, not found) propagates at once: retrying cannot help.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from promotion.core.errors import TransientAwsError, aws_error_code

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",  # SSM, SageMaker, EventBridge, Step Functions
        "Throttling",
        "ThrottledException",
        "Throttled",  # SNS (HTTP 429)
        "KMSThrottlingException",  # SNS Publish to a KMS-encrypted topic
        "TooManyUpdates",  # SSM PutParameter on one parameter
        "TooManyRequestsException",  # Lambda, API Gateway
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",  # DynamoDB
        "RequestThrottled",
        "SlowDown",  # S3 (HTTP 503)
        "RequestTimeout",  # S3
        "RequestTimeoutException",
        "InternalServerError",
        "InternalError",  # S3
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


def is_transient(error: ClientError) -> bool:
    """Throttling and server-side errors: worth another try. A 4xx other than 429 (AccessDenied, validation, not
    found) is the caller's fault and retrying cannot help; an unknown code with the statuses botocore's own retry
    handler retries (500, 502, 503, 504) or 429 is transient (S3 answers HEAD with the bare status as its code)."""
    code = aws_error_code(error)
    if code in TRANSIENT_CODES:
        return True
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in TRANSIENT_STATUSES


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
