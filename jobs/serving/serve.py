"""SageMaker inference entry point: the job image's own model server for the XGBoost fraud model.

SageMaker runs the image as ``docker run <image> serve`` after unpacking the model's ``model.tar.gz`` into
``/opt/ml/model``; ``SM_MODEL_DIR`` (or ``SAGEMAKER_BASE_DIR``/model) moves that folder for local runs. The model is
loaded once, before the server listens; when it cannot be loaded the process exits with status 1 and the reason on
stderr, so the endpoint never reports healthy and SageMaker fails the endpoint update instead.

The server listens on port 8080 (``SAGEMAKER_BIND_TO_PORT`` or ``--port`` move it) and answers:

    GET  /ping         200, empty body (SageMaker's health check; it allows 2 s, so it never touches the model)
    POST /invocations  fraud probabilities, one per row (SageMaker allows 60 s)

Request formats (the ``Content-Type``, any ``charset`` parameter honoured, UTF-8 when none is given):

    text/csv          one row per line, features only (no label column: unlike the training CSV), comma-separated
                      numbers, no header; blank lines are ignored
    application/json  ``{"instances": [[f1, f2, ...], ...]}``

The answer has the request's format unless ``Accept`` asks for the other: ``text/csv`` gives one probability per
line, ``application/json`` gives ``{"predictions": [p1, p2, ...]}``. Probabilities are written with 9 significant
digits, which is every digit XGBoost has (it predicts in 32-bit floats), so both formats carry the same numbers.

Errors have a one-line ``text/plain`` reason and never a traceback: 400 for a body that does not parse, a row with
the wrong number of features or a missing or non-finite value (training data never has them, so the model has
never learnt what a missing value means), 404 for an unknown path, 405 for the wrong method, 406 for an ``Accept``
neither format satisfies, 411 without ``Content-Length``, 413 past ``MAX_BODY_BYTES``, 415 for another content type,
500 when the model itself fails. Every request logs one line to stderr (CloudWatch, on SageMaker).

Only the standard library serves (``http.server.ThreadingHTTPServer``): the image needs no web framework, and a
thread per connection is plenty for the instance sizes the endpoints use, since XGBoost spreads each prediction
over every core itself. Predicting from several threads at once is safe: XGBoost's tree-model prediction is thread
safe (since 1.4) and nothing changes the booster after it is loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

if importlib.util.find_spec("promotion_ml") is None:
    # In the image this file is <program dir>/serving/serve.py and the package sits beside serving/.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import xgboost as xgb
from numpy.typing import NDArray

from promotion_ml.artifacts import load_booster, predict_scores
from promotion_ml.runtime import BASE_DIR_ENV, DEFAULT_BASE_DIR

CSV = "text/csv"
JSON = "application/json"
FORMATS = (CSV, JSON)
DEFAULT_PORT = 8080
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
MODEL_DIR_ENV = "SM_MODEL_DIR"
# Above SageMaker's own limits (real-time invocations and batch transform's largest MaxPayloadInMB): a bigger body
# is a client bug, refused before it is read into memory.
MAX_BODY_BYTES = 100 * 1024 * 1024
PLAIN_TEXT = "text/plain; charset=utf-8"


class RequestError(Exception):
    """A request the server refuses: the status to answer with and a one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Response(NamedTuple):
    """What the handler sends; ``note`` goes to the log line only (never to the client).

    Named tuples rather than dataclasses here: the tests load this file as a script, outside ``sys.modules``, where
    dataclasses cannot resolve postponed annotations.
    """

    status: HTTPStatus
    body: bytes = b""
    content_type: str = PLAIN_TEXT
    note: str = ""

    @classmethod
    def error(cls, status: HTTPStatus, reason: str, note: str = "") -> Response:
        return cls(status, (_one_line(reason) + "\n").encode("utf-8"), PLAIN_TEXT, note or reason)


class Model(NamedTuple):
    """The loaded booster and the feature count every request is checked against."""

    booster: xgb.Booster
    n_features: int

    @classmethod
    def of(cls, booster: xgb.Booster) -> Model:
        return cls(booster=booster, n_features=int(booster.num_features()))


def _one_line(text: str) -> str:
    """Reasons quote client input; keep them one short line so neither the answer nor the log can be split."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 300 else flat[:297] + "..."


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """``"text/csv; charset=utf-8"`` -> ``("text/csv", {"charset": "utf-8"})``, names lower-cased."""
    media, *parameters = value.split(";")
    found: dict[str, str] = {}
    for parameter in parameters:
        name, _, raw = parameter.partition("=")
        found[name.strip().lower()] = raw.strip().strip('"')
    return media.strip().lower(), found


def _quality(parameters: Mapping[str, str]) -> float:
    """An ``Accept`` item's ``q`` (1 when absent; a malformed one counts as 1 rather than refusing the item)."""
    try:
        return float(parameters.get("q", "1"))
    except ValueError:
        return 1.0


def _response_format(request_format: str, accept: str | None) -> str:
    """The answer's format: the first of ours that ``Accept`` names, the request's own for ``*/*`` or no header."""
    if accept is None or not accept.strip():
        return request_format
    wildcards = {"*/*": request_format, "": request_format, "text/*": CSV, "application/*": JSON}
    for item in accept.split(","):
        media, parameters = _media_type(item)
        if _quality(parameters) <= 0:  # "q=0": explicitly not acceptable
            continue
        if media in FORMATS:
            return media
        if media in wildcards:
            return wildcards[media]
    raise RequestError(HTTPStatus.NOT_ACCEPTABLE, f"cannot answer Accept: {accept}; offer {CSV} or {JSON}")


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text.strip() or "an empty field"
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{where}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{where}: {text.strip()!r} is not a finite number")
    return value


def parse_csv(text: str) -> list[list[float]]:
    """Rows of features from CSV text; row numbers in errors count the non-blank lines from 1."""
    rows: list[list[float]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        where = f"row {len(rows) + 1}"
        rows.append([_number(field, f"{where}, column {i + 1}") for i, field in enumerate(line.split(","))])
    return rows


def parse_json(text: str) -> list[list[float]]:
    """Rows of features from ``{"instances": [[...], ...]}``; booleans and strings are not numbers here."""
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise RequestError(HTTPStatus.BAD_REQUEST, 'expected a JSON object {"instances": [[...], ...]}')
    rows: list[list[float]] = []
    for index, instance in enumerate(document["instances"], start=1):
        if not isinstance(instance, list):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"instance {index} is not a list of numbers")
        row: list[float] = []
        for column, value in enumerate(instance, start=1):
            where = f"instance {index}, value {column}"
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{where}: {json.dumps(value)[:40]} is not a number")
            row.append(_number(str(value), where))
        rows.append(row)
    return rows


def to_features(rows: Sequence[Sequence[float]], n_features: int) -> NDArray[np.float64]:
    """The feature matrix, after checking there are rows and each has the model's feature count."""
    if not rows:
        raise RequestError(HTTPStatus.BAD_REQUEST, "no rows to score")
    for index, row in enumerate(rows, start=1):
        if len(row) != n_features:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"the model expects {n_features} features per row, row {index} has {len(row)}"
            )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), n_features)


def format_scores(scores: NDArray[np.float64], media: str) -> bytes:
    """Scores in the answer's format, each with 9 significant digits (all a 32-bit float has)."""
    texts = [f"{float(value):.9g}" for value in scores]
    if media == CSV:
        return ("\n".join(texts) + "\n").encode("utf-8")
    return json.dumps({"predictions": [float(text) for text in texts]}).encode("utf-8")


def invoke(model: Model, content_type: str | None, accept: str | None, body: bytes) -> Response:
    """Answer one ``POST /invocations`` (no HTTP involved, so it is testable and the handler stays thin)."""
    try:
        if not content_type:
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"no Content-Type; send {CSV} or {JSON}")
        media, parameters = _media_type(content_type)
        if media not in FORMATS:
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Type {media}; send {CSV} or {JSON}"
            )
        answer = _response_format(media, accept)
        charset = parameters.get("charset") or "utf-8"
        try:
            text = body.decode(charset)
        except LookupError:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"unknown charset {charset!r}") from None
        except UnicodeDecodeError as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not valid {charset}: {error.reason}") from None
        rows = parse_csv(text) if media == CSV else parse_json(text)
        features = to_features(rows, model.n_features)
    except RequestError as error:
        return Response.error(error.status, error.reason)
    try:
        scores = predict_scores(model.booster, features)
    except Exception as error:  # the model's own failure: the client learns no more than that
        return Response.error(
            HTTPStatus.INTERNAL_SERVER_ERROR, "the model failed to score the rows", f"{type(error).__name__}: {error}"
        )
    return Response(HTTPStatus.OK, format_scores(scores, answer), answer, f"{len(scores)} rows")


class ModelServer(ThreadingHTTPServer):
    """A threading HTTP server that holds the model its handlers score with."""

    def __init__(self, model: Model, address: tuple[str, int]) -> None:
        self.model = model
        super().__init__(address, InferenceHandler)


class InferenceHandler(BaseHTTPRequestHandler):
    """Routes ``/ping`` and ``/invocations``; HTTP/1.1 so SageMaker's front end can keep connections open."""

    protocol_version = "HTTP/1.1"
    server_version = "promotion-serve"
    timeout = 120  # seconds an idle keep-alive connection may hold a thread
    server: ModelServer
    _body_read = False  # whether this request's body has been read, so the connection can stay open

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        self._body_read = False
        path = urlsplit(self.path).path
        try:
            response = self._route(method, path)
        except Exception as error:  # a bug here must still answer, and without a traceback
            response = Response.error(
                HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", f"{type(error).__name__}: {error}"
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        note = f" {_one_line(response.note)}" if response.note else ""
        # Logged before the answer goes out, so a client that has its answer knows the line is written.
        self.log_message(
            "%s %s %d %d bytes %.1f ms%s", method, path, response.status, len(response.body), elapsed_ms, note
        )
        self._send(response)

    def _route(self, method: str, path: str) -> Response:
        routes = {"/ping": "GET", "/invocations": "POST"}
        if path not in routes:
            return Response.error(HTTPStatus.NOT_FOUND, f"no such path {path}; use GET /ping or POST /invocations")
        if method != routes[path]:
            return Response.error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} answers {routes[path]} only")
        if path == "/ping":
            return Response(HTTPStatus.OK)
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            return Response.error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        if int(length) > MAX_BODY_BYTES:
            return Response.error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(int(length))
        self._body_read = True
        return invoke(self.server.model, self.headers.get("Content-Type"), self.headers.get("Accept"), body)

    def _send(self, response: Response) -> None:
        # A body left unread would be taken for the next request on this connection: close it instead.
        unread = self.command == "POST" and not self._body_read
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if response.status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET" if urlsplit(self.path).path == "/ping" else "POST")
        if unread:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`_handle` logs each request once, with its timing and the reason for an error."""

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(booster: xgb.Booster, host: str, port: int) -> ModelServer:
    """A bound server for ``booster`` (port 0 picks a free port: see ``server_address``); call ``serve_forever``."""
    return ModelServer(Model.of(booster), (host, port))


def model_dir(environ: Mapping[str, str]) -> Path:
    """``SM_MODEL_DIR``, else ``model`` under ``SAGEMAKER_BASE_DIR`` (default ``/opt/ml``), as in training."""
    return Path(environ.get(MODEL_DIR_ENV) or Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR) / "model")


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the XGBoost model by SageMaker's inference contract.")
    default_port = environ.get(PORT_ENV) or str(DEFAULT_PORT)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(default_port), help=f"default ${PORT_ENV} or {DEFAULT_PORT}")
    parser.add_argument("--model-dir", type=Path, default=model_dir(environ), help=f"default ${MODEL_DIR_ENV}")
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SageMaker stops a container with SIGTERM: leave ``serve_forever`` and exit 0 rather than die by signal."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Load the model, then serve until SIGTERM; 1 (reason on stderr) when the model cannot be loaded."""
    environ = os.environ if environ is None else environ
    try:
        args = parse_args(argv, environ)
    except ValueError as error:  # a non-numeric SAGEMAKER_BIND_TO_PORT
        print(f"serve: bad ${PORT_ENV}: {error}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="serve-model-") as work_dir:
            booster = load_booster(args.model_dir, work_dir)
    except Exception as error:  # any reason the model is unusable ends the container, with that reason
        print(f"serve: cannot load the model from {args.model_dir}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    server = make_server(booster, args.host, args.port)
    host, port = server.server_address[:2]
    print(
        f"serve: {server.model.n_features}-feature model from {args.model_dir}, listening on {host!s}:{port}",
        file=sys.stderr,
        flush=True,
    )
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
