"""promotion.result.tracker without a server: the managed server is reached at the URL SageMaker gives and each
request is signed for `sagemaker-mlflow`; a retried PublishResult updates the release's run instead of adding one,
and never changes a param MLflow already has."""

from __future__ import annotations

from typing import Any

import boto3

from promotion.result.tracker import MlflowRest, record_promotion

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/team"
RECORD = {
    "params": {"max_depth": "6", "eta": "0.08"},
    "metrics": {"challenger.validation:auc": 0.97},
    "tags": {"promotion.release_id": "r1", "promotion.model": "fraud-detection", "promotion.outcome": "PROMOTED"},
}


class SageMaker:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def describe_mlflow_tracking_server(self, TrackingServerName: str) -> dict[str, Any]:
        self.asked.append(TrackingServerName)
        return {"TrackingServerUrl": "https://t-abc.eu-west-1.experiments.sagemaker.aws"}


def test_a_managed_server_is_found_by_its_arn_and_every_request_is_signed_for_sagemaker_mlflow() -> None:
    sagemaker = SageMaker()
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    rest = MlflowRest.connect(ARN, sagemaker, session)
    assert sagemaker.asked == ["team"] and rest.base_url == "https://t-abc.eu-west-1.experiments.sagemaker.aws"
    assert rest.signer is not None
    headers = rest.signer("POST", f"{rest.base_url}/api/2.0/mlflow/runs/create", b"{}", {"Content-Type": "x"})
    assert "/eu-west-1/sagemaker-mlflow/aws4_request" in headers["Authorization"]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert MlflowRest.connect("https://mlflow.example.com").signer is None


class FakeRest(MlflowRest):
    """MLflow's answers for one experiment, remembering the calls."""

    def __init__(self) -> None:
        super().__init__("http://mlflow.invalid")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.runs: list[dict[str, Any]] = []

    def call(self, method: str, path: str, body: Any = None, **query: str) -> dict[str, Any]:
        self.calls.append((path, dict(body or query)))
        if path == "experiments/get-by-name":
            return {"experiment": {"experiment_id": "7"}}
        if path == "runs/search":
            return {"runs": self.runs}
        if path == "runs/create":
            self.runs.append({"info": {"run_id": "run-1"}, "data": {"params": []}})
            return {"run": {"info": {"run_id": "run-1"}}}
        if path == "runs/log-batch":
            self.runs[0]["data"]["params"] += body["params"]
        return {}


def test_a_retry_updates_the_releases_run_and_keeps_its_params() -> None:
    rest = FakeRest()
    first = record_promotion(rest, "promotions", RECORD)
    again = record_promotion(rest, "promotions", {**RECORD, "params": {"max_depth": "7", "subsample": "0.8"}})
    assert first == again == "run-1"
    assert [path for path, _ in rest.calls].count("runs/create") == 1
    batches = [body for path, body in rest.calls if path == "runs/log-batch"]
    assert batches[1]["params"] == [{"key": "subsample", "value": "0.8"}]  # max_depth was logged: not changed
    search = next(body for path, body in rest.calls if path == "runs/search")
    assert search["filter"] == "tags.`promotion.release_id` = 'r1' and tags.`promotion.model` = 'fraud-detection'"
    assert [body["status"] for path, body in rest.calls if path == "runs/update"] == ["FINISHED", "FINISHED"]


def test_a_query_is_encoded_as_sigv4_signs_it_and_a_spent_budget_sends_nothing() -> None:
    import pytest

    from promotion.result.tracker import TrackerUnavailable

    seen: list[str] = []

    def signer(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        seen.append(url)
        return headers

    rest = MlflowRest("http://127.0.0.1:9", signer, timeout=1)  # nothing listens on port 9
    with pytest.raises(TrackerUnavailable):
        rest.call("GET", "experiments/get-by-name", experiment_name="fraud promotions")
    assert seen == ["http://127.0.0.1:9/api/2.0/mlflow/experiments/get-by-name?experiment_name=fraud%20promotions"]
    spent = MlflowRest("http://127.0.0.1:9", signer, budget_s=0)
    with pytest.raises(TrackerUnavailable, match="time budget ran out before runs/create"):
        spent.call("POST", "runs/create", {})
    assert len(seen) == 1
