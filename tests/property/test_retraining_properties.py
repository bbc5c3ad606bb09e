"""Drift's retraining, over any sequence of drift verdicts and tuning job ends: a retraining starts exactly when no
retraining of the model is open and the last one started at least min_interval_hours before; a verdict repeated
for the same window adopts its own job. Never two open retrainings, never two starts within the interval."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from moto.sagemaker.models import sagemaker_backends

from promotion.monitoring.drift import DriftVerdict
from promotion.monitoring.retraining import start_retraining
from tests.conftest import REGION, TABLE
from tests.property.test_flow_properties import WITH_AWS, clear_table
from tests.property.test_seed_properties import CATALOG

T0 = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/tuning"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs:1"
# ("drift", hours since the previous step) or ("end", 0): the last retraining's tuning job ends
STEPS = st.lists(
    st.one_of(st.tuples(st.just("drift"), st.integers(0, 30)), st.tuples(st.just("end"), st.just(0))),
    min_size=1,
    max_size=10,
)


def verdict(now: datetime) -> DriftVerdict:
    window_end = now.replace(minute=0, second=0, microsecond=0)
    return DriftVerdict(
        model=CATALOG.id,
        processing_job_name=f"{CATALOG.id}-drift-{window_end:%y%m%d%H}",
        status="DRIFT",
        reason="amount drifted",
        psi={"amount": 3.0},
        drifted=["amount"],
        window_end=window_end,
    )


@WITH_AWS
@given(steps=STEPS)
def test_drift_starts_one_retraining_when_none_is_open_and_the_interval_has_passed(
    aws: dict[str, Any], steps: list[tuple[str, int]]
) -> None:
    clear_table(aws)
    jobs = sagemaker_backends["123456789012"][REGION].hyper_parameter_tuning_jobs
    jobs.clear()
    assert CATALOG.monitoring is not None and CATALOG.monitoring.retraining is not None
    interval = timedelta(hours=CATALOG.monitoring.retraining.min_interval_hours)
    now = T0
    last: tuple[str, datetime] | None = None  # the last retraining started: its job and when
    open_job = False
    started: list[datetime] = []
    for kind, hours in steps:
        if kind == "end":
            if last is not None:
                jobs[last[0]].hyper_parameter_tuning_job_status = "Completed"
                open_job = False
            continue
        now += timedelta(hours=hours)
        drift = verdict(now)
        same_window = last is not None and drift.window_end == last[1].replace(minute=0, second=0, microsecond=0)
        expected = same_window or last is None or (not open_job and now - last[1] >= interval)
        result = start_retraining(
            aws["sagemaker"], aws["dynamodb"], CATALOG, drift, table=TABLE, role_arn=ROLE, image_uri=IMAGE, now=now
        )
        assert (result.status == "STARTED") == expected, (result, last, open_job, now)
        if expected and not same_window:
            assert result.tuning_job_name is not None
            jobs[result.tuning_job_name].hyper_parameter_tuning_job_status = "InProgress"  # moto ends jobs at once
            last, open_job = (result.tuning_job_name, now), True
            started.append(now)
    open_jobs = [job for job in jobs.values() if job.hyper_parameter_tuning_job_status == "InProgress"]
    assert len(open_jobs) <= 1
    assert len(jobs) == len(started)  # one tuning job per start, none for a held-back or repeated verdict
    assert all(later - earlier >= interval for earlier, later in itertools.pairwise(started))
