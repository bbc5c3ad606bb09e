"""The execution timeline: which states ran, how each ended and how long it took, from GetExecutionHistory.

The console-like history moto records (StateEntered/StateExited, TaskFailed, LambdaFunctionFailed, ...) is folded
into one record per state visit, in order. A failure followed by a retry of the same state counts as running
again; a failure caught by a Catch leaves the visit FAILED (the flow continues at the catcher's Next).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

StateStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]

_FAILED_EVENTS = {
    "TaskFailed",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "ExecutionFailed",
    "MapStateFailed",
    "ParallelStateFailed",
}
_TIMED_OUT_EVENTS = {"TaskTimedOut", "LambdaFunctionTimedOut", "ExecutionTimedOut"}
_RETRY_EVENTS = {"TaskScheduled", "LambdaFunctionScheduled"}


class StateRecord(BaseModel):
    """One visit of one state."""

    name: str
    type: str
    status: StateStatus
    entered: datetime
    exited: datetime | None = None

    @property
    def duration_ms(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds() * 1000


def states_from_history(events: list[dict[str, Any]], execution_status: str) -> list[StateRecord]:
    """One record per state visit, in the order the states were entered."""
    records: list[StateRecord] = []
    open_visits: list[StateRecord] = []
    for event in events:
        event_type: str = event["type"]
        when: datetime = event["timestamp"]
        if event_type.endswith("StateEntered"):
            record = StateRecord(
                name=event["stateEnteredEventDetails"]["name"],
                type=event_type.removesuffix("StateEntered"),
                status="RUNNING",
                entered=when,
            )
            records.append(record)
            open_visits.append(record)
        elif event_type.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            visit = next((r for r in reversed(open_visits) if r.name == name), None)
            if visit is not None:
                if visit.status == "RUNNING":
                    visit.status = "SUCCEEDED"
                visit.exited = when
                open_visits.remove(visit)
        elif event_type == "ExecutionAborted" and records and records[-1].status != "SUCCEEDED":
            # StopExecution interrupts the state in progress (moto may log it as timed out on the way out).
            records[-1].status = "ABORTED"
        elif open_visits:
            current = open_visits[-1]
            if event_type in _FAILED_EVENTS:
                current.status = "FAILED"
                current.exited = when
            elif event_type in _TIMED_OUT_EVENTS:
                current.status = "TIMED_OUT"
                current.exited = when
            elif event_type in _RETRY_EVENTS:
                current.status = "RUNNING"
                current.exited = None
    end_status: StateStatus = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "TIMED_OUT": "TIMED_OUT"}.get(
        execution_status, "ABORTED"
    )  # type: ignore[assignment]
    for record in open_visits:
        if record.status == "RUNNING" and execution_status != "RUNNING":
            record.status = "SUCCEEDED" if record.type == "Succeed" else end_status
    return records
