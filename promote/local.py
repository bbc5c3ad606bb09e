"""`promote --local`: every boto3 call the command makes goes to the runtime `python -m local up` keeps running,
made there as the person named by `--as`, under the stack's IAM policies.

Not moto's HTTP server: a request sent to it would be served by moto's backends directly, past the local runtime's
IAM enforcement and its SageMaker fidelity (the Model Registry's state change events, the endpoints' statuses),
which run as botocore hooks in the runtime's process. So the call is forwarded as botocore holds it (service,
operation, the caller's parameters) and made there by a client of the runtime, as the person, and its answer or
AWS's error comes back to botocore here unchanged: the command cannot tell it from AWS."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from promote.wire import TOKEN_HEADER, Caller, Connection, ForwardedAnswer, ForwardedCall, decode, encode

DEFAULT_CONNECTION = Path(".promote-local.json")
# Straight to 127.0.0.1, never through the machine's HTTP(S)_PROXY: the calls carry the connection's secret.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PARAMS = "promote_local_params"


class LocalUnavailable(Exception):
    """No runtime answers: `python -m local up` is not running, or its connection file is stale."""


def read_connection(path: Path) -> Connection:
    if not path.is_file():
        raise LocalUnavailable(f"no connection file at {path}: start the local runtime first (python -m local up)")
    try:
        return Connection.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise LocalUnavailable(f"{path} is not a connection file of python -m local up: {error}") from None


class Forwarder:
    """botocore handlers: `before-parameter-build` keeps the caller's parameters, `before-call` sends them and
    returns the answer, so botocore never sends a request of its own."""

    def __init__(self, connection: Connection, caller: Caller, timeout_s: float = 60.0) -> None:
        self.connection, self.caller, self.timeout_s = connection, caller, timeout_s

    def keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS] = dict(params)

    def send(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        call = ForwardedCall(
            service=model.service_model.service_name,
            operation=model.name,
            params=encode(context.get(_PARAMS, {})),
            caller=self.caller,
        )
        request = urllib.request.Request(
            f"{self.connection.url}/call",
            data=call.model_dump_json().encode(),
            headers={"Content-Type": "application/json", TOKEN_HEADER: self.connection.token},
            method="POST",
        )
        try:
            with _DIRECT.open(request, timeout=self.timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as refused:  # the gateway refused the call itself (bad token, bad caller)
            raise LocalUnavailable(refused.read().decode(errors="replace") or str(refused)) from None
        except (urllib.error.URLError, OSError) as error:
            raise LocalUnavailable(
                f"the local runtime at {self.connection.url} does not answer ({error}); is python -m local up running?"
            ) from None
        answer = ForwardedAnswer.model_validate_json(body)
        # The runtime's client already ran botocore's after-call handlers on this answer (S3 listings' URL-decoded
        # keys): the flag that would make this client decode them a second time is cleared.
        context.pop("encoding_type_auto_set", None)
        headers = answer.parsed.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        http = AWSResponse(url=self.connection.url, status_code=answer.status, headers=headers, raw=None)
        return http, decode(answer.parsed)


def connect(connection_file: Path, identity: str, policy: str | None = None) -> Connection:
    """Route every boto3 client made from now on (the default session's) to the local runtime, as `identity`;
    point the command at the local stack's table and bucket."""
    connection = read_connection(connection_file)
    forwarder = Forwarder(connection, Caller(identity=identity, policy=policy))
    # No credentials or region of the machine's own: nothing leaves for AWS, and nothing signs.
    boto3.setup_default_session(region_name=connection.region, aws_access_key_id="local", aws_secret_access_key="local")
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register_first("before-parameter-build", forwarder.keep_params, unique_id="promote-local-p")
    session.events.register_first("before-call", forwarder.send, unique_id="promote-local-c")
    os.environ["PROMOTION_TABLE"] = connection.table
    os.environ["PROMOTION_CONFIG_BUCKET"] = connection.config_bucket
    return connection
