"""Which AWS errors the steps retry: throttling and server faults of every service the flow calls, never a refusal."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from promotion.core.errors import TransientAwsError
from promotion.core.retry import is_transient, with_backoff


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),  # SSM, SageMaker, EventBridge
        ("TooManyUpdates", 400),  # SSM
        ("SlowDown", 503),  # S3
        ("503", 503),  # S3 HEAD: no body, the status is the code
        ("ProvisionedThroughputExceededException", 400),  # DynamoDB
        ("Throttled", 429),  # SNS
        ("InternalServerError", 500),
        ("SomethingNew", 502),  # an unknown 5xx is the service's fault
        ("SomethingNew", 429),
        ("KMSThrottlingException", 400),  # SNS Publish to a KMS-encrypted topic
    ],
)
def test_throttling_and_server_errors_are_transient(code: str, status: int) -> None:
    assert is_transient(_error(code, status))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("AccessDeniedException", 400),
        ("ValidationException", 400),
        ("ParameterMaxVersionLimitExceeded", 400),
        ("ConditionalCheckFailedException", 400),
        ("NoSuchKey", 404),
        ("NotImplemented", 501),  # a request the service will never serve
    ],
)
def test_refusals_are_not_transient(code: str, status: int) -> None:
    assert not is_transient(_error(code, status))


def test_backoff_retries_transient_errors_then_gives_up_as_transient() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def throttled() -> None:
        calls.append(1)
        raise _error("SlowDown", 503)

    with pytest.raises(TransientAwsError, match="SlowDown"):
        with_backoff(throttled, attempts=4, sleep=sleeps.append)
    assert len(calls) == 4 and len(sleeps) == 3


def test_backoff_does_not_retry_a_refusal() -> None:
    calls: list[int] = []

    def denied() -> None:
        calls.append(1)
        raise _error("AccessDenied", 403)

    with pytest.raises(ClientError, match="AccessDenied"):
        with_backoff(denied, sleep=lambda _: None)
    assert len(calls) == 1
