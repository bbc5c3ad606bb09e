"""boto3 clients, created lazily, once per process, with botocore's standard retry mode (throttling backoff)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    """A cached client for one service; tests and the local runtime call `reset_clients()` between AWS mocks."""
    return boto3.client(service, config=RETRY_CONFIG)


def reset_clients() -> None:
    client.cache_clear()
