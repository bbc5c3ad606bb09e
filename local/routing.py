"""EventBridge's side of the local runtime: events put on a bus, the executions and asynchronous invocations the
stack's rules start for them (as their targets' roles), and the deliveries EventBridge gives up on (dead letters)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from local.errors import UsageError
from local.events_bridge import OVER_THE_LIMIT, PUT_EVENTS_LIMIT_BYTES, entry_size
from local.live_stack import Clients

if TYPE_CHECKING:
    from local.iam.identities import Identities
    from local.lambdas import InProcessLambdas

MAX_EXECUTION_INPUT_BYTES = 262144  # StartExecution's input, in UTF-8 bytes
Person = tuple[Literal["approver", "operator"], str]  # (kind, session name) putting an event


class EventRouting:
    """Where the events bridge delivers: `start_execution`, `invoke_target` and `dead_letter` are its callbacks;
    `send_event` puts an event as an account or a person would."""

    def __init__(self, clients: Clients, lambdas: InProcessLambdas, iam: Identities | None) -> None:
        self.clients, self.lambdas, self.iam = clients, lambdas, iam
        self.started_by_event: dict[str, list[str]] = {}  # event id -> executions the rules started for it
        self.dead_letters: list[dict[str, Any]] = []  # deliveries EventBridge gave up on (see dead_letter)

    def started_by(self, event_id: str) -> list[str]:
        """The executions the stack's rules started for one event (by its PutEvents id)."""
        return self.started_by_event.get(event_id, [])

    # -- the bridge's callbacks ------------------------------------------------------------------------------
    def start_execution(
        self, rule_arn: str, target: dict[str, Any], execution_input: str, event: dict[str, Any]
    ) -> None:
        """EventBridge -> Step Functions target: one execution per matching event, named as EventBridge does,
        started with the target's role."""
        state_machine_arn = str(target["Arn"])
        if self.iam is not None:
            self.iam.authorize_start(rule_arn, target)
        if len(execution_input.encode()) > MAX_EXECUTION_INPUT_BYTES:  # moto does not check StartExecution's limit
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                        f"Member must have length less than or equal to {MAX_EXECUTION_INPUT_BYTES}",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "StartExecution",
            )
        response = self.clients.stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=execution_input
        )
        if self.iam is not None:
            self.iam.execution_started(state_machine_arn)
        self.started_by_event.setdefault(event["id"], []).append(response["executionArn"])

    def invoke_target(self, rule_arn: str, target: dict[str, Any], payload: Any) -> None:
        """EventBridge -> Lambda target: the events service invokes the function asynchronously, allowed by the
        function's resource policy."""
        if self.iam is not None:
            self.iam.authorize_lambda_target(rule_arn, target)
        self.lambdas.invoke_async(str(target["Arn"]), payload)

    def dead_letter(self, rule_arn: str, target: dict[str, Any], event: dict[str, Any], error: ClientError) -> None:
        """A delivery EventBridge gave up on: into the target's dead-letter queue, as EventBridge writes it (the
        queue's policy must let the events service send; otherwise the event is lost, as on AWS)."""
        message = f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        letter = {"rule": rule_arn, "target": target["Arn"], "queue": queue_arn, "event": event, "error": message}
        self.dead_letters.append(letter)
        if queue_arn and self.iam is not None:
            refused = self.iam.authorize_dead_letter(rule_arn, queue_arn)
            if refused is not None:
                letter.update(queue=None, lost=refused)
                return
        if not queue_arn:
            return  # no DLQ: EventBridge drops the event
        url = self.clients.sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        attributes = {
            "ERROR_CODE": "SDK_CLIENT_ERROR",
            "ERROR_MESSAGE": message,
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
            "RETRY_ATTEMPTS": "0",
            "RULE_ARN": rule_arn,
            "TARGET_ARN": target["Arn"],
        }
        self.clients.sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
        )

    # -- putting events --------------------------------------------------------------------------------------
    def send_event(
        self, event: dict[str, Any], bus: str | None = None, *, as_person: Person | None = None
    ) -> list[str]:
        """Put an event (EventBridge's delivered shape, like shared/events/*.json) on a bus; the ARNs of the
        executions the stack's rules started for it. `as_person`: (kind, name) puts it as that person would, with
        the stack's managed policy for approvers or operators (otherwise as the account, like AWS's own events)."""
        if not isinstance(event.get("source"), str) or not isinstance(event.get("detail-type"), str):
            raise UsageError("an event needs a 'source' and a 'detail-type' (EventBridge's delivered shape)")
        entry: dict[str, Any] = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event.get("detail", {})),
            "Resources": list(event.get("resources", [])),
            "EventBusName": bus or "default",
        }
        if event.get("time"):
            try:
                entry["Time"] = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
            except ValueError as error:
                raise UsageError(f"the event's time {event['time']!r} is not ISO 8601: {error}") from None
        try:
            response = self._put_events(entry, as_person)
        except ClientError as error:
            if error.response["Error"]["Code"] == "AccessDeniedException":
                raise UsageError(f"EventBridge refused the event: {error.response['Error']['Message']}") from None
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            why = error.response["Error"]["Message"]
            if why == OVER_THE_LIMIT:
                why += f" (this entry is {entry_size(entry):,} bytes; the limit is {PUT_EVENTS_LIMIT_BYTES:,} bytes)"
            raise UsageError(f"EventBridge refused the event: ValidationException: {why}") from None
        result = response["Entries"][0]
        if "ErrorCode" in result:
            raise UsageError(f"EventBridge refused the event: {result['ErrorCode']}: {result.get('ErrorMessage')}")
        return self.started_by(result["EventId"])

    def _put_events(self, entry: dict[str, Any], as_person: Person | None) -> dict[str, Any]:
        if self.iam is None or as_person is None:
            response: dict[str, Any] = self.clients.events.put_events(Entries=[entry])
            return response
        role = self.iam.person_role(as_person[0])
        if role is None:  # never put it as the unchecked account instead: that would hide a missing policy
            raise UsageError(f"the template ships no {as_person[0]}s' managed policy to put this event with")
        # A client made now, after the enforcement hooked botocore, so the person's policy is what decides.
        client = self.clients.new("events")
        with self.iam.person(role, as_person[1]):
            response = client.put_events(Entries=[entry])
        return response
