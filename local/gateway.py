"""The local runtime's door for `promote --local` (promote/local.py): each forwarded boto3 call is made by a client of
the running runtime, as the person it names, so the stack's IAM policies decide and the Model Registry records that
person, exactly as in the tests' in-process `promote` (local.least_privilege.promote).

Listens on 127.0.0.1 only; each request carries the secret from the connection file, which only its owner reads."""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore import xform_name
from botocore.exceptions import ClientError
from pydantic import ValidationError

from local.errors import UsageError
from local.live_stack import ACCOUNT
from promote.wire import TOKEN_HEADER, Caller, Connection, ForwardedAnswer, ForwardedCall, decode, encode

if TYPE_CHECKING:
    from local.runtime import LocalRuntime

Kind = Literal["approver", "operator"]
_MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Person:
    role: str
    session: str
    kind: Kind | None


class People:
    """The catalogs' approvers and operators by session name, and how a caller's `identity` resolves to a role."""

    def __init__(self, models_dir: Path) -> None:
        from promotion.contract.catalog import load_catalogs

        self.known: dict[str, Person] = {}
        self.labels: dict[str, str] = {}
        for model, catalog in load_catalogs(models_dir).items():
            for kind, people in (("approver", catalog.approval.approvers), ("operator", catalog.operators)):
                for person in people:
                    if person.role is None or person.session is None:
                        continue  # an IAM user, or a whole role: not one the runtime can name by session
                    known = self.known.get(person.session)
                    # An operator of any model gets the operators' policy (it holds every read the approvers' does).
                    if known is None or kind == "operator":
                        self.known[person.session] = Person(person.role, person.session, kind)  # type: ignore[arg-type]
                    self.labels.setdefault(person.session, f"role {person.role}:")
                    self.labels[person.session] += f" {kind} of {model};"

    def resolve(self, caller: Caller) -> Person:
        """`alice@example.com` is the catalogs' person of that session; `Role/session` any identity, with the
        policy of the catalog's person of that role and session when there is one; `policy` overrides either."""
        role, _, session = caller.identity.rpartition("/")
        if role:
            known = self.known.get(session)
            kind = known.kind if known is not None and known.role == role else None
            person = Person(role, session, kind)
        elif caller.identity in self.known:
            person = self.known[caller.identity]
        else:
            raise UsageError(
                f"{caller.identity!r} is none of the catalogs' people ({', '.join(sorted(self.known))}); "
                "give ROLE/SESSION to act as anyone else"
            )
        if caller.policy is not None:
            person = Person(person.role, person.session, None if caller.policy == "none" else caller.policy)  # type: ignore[arg-type]
        return person


class Gateway:
    """A threaded HTTP server answering forwarded calls with the runtime's clients, until `close`."""

    def __init__(self, runtime: LocalRuntime, *, port: int = 0) -> None:
        self.runtime = runtime
        self.people = People(runtime.models_dir)
        self.token = secrets.token_urlsafe(24)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                gateway._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the runtime prints what happens; the requests are the CLI's

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="local-gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def connection(self) -> Connection:
        return Connection(
            url=self.url,
            token=self.token,
            region=self.runtime.clients.region,
            account=ACCOUNT,
            table=self.runtime.table_name,
            config_bucket=self.runtime.config_bucket,
            people={session: label.rstrip(";") for session, label in sorted(self.people.labels.items())},
        )

    def start(self, connection_file: Path) -> Connection:
        self._thread.start()
        connection = self.connection()
        connection_file.parent.mkdir(parents=True, exist_ok=True)
        # A new file, owner-only, never through a link: an old file (or a link planted in its place) is removed
        # first, so its permissions cannot carry over.
        connection_file.unlink(missing_ok=True)
        descriptor = os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(connection.model_dump_json(indent=2))
        return connection

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- one call ------------------------------------------------------------------------------------------------
    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""), self.token):
            return _reply(request, HTTPStatus.FORBIDDEN, {"message": "wrong or missing connection token"})
        length = int(request.headers.get("Content-Length") or 0)
        if request.path != "/call" or not 0 < length <= _MAX_BODY:
            return _reply(request, HTTPStatus.BAD_REQUEST, {"message": "POST one call to /call"})
        try:
            call = ForwardedCall.model_validate_json(request.rfile.read(length))
            person = self.people.resolve(call.caller)
        except (ValidationError, UsageError) as error:
            return _reply(request, HTTPStatus.BAD_REQUEST, {"message": str(error)})
        answer = self.call(call, person)
        _reply(request, HTTPStatus.OK, answer.model_dump())

    def call(self, call: ForwardedCall, person: Person) -> ForwardedAnswer:
        """Make the call as `person`; AWS's answer or error as botocore parsed it."""
        people = self.runtime.people
        assert people is not None, "the runtime is not started"
        try:
            parsed = people.person_call(
                person.kind,
                person.role,
                person.session,
                call.service,
                xform_name(call.operation),
                **decode(call.params),
            )
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return ForwardedAnswer(status=status, parsed=encode(error.response))
        except Exception as error:  # a bug of the runtime, not AWS's answer: say so as a service error
            message = f"local runtime: {type(error).__name__}: {error}"
            return ForwardedAnswer(status=500, parsed={"Error": {"Code": "InternalFailure", "Message": message}})
        return ForwardedAnswer(status=200, parsed=encode(parsed))


def _reply(request: BaseHTTPRequestHandler, status: HTTPStatus, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
