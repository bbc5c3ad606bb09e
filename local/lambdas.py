"""In-process Lambda: the real handlers of the synthesized functions, invoked in this Python process.

Bridges the moto gap "Lambda without Docker only echoes the payload": every `AWS::Lambda::Function` of the template
is invoked from its staged code asset (`cdk.out/asset.*`), with its handler string, its resolved environment and
its layers mapped to `/opt` the way the Lambda runtime does it:

* each layer's `python/` directory is appended to `sys.path` (appended, not prepended: a dependencies layer built
  for the Lambda runtime's Python and platform must not shadow this interpreter's own packages; a package only a
  layer has, such as `promotion`, is still found there; one already imported, e.g. by tests, is reused);
* environment values starting with `/opt/` point into the layer directory that has that path.

Every function has a file called `handler.py`, so each handler module is loaded under its own module name and
never through `sys.modules['handler']`. The environment is process-wide, so invocations are serialized and each
one sees exactly its function's variables (restored afterwards). Exceptions become Lambda's error payload
(`errorType` = exception class name, `errorMessage`, `requestId`, `stackTrace`), which Step Functions turns into
the error name that Retry and Catch match, as on AWS. Handler output printed to stdout/stderr (Powertools logs,
EMF metrics) is kept per invocation instead of mixing with the CLI's own output.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from local.world import FunctionSpec, find_function

LOG = logging.getLogger("local.lambdas")

# The invocation machinery's files: this module and local.faults, whose `around_handler` wraps every invocation.
_RUNTIME_FILES = frozenset({__file__, str(Path(__file__).with_name("faults.py"))})
# The layer mount point inside a Lambda sandbox; env values under it are remapped to the staged layer directories.
OPT = "/opt/"


class InjectedFault(Exception):
    """Raised in place of a handler when the run injects a fault at the state that function serves (`--fail-at`,
    a `local.faults.Crash` of kind "error")."""


@dataclass
class LambdaContext:
    """The context object a Python handler receives on Lambda (the attributes Powertools and handlers read)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One in-process invocation, kept for the timeline and for tests."""

    function: str
    request_id: str
    event: Any
    result: Any
    error: dict[str, Any] | None
    duration_ms: float
    logs: str


class _ThreadRouter(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: text written by a thread that is running a handler goes to that
    invocation's log buffer; everything else goes where it went before."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def write(self, text: str) -> int:
        sink: io.StringIO | None = getattr(self.local, "sink", None)
        (sink if sink is not None else self.fallback).write(text)
        return len(text)

    def flush(self) -> None:
        self.fallback.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8")


def _layer_path(value: str, layer_dirs: tuple[Path, ...]) -> str:
    """`/opt/<rest>` -> the last layer directory that has `<rest>` (later layers win, as when Lambda merges them)."""
    rest = value[len(OPT) :]
    for layer_dir in reversed(layer_dirs):
        if (layer_dir / rest).exists():
            return str(layer_dir / rest)
    return str(layer_dirs[-1] / rest) if layer_dirs else value


def error_payload(error: BaseException, request_id: str, error_type: str | None = None) -> dict[str, Any]:
    """The JSON a Python Lambda returns for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": request_id,
        # The handler's frames only: the runtime's own frames are not part of the function's code.
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename not in _RUNTIME_FILES]
        ),
    }


@dataclass
class InProcessLambdas:
    """The functions of one local world and the machinery to invoke them in process."""

    functions: dict[str, FunctionSpec]
    region: str
    echo: TextIO | None = None  # where to copy handler output as it happens (None: keep it only in memory)
    invocations: list[Invocation] = field(default_factory=list)
    # local.faults: wraps every invocation (spec, the call: cold start and handler, as the function's role), to tell
    # which function makes an AWS call and to fail the invocation before or after it runs (None: it runs as is)
    around_handler: Callable[[FunctionSpec, Callable[[], Any]], Any] | None = None
    # local.iam: the handler's AWS calls are made as the function's execution role inside this context
    identity: Callable[[FunctionSpec], AbstractContextManager[None]] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._modules: dict[str, ModuleType] = {}
        self._token = uuid.uuid4().hex[:8]
        self._added_paths: list[str] = []
        self._routers: tuple[_ThreadRouter, _ThreadRouter] | None = None
        self._swap_lock = threading.Lock()
        self._swapped_depth = 0
        self._swapped: tuple[tuple[Any, Any], tuple[TextIO, TextIO]] | None = None
        self._async = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-lambda-async")
        self._pending: list[Future[Any]] = []

    @property
    def environment_lock(self) -> threading.RLock:
        """Held while a handler runs with its function's environment in os.environ (and puts back what it found
        after): another thread that reads the process environment (making a boto3 client does, for credentials and
        proxies) takes it too, or it can find a key vanish mid-read."""
        return self._lock

    # -- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Put the layers on sys.path and route handler output; undone by `close`."""
        for spec in self.functions.values():
            for layer_dir in spec.layer_dirs:
                python_dir = str(layer_dir / "python")
                if Path(python_dir).is_dir() and python_dir not in sys.path and python_dir not in self._added_paths:
                    sys.path.append(python_dir)
                    self._added_paths.append(python_dir)
        self._routers = (_ThreadRouter(sys.stdout), _ThreadRouter(sys.stderr))
        sys.stdout, sys.stderr = self._routers

    def close(self) -> None:
        self.drain()
        self._async.shutdown(wait=True)
        if self._routers is not None:
            stdout, stderr = self._routers
            if sys.stdout is stdout:
                sys.stdout = stdout.fallback
            if sys.stderr is stderr:
                sys.stderr = stderr.fallback
            self._routers = None
        for python_dir in self._added_paths:
            if python_dir in sys.path:
                sys.path.remove(python_dir)
        self._added_paths.clear()
        for module_name in list(self._modules):
            sys.modules.pop(module_name, None)
        self._modules.clear()

    # -- invocation ------------------------------------------------------------------------------------------
    def resolve(self, reference: str) -> FunctionSpec | None:
        """The function an ARN (qualified or not) or a name refers to."""
        return find_function(self.functions, reference)

    def _environment(self, spec: FunctionSpec, request_id: str) -> dict[str, str]:
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{request_id}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            # No X-Ray daemon here: Powertools' Tracer must not try to send segments.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        for key, value in spec.environment.items():
            env[key] = _layer_path(value, spec.layer_dirs) if value.startswith(OPT) else value
        return env

    @contextmanager
    def _function_environment(self, env: dict[str, str]) -> Iterator[None]:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        """Load (once: a cold start) the handler module under a name of its own and return the handler."""
        module_path, _, function_name = spec.handler.rpartition(".")
        module = self._modules.get(spec.logical_id)
        if module is None:
            module_file = spec.code_dir / (module_path.replace(".", "/") + ".py")
            unique_name = f"_local_lambda_{self._token}_{spec.logical_id}"
            module_spec = importlib.util.spec_from_file_location(unique_name, module_file)
            if module_spec is None or module_spec.loader is None or not module_file.exists():
                raise _RuntimeError(
                    "Runtime.ImportModuleError", f"Unable to import module '{module_path}': no {module_file}"
                )
            module = importlib.util.module_from_spec(module_spec)
            # LAMBDA_TASK_ROOT comes first on Lambda's path: modules beside the handler import as they would there.
            sys.path.insert(0, str(spec.code_dir))
            sys.modules[unique_name] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception as error:
                sys.modules.pop(unique_name, None)
                raise _RuntimeError(
                    "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {error}"
                ) from error
            finally:
                sys.path.remove(str(spec.code_dir))
            self._modules[spec.logical_id] = module
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise _RuntimeError(
                "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_path}'"
            )
        return handler

    @contextmanager
    def _captured(self, sink: io.StringIO) -> Iterator[None]:
        """Route this thread's stdout/stderr into `sink`.

        The routers are put back in place for the call in case something (a test runner's capture, typer's
        CliRunner) swapped sys.stdout since `open`; while they stand in for that stream, other threads' text goes to
        it (not around it). Handlers run on several threads at once, so only the first one in swaps and only the
        last one out puts the stream back, and never a stream its owner has closed in the meantime (CliRunner
        closes its capture when its command returns)."""
        if self._routers is None:
            yield
            return
        routers = self._routers
        with self._swap_lock:
            if self._swapped_depth == 0:
                current = (sys.stdout, sys.stderr)
                if current[0] is not routers[0]:
                    self._swapped = (current, (routers[0].fallback, routers[1].fallback))
                    routers[0].fallback, routers[1].fallback = current
                    sys.stdout, sys.stderr = routers
                else:
                    self._swapped = None
            self._swapped_depth += 1
        for router in routers:
            router.local.sink = sink
        try:
            yield
        finally:
            for router in routers:
                router.local.sink = None
            with self._swap_lock:
                self._swapped_depth -= 1
                if self._swapped_depth == 0 and self._swapped is not None:
                    (replaced, fallbacks), self._swapped = self._swapped, None
                    routers[0].fallback, routers[1].fallback = fallbacks
                    if sys.stdout is routers[0] and not getattr(replaced[0], "closed", False):
                        sys.stdout, sys.stderr = replaced

    def _call(self, spec: FunctionSpec, event: Any, request_id: str, deadline: float) -> Any:
        """Run the handler (cold-starting it if needed) and return its JSON-serializable result."""
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name=f"local/[$LATEST]{request_id}",
            deadline=deadline,
        )

        def run() -> Any:
            # The cold start (module import) runs as the function's role too, as on Lambda.
            with self.identity(spec) if self.identity is not None else _nothing():
                return self._handler(spec)(event, context)

        raw = run() if self.around_handler is None else self.around_handler(spec, run)
        try:
            # Lambda serializes the return value as JSON; what cannot be serialized fails the invocation.
            return json.loads(json.dumps(raw))
        except (TypeError, ValueError) as marshal_error:
            raise _RuntimeError("Runtime.MarshalError", f"Unable to marshal response: {marshal_error}") from None

    def invoke(self, reference: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Invoke synchronously: (result, None) or (None, Lambda error payload). Unknown functions raise KeyError."""
        spec = self.resolve(reference)
        if spec is None:
            raise KeyError(reference)
        request_id = str(uuid.uuid4())
        sink = io.StringIO()
        started = time.monotonic()
        result: Any = None
        error: dict[str, Any] | None = None
        environment = self._environment(spec, request_id)
        with self._lock, self._function_environment(environment), self._captured(sink):
            try:
                result = self._call(spec, event, request_id, started + spec.timeout_s)
            except _RuntimeError as runtime_error:
                error = error_payload(runtime_error, request_id, runtime_error.error_type)
            except Exception as handler_error:
                error = error_payload(handler_error, request_id)
        logs = sink.getvalue()
        if self.echo is not None and logs:
            self.echo.write("".join(f"[{spec.name}] {line}\n" for line in logs.splitlines()))
        self.invocations.append(
            Invocation(spec.name, request_id, event, result, error, (time.monotonic() - started) * 1000, logs)
        )
        return result, error

    def invoke_async(self, reference: str, event: Any) -> None:
        """Asynchronous invocation (EventBridge targets): queued, errors logged and never raised to the caller."""

        def run() -> None:
            try:
                _, error = self.invoke(reference, event)
            except KeyError:
                LOG.error("asynchronous invoke of unknown function %s", reference)
                return
            if error is not None:
                LOG.error(
                    "asynchronous invoke of %s failed: %s: %s", reference, error["errorType"], error["errorMessage"]
                )

        self._pending.append(self._async.submit(run))

    def drain(self, timeout: float | None = None) -> None:
        """Wait for every queued asynchronous invocation."""
        while self._pending:
            self._pending.pop(0).result(timeout=timeout)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _RuntimeError(Exception):
    """An error of the Lambda runtime itself (import, handler lookup, marshalling), named as Lambda names it."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(message)


class InjectedRuntimeFailure(_RuntimeError):
    """A failure of the Lambda runtime itself (the process crashed, the function timed out), injected by
    `local.faults`; its `error_type` is the name Lambda gives it (`Runtime.ExitError`, `Sandbox.Timedout`)."""
