"""Fault injection for the local runtime: AWS errors at the botocore level and failures of the Lambda runtime.

One mechanism, one set of defaults. `FaultInjector(faults=[...], crashes=[...])` is handed to
`LocalRuntime(faults=...)`; `python -m local run --fail-at TEXT` (and `LocalRuntime(fail_at=[TEXT])`) is the same
thing spelled on a command line: `Crash.parse(TEXT)` for each, in an injector of their own. A `Crash` named only by
its state (`Crash(state="WriteConfig")`, `--fail-at WriteConfig`) is what `--fail-at` always meant: the function
behind that state raises `InjectedFault` in place of its handler (a function error, as an unhandled exception),
on every invocation. While the runtime runs the injector

* registers a `before-call` handler (first in line) on the boto3 default session the handlers' clients are made
  from (`promotion.core.clients.client()` -> `boto3.client`). `before-call` is emitted by botocore's
  `BaseClient._make_api_call` before the request is built and sent, so before moto (a `before-send` handler)
  answers: a handler that returns `(http response, parsed error)` makes botocore raise exactly what it raises for a
  service error, the modeled exception class when the service has one (`ssm.exceptions.TooManyUpdates`), else
  `ClientError`, with `Error.Code`, `Error.Message` and `ResponseMetadata.HTTPStatusCode` as the service sends them.
  An injected error skips botocore's own retry loop (that loop runs inside the request), so each injected failure
  stands for what the handler sees after botocore's retries gave up (`RetryAttempts` says so).
* wraps every in-process invocation (`around_handler`, which the runtime hands to `InProcessLambdas`) to know which
  function, hence which state, makes each AWS call (a thread-local: executions run on their own interpreter threads
  while the test's thread polls the same moto), and to fail an invocation before the function runs (`when="before"`:
  nothing it does happens, not even its cold start) or after its handler returned (`when="after"`: all its side
  effects happened, its result is lost), as `InjectedFault` (`kind="error"`), Lambda's error for a crashed runtime
  (`Runtime.ExitError`, `kind="crash"`) or a timeout (`Sandbox.Timedout`, `kind="timeout"`).

Only calls made by the stack's handlers are faulted or recorded; the runtime's and the test's own calls (seeding,
snapshots, polling) are not. Every recorded call says whether it was a production write (SSM parameters under a
catalog's prefix, the config object of a catalog, the rollout endpoint), so a test can count them.
"""

from __future__ import annotations

import fnmatch
import functools
import http.client
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import botocore.session
from botocore.awsrequest import AWSResponse

from local.errors import UsageError
from local.lambdas import InjectedFault, InjectedRuntimeFailure
from local.world import FunctionSpec

# Symbolic codes, resolved per service to the error that service really sends (see `service_error`).
THROTTLING = "@throttling"
ACCESS_DENIED = "@access-denied"
INTERNAL_ERROR = "@internal-error"

# (code, HTTP status) of each kind of error, per botocore service name; "*" for the other (JSON) services.
_SERVICE_ERRORS: dict[str, dict[str, tuple[str, int]]] = {
    THROTTLING: {
        "s3": ("SlowDown", 503),
        "dynamodb": ("ProvisionedThroughputExceededException", 400),
        "sns": ("Throttled", 429),
        "cloudwatch": ("Throttling", 400),
        "lambda": ("TooManyRequestsException", 429),
        "*": ("ThrottlingException", 400),
    },
    ACCESS_DENIED: {
        "s3": ("AccessDenied", 403),
        "sns": ("AuthorizationError", 403),
        "cloudwatch": ("AccessDenied", 403),
        "lambda": ("AccessDeniedException", 403),
        "*": ("AccessDeniedException", 400),
    },
    INTERNAL_ERROR: {
        "s3": ("InternalError", 500),
        "sns": ("InternalError", 500),
        "events": ("InternalException", 500),
        "sagemaker": ("InternalFailure", 500),
        "stepfunctions": ("InternalFailure", 500),
        "cloudwatch": ("InternalServiceError", 500),
        "lambda": ("ServiceException", 500),
        "*": ("InternalServerError", 500),
    },
}
# HTTP status of codes a service model does not give one for (JSON services model few); anything else: 400.
_STATUS = {
    "InternalServerError": 500,
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalException": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "SlowDown": 503,
    "Throttled": 429,
    "TooManyRequestsException": 429,
    "AccessDenied": 403,
    "AuthorizationError": 403,
}
_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
    "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "InternalError": "We encountered an internal error. Please try again.",
    "InternalServerError": "Internal Server Error",
    "InternalFailure": "The request processing has failed because of an unknown error, exception or failure.",
    "InternalException": "An internal error occurred.",
}
# botocore's standard retry mode retries these codes (and any 5xx) before the caller sees them.
_BOTOCORE_RETRIED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
}
# The API parameter naming the resource a call is about: the first one present with a string value.
_RESOURCE_PARAMS = (
    "Name",
    "Key",
    "HyperParameterTuningJobName",
    "TrainingJobName",
    "ProcessingJobName",
    "EndpointName",
    "TableName",
    "TopicArn",
    "executionArn",
    "stateMachineArn",
)
_SSM_WRITES = {"PutParameter", "DeleteParameter", "DeleteParameters", "LabelParameterVersion"}
_S3_WRITES = {"PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "CompleteMultipartUpload", "RestoreObject"}
_ENDPOINT_WRITES = {"UpdateEndpointWeightsAndCapacities", "UpdateEndpoint", "DeleteEndpoint", "CreateEndpoint"}


def service_error(service: str, code: str, operation: str | None = None) -> tuple[str, int]:
    """The (code, HTTP status) a service answers for a symbolic code (THROTTLING, ...) or a literal one. An S3 HEAD
    request has no error body, so botocore reports the HTTP status as the code (`"503"`), as it does from AWS."""
    table = _SERVICE_ERRORS.get(code)
    resolved = table.get(service, table["*"]) if table is not None else (code, _STATUS.get(code, 400))
    if operation is not None and _is_head(service, operation):
        return str(resolved[1]), resolved[1]
    return resolved


@functools.cache
def _is_head(service: str, operation: str) -> bool:
    model = botocore.session.get_session().get_service_model(service)
    return bool(model.protocol == "rest-xml" and model.operation_model(operation).http.get("method") == "HEAD")


@dataclass(frozen=True)
class Fault:
    """One AWS error to inject into the calls the handlers make.

    A call matches when its service (botocore name: ssm, s3, dynamodb, sagemaker, events, sns, stepfunctions),
    operation (API name: PutParameter), calling state (or function logical id) and resource (the `Name`, `Key`,
    `TableName`... parameter, fnmatch pattern) all match; "*" / None match anything. Matching calls are counted over
    the whole run: the `nth` one and the `times - 1` after it fail (`times=None`: every one from the nth on). With
    `rest_of_invocation`, once the fault fired every further matching call of that same Lambda invocation fails too
    (an outage that outlasts the handler's own backoff; the state machine's retry, a new invocation, gets through).
    """

    service: str = "*"
    operation: str = "*"
    code: str = THROTTLING
    state: str | None = None
    function: str | None = None
    resource: str | None = None
    nth: int = 1
    times: int | None = 1
    rest_of_invocation: bool = False
    message: str | None = None
    status: int | None = None

    def __post_init__(self) -> None:
        if self.nth < 1 or (self.times is not None and self.times < 1):
            raise UsageError(f"{self}: nth and times count from 1")

    def describe(self) -> str:
        scope = self.state or self.function or "any function"
        count = "every" if self.times is None else f"{self.times}x"
        return f"{self.service}:{self.operation} -> {self.code} ({count} from call #{self.nth}, {scope})"


CrashKind = Literal["error", "crash", "timeout"]
_WHEN = ("before", "after")
_KINDS = ("error", "crash", "timeout")


@dataclass(frozen=True)
class Crash:
    """A failure of the function behind `state` (or `function`, a logical id), injected by the Lambda runtime.

    `when`: "before" the function runs (nothing it does happens) or "after" its handler returned (all its side
    effects happened, its result is lost). `kind`: "error" (it raises `InjectedFault`: a function error Retry and
    Catch see as `InjectedFault`), "crash" (`Runtime.ExitError`) or "timeout" (`Sandbox.Timedout`). Counts
    invocations of that function: the `nth` and the `times - 1` after it fail (`times=None`: all from the nth on).
    The defaults (before, error, every invocation) are `--fail-at STATE`'s: the state's function is broken."""

    state: str | None = None
    function: str | None = None
    when: Literal["before", "after"] = "before"
    kind: CrashKind = "error"
    nth: int = 1
    times: int | None = None

    def __post_init__(self) -> None:
        if (self.state is None) == (self.function is None):
            raise UsageError("a Crash names a state or a function (not both)")
        if self.nth < 1 or (self.times is not None and self.times < 1):
            raise UsageError(f"{self}: nth and times count from 1")

    @classmethod
    def parse(cls, text: str) -> Crash:
        """`STATE[:before|after][:error|crash|timeout]` (`--fail-at`'s argument), e.g. `WriteConfig:after:crash`;
        what is left out takes the defaults above."""
        state, *options = text.split(":")
        unknown = [o for o in options if o not in (*_WHEN, *_KINDS)]
        if not state or unknown:
            raise UsageError(f"--fail-at {text!r}: expected STATE[:before|after][:error|crash|timeout]")
        when = next((o for o in options if o in _WHEN), None)
        kind = next((o for o in options if o in _KINDS), None)
        chosen: dict[str, Any] = {"when": when, "kind": kind}
        return cls(state=state, **{name: value for name, value in chosen.items() if value is not None})

    def describe(self) -> str:
        count = "every invocation" if self.times is None else f"{self.times}x"
        return f"{self.kind} {self.when} {self.state or self.function} ({count} from invocation #{self.nth})"

    def error(self, request_id: str, spec: FunctionSpec) -> Exception:
        """What the invocation fails with, as Lambda reports it."""
        if self.kind == "error":
            return InjectedFault(f"fault injected into {spec.name} by the local runtime (--fail-at)")
        if self.kind == "timeout":
            return InjectedRuntimeFailure(
                "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds"
            )
        return InjectedRuntimeFailure(
            "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
        )


@dataclass
class Call:
    """One AWS call a handler made, as the injector saw it."""

    seq: int
    service: str
    operation: str
    function: str  # logical id
    state: str | None  # the state the function serves (None: a bus target such as the approval Lambda)
    invocation: int
    resource: str | None
    params: dict[str, Any]
    injected: str | None = None  # the error code injected, None when moto answered
    status: int | None = None  # HTTP status of the answer
    production_write: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status is not None and self.status < 300


@dataclass
class _Invocation:
    number: int
    spec: FunctionSpec
    state: str | None
    fired: set[int] = field(default_factory=set)  # indexes of rest_of_invocation faults that fired in it


@dataclass(frozen=True)
class ProductionTargets:
    """What production is: SSM prefixes, config objects and endpoints of every catalog."""

    bucket: str
    prefixes: tuple[str, ...]
    config_keys: frozenset[str]
    endpoints: frozenset[str]

    @classmethod
    def of_catalogs(cls, models_dir: Path, bucket: str) -> ProductionTargets:
        """The targets of every catalog in `models_dir` (none for a stack without catalogs)."""
        from promotion.contract.catalog import load_catalogs
        from promotion.core.errors import CatalogError

        try:
            catalogs = list(load_catalogs(models_dir).values())
        except CatalogError:  # a stack without model catalogs (the runtime's own test app) has no production
            catalogs = []
        return cls(
            bucket=bucket,
            prefixes=tuple(f"{c.parameter_store.prefix}/" for c in catalogs),
            config_keys=frozenset(c.config.key for c in catalogs),
            endpoints=frozenset(c.rollout.endpoint_name for c in catalogs if c.rollout is not None),
        )

    def is_write(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if service == "ssm" and operation in _SSM_WRITES:
            names = params.get("Names") or [params.get("Name")]
            return any(isinstance(n, str) and n.startswith(self.prefixes) for n in names)
        if service == "s3" and operation in _S3_WRITES and params.get("Bucket") == self.bucket:
            keys = [o.get("Key") for o in (params.get("Delete") or {}).get("Objects", [])] or [params.get("Key")]
            return any(key in self.config_keys for key in keys)
        if service == "sagemaker" and operation in _ENDPOINT_WRITES:
            return params.get("EndpointName") in self.endpoints
        return False


@dataclass(frozen=True)
class FaultScope:
    """What an injector needs to know of the running stack: its Lambda tasks (state -> function logical id), its
    functions' logical ids, and what production is (read once, on the first recorded call)."""

    states: dict[str, str]
    functions: frozenset[str]
    production: Callable[[], ProductionTargets]


class FaultInjector:
    """Injects `faults` (AWS errors) and `crashes` (Lambda runtime failures) into one running LocalRuntime and records
    every AWS call its handlers make (`calls`). Attach it with `LocalRuntime(faults=injector)`."""

    def __init__(self, faults: Iterable[Fault] = (), crashes: Iterable[Crash] = ()) -> None:
        self.faults = tuple(faults)
        self.crashes = tuple(crashes)
        self.calls: list[Call] = []
        self.fired: list[tuple[str, str]] = []  # (what fired, where), in order
        self._lock = threading.Lock()
        self._local = threading.local()
        self._fault_matches = [0] * len(self.faults)
        self._crash_matches = [0] * len(self.crashes)
        self._invocations = 0
        self._states_of: dict[str, str] = {}  # function logical id -> state name
        self._session: Any = None
        self._unique = f"local-faults-{uuid.uuid4().hex[:8]}"
        self._scope: FaultScope | None = None
        self._targets: ProductionTargets | None = None

    @classmethod
    def fail_at(cls, texts: Iterable[str]) -> FaultInjector:
        """The injector `--fail-at TEXT...` stands for: one `Crash.parse(TEXT)` each."""
        return cls(crashes=[Crash.parse(text) for text in texts])

    # -- lifecycle (called by LocalRuntime.start / stop) -----------------------------------------------------
    def attach(self, scope: FaultScope) -> None:
        """Check every state and function named against the stack and hook botocore (the default session the
        handlers' clients come from). Runs inside the mock, after the world is built and before any handler is
        invoked; the runtime hands `around_handler` to its in-process Lambdas."""
        import boto3

        self._states_of = {logical_id: state for state, logical_id in scope.states.items()}
        scoped: list[Fault | Crash] = [*self.faults, *self.crashes]
        for what in scoped:
            name = what.describe()
            if what.state is not None and what.state not in scope.states:
                raise UsageError(
                    f"{name}: {what.state} is not a Lambda task of the state machine "
                    f"(Lambda tasks: {', '.join(sorted(scope.states))})"
                )
            if what.function is not None and what.function not in scope.functions:
                raise UsageError(
                    f"{name}: no function {what.function} (functions: {', '.join(sorted(scope.functions))})"
                )
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        events = self._session.events
        events.register_first("before-parameter-build", self._before_parameter_build, unique_id=self._unique + "-p")
        events.register_first("before-call", self._before_call, unique_id=self._unique + "-c")
        events.register_first("after-call", self._after_call, unique_id=self._unique + "-a")
        self._scope = scope

    def detach(self) -> None:
        if self._session is not None:
            events = self._session.events
            events.unregister("before-parameter-build", unique_id=self._unique + "-p")
            events.unregister("before-call", unique_id=self._unique + "-c")
            events.unregister("after-call", unique_id=self._unique + "-a")
            self._session = None
        self._scope = None

    # -- what happened ---------------------------------------------------------------------------------------
    def production_writes(self, *, succeeded_only: bool = True) -> list[Call]:
        """Calls that wrote (or tried to write, with `succeeded_only=False`) production."""
        return [call for call in self.calls if call.production_write and (call.succeeded or not succeeded_only)]

    def calls_of(self, state: str) -> list[Call]:
        return [call for call in self.calls if call.state == state]

    def summary(self) -> dict[str, Any]:
        return {
            "calls": len(self.calls),
            "injected": sum(1 for call in self.calls if call.injected),
            "crashes": sum(1 for what, _ in self.fired if what.startswith("crash")),
            "production_writes": len(self.production_writes()),
            "production_writes_attempted": len(self.production_writes(succeeded_only=False)),
        }

    # -- the Lambda side -------------------------------------------------------------------------------------
    def around_handler(self, spec: FunctionSpec, call: Callable[[], Any]) -> Any:
        """One invocation of `spec`: `call` runs the function (its cold start and handler, as its role); an AWS call
        made meanwhile is this invocation's, and a crash due for it fails it before or after `call`."""
        with self._lock:
            self._invocations += 1
            invocation = _Invocation(self._invocations, spec, self._states_of.get(spec.logical_id))
            crash_before, crash_after = self._crash_for(invocation)
        previous = getattr(self._local, "invocation", None)
        self._local.invocation = invocation
        try:
            if crash_before is not None:
                raise self._fire_crash(crash_before, invocation)
            result = call()
            if crash_after is not None:
                raise self._fire_crash(crash_after, invocation)
            return result
        finally:
            self._local.invocation = previous

    def _crash_for(self, invocation: _Invocation) -> tuple[Crash | None, Crash | None]:
        chosen: dict[str, Crash] = {}
        for index, crash in enumerate(self.crashes):
            if not _scoped(crash.state, crash.function, invocation):
                continue
            self._crash_matches[index] += 1
            if _in_window(self._crash_matches[index], crash.nth, crash.times):
                chosen.setdefault(crash.when, crash)
        return chosen.get("before"), chosen.get("after")

    def _fire_crash(self, crash: Crash, invocation: _Invocation) -> Exception:
        request_id = str(uuid.uuid4())
        with self._lock:
            self.fired.append((f"crash {crash.kind} {crash.when}", invocation.state or invocation.spec.logical_id))
        return crash.error(request_id, invocation.spec)

    # -- the botocore side -----------------------------------------------------------------------------------
    def _before_parameter_build(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if getattr(self._local, "invocation", None) is not None:
            context["local_faults_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        invocation: _Invocation | None = getattr(self._local, "invocation", None)
        if invocation is None:
            return None  # the runtime's or the test's own call
        service, operation = model.service_model.service_name, model.name
        params: dict[str, Any] = context.get("local_faults_params", {})
        resource = next((str(params[name]) for name in _RESOURCE_PARAMS if params.get(name) is not None), None)
        with self._lock:
            call = Call(
                seq=len(self.calls) + 1,
                service=service,
                operation=operation,
                function=invocation.spec.logical_id,
                state=invocation.state,
                invocation=invocation.number,
                resource=resource,
                params={k: v for k, v in params.items() if isinstance(v, (str, int, float, bool))},
                production_write=self._production().is_write(service, operation, params),
            )
            self.calls.append(call)
            context["local_faults_call"] = call
            fault = self._fault_for(call, invocation)
            if fault is None:
                return None
            code, status = service_error(service, fault.code, operation)
            call.injected = code
            self.fired.append((f"{code} on {service}:{operation}", invocation.state or invocation.spec.logical_id))
        return self._error_response(model, context, fault, code, fault.status or status, call)

    def _after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("local_faults_call")
        if call is not None:
            call.status = getattr(http_response, "status_code", None)

    def _fault_for(self, call: Call, invocation: _Invocation) -> Fault | None:
        chosen: Fault | None = None
        for index, fault in enumerate(self.faults):
            if not (
                fault.service in ("*", call.service)
                and fault.operation in ("*", call.operation)
                and _scoped(fault.state, fault.function, invocation)
                and (
                    fault.resource is None
                    or (call.resource is not None and fnmatch.fnmatchcase(call.resource, fault.resource))
                )
            ):
                continue
            self._fault_matches[index] += 1
            hit = _in_window(self._fault_matches[index], fault.nth, fault.times)
            if fault.rest_of_invocation and (hit or index in invocation.fired):
                invocation.fired.add(index)
                hit = True
            if hit and chosen is None:
                chosen = fault
        return chosen

    def _production(self) -> ProductionTargets:
        if self._targets is None:
            assert self._scope is not None
            self._targets = self._scope.production()
        return self._targets

    @staticmethod
    def _error_response(
        model: Any, context: dict[str, Any], fault: Fault, code: str, status: int, call: Call
    ) -> tuple[AWSResponse, dict[str, Any]]:
        """The HTTP response and parsed error botocore would have produced for this error from the service."""
        if code.isdigit():  # an S3 HEAD error: no body, the HTTP reason phrase is the message
            message = http.client.responses.get(status, "")
        else:
            message = fault.message or _MESSAGES.get(code) or _default_message(code, model.service_model, call)
        return error_response(model, context, code, status, message)


def error_response(
    model: Any, context: dict[str, Any], code: str, status: int, message: str
) -> tuple[AWSResponse, dict[str, Any]]:
    """What a `before-call` handler returns to make botocore raise a service error exactly as it would from AWS:
    the HTTP response and the parsed error, with the headers the service's protocol sends and botocore's retry
    count (an error botocore retries is reported as retried to exhaustion)."""
    service_model = model.service_model
    request_id = str(uuid.uuid4())
    json_protocol = service_model.protocol in ("json", "rest-json", "smithy-rpc-v2-cbor")
    headers = {"x-amzn-requestid": request_id, "content-type": "application/x-amz-json-1.1"}
    if service_model.protocol == "rest-xml":
        headers = {
            "x-amz-request-id": request_id,
            "x-amz-id-2": uuid.uuid4().hex,
            "content-type": "application/xml",
        }
    elif not json_protocol:
        headers = {"x-amzn-requestid": request_id, "content-type": "text/xml"}
    body = json.dumps({"__type": code, "message": message}).encode()
    config = context.get("client_config")
    retries = (getattr(config, "retries", None) or {}) if config is not None else {}
    max_attempts = int(retries.get("total_max_attempts") or retries.get("max_attempts", 2) + 1)
    retried = code in _BOTOCORE_RETRIED or status >= 500
    parsed: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": {**headers, "content-length": str(len(body))},
            "RetryAttempts": max_attempts - 1 if retried else 0,
        },
    }
    if json_protocol:
        parsed["message"] = message
    return AWSResponse(url="https://local-aws.invalid/", status_code=status, headers=headers, raw=body), parsed


def _default_message(code: str, service_model: Any, call: Call) -> str:
    if code in ("AccessDeniedException", "AccessDenied", "AuthorizationError"):
        action = f"{service_model.signing_name}:{call.operation}"
        role = f"arn:aws:sts::123456789012:assumed-role/{call.function}-role/{call.function}"
        return (
            f"User: {role} is not authorized to perform: {action} on resource: {call.resource or '*'} "
            f"because no identity-based policy allows the {action} action"
        )
    if code in _BOTOCORE_RETRIED:
        return "Rate exceeded"
    return f"{code} (injected by the local runtime)"


def _scoped(state: str | None, function: str | None, invocation: _Invocation) -> bool:
    if state is not None and state != invocation.state:
        return False
    return function is None or function == invocation.spec.logical_id


def _in_window(count: int, nth: int, times: int | None) -> bool:
    return count >= nth and (times is None or count < nth + times)
