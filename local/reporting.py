"""What one local run reports: `RunResult` (the contract of `python -m local run --json`), the IAM enforcement's
record, and the decision report PublishResult wrote, copied out of the moto bucket so it reads without AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from local.production import ProductionSnapshot
from local.timeline import StateRecord

if TYPE_CHECKING:
    from local.iam.identities import Identities


class IamSummary(BaseModel):
    """What the IAM enforcement saw during one run: whether it was on, the requests it authorized, the denials
    (in AWS's words) and the requests AWS would not surface when denied (the Lambda service's log writes)."""

    enforced: bool
    authorized: int = 0
    denied: list[str] = []
    silent_denials: list[str] = []

    def line(self) -> str:
        if not self.enforced:
            return "IAM: NOT enforced (--no-iam): on AWS every call below is authorized; this run checked none"
        return f"IAM: enforced, {self.authorized} requests authorized, {len(self.denied)} denied"


class RunResult(BaseModel):
    """The end of one local run: the contract of `python -m local run --json` plus what tests want to look at."""

    status: str
    execution_name: str | None
    execution_arn: str | None = None
    states: list[StateRecord] = []
    output: Any = None
    error: str | None = None
    cause: str | None = None
    production_before: ProductionSnapshot | None = None
    production_after: ProductionSnapshot | None = None
    report: dict[str, str] | None = None
    model: str | None = None
    duration_s: float = 0.0
    iam: IamSummary | None = None

    @property
    def outcome(self) -> str | None:
        result = self.output.get("result") if isinstance(self.output, dict) else None
        return result.get("outcome") if isinstance(result, dict) else None

    @property
    def promoted(self) -> bool:
        return self.status == "SUCCEEDED" and self.outcome == "PROMOTED"

    @property
    def exit_code(self) -> int:
        return 0 if self.promoted else 1

    def contract(self) -> dict[str, Any]:
        """The JSON object `python -m local run --json` prints."""
        document: dict[str, Any] = {
            "status": self.status,
            "execution_name": self.execution_name,
            "states": [{"name": s.name, "status": s.status} for s in self.states],
            "output": self.output,
        }
        if self.error is not None or self.cause is not None:
            document.update(error=self.error, cause=self.cause)
        document.update(
            production_before=self.production_before.model_dump() if self.production_before else None,
            production_after=self.production_after.model_dump() if self.production_after else None,
            report=self.report,
            iam=self.iam.model_dump() if self.iam else None,
        )
        return document


class IamRecord:
    """The IAM enforcement's record from a mark on: `mark()` as a run starts, `summary()` as it ends."""

    def __init__(self, iam: Identities | None) -> None:
        self.iam = iam
        self._mark = 0  # index of the first IAM record of the current run

    def mark(self) -> None:
        self._mark = len(self.iam.enforcer.records) if self.iam is not None else 0

    def summary(self) -> IamSummary:
        if self.iam is None:
            return IamSummary(enforced=False)
        records = self.iam.enforcer.records[self._mark :]
        denials = [r for r in records if not r.decision.allowed]
        return IamSummary(
            enforced=True,
            authorized=len(records),
            denied=[r.message for r in denials if r.fatal],
            silent_denials=[r.message for r in denials if not r.fatal],
        )


def final_document(history: list[dict[str, Any]]) -> Any:
    """A failed execution has no output: the document as it entered its last state says what happened."""
    for event in reversed(history):
        details = event.get("stateEnteredEventDetails")
        if details and details.get("input"):
            return json.loads(details["input"])
    return None


def published_report_key(history: list[dict[str, Any]]) -> str | None:
    """The decision report key from PublishResult's own result in the history."""
    publishing = False
    key: str | None = None
    for event in history:
        entered = event.get("stateEnteredEventDetails")
        if entered is not None:
            publishing = entered.get("name") == "PublishResult"
        succeeded = event.get("taskSucceededEventDetails") or event.get("lambdaFunctionSucceededEventDetails")
        if publishing and succeeded and succeeded.get("output"):
            result = json.loads(succeeded["output"])
            if isinstance(result, dict) and result.get("report_key"):
                key = str(result["report_key"])
    return key


def export_report(
    s3: Any, bucket: str, reports_dir: Path, history: list[dict[str, Any]], execution_name: str
) -> dict[str, str] | None:
    """Copy the decision report PublishResult wrote (decision.json, report.html) to `reports_dir/<execution>`, so it
    reads without AWS; None when the execution wrote none."""
    report_key = published_report_key(history)
    if report_key is None:
        return None
    folder = reports_dir / execution_name
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for kind, name in (("json", "decision.json"), ("html", "report.html")):
        key = report_key.rsplit("/", 1)[0] + "/" + name
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        (folder / name).write_bytes(body)
        paths[kind] = str(folder / name)
    return paths
