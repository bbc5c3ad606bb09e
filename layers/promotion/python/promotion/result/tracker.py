"""The promotion record in the data scientists' MLflow tracking server: one run per release, in the catalog's
experiment (default `promotions`, where the toolkit's `log_promotion` writes too, with the same `promotion.*` tags),
with the candidate's hyperparameters, its metrics beside the champion's, the comparison's verdict and numbers, the
approver, each rollout stage's verdict, the outcome and the decision report's link.

MLflow's REST API over urllib, not the MLflow library: the Lambda layer stays small (MLflow and its dependencies
are hundreds of MB). A SageMaker managed MLflow tracking server (its ARN as the URI) is reached at the URL
DescribeMlflowTrackingServer gives, each request signed with SigV4 for `sagemaker-mlflow`, as the sagemaker-mlflow
plugin signs them; an `http(s)://` URI is used as it is.

A retried PublishResult finds the release's run (searched by its tags) and updates it: never two runs per release.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from promotion.contract.catalog import ModelCatalog
from promotion.contract.state import Outcome, PromotionState
from promotion.core.errors import PromotionError

MANAGED_PREFIX = "arn:aws:sagemaker:"
SIGNING_NAME = "sagemaker-mlflow"
MAX_VALUE = 5000  # MLflow keeps params up to 6,000 characters and tags up to 8,000: stay under both
# PublishResult has 60 s and its own work comes first: each call waits at most 5 s, and the record gives up once 25 s
# are spent (the outcome stands; tracking_error says so).
TIMEOUT_SECONDS = 5
BUDGET_SECONDS = 25.0

Signer = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]


class TrackerUnavailable(PromotionError):
    """The tracking server refused or did not answer; the promotion's outcome stands without its record."""


def tracking_uri(catalog: ModelCatalog, stack_uri: str | None) -> str | None:
    """The catalog's tracking server, else the stack's (the `mlflow_tracking_uri` context at deploy)."""
    return (catalog.tracking.mlflow_uri if catalog.tracking else None) or stack_uri


def sigv4_signer(session: Any, region: str) -> Signer:
    """Headers that sign one request for the managed server (botocore's SigV4, with the function's credentials)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(session.get_credentials().get_frozen_credentials(), SIGNING_NAME, region).add_auth(request)
        return dict(request.headers.items())

    return sign


class MlflowRest:
    """The few calls of MLflow's REST API (2.0) a promotion record needs."""

    def __init__(
        self,
        base_url: str,
        signer: Signer | None = None,
        timeout: float = TIMEOUT_SECONDS,
        budget_s: float = BUDGET_SECONDS,
    ) -> None:
        self.base_url, self.signer, self.timeout = base_url.rstrip("/"), signer, timeout
        self.deadline = time.monotonic() + budget_s

    @classmethod
    def connect(cls, uri: str, sagemaker: Any = None, session: Any = None) -> MlflowRest:
        if uri.startswith(MANAGED_PREFIX):
            name = uri.rsplit("/", 1)[-1]
            server = sagemaker.describe_mlflow_tracking_server(TrackingServerName=name)
            url = str(server["TrackingServerUrl"])
            return cls(url, sigv4_signer(session, uri.split(":")[3]))
        if not uri.startswith(("http://", "https://")):
            raise TrackerUnavailable(f"tracking URI {uri!r} is neither a managed MLflow ARN nor http(s)://")
        return cls(uri)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None, **query: str) -> dict[str, Any]:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TrackerUnavailable(f"MLflow at {self.base_url}: the record's time budget ran out before {path}")
        url = f"{self.base_url}/api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)  # %20, as SigV4 signs it
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.signer is not None:
            headers = self.signer(method, url, data, headers)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, left)) as reply:
                return dict(json.loads(reply.read() or b"{}"))
        except urllib.error.HTTPError as error:
            answer = error.read().decode(errors="replace")[:500]
            if error.code == 404 and "RESOURCE_DOES_NOT_EXIST" in answer:
                raise LookupError(answer) from None
            raise TrackerUnavailable(f"MLflow {method} {path} answered {error.code}: {answer}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise TrackerUnavailable(f"MLflow at {self.base_url} did not answer {path}: {error}") from None

    def experiment_id(self, name: str) -> str:
        try:
            return str(self.call("GET", "experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"])
        except LookupError:
            return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])


def _text(value: object) -> str:
    return str(value)[:MAX_VALUE]


def promotion_record(state: PromotionState, outcome: Outcome, reason: str, report_uri: str | None) -> dict[str, Any]:
    """Params, metrics and tags of one promotion's run (the toolkit's `promotion.*` tags, and more)."""
    claim = state.claim
    candidate = state.validation.candidate if state.validation else None
    champion = state.validation.champion if state.validation else None
    approval = state.approval
    tags = {
        "promotion.release_id": claim.release_id or "",
        "promotion.model": claim.model or "",
        "promotion.outcome": outcome.value,
        "promotion.reason": reason,
        "promotion.execution": claim.execution_name,
        "promotion.tuning_job": claim.tuning_job_name or "",
        "promotion.tuning_job_arn": claim.tuning_job_arn or "",
        "promotion.approval.decision": (approval.decision if approval else "") or "",
        "promotion.approval.by": (approval.decided_by if approval else "") or "",
        "promotion.approval.identity": (approval.identity if approval else "") or "",
        "promotion.report": report_uri or "",
        **{f"promotion.trigger.{key.removeprefix('promotion:')}": value for key, value in claim.trigger.items()},
    }
    metrics: dict[str, float] = {}
    for name, value in (candidate.metrics if candidate else {}).items():
        metrics[f"challenger.{name}"] = float(value)
    for name, value in (champion.performance if champion else {}).items():
        metrics[f"champion.{name}"] = float(value)
    comparison = state.comparison
    if comparison is not None:
        tags["promotion.comparison.decision"] = comparison.decision or comparison.status
        tags["promotion.comparison.reason"] = comparison.reason
        for field in ("champion_value", "challenger_value", "difference", "ci_low", "ci_high"):
            value = getattr(comparison, field)
            if value is not None:
                metrics[f"comparison.{field}"] = float(value)
    rollout = state.rollout
    for look in rollout.history if rollout else []:
        tags[f"promotion.stage.{look.stage}"] = f"{look.outcome} at {look.challenger_percent:g} % (look {look.look})"
    if state.data_quality is not None:
        tags["promotion.data_quality"] = f"{state.data_quality.decision}: {state.data_quality.reason}"
    params = {name: _text(value) for name, value in (candidate.hyperparameters if candidate else {}).items()}
    return {
        "params": params,
        "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
        "tags": {k: _text(v) for k, v in tags.items()},
    }


def record_promotion(rest: MlflowRest, experiment: str, record: Mapping[str, Any], now: datetime | None = None) -> str:
    """Write the release's run (create it, or update the one a retry finds); its run id."""
    moment = now or datetime.now(UTC)
    millis = int(moment.timestamp() * 1000)
    tags = dict(record["tags"])
    experiment_id = rest.experiment_id(experiment)
    wanted = (
        f"tags.`promotion.release_id` = '{tags['promotion.release_id']}' and "
        f"tags.`promotion.model` = '{tags['promotion.model']}'"
    )
    found = rest.call("POST", "runs/search", {"experiment_ids": [experiment_id], "filter": wanted, "max_results": 1})
    runs = found.get("runs") or []
    if runs:
        run_id = str(runs[0]["info"]["run_id"])
        logged = {p["key"] for p in (runs[0].get("data") or {}).get("params") or []}
        params = {k: v for k, v in record["params"].items() if k not in logged}  # MLflow refuses changing a param
    else:
        name = f"{tags['promotion.model']}/{tags['promotion.release_id']}"
        # The release's tags go with the run's creation: a retry after a timeout between this call and log-batch
        # must find the run by them, not create another.
        identity = {k: tags[k] for k in ("promotion.release_id", "promotion.model")}
        created = rest.call(
            "POST",
            "runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": millis,
                "tags": [{"key": k, "value": v} for k, v in identity.items()],
            },
        )
        run_id = str(created["run"]["info"]["run_id"])
        params = dict(record["params"])
    rest.call(
        "POST",
        "runs/log-batch",
        {
            "run_id": run_id,
            "params": [{"key": k, "value": v} for k, v in sorted(params.items())],
            "metrics": [
                {"key": k, "value": v, "timestamp": millis, "step": 0} for k, v in sorted(record["metrics"].items())
            ],
            "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        },
    )
    rest.call("POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": millis})
    return run_id


def track_promotion(
    state: PromotionState,
    outcome: Outcome,
    reason: str,
    *,
    catalog: ModelCatalog | None,
    stack_uri: str | None,
    report_uri: str | None,
    sagemaker: Any = None,
    session: Any = None,
) -> tuple[str | None, str | None]:
    """(run id, error): the promotion's record written where the catalog (or the stack) says, or why it was not.
    Never raises: the tracker is a view of the outcome, which stands without it."""
    uri = tracking_uri(catalog, stack_uri) if catalog is not None else stack_uri
    if uri is None or not state.claim.model or not state.claim.release_id:
        return None, None
    experiment = catalog.tracking.experiment if catalog is not None and catalog.tracking else "promotions"
    try:
        rest = MlflowRest.connect(uri, sagemaker, session)
        return record_promotion(rest, experiment, promotion_record(state, outcome, reason, report_uri)), None
    except Exception as error:  # the server down or refusing, DescribeMlflowTrackingServer denied, an odd answer
        return None, f"{type(error).__name__}: {error}"[:1000]
