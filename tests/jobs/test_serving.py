"""The inference entry point over real HTTP: a tiny model, the server on a free port, SageMaker's two routes."""

from __future__ import annotations

import http.client
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from numpy.typing import NDArray

from promotion_ml.artifacts import load_booster, predict_scores, save_booster
from tests.jobs.conftest import JOBS, load_script

SERVE_SCRIPT = JOBS / "serving" / "serve.py"
BIN = JOBS / "bin"
N_FEATURES = 4


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class TinyModel:
    model_dir: Path  # holds xgboost-model, as /opt/ml/model does once SageMaker has unpacked model.tar.gz
    booster: xgb.Booster
    rows: NDArray[np.float64]  # rows to score, never seen in training


@pytest.fixture(scope="module")
def serve_job() -> ModuleType:
    return load_script(SERVE_SCRIPT)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """Five rounds on 200 seeded rows: enough for distinct scores, quick enough for every run."""
    rng = np.random.default_rng(5)
    features = rng.normal(size=(200, N_FEATURES))
    labels = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(0.0, 0.5, 200) > 0).astype(np.int8)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.5, "nthread": 1, "seed": 5}
    booster = xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=5)
    model_dir = tmp_path_factory.mktemp("model")
    save_booster(booster, model_dir)
    loaded = load_booster(model_dir, tmp_path_factory.mktemp("work"))
    return TinyModel(model_dir=model_dir, booster=loaded, rows=rng.normal(size=(7, N_FEATURES)))


@pytest.fixture(scope="module")
def base_url(serve_job: ModuleType, tiny_model: TinyModel) -> Iterator[str]:
    """The server on 127.0.0.1 and a free port, in a daemon thread for the module's tests."""
    server = serve_job.make_server(tiny_model.booster, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def call(url: str, body: bytes | None = None, content_type: str | None = None, accept: str | None = None) -> Reply:
    """One request; HTTP errors are replies too (the status and body are what is tested)."""
    request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    if accept is not None:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers.get("Content-Type", ""), error.read())


def csv_body(rows: NDArray[np.float64]) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode("utf-8")


def test_ping_is_200_with_an_empty_body(base_url: str) -> None:
    reply = call(f"{base_url}/ping")
    assert reply.status == 200
    assert reply.body == b""


def test_csv_rows_get_one_score_each_as_the_model_predicts(base_url: str, tiny_model: TinyModel) -> None:
    # Blank lines (leading, inner, trailing) are ignored; the charset parameter is accepted.
    body = b"\n" + csv_body(tiny_model.rows[:3]) + b"\n\r\n" + csv_body(tiny_model.rows[3:]) + b"\n"
    reply = call(f"{base_url}/invocations", body, "text/csv; charset=utf-8")
    assert reply.status == 200, reply.text
    assert reply.content_type == "text/csv"
    scores = [float(line) for line in reply.text.splitlines()]
    expected = predict_scores(tiny_model.booster, tiny_model.rows)
    assert len(scores) == len(tiny_model.rows)
    assert scores == pytest.approx(expected.tolist(), abs=1e-6)
    assert len(set(scores)) > 1  # a model that scores every row the same would prove nothing


def test_json_instances_get_predictions(base_url: str, tiny_model: TinyModel) -> None:
    body = json.dumps({"instances": tiny_model.rows.tolist()}).encode("utf-8")
    reply = call(f"{base_url}/invocations", body, "application/json")
    assert reply.status == 200, reply.text
    assert reply.content_type == "application/json"
    predictions = json.loads(reply.body)["predictions"]
    assert predictions == pytest.approx(predict_scores(tiny_model.booster, tiny_model.rows).tolist(), abs=1e-6)


def test_accept_chooses_the_answer_format(base_url: str, tiny_model: TinyModel) -> None:
    url = f"{base_url}/invocations"
    as_json = call(url, csv_body(tiny_model.rows), "text/csv", accept="application/json")
    assert as_json.content_type == "application/json"
    as_csv = call(url, csv_body(tiny_model.rows), "text/csv", accept="*/*")
    assert json.loads(as_json.body)["predictions"] == [float(line) for line in as_csv.text.splitlines()]
    refused = call(url, csv_body(tiny_model.rows), "text/csv", accept="application/x-protobuf")
    assert refused.status == 406


def test_wrong_feature_count_is_400_naming_the_expected_count(base_url: str, tiny_model: TinyModel) -> None:
    # The training CSV layout (label first) is the likeliest mistake: one column too many.
    with_label = np.column_stack([np.zeros(len(tiny_model.rows)), tiny_model.rows])
    reply = call(f"{base_url}/invocations", csv_body(with_label), "text/csv")
    assert reply.status == 400
    assert reply.content_type.startswith("text/plain")
    assert f"expects {N_FEATURES} features" in reply.text
    assert reply.text.count("\n") == 1


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        pytest.param("text/csv", b"1,2,x,4\n", "row 1, column 3: 'x' is not a number", id="csv-text"),
        pytest.param("text/csv", b"1,2,3,4\n1,2,,4\n", "row 2, column 3: 'an empty field'", id="csv-empty-field"),
        pytest.param("text/csv", b"1,2,nan,4\n", "not a finite number", id="csv-nan"),
        pytest.param("text/csv", b"1,2,inf,4\n", "not a finite number", id="csv-inf"),
        pytest.param("text/csv", b"\n\n", "no rows", id="csv-no-rows"),
        pytest.param("text/csv", b"1,2,3,\xff\n", "not valid utf-8", id="csv-bad-bytes"),
        pytest.param("application/json", b"[[1, 2", "not JSON", id="json-syntax"),
        pytest.param("application/json", b"[[1, 2, 3, 4]]", '{"instances"', id="json-no-instances"),
        pytest.param("application/json", b'{"instances": [[1, true, 3, 4]]}', "value 2: true", id="json-bool"),
        pytest.param("application/json", b'{"instances": [[1, NaN, 3, 4]]}', "not a finite number", id="json-nan"),
        pytest.param("application/json", b'{"instances": [1, 2, 3, 4]}', "instance 1 is not a list", id="json-flat"),
    ],
)
def test_unusable_bodies_are_400_with_a_one_line_reason(
    base_url: str, content_type: str, body: bytes, reason: str
) -> None:
    reply = call(f"{base_url}/invocations", body, content_type)
    assert reply.status == 400
    assert reason in reply.text
    assert reply.text.count("\n") == 1
    assert "Traceback" not in reply.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/x-npy"])
def test_other_content_types_are_415(base_url: str, content_type: str) -> None:
    reply = call(f"{base_url}/invocations", b"1,2,3,4\n", content_type)
    assert reply.status == 415
    assert "text/csv" in reply.text


def test_unknown_paths_are_404_and_wrong_methods_405(base_url: str) -> None:
    assert call(f"{base_url}/predict").status == 404
    assert call(f"{base_url}/predict", b"1,2,3,4\n", "text/csv").status == 404
    assert call(f"{base_url}/invocations").status == 405
    assert call(f"{base_url}/ping", b"", "text/csv").status == 405


def test_a_kept_alive_connection_survives_errors(base_url: str, tiny_model: TinyModel) -> None:
    """SageMaker reuses connections: an error, even one whose body was never read, must not garble the next one."""
    connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
    try:
        for path, body, expected in [
            ("/invocations", b"1,2\n", 400),
            ("/elsewhere", b"1,2,3,4\n" * 100, 404),
            ("/invocations", csv_body(tiny_model.rows[:2]), 200),
        ]:
            connection.request("POST", path, body=body, headers={"Content-Type": "text/csv"})
            response = connection.getresponse()
            response.read()
            assert response.status == expected
    finally:
        connection.close()


def test_a_model_failure_is_500_without_its_details(serve_job: ModuleType) -> None:
    class BrokenBooster:
        def num_features(self) -> int:
            return N_FEATURES

        def predict(self, data: Any) -> Any:
            raise RuntimeError("secret internals")

    response = serve_job.invoke(serve_job.Model.of(BrokenBooster()), "text/csv", None, b"1,2,3,4\n")
    assert response.status == 500
    assert b"secret" not in response.body
    assert "RuntimeError: secret internals" in response.note  # the log line has it


def test_main_fails_with_the_reason_when_the_model_dir_is_empty(
    serve_job: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "model"
    empty.mkdir()
    status = serve_job.main(["--host", "127.0.0.1", "--port", "0"], environ={"SM_MODEL_DIR": str(empty)})
    assert status != 0
    message = capsys.readouterr().err
    assert f"cannot load the model from {empty}" in message
    assert "expected xgboost-model or one model.tar.gz" in message


def test_the_port_comes_from_sagemaker_bind_to_port_unless_given(serve_job: ModuleType) -> None:
    assert serve_job.parse_args([], {}).port == 8080
    assert serve_job.parse_args([], {"SAGEMAKER_BIND_TO_PORT": "9123"}).port == 9123
    assert serve_job.parse_args(["--port", "7000"], {"SAGEMAKER_BIND_TO_PORT": "9123"}).port == 7000
    assert serve_job.parse_args([], {"SAGEMAKER_BASE_DIR": "/base"}).model_dir == Path("/base/model")


@pytest.mark.parametrize(("command", "target"), [("serve", "serving/serve.py"), ("train", "training/train.py")])
def test_bin_commands_are_executable_and_point_at_their_entry_points(command: str, target: str) -> None:
    script = BIN / command
    assert script.is_file()
    assert os.access(script, os.X_OK), f"{script} is not executable: SageMaker runs it as `{command}`"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    entry_point = runpy.run_path(str(script), run_name="bin_check")["ENTRY_POINT"]
    assert entry_point == (JOBS / target).resolve()
    assert entry_point.is_file()


def test_bin_serve_serves_until_sigterm(tiny_model: TinyModel, tmp_path: Path) -> None:
    """The container's way in: ``serve`` as a process, the model from SM_MODEL_DIR, a clean exit on SIGTERM."""
    env = {**os.environ, "SM_MODEL_DIR": str(tiny_model.model_dir)}
    process = subprocess.Popen(
        [sys.executable, str(BIN / "serve"), "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        match = re.search(r"listening on ([\d.]+):(\d+)", banner)
        assert match, banner
        base_url = f"http://{match.group(1)}:{match.group(2)}"
        assert call(f"{base_url}/ping").status == 200
        reply = call(f"{base_url}/invocations", csv_body(tiny_model.rows), "text/csv")
        assert reply.status == 200
        assert len(reply.text.splitlines()) == len(tiny_model.rows)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        log = process.stderr.read()
        assert re.search(r"GET /ping 200 ", log)
        assert re.search(r"POST /invocations 200 .* 7 rows", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
