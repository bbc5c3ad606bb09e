"""Experiment tracking on MLflow: runs with parameters, metrics and artifacts, searched by date, metric and parameter.

Where runs go (the tracking URI), first match wins:

1. the ``uri`` given to :class:`Tracker`;
2. ``MLFLOW_TRACKING_URI`` (MLflow's own variable): in AWS, the ARN of a SageMaker managed MLflow tracking server
   (``arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>``, served by the ``sagemaker-mlflow``
   plugin that the ``sagemaker`` SDK installs) or an ``http(s)://`` server; locally any MLflow URI;
3. the embedded default: a SQLite store, no server, at ``~/.local/share/promotion-ml/mlflow.db`` (or under
   ``$XDG_DATA_HOME``), with artifacts in an ``artifacts/`` folder beside it.

SQLite rather than MLflow's file store: MLflow 3 keeps the file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true`` is set (a ``file:`` URI still works with that variable). Creating a new SQLite
store runs MLflow's schema migrations once (about 2 s); opening an existing one takes well under a second.

MLflow is imported on first use, so importing this module (or calling :func:`log_promotion` with no tracker
configured) costs nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# The store folder, this experiment and the run tags the toolkit writes (`promotion_ml.kind`, `.trial`, ...) keep
# the names from before the toolkit left jobs/promotion_ml: stores already written still open and match.
DEFAULT_EXPERIMENT = "promotion-ml"
PROMOTIONS_EXPERIMENT = "promotions"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests child runs under their parent
RUN_NAME_TAG = "mlflow.runName"
MAX_PARAM_VALUE_LENGTH = 6000  # MLflow truncates longer values silently; refuse them instead
MAX_TAG_VALUE_LENGTH = 8000
_BATCH = 100  # MLflow accepts at most 100 params or tags per batch call
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_METRIC_OPERATORS = ("<", "<=", ">", ">=", "=", "!=")
_PARAM_OPERATORS = ("=", "!=", "LIKE", "ILIKE")
RunStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


class TrackingError(ValueError):
    """Something this module refuses to send to MLflow (a truncated value, a non-finite metric, a bad filter)."""


def default_store_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder of the embedded SQLite store: ``$XDG_DATA_HOME/promotion-ml`` or ``~/.local/share/promotion-ml``."""
    env = os.environ if environ is None else environ
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return base / "promotion-ml"


def sqlite_uri(path: str | Path) -> str:
    """The MLflow tracking URI of a SQLite store file."""
    return f"sqlite:///{Path(path).resolve()}"


def resolve_tracking_uri(uri: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else the embedded SQLite store (see the module docstring)."""
    env = os.environ if environ is None else environ
    chosen = uri or env.get(TRACKING_URI_ENV)
    if chosen:
        return chosen
    return sqlite_uri(default_store_dir(env) / "mlflow.db")


def _local_artifact_root(uri: str) -> Path | None:
    """Artifacts of a SQLite store live beside the database (MLflow would otherwise put them in ./mlruns)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return database.parent / "artifacts"


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded up (naive datetimes are UTC).

    Rounding up keeps ``since``/``until`` exact: a run starting at millisecond m starts at or after ``moment``
    exactly when m >= ceil(moment in ms).
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    microseconds = (aware - _EPOCH) // timedelta(microseconds=1)
    return -(-microseconds // 1000)


def from_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


def _quiet_store_logs() -> None:
    # MLflow's SQLite store logs its schema migrations at INFO on every new store; notebooks show them as noise.
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _check_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise TrackingError(f"{what} names must be non-empty strings, got {key!r}")
    if "`" in key:
        raise TrackingError(f"{what} name {key!r} contains a backtick, which MLflow filters cannot quote")
    return key


def _param_value(key: str, value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise TrackingError(f"param {key!r} is {len(text)} characters long; MLflow keeps {MAX_PARAM_VALUE_LENGTH}")
    return text


def _metric_value(key: str, value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise TrackingError(f"metric {key!r} is {number}; only finite metrics are logged")
    return number


def _quote(value: str) -> str:
    """A string literal for an MLflow filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise TrackingError(f"cannot filter on {value!r}: it contains both quote characters")


@dataclass(frozen=True)
class RunRecord:
    """One run as the store has it: parameters as strings, metrics at their latest value, times in UTC."""

    run_id: str
    name: str
    experiment_id: str
    status: str
    start_time: datetime
    end_time: datetime | None
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    artifact_uri: str

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(PARENT_RUN_TAG)

    @classmethod
    def from_mlflow(cls, run: Run) -> RunRecord:
        info, data = run.info, run.data
        return cls(
            run_id=info.run_id,
            name=info.run_name or "",
            experiment_id=info.experiment_id,
            status=info.status,
            start_time=from_millis(info.start_time),
            end_time=from_millis(info.end_time) if info.end_time else None,
            params=dict(data.params),
            metrics={key: float(value) for key, value in data.metrics.items()},
            tags=dict(data.tags),
            artifact_uri=info.artifact_uri or "",
        )


@dataclass
class TrackedRun:
    """An open run: log to it, then end it (a ``with`` block ends it FINISHED, or FAILED on an exception)."""

    tracker: Tracker
    run_id: str
    name: str
    _ended: bool = field(default=False, repr=False)

    @property
    def _client(self) -> MlflowClient:
        return self.tracker.client

    def log(
        self,
        *,
        params: Mapping[str, object] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, object] | None = None,
        step: int = 0,
    ) -> None:
        """Parameters, metrics and tags in as few store calls as MLflow's batch limits allow (one, usually).

        Parameters are stored as strings (lists and dicts as JSON) and cannot change once logged; ``None`` metrics
        (a metric undefined for the data) are skipped, never logged as NaN.
        """
        from mlflow.entities import Metric, Param, RunTag

        timestamp = to_millis(datetime.now(UTC))
        param_items = [Param(_check_key(k, "param"), _param_value(k, v)) for k, v in (params or {}).items()]
        metric_items = [
            Metric(_check_key(k, "metric"), _metric_value(k, v), timestamp, step)
            for k, v in (metrics or {}).items()
            if v is not None
        ]
        tag_items = [RunTag(_check_key(k, "tag"), str(v)[:MAX_TAG_VALUE_LENGTH]) for k, v in (tags or {}).items()]
        while param_items or metric_items or tag_items:
            # MLflow takes at most 100 params, 100 tags and 1000 metrics (1000 entities in all) per batch.
            batch_params, param_items = param_items[:_BATCH], param_items[_BATCH:]
            batch_tags, tag_items = tag_items[:_BATCH], tag_items[_BATCH:]
            room = 1000 - len(batch_params) - len(batch_tags)
            batch_metrics, metric_items = metric_items[:room], metric_items[room:]
            self._client.log_batch(self.run_id, metrics=batch_metrics, params=batch_params, tags=batch_tags)

    def log_params(self, params: Mapping[str, object]) -> None:
        """Parameters, each as a string (lists and dicts as JSON). A parameter cannot change once logged."""
        self.log(params=params)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        """Metrics at ``step``; ``None`` values (a metric undefined for the data) are skipped, never logged as NaN."""
        self.log(metrics=metrics, step=step)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self.log(tags=tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a local file (or a folder's files) into the run's artifacts, under ``artifact_path`` if given."""
        source = Path(path)
        if source.is_dir():
            self._client.log_artifacts(self.run_id, str(source), artifact_path)
        elif source.is_file():
            self._client.log_artifact(self.run_id, str(source), artifact_path)
        else:
            raise FileNotFoundError(f"no file or folder at {source}")

    def log_json(self, document: object, artifact_file: str) -> None:
        """Store ``document`` as a JSON artifact (strict JSON: no NaN)."""
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / Path(artifact_file).name
            target.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
            parent = str(Path(artifact_file).parent)
            self._client.log_artifact(self.run_id, str(target), None if parent == "." else parent)

    def end(self, status: RunStatus = "FINISHED") -> None:
        if not self._ended:
            self._client.set_terminated(self.run_id, status=status)
            self._ended = True

    def record(self) -> RunRecord:
        return self.tracker.get_run(self.run_id)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.end("FINISHED" if exc_type is None else "FAILED")


MetricCondition = float | tuple[str, float]
ParamCondition = object | tuple[str, object]


class Tracker:
    """One MLflow experiment in one tracking store.

    ``Tracker()`` uses ``MLFLOW_TRACKING_URI`` or the embedded SQLite store; ``Tracker("sqlite:///path/mlflow.db")``,
    ``Tracker("arn:aws:sagemaker:...:mlflow-tracking-server/name")`` or ``Tracker("http://...")`` name one.
    """

    def __init__(self, uri: str | None = None, *, experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.uri = resolve_tracking_uri(uri)
        self.experiment_name = experiment
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, experiment: str = DEFAULT_EXPERIMENT
    ) -> Tracker | None:
        """A tracker on ``MLFLOW_TRACKING_URI``, or None when it is not set (tracking is then off)."""
        env = os.environ if environ is None else environ
        uri = env.get(TRACKING_URI_ENV)
        return cls(uri, experiment=experiment) if uri else None

    def with_experiment(self, experiment: str) -> Tracker:
        """The same store, another experiment (sharing this tracker's client)."""
        other = Tracker(self.uri, experiment=experiment)
        other._client = self._client
        return other

    def __repr__(self) -> str:
        return f"Tracker(uri={self.uri!r}, experiment={self.experiment_name!r})"

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            _quiet_store_logs()
            # A progress bar per downloaded artifact is noise in notebooks and logs, and MLflow's usage telemetry
            # would send events from the data scientists' machines to a third party; an explicit setting wins.
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            artifact_root = _local_artifact_root(self.uri)
            if artifact_root is not None:
                artifact_root.mkdir(parents=True, exist_ok=True)
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        """The experiment's id, creating the experiment on first use."""
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            existing = self.client.get_experiment_by_name(self.experiment_name)
            if existing is not None:
                self._experiment_id = existing.experiment_id
            else:
                root = _local_artifact_root(self.uri)
                location = (root / self.experiment_name).as_uri() if root is not None else None
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment_name, artifact_location=location
                    )
                except MlflowException:  # another process created it in between
                    found = self.client.get_experiment_by_name(self.experiment_name)
                    if found is None:
                        raise
                    self._experiment_id = found.experiment_id
        return self._experiment_id

    def start_run(
        self,
        name: str | None = None,
        *,
        params: Mapping[str, object] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, object] | None = None,
        parent: TrackedRun | str | None = None,
        start_time: datetime | None = None,
    ) -> TrackedRun:
        """Open a run with a new unique id (MLflow's UUID), logging ``params`` and ``metrics`` at once; ``parent``
        nests it under another run."""
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent is not None:
            all_tags[PARENT_RUN_TAG] = parent if isinstance(parent, str) else parent.run_id
        run = self.client.create_run(
            self.experiment_id,
            start_time=to_millis(start_time) if start_time is not None else None,
            tags=all_tags,
            run_name=name,
        )
        tracked = TrackedRun(self, run.info.run_id, run.info.run_name or "")
        if params or metrics:
            tracked.log(params=params, metrics=metrics)
        return tracked

    def get_run(self, run_id: str) -> RunRecord:
        return RunRecord.from_mlflow(self.client.get_run(run_id))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """Every artifact file of a run, as paths relative to its artifact root, sorted."""
        found: list[str] = []

        def walk(folder: str | None) -> None:
            for item in self.client.list_artifacts(run_id, folder):
                if item.is_dir:
                    walk(item.path)
                else:
                    found.append(item.path)

        walk(path)
        return sorted(found)

    def download_artifact(self, run_id: str, path: str, destination: str | Path) -> Path:
        """Copy one artifact (file or folder) to ``destination`` and return its local path."""
        Path(destination).mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, path, str(destination)))

    def read_json(self, run_id: str, path: str) -> Any:
        with tempfile.TemporaryDirectory() as folder:
            return json.loads(self.download_artifact(run_id, path, folder).read_text(encoding="utf-8"))

    def filter_string(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        metric_filter: Mapping[str, MetricCondition] | None = None,
        param_filter: Mapping[str, ParamCondition] | None = None,
        tag_filter: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        status: RunStatus | None = None,
    ) -> str:
        """The MLflow filter string :meth:`search` sends (every condition ANDed)."""
        clauses: list[str] = []
        if since is not None:
            clauses.append(f"attributes.start_time >= {to_millis(since)}")
        if until is not None:
            clauses.append(f"attributes.start_time < {to_millis(until)}")
        for metric, metric_condition in (metric_filter or {}).items():
            operator, value = metric_condition if isinstance(metric_condition, tuple) else ("=", metric_condition)
            if operator not in _METRIC_OPERATORS:
                raise TrackingError(f"metric operator {operator!r} is not one of {', '.join(_METRIC_OPERATORS)}")
            number = _metric_value(metric, value)
            clauses.append(f"metrics.`{_check_key(metric, 'metric')}` {operator} {number!r}")
        for param, param_condition in (param_filter or {}).items():
            if (
                isinstance(param_condition, tuple)
                and len(param_condition) == 2
                and param_condition[0] in _PARAM_OPERATORS
            ):
                param_operator, raw = str(param_condition[0]), param_condition[1]
            else:
                param_operator, raw = "=", param_condition
            text = _quote(_param_value(param, raw))
            clauses.append(f"params.`{_check_key(param, 'param')}` {param_operator} {text}")
        tags = dict(tag_filter or {})
        if parent_run_id is not None:
            tags[PARENT_RUN_TAG] = parent_run_id
        for tag, tag_value in tags.items():
            clauses.append(f"tags.`{_check_key(tag, 'tag')}` = {_quote(tag_value)}")
        if status is not None:
            clauses.append(f"attributes.status = '{status}'")
        return " and ".join(clauses)

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        metric_filter: Mapping[str, MetricCondition] | None = None,
        param_filter: Mapping[str, ParamCondition] | None = None,
        tag_filter: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        status: RunStatus | None = None,
        order_by: Sequence[str] = ("attributes.start_time DESC",),
        max_results: int | None = None,
    ) -> list[RunRecord]:
        """Runs of this experiment matching every filter, newest first by default.

        ``since`` (inclusive) and ``until`` (exclusive) bound the start time. ``metric_filter`` maps a metric to
        ``(operator, value)`` (``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``; a bare number means ``=``) and compares
        the metric's latest value; ``param_filter`` maps a parameter to a value (equality, compared as the string
        it was logged as) or ``(operator, value)`` with ``=``, ``!=``, ``LIKE`` or ``ILIKE``. A run that lacks a
        filtered metric or parameter never matches (not even ``!=``).
        """
        filter_string = self.filter_string(
            since=since,
            until=until,
            metric_filter=metric_filter,
            param_filter=param_filter,
            tag_filter=tag_filter,
            parent_run_id=parent_run_id,
            status=status,
        )
        return list(self._paged_search(filter_string, list(order_by), max_results))

    def _paged_search(self, filter_string: str, order_by: list[str], max_results: int | None) -> Iterator[RunRecord]:
        token: str | None = None
        remaining = max_results
        while remaining is None or remaining > 0:
            page_size = 1000 if remaining is None else min(1000, remaining)
            page = self.client.search_runs(
                [self.experiment_id], filter_string, max_results=page_size, order_by=order_by, page_token=token
            )
            for run in page:
                yield RunRecord.from_mlflow(run)
            if remaining is not None:
                remaining -= len(page)
            token = page.token
            if not token:
                return


# ------------------------------------------------------------------------------------------ promotion records


def _approval_fields(approval: object) -> dict[str, str | None]:
    """Who decided what, from an approval model (``promotion.contract.state.Approval``), a mapping, a name or None."""
    if approval is None:
        return {"decision": None, "decided_by": None, "comment": None, "decided_at": None}
    if isinstance(approval, str):
        return {"decision": "approve", "decided_by": approval, "comment": None, "decided_at": None}
    source: Mapping[str, Any]
    if isinstance(approval, Mapping):
        source = approval
    elif hasattr(approval, "model_dump"):
        source = approval.model_dump(mode="json")
    else:
        source = vars(approval)
    decided_at = source.get("decided_at")
    return {
        "decision": None if source.get("decision") is None else str(source["decision"]),
        "decided_by": None if source.get("decided_by") is None else str(source["decided_by"]),
        "comment": None if source.get("comment") is None else str(source["comment"]),
        "decided_at": decided_at.isoformat() if isinstance(decided_at, datetime) else decided_at,
    }


def log_promotion(
    release_id: str,
    model: str,
    approval: object,
    outcome: object,
    *,
    tracker: Tracker | None = None,
    reason: str = "",
    hyperparameters: Mapping[str, object] | None = None,
    metrics: Mapping[str, float | None] | None = None,
    tuning_job_arn: str | None = None,
    recorded_at: datetime | None = None,
) -> str | None:
    """Record one promotion decision as a run in the ``promotions`` experiment; returns its run id.

    Does nothing and returns None when no tracker is given and ``MLFLOW_TRACKING_URI`` is not set, so the
    promotion flow can call it unconditionally. One run per (model, release id): calling again for the same
    release (a retried PublishResult) updates that run's outcome, approval and record instead of adding a run.
    ``approval`` is an approval model, a mapping (decision, decided_by, comment, decided_at), an approver's name
    or None; ``outcome`` a string or a string enum (``Outcome.PROMOTED``).
    """
    active = tracker if tracker is not None else Tracker.from_env(experiment=PROMOTIONS_EXPERIMENT)
    if active is None:
        return None
    outcome_text = str(getattr(outcome, "value", outcome))
    approval_fields = _approval_fields(approval)
    when = recorded_at or datetime.now(UTC)
    tags = {
        "promotion.release_id": release_id,
        "promotion.model": model,
        "promotion.outcome": outcome_text,
        "promotion.approval.decision": approval_fields["decision"] or "",
        "promotion.approval.by": approval_fields["decided_by"] or "",
        "promotion.reason": reason,
        "promotion.recorded_at": when.isoformat(),
    }
    if tuning_job_arn:
        tags["promotion.tuning_job_arn"] = tuning_job_arn
    existing = active.search(tag_filter={"promotion.release_id": release_id, "promotion.model": model}, max_results=1)
    if existing:
        run = TrackedRun(active, existing[0].run_id, existing[0].name)
        logged = existing[0].params
        new_params = {k: v for k, v in (hyperparameters or {}).items() if k not in logged}
    else:
        run = active.start_run(f"{model}/{release_id}", start_time=when)
        new_params = dict(hyperparameters or {})
    run.log(params=new_params, metrics=metrics, tags=tags)
    record = {
        "release_id": release_id,
        "model": model,
        "outcome": outcome_text,
        "reason": reason,
        "approval": approval_fields,
        "hyperparameters": {k: str(v) for k, v in (hyperparameters or {}).items()},
        "metrics": {k: v for k, v in (metrics or {}).items() if v is not None},
        "tuning_job_arn": tuning_job_arn,
        "recorded_at": when.isoformat(),
    }
    run.log_json(record, "promotion.json")
    run.end("FINISHED")
    return run.run_id


def promotion_runs(tracker: Tracker, *, model: str | None = None, release_id: str | None = None) -> list[RunRecord]:
    """Promotion runs, newest first, optionally for one model and/or one release."""
    tags = {"promotion.model": model, "promotion.release_id": release_id}
    return tracker.search(tag_filter={k: v for k, v in tags.items() if v is not None})
