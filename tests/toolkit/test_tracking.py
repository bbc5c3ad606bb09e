"""Experiment tracking on an embedded MLflow store: runs, parameters, metrics, artifacts, search, promotion records."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion.contract.names import release_id_for
from promotion.contract.state import Approval, Outcome
from promotion_toolkit.tracking import (
    MAX_PARAM_VALUE_LENGTH,
    TRACKING_URI_ENV,
    RunRecord,
    Tracker,
    TrackingError,
    default_store_dir,
    log_promotion,
    promotion_runs,
    resolve_tracking_uri,
    to_millis,
)
from tests.toolkit.conftest import MLFLOW_WARNINGS, fresh_tracker

pytestmark = MLFLOW_WARNINGS
TRACKED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,24}", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
_SEEN_RUN_IDS: set[str] = set()


# ---------------------------------------------------------------------------------------------- where runs go


def test_the_uri_comes_from_the_argument_then_the_environment_then_the_embedded_store(tmp_path: Path) -> None:
    assert resolve_tracking_uri("sqlite:////x/y.db", {TRACKING_URI_ENV: "http://server"}) == "sqlite:////x/y.db"
    arn = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/data-science"
    assert resolve_tracking_uri(None, {TRACKING_URI_ENV: arn}) == arn
    embedded = resolve_tracking_uri(None, {"XDG_DATA_HOME": str(tmp_path)})
    assert embedded == f"sqlite:///{tmp_path.resolve()}/promotion-ml/mlflow.db"
    assert default_store_dir({}) == Path.home() / ".local" / "share" / "promotion-ml"


def test_from_env_is_off_without_a_tracking_uri(tracking_uri: str) -> None:
    assert Tracker.from_env({}) is None
    tracker = Tracker.from_env({TRACKING_URI_ENV: tracking_uri}, experiment="x")
    assert tracker is not None and tracker.uri == tracking_uri and tracker.experiment_name == "x"


def test_artifacts_of_the_embedded_store_stay_beside_the_database(tracker: Tracker, tmp_path: Path) -> None:
    source = tmp_path / "note.txt"
    source.write_text("hello")
    with tracker.start_run("artifacts") as run:
        run.log_artifact(source)
    record = tracker.get_run(run.run_id)
    database = Path(tracker.uri.removeprefix("sqlite:///"))
    assert record.artifact_uri.startswith((database.parent / "artifacts").as_uri())
    assert not (Path.cwd() / "mlruns").exists()


def test_a_failing_block_ends_the_run_failed(tracker: Tracker) -> None:
    with pytest.raises(RuntimeError), tracker.start_run("boom") as run:
        raise RuntimeError("boom")
    assert tracker.get_run(run.run_id).status == "FAILED"


def test_values_mlflow_would_alter_are_refused(tracker: Tracker) -> None:
    with tracker.start_run("refused") as run:
        with pytest.raises(TrackingError, match="6000"):
            run.log_params({"long": "x" * (MAX_PARAM_VALUE_LENGTH + 1)})
        with pytest.raises(TrackingError, match="finite"):
            run.log_metrics({"auc": float("nan")})
        with pytest.raises(TrackingError, match="operator"):
            tracker.search(metric_filter={"auc": ("~", 0.5)})
        with pytest.raises(TrackingError, match="quote"):
            tracker.search(param_filter={"p": 'it\'s "both"'})


def test_nested_runs_are_found_under_their_parent(tracker: Tracker) -> None:
    with tracker.start_run("parent") as parent:
        children = [tracker.start_run(f"child-{i}", parent=parent) for i in range(3)]
        for child in children:
            child.end()
    found = tracker.search(parent_run_id=parent.run_id)
    assert {r.run_id for r in found} == {c.run_id for c in children}
    assert all(r.parent_run_id == parent.run_id for r in found)


# ------------------------------------------------------------------------------------------------ properties

ARTIFACT_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}\.(txt|json|bin)", fullmatch=True)


@TRACKED
@given(
    params=st.dictionaries(KEYS, st.one_of(st.text(max_size=300), st.integers(), FINITE, st.booleans()), max_size=12),
    metrics=st.dictionaries(KEYS, st.one_of(st.none(), FINITE), max_size=12),
    artifacts=st.dictionaries(ARTIFACT_NAMES, st.binary(max_size=2_000), max_size=4),
    folder=st.sampled_from([None, "plots", "reports/2026"]),
)
def test_property_11_logged_params_metrics_and_artifacts_read_back_unchanged(
    tracking_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    artifacts: dict[str, bytes],
    folder: str | None,
) -> None:
    tracker = fresh_tracker(tracking_uri)
    scratch = tmp_path_factory.mktemp("artifacts")
    with tracker.start_run("property-11") as run:
        run.log_params(params)
        run.log_metrics(metrics)
        for name, content in artifacts.items():
            (scratch / name).write_bytes(content)
            run.log_artifact(scratch / name, folder)
    record = tracker.get_run(run.run_id)

    assert dict(record.params) == {key: str(value) for key, value in params.items()}
    assert dict(record.metrics) == {key: value for key, value in metrics.items() if value is not None}
    prefix = f"{folder}/" if folder else ""
    assert tracker.list_artifacts(run.run_id) == sorted(prefix + name for name in artifacts)
    for name, content in artifacts.items():
        downloaded = tracker.download_artifact(run.run_id, prefix + name, scratch / "back")
        assert downloaded.read_bytes() == content
    assert record.status == "FINISHED"


@TRACKED
@given(names=st.lists(st.sampled_from(["trial", "xgboost", "grid-search", None]), min_size=1, max_size=8))
def test_property_12_every_run_starts_with_a_unique_id(tracking_uri: str, names: list[str | None]) -> None:
    tracker = fresh_tracker(tracking_uri)
    parent = tracker.start_run("parent")
    runs = [tracker.start_run(name, parent=parent if i % 2 else None) for i, name in enumerate(names)]
    for run in runs:
        run.end()
    parent.end()
    ids = [parent.run_id, *(run.run_id for run in runs)]

    assert len(set(ids)) == len(ids)  # the same names, started together, still get their own ids
    assert _SEEN_RUN_IDS.isdisjoint(ids)  # and never an id an earlier run (of any experiment) had
    _SEEN_RUN_IDS.update(ids)
    found = {record.run_id: record for record in tracker.search()}
    assert set(found) == set(ids)
    for run, name in zip(runs, names, strict=True):
        assert found[run.run_id].name == run.name
        if name is not None:
            assert run.name == name


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
MOMENTS = st.integers(0, 10 * 24 * 3600 * 1000).map(lambda ms: BASE_TIME + timedelta(milliseconds=ms))
QUERY_MOMENTS = st.integers(0, 10 * 24 * 3600 * 10**6).map(lambda us: BASE_TIME + timedelta(microseconds=us))
AUCS = st.sampled_from([0.5, 0.8, 0.9, 0.91, 0.97, 1.0])
RUN_SPECS = st.fixed_dictionaries(
    {
        "start": MOMENTS,
        "auc": st.one_of(st.none(), AUCS, st.floats(0.0, 1.0)),
        "max_depth": st.sampled_from([3, 6, 10]),
        "algorithm": st.sampled_from(["xgboost", "lightgbm", "it's odd"]),
    }
)


def _matches(spec: dict[str, Any], query: dict[str, Any]) -> bool:
    if query["since"] is not None and not spec["start"] >= query["since"]:
        return False
    if query["until"] is not None and not spec["start"] < query["until"]:
        return False
    if query["metric"] is not None:
        op, value = query["metric"]
        if spec["auc"] is None or not OPERATORS[op](spec["auc"], value):
            return False
    if query["param"] is not None:
        name, value = query["param"]
        if str(spec[name]) != str(value):
            return False
    return True


@TRACKED
@given(
    specs=st.lists(RUN_SPECS, min_size=1, max_size=6),
    query=st.fixed_dictionaries(
        {
            "since": st.one_of(st.none(), QUERY_MOMENTS),
            "until": st.one_of(st.none(), QUERY_MOMENTS),
            "metric": st.one_of(st.none(), st.tuples(st.sampled_from(list(OPERATORS)), AUCS)),
            "param": st.one_of(
                st.none(),
                st.tuples(st.just("max_depth"), st.sampled_from([3, 6, 10])),
                st.tuples(st.just("algorithm"), st.sampled_from(["xgboost", "lightgbm", "it's odd"])),
            ),
        }
    ),
)
def test_property_13_search_by_date_metric_and_hyperparameter_finds_exactly_the_matching_runs(
    tracking_uri: str, specs: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    tracker = fresh_tracker(tracking_uri)
    expected: set[str] = set()
    for index, spec in enumerate(specs):
        with tracker.start_run(
            f"run-{index}",
            start_time=spec["start"],
            params={"max_depth": spec["max_depth"], "algorithm": spec["algorithm"]},
            metrics={"validation:auc": spec["auc"]},
        ) as run:
            pass
        if _matches(spec, query):
            expected.add(run.run_id)

    found = tracker.search(
        since=query["since"],
        until=query["until"],
        metric_filter={"validation:auc": query["metric"]} if query["metric"] else None,
        param_filter=dict([query["param"]]) if query["param"] else None,
    )
    assert {record.run_id for record in found} == expected
    starts = [record.start_time for record in found]
    assert starts == sorted(starts, reverse=True)  # newest first


@settings(max_examples=100, deadline=None)
# From year 2: the check's own `start - 1 ms` cannot be computed for datetime.min (no run is that old).
@given(moment=st.datetimes(min_value=datetime(2, 1, 1), timezones=st.just(UTC)), naive=st.booleans())
def test_millisecond_bounds_are_exact(moment: datetime, naive: bool) -> None:
    millis = to_millis(moment.replace(tzinfo=None) if naive else moment)
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    assert start >= moment > start - timedelta(milliseconds=1)


# ------------------------------------------------------------------------------------- promotion (property 4)

APPROVALS = st.one_of(
    st.none(),
    st.just("alice@example.com"),
    st.builds(
        Approval,
        decision=st.sampled_from(["approve", "reject", "expired"]),
        decided_by=st.sampled_from(["alice@example.com", "bob@example.com", None]),
        comment=st.text(max_size=80),
        decided_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    ),
)


@TRACKED
@given(
    model=st.sampled_from(["fraud-detection", "churn"]),
    job=st.from_regex(r"[a-z][a-z0-9-]{3,20}", fullmatch=True),
    when=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    approval=APPROVALS,
    outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=2),
    auc=st.floats(0.5, 1.0),
)
def test_property_4_promotion_event_logging_tracker_side(
    tracking_uri: str,
    model: str,
    job: str,
    when: datetime,
    approval: Approval | str | None,
    outcomes: list[Outcome],
    auc: float,
) -> None:
    """Every promotion decision is one run naming its release, model, approval and outcome; a retried
    PublishResult updates that run instead of adding one."""
    tracker = fresh_tracker(tracking_uri)
    release_id = release_id_for(f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{job}", when)
    run_ids = {
        log_promotion(
            release_id,
            model,
            approval,
            outcome,
            tracker=tracker,
            reason=f"outcome {outcome}",
            hyperparameters={"eta": 0.1, "max_depth": 6},
            metrics={"validation:auc": auc},
            recorded_at=when,
        )
        for outcome in outcomes
    }
    assert len(run_ids) == 1 and None not in run_ids
    (record,) = promotion_runs(tracker, model=model, release_id=release_id)
    assert record.run_id in run_ids
    assert record.tags["promotion.release_id"] == release_id
    assert record.tags["promotion.model"] == model
    assert record.tags["promotion.outcome"] == outcomes[-1].value
    expected_by = approval if isinstance(approval, str) else (approval.decided_by if approval else None)
    assert record.tags["promotion.approval.by"] == (expected_by or "")
    assert record.params == {"eta": "0.1", "max_depth": "6"}
    assert record.metrics["validation:auc"] == auc
    document = tracker.read_json(record.run_id, "promotion.json")
    assert document["release_id"] == release_id and document["outcome"] == outcomes[-1].value
    assert record.start_time == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=to_millis(when))


def test_log_promotion_does_nothing_without_a_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    assert log_promotion("20261120-140541-abc123", "fraud-detection", None, Outcome.REJECTED) is None


def test_log_promotion_uses_the_configured_tracking_uri(monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    monkeypatch.setenv(TRACKING_URI_ENV, tracking_uri)
    release = f"20261120-140541-{datetime.now(UTC).strftime('%f')}"
    run_id = log_promotion(release, "fraud-detection", {"decision": "approve", "decided_by": "bob"}, "PROMOTED")
    records: list[RunRecord] = promotion_runs(Tracker(experiment="promotions"), release_id=release)
    assert [r.run_id for r in records] == [run_id]
    assert records[0].tags["promotion.approval.decision"] == "approve"
