"""What `promote --local` and `python -m local up` send each other: one boto3 call (service, operation, the
caller's parameters, who makes it) and its answer, as JSON. botocore's values that JSON has no type for (datetimes,
bytes, S3's streamed bodies) travel tagged and come back as botocore gives them."""

from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import Any

from botocore.response import StreamingBody
from pydantic import BaseModel, ConfigDict, Field

_DATETIME, _BYTES, _STREAM = "__datetime__", "__bytes__", "__stream__"
# The header that carries the connection's secret (the connection file is readable by its owner only).
TOKEN_HEADER = "X-Promote-Local-Token"


class Caller(BaseModel):
    """Who makes the call: a person of the catalogs by session name (`alice@example.com`), or any role and session
    (`DataScientists/mallory@example.com`), holding `policy` (default: the catalog's, none for anyone else)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identity: str = Field(min_length=1, max_length=200)
    policy: str | None = Field(default=None, pattern="^(approver|operator|none)$")


class ForwardedCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(pattern=r"^[a-z0-9-]{2,40}$")
    operation: str = Field(pattern=r"^[A-Za-z0-9]{2,80}$")
    params: dict[str, Any]
    caller: Caller


class ForwardedAnswer(BaseModel):
    """The parsed response (status < 300) or error (`parsed["Error"]`), with the HTTP status AWS would send."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    parsed: dict[str, Any]


class Connection(BaseModel):
    """The connection file `python -m local up` writes: where it listens and what the stack's names are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    token: str
    region: str
    account: str
    table: str
    config_bucket: str
    people: dict[str, str]  # session name -> "role (approver|operator of models...)"


def encode(value: Any) -> Any:
    """A botocore value as JSON-safe data."""
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(bytes(value)).decode()}
    if isinstance(value, StreamingBody):
        return {_STREAM: base64.b64encode(value.read()).decode()}
    if hasattr(value, "read"):  # a file-like request body (put_object(Body=open(...)))
        return {_BYTES: base64.b64encode(value.read()).decode()}
    return value


def decode(value: Any) -> Any:
    """Back from `encode`: datetimes, bytes, and S3's bodies as botocore's StreamingBody."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, item), *_ = value.items()
        if key == _DATETIME:
            return datetime.fromisoformat(item)
        if key == _BYTES:
            return base64.b64decode(item)
        if key == _STREAM:
            data = base64.b64decode(item)
            return StreamingBody(io.BytesIO(data), len(data))
    return {key: decode(item) for key, item in value.items()}
