"""EventBridge rule targets moto cannot deliver: Step Functions state machines and Lambda functions.

moto 5.2.5's `Rule.send_to_targets` delivers to SQS, CloudWatch Logs, archives, other buses and API destinations
and raises `NotImplementedError` for any other target, which fails the whole `put_events`. That method is
replaced: moto's own matcher (`Rule.event_pattern.matches_event`) decides whether the rule fires, exactly as the
pattern CDK synthesized says; targets moto supports are still handed to moto's original code; for a state machine
or Lambda target the runtime delivers the event itself after the target's `Input`, `InputPath` or
`InputTransformer` (moto's `EventTemplateParser`) is applied:

* state machine target -> `StartExecution` with the event (or the transformed input) as the execution input;
* Lambda target -> an asynchronous in-process invocation (EventBridge invokes Lambda asynchronously: a failing
  handler is logged, never raised to whoever put the event).

A disabled rule delivers nothing to these targets. The event a target receives is shaped as on AWS: ISO 8601
`time`, no moto-internal `ingestion-time`.

moto also accepts PutEvents requests of any size; while a runtime runs, a request whose entries add up to more than
EventBridge's 1 MB (raised from 256 KB in January 2026) is refused as EventBridge refuses it (`ValidationException`,
the whole request). A state machine target whose StartExecution fails (Step Functions still takes at most 256 KB of
input) is not retried and goes to the target's dead-letter queue, with EventBridge's message attributes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from botocore.exceptions import ClientError
from jsonpath_ng.ext import parse as parse_jsonpath
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, Rule
from moto.events.utils import EventMessageType, EventTemplateParser

from local.hooks import Hooks

_BRIDGED_SERVICES = ("states", "lambda")
PUT_EVENTS_LIMIT_BYTES = 1024 * 1024
OVER_THE_LIMIT = "Total size of the entries in the request is over the limit."  # EventBridge's own words


@dataclass(frozen=True)
class EventsBridge:
    """Where bridged deliveries go: the running local runtime's callbacks."""

    start_execution: Callable[[str, dict[str, Any], str, dict[str, Any]], None]  # (rule ARN, target, input, event)
    invoke_async: Callable[[str, dict[str, Any], Any], None]  # (rule ARN, target, event)
    dead_letter: Callable[[str, dict[str, Any], dict[str, Any], ClientError], None]  # (rule ARN, target, event, why)


def _patch(originals: dict[str, Any]) -> None:
    originals["send_to_targets"] = Rule.send_to_targets
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign,assignment]
    originals["put_events"] = EventsBackend.put_events
    EventsBackend.put_events = _put_events  # type: ignore[method-assign]


def entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (Time 14 bytes; Source, DetailType, Detail and each
    resource in UTF-8 bytes)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(resource).encode()) for resource in entry.get("Resources") or [])


def _put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if HOOKS.current is not None and sum(entry_size(entry) for entry in events) > PUT_EVENTS_LIMIT_BYTES:
        raise ValidationException(OVER_THE_LIMIT)
    result: list[dict[str, Any]] = _ORIGINALS["put_events"](self, events)
    return result


HOOKS: Hooks[EventsBridge] = Hooks(_patch)
_ORIGINALS = HOOKS.originals


def _service(target: dict[str, Any]) -> str:
    parts = str(target.get("Arn", "")).split(":")
    return parts[2] if len(parts) > 2 else ""


def as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a target sees it on AWS: ISO time, no moto bookkeeping."""
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    when = delivered.get("time")
    if isinstance(when, (int, float)):
        delivered["time"] = datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(when, datetime):
        delivered["time"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: constant Input, InputPath selection, InputTransformer output, or the event."""
    delivered = as_delivered(event)
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = parse_jsonpath(target["InputPath"]).find(delivered)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(EventMessageType, {**delivered, "ingestion-time": event.get("ingestion-time")}),
        )
    return delivered


def _send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
    bridge = HOOKS.current
    if bridge is None:
        _ORIGINALS["send_to_targets"](self, original_event, transform_input)
        return
    if not self.event_pattern.matches_event(cast(EventMessageType, original_event)):
        return
    bridged = [target for target in self.targets if _service(target) in _BRIDGED_SERVICES]
    others = [target for target in self.targets if _service(target) not in _BRIDGED_SERVICES]
    if others:
        moto_rule = copy.copy(self)
        moto_rule.targets = others
        _ORIGINALS["send_to_targets"](moto_rule, original_event, transform_input)
    if self.state != "ENABLED":
        return
    for target in bridged:
        payload = target_input(target, original_event) if transform_input else as_delivered(original_event)
        if _service(target) == "states":
            try:
                bridge.start_execution(self.arn, target, json.dumps(payload), as_delivered(original_event))
            except ClientError as error:  # a client error is not retried: the event goes to the DLQ, if any
                bridge.dead_letter(self.arn, target, as_delivered(original_event), error)
        else:
            try:
                bridge.invoke_async(self.arn, target, payload)
            except ClientError as error:  # the events service may not invoke the function: to the DLQ, if any
                bridge.dead_letter(self.arn, target, as_delivered(original_event), error)
