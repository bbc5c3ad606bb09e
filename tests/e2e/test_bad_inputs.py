"""The bad-input corpus (tests/data/bad_inputs, format in its README): every case ends with its specific error, in
the place the case says, and production is never written.

Runtime cases run on a fresh LocalRuntime with a `FaultInjector` that injects nothing and records every AWS call the
handlers make: no production write may be attempted at all, and the production snapshot is the same before and
after. Catalog cases run `python app.py` with PROMOTION_MODELS_DIR at a folder holding the case's catalogs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.faults import FaultInjector
from local.production import ProductionSnapshot
from local.runtime import Decision, LocalRuntime
from local.timeline import states_from_history
from tests.conftest import EVENTS, ROOT
from tests.e2e.conftest import event, world
from tests.e2e.test_flood import wait_for

CORPUS = ROOT / "tests" / "data" / "bad_inputs"
MODEL = "fraud-detection"
JOB = "fraud-xgb-tuning-0042"
GENUINE_REJECTION = Decision.reject("Bob Chen", "ending the bad-input case")


def load_cases() -> dict[str, dict[str, Any]]:
    return {
        f"{path.parent.name}/{path.stem}": json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(CORPUS.glob("*/*.json"))
    }


CASES = load_cases()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def fragments(expect: dict[str, Any]) -> list[str]:
    fragment = expect.get("fragment", [])
    return [fragment] if isinstance(fragment, str) else list(fragment)


def case_event(case: dict[str, Any]) -> dict[str, Any]:
    document = merge_patch(event(), case.get("event", {}))
    if "event_replace_detail" in case:
        document["detail"] = case["event_replace_detail"]
    if case.get("pad_detail_bytes"):
        document["detail"]["Padding"] = "x" * int(case["pad_detail_bytes"])
    return document


def case_world(case: dict[str, Any]) -> dict[str, Any]:
    document = merge_patch(world(), case.get("world", {}))
    for training in document["DescribeTrainingJob"].values():
        for metric in training.get("FinalMetricDataList") or []:
            if isinstance(metric.get("Value"), str):
                metric["Value"] = float(metric["Value"])
    return document


def params(*wheres: str) -> list[Any]:
    return [
        pytest.param(
            name, id=name, marks=[pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
        )
        for name, case in CASES.items()
        if case["expect"]["where"] in wheres
    ]


# -- the corpus itself ---------------------------------------------------------------------------------------
def test_the_corpus_has_at_least_40_cases_covering_every_category() -> None:
    by_category = Counter(case["category"] for case in CASES.values())
    by_where = Counter(case["expect"]["where"] for case in CASES.values())
    print(f"bad inputs: {len(CASES)} cases; by category {dict(sorted(by_category.items()))}; by where {dict(by_where)}")
    assert len(CASES) >= 40
    assert set(by_category) >= {"event-rule", "event-claim", "world", "metrics", "hyperparameters", "approval"}
    assert set(by_category) >= {"catalog", "payload"}
    for name, case in CASES.items():
        assert case["category"] == name.split("/")[0], name
        assert case["description"], name
        where = case["expect"]["where"]
        assert where in {"not_started", "eventbridge_refused", "dead_lettered", "claim", "validation"} | {
            "approval_refused",
            "not_delivered",
            "synth",
        }, name
        if where not in ("not_started", "not_delivered"):
            assert fragments(case["expect"]), f"{name}: no expected error fragment"


# -- running a case on the runtime ---------------------------------------------------------------------------
def assert_nothing_written(injector: FaultInjector, before: ProductionSnapshot, after: ProductionSnapshot) -> None:
    attempted = injector.production_writes(succeeded_only=False)
    assert attempted == [], [f"{c.state}: {c.service}:{c.operation} {c.resource}" for c in attempted]
    assert after == before


def started_runtime(case: dict[str, Any], tmp_path: Path, injector: FaultInjector) -> LocalRuntime:
    return LocalRuntime(
        ROOT, synth=False, world=case_world(case), reports_dir=tmp_path / "reports", faults=injector
    ).start()


@pytest.mark.parametrize("name", params("not_started", "eventbridge_refused", "dead_lettered", "claim", "validation"))
def test_a_bad_event_or_world_ends_with_its_error_and_writes_nothing(
    name: str, synthesized: Path, tmp_path: Path
) -> None:
    case, expect = CASES[name], CASES[name]["expect"]
    injector = FaultInjector()
    runtime = started_runtime(case, tmp_path, injector)
    try:
        runtime.seed_champion(MODEL)
        before = runtime.production_snapshot(MODEL)
        outcome = send(runtime, case)
        if expect["where"] in ("not_started", "eventbridge_refused", "dead_lettered"):
            for arn in outcome.get("executions", []):  # none should have started: end one that did first
                end_by_rejecting(runtime, arn)
        if expect["where"] == "not_started":
            assert outcome == {"executions": []}, outcome
            assert runtime.dead_letters == []
        elif expect["where"] == "dead_lettered":
            assert outcome == {"executions": []}, outcome
            check_dead_letter(runtime, expect)
        elif expect["where"] == "eventbridge_refused":
            assert "refused" in outcome, outcome
            for fragment in fragments(expect):
                assert fragment in outcome["refused"]
        else:
            (arn,) = outcome["executions"]
            described = wait_for(runtime, [arn], timeout_s=120)[arn]  # approved only if not rejected before
            check_rejection(runtime, arn, described, expect)
        runtime.drain()
        assert_nothing_written(injector, before, runtime.production_snapshot(MODEL))
        assert not any(call.injected for call in injector.calls)
    finally:
        runtime.stop()


def check_dead_letter(runtime: LocalRuntime, expect: dict[str, Any]) -> None:
    """The event is in the tuning-job rule's dead-letter queue, with EventBridge's error attributes."""
    (letter,) = runtime.dead_letters
    sqs = runtime.clients.sqs
    assert letter["queue"], "the tuning-job rule's target has no dead-letter queue"
    url = sqs.get_queue_url(QueueName=letter["queue"].rsplit(":", 1)[-1])["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    (message,) = messages
    attributes = {key: value["StringValue"] for key, value in message["MessageAttributes"].items()}
    assert attributes["RULE_ARN"] == letter["rule"] and attributes["TARGET_ARN"] == letter["target"]
    assert json.loads(message["Body"])["detail"]["HyperParameterTuningJobName"] == JOB
    for fragment in fragments(expect):
        assert fragment in attributes["ERROR_MESSAGE"], attributes


def end_by_rejecting(runtime: LocalRuntime, arn: str) -> None:
    """Let an execution run to its approval, reject it there (a genuine approver), and wait for its end."""
    deadline = time.monotonic() + 120
    while runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING":
        if runtime.approval_pending(arn):
            runtime.send_decision(MODEL, JOB, GENUINE_REJECTION)
            break
        assert time.monotonic() < deadline, "the execution neither ended nor asked for approval"
        time.sleep(0.05)
    wait_for(runtime, [arn], approve=False, timeout_s=120)


def send(runtime: LocalRuntime, case: dict[str, Any]) -> dict[str, Any]:
    """Put the case's event on the default bus: the executions the rule started, or EventBridge's refusal."""
    document = case_event(case)
    if "detail_raw" in case:
        response = runtime.clients.events.put_events(
            Entries=[
                {
                    "Source": document["source"],
                    "DetailType": document["detail-type"],
                    "Detail": case["detail_raw"],
                    "EventBusName": "default",
                }
            ]
        )
        entry = response["Entries"][0]
        if "ErrorCode" in entry:
            return {"refused": f"{entry['ErrorCode']}: {entry.get('ErrorMessage')}"}
        return {"executions": runtime.executions_started_by(entry["EventId"])}
    from local.errors import UsageError

    try:
        return {"executions": runtime.send_event(document)}
    except UsageError as error:
        return {"refused": str(error)}


def check_rejection(runtime: LocalRuntime, arn: str, described: dict[str, Any], expect: dict[str, Any]) -> None:
    assert described["status"] == "FAILED", (described["status"], described.get("cause"))
    assert described.get("error") == expect["error"], described.get("cause")
    for fragment in fragments(expect):
        assert fragment in described.get("cause", ""), described.get("cause")
    history = runtime.history(arn)
    names = [record.name for record in states_from_history(history, described["status"])]
    assert "BackupProduction" not in names
    final = json.loads(described["output"]) if described.get("output") else None
    document = final if isinstance(final, dict) else _last_input(history)
    if expect["where"] == "claim":
        assert document["claim"]["status"] == "REJECTED"
        assert all(fragment in document["claim"]["reason"] for fragment in fragments(expect)), document["claim"]
        assert "ValidateCandidate" not in names
    else:
        assert document["validation"]["verdict"] == "REJECTED"
        reasons = "; ".join(document["validation"]["reasons"])
        assert all(fragment in reasons for fragment in fragments(expect)), reasons
        assert "AwaitApproval" not in names


def _last_input(history: list[dict[str, Any]]) -> dict[str, Any]:
    for item in reversed(history):
        details = item.get("stateEnteredEventDetails")
        if details and details.get("input"):
            return dict(json.loads(details["input"]))
    raise AssertionError("no state input in the history")


# -- approvals ---------------------------------------------------------------------------------------------------
def approval_calls(runtime: LocalRuntime) -> list[Any]:
    assert runtime.lambdas is not None
    return [
        call for call in runtime.lambdas.invocations if "approvaldecision" in call.function.replace("_", "").lower()
    ]


def send_approval(runtime: LocalRuntime, entry: dict[str, Any]) -> None:
    """One entry of a case: a Model Registry change as someone (`as`), or an event put on a bus (`event`)."""
    if "as" in entry:
        decision = "approve" if entry["status"] == "Approved" else "reject"
        who = Decision(decision=decision, role=entry["as"]["role"], session=entry["as"]["session"], comment="case")
        runtime.send_decision(MODEL, JOB, who)
        return
    forged = json.loads((EVENTS / entry["event"]).read_text())
    if entry.get("pending_package"):
        package = runtime.pending_package(MODEL, JOB)
        forged["resources"] = [package]
        forged["detail"]["ModelPackageArn"] = package
    forged = merge_patch(forged, {"detail": entry["detail"]} if "detail" in entry else {})
    bus = runtime.product_bus if entry["bus"] == "product" else "default"
    runtime.send_event(forged, bus=bus)
    runtime.drain()


@pytest.mark.parametrize("name", params("approval_refused", "not_delivered"))
def test_a_decision_that_does_not_count_is_refused_and_writes_nothing(
    name: str, synthesized: Path, tmp_path: Path
) -> None:
    case, expect = CASES[name], CASES[name]["expect"]
    injector = FaultInjector()
    runtime = started_runtime(case, tmp_path, injector)
    try:
        runtime.seed_champion(MODEL)
        before = runtime.production_snapshot(MODEL)
        (arn,) = runtime.send_event(event())
        runtime.wait_for_approval_request(arn)
        for entry in case["approvals"]:
            calls_before = len(approval_calls(runtime))
            send_approval(runtime, entry)
            answered = approval_calls(runtime)[calls_before:]
            if expect["where"] == "not_delivered":
                assert answered == [], "a decision no rule routes reached the approval Lambda"
                continue
            assert answered, "the decision reached no approval Lambda"
            assert all(call.error is None for call in answered), [call.error for call in answered]
            if entry.get("genuine"):
                assert answered[0].result["accepted"] is True, answered[0].result
                continue
            assert all(call.result["accepted"] is False for call in answered), [c.result for c in answered]
            reasons = " | ".join(call.result["reason"] for call in answered)
            for fragment in fragments(expect):
                assert fragment in reasons, reasons
        if runtime.clients.stepfunctions.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert runtime.approval_pending(arn), "a refused decision moved the promotion on"
            runtime.send_decision(MODEL, JOB, GENUINE_REJECTION)
        described = wait_for(runtime, [arn], approve=False, timeout_s=120)[arn]
        assert (described["status"], described.get("error")) == ("FAILED", "REJECTED"), described.get("cause")
        runtime.drain()
        assert_nothing_written(injector, before, runtime.production_snapshot(MODEL))
    finally:
        runtime.stop()


# -- catalogs: the synth refuses them ------------------------------------------------------------------------
def write_catalogs(case: dict[str, Any], folder: Path) -> Path:
    """The case's catalog folder; returns the bad catalog's path."""
    base = yaml.safe_load((ROOT / "models" / f"{MODEL}.yaml").read_text())
    folder.mkdir(parents=True)
    path = folder / case.get("catalog_file", f"{MODEL}.yaml")
    if "catalog_text" in case:
        path.write_text(case["catalog_text"])
    else:
        path.write_text(yaml.safe_dump(merge_patch(base, case.get("catalog", {})), sort_keys=False))
    for file_name, patch in case.get("extra_catalogs", {}).items():
        (folder / file_name).write_text(yaml.safe_dump(merge_patch(base, patch), sort_keys=False))
    return path


@pytest.mark.parametrize("name", params("synth"))
def test_an_invalid_catalog_fails_the_synth_naming_the_file_and_the_field(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    bad = write_catalogs(case, tmp_path / "models")
    outdir = tmp_path / "cdk.out"
    env = {**os.environ, "PROMOTION_MODELS_DIR": str(tmp_path / "models"), "CDK_OUTDIR": str(outdir)}
    completed = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert "synth failed:" in completed.stderr, completed.stderr[-2000:]
    message = completed.stderr[completed.stderr.index("synth failed:") :]
    assert bad.stem in message, message  # the file (or, for a conflict between files, the model ids = file names)
    for fragment in fragments(case["expect"]):
        assert fragment in message, message
    assert not outdir.exists(), "a refused catalog must fail the synth before anything is written"
