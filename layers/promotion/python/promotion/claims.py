"""Claims and the per-model lock in DynamoDB: one promotion per tuning job, one promotion per model at a time, in
the order the tuning jobs completed.

Items (table keys `pk`, `sk`):
- claim `MODEL#<model>` / `CLAIM#<tuning job arn>`: which execution owns the tuning job's promotion; a second
  event for the same tuning job is a duplicate, unless its owner ended before finishing it (a crashed
  ClaimPromotion, a stopped execution): then the redelivered event takes the claim over.
- lock `MODEL#<model>` / `LOCK`: the execution promoting the model now, with a lease. A lock whose holder is no
  longer running, or whose lease expired, is taken over, so a promotion that died never blocks its model forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.models import ClaimStatus

WAITING = "WAITING"
ACTIVE = "ACTIVE"
DONE = "DONE"


@dataclass(frozen=True)
class ClaimAttempt:
    status: ClaimStatus
    reason: str


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ClaimStore:
    """Claims and locks over an injected DynamoDB client."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        is_execution_running: Callable[[str], bool] = lambda _arn: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._is_running = is_execution_running
        self._clock = clock

    def claim(
        self,
        *,
        model: str,
        tuning_job_arn: str,
        release_id: str,
        execution_arn: str,
        event_time: datetime,
        lease_seconds: int,
        settle: bool = False,
    ) -> ClaimAttempt:
        """Claim the tuning job for this execution, then try to take the model's lock (oldest tuning job first).

        With `settle` (an execution's first look) the claim is only written: the execution waits one lock period
        before it may take the lock, so an older tuning job whose event arrives moments later still goes first."""
        now = int(self._clock())
        claim_key = {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}}
        item = {
            **claim_key,
            "execution_arn": {"S": execution_arn},
            "release_id": {"S": release_id},
            "event_time": {"S": event_time.isoformat()},
            "status": {"S": WAITING},
            "lease_expires_at": {"N": str(now + lease_seconds)},
        }
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR execution_arn = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            duplicate = self._take_over_abandoned_claim(claim_key, item, tuning_job_arn)
            if duplicate is not None:
                return ClaimAttempt(ClaimStatus.DUPLICATE, duplicate)

        if settle:
            return ClaimAttempt(
                ClaimStatus.WAIT,
                f"claimed tuning job {tuning_job_arn}; waiting one lock period for older tuning jobs of model "
                f"{model} whose events may still be on their way",
            )
        older = self._older_pending_claim(model, tuning_job_arn, event_time, execution_arn, now)
        if older is not None:
            return ClaimAttempt(ClaimStatus.WAIT, older)

        holder = self._take_lock(model, release_id, execution_arn, now, lease_seconds)
        if holder is not None:
            return ClaimAttempt(ClaimStatus.WAIT, holder)
        self._set_claim_status(model, tuning_job_arn, ACTIVE)
        return ClaimAttempt(ClaimStatus.CLAIMED, f"claimed tuning job {tuning_job_arn} and the lock of model {model}")

    def _take_over_abandoned_claim(
        self, claim_key: dict[str, Any], item: dict[str, Any], tuning_job_arn: str
    ) -> str | None:
        """Take over a claim whose owner ended without finishing it; otherwise the reason this event is a duplicate.

        A claim is DONE when its promotion published a result (promoted or not): that tuning job is never promoted
        again. A claim still WAITING or ACTIVE whose owner is no longer running was abandoned (ClaimPromotion
        crashed after writing it, the execution was stopped or timed out), and a redelivered event may promote it."""
        owner = self._dynamodb.get_item(TableName=self._table, Key=claim_key, ConsistentRead=True).get("Item", {})
        owner_arn = owner.get("execution_arn", {}).get("S", "?")
        owner_status = owner.get("status", {}).get("S", "?")
        duplicate = (
            f"tuning job {tuning_job_arn} is already claimed by execution {owner_arn} (status {owner_status}); "
            "this event is a duplicate and was ignored"
        )
        if not owner or owner_status == DONE or self._is_running(owner_arn):
            return duplicate
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="execution_arn = :stale AND #status <> :done",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":stale": {"S": owner_arn}, ":done": {"S": DONE}},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            return duplicate  # another delivery took it over first, or the owner finished meanwhile
        return None

    def _older_pending_claim(
        self, model: str, tuning_job_arn: str, event_time: datetime, execution_arn: str, now: int
    ) -> str | None:
        """A reason to wait if an older tuning job of the same model is still pending (keeps promotions in order)."""
        paginator = self._dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :claim)",
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{model}"}, ":claim": {"S": "CLAIM#"}},
            ConsistentRead=True,
        )
        mine = (event_time.isoformat(), tuning_job_arn)
        for page in pages:
            for item in page.get("Items", []):
                if item["status"]["S"] == DONE or item["execution_arn"]["S"] == execution_arn:
                    continue
                if int(item["lease_expires_at"]["N"]) < now or not self._is_running(item["execution_arn"]["S"]):
                    continue
                theirs = (item["event_time"]["S"], item["sk"]["S"].removeprefix("CLAIM#"))
                if theirs < mine:
                    return f"an older tuning job of model {model} ({theirs[1]}) is still being promoted; waiting for it"
        return None

    def _take_lock(self, model: str, release_id: str, execution_arn: str, now: int, lease: int) -> str | None:
        """Take (or renew) the model's lock; returns a reason to wait when someone else holds it."""
        key = {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}}
        current = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        condition = "attribute_not_exists(pk) OR holder = :me OR lease_expires_at < :now"
        values: dict[str, Any] = {":me": {"S": execution_arn}, ":now": {"N": str(now)}}
        if current is not None and current["holder"]["S"] != execution_arn:
            holder = current["holder"]["S"]
            if not self._is_running(holder):
                # The holder ended without releasing (crash, manual stop): take over exactly that stale lock.
                condition = "holder = :stale"
                values = {":stale": {"S": holder}}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    **key,
                    "holder": {"S": execution_arn},
                    "release_id": {"S": release_id},
                    "lease_expires_at": {"N": str(now + lease)},
                    "expires_at": {"N": str(now + lease + 86400)},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            current = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item", {})
            return (
                f"model {model} is locked by execution {current.get('holder', {}).get('S', '?')} "
                f"(release {current.get('release_id', {}).get('S', '?')}); waiting for it to finish"
            )
        return None

    def _set_claim_status(self, model: str, tuning_job_arn: str, status: str, outcome: str | None = None) -> None:
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": {"S": status}}
        update = "SET #status = :status"
        if outcome is not None:
            update += ", outcome = :outcome"
            values[":outcome"] = {"S": outcome}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def finish(self, *, model: str, tuning_job_arn: str | None, execution_arn: str, outcome: str) -> bool:
        """Mark the claim done and release the lock if this execution holds it; True when a lock was released."""
        if tuning_job_arn is not None:
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}},
                    UpdateExpression="SET #status = :done, outcome = :outcome",
                    ConditionExpression="execution_arn = :me",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":done": {"S": DONE},
                        ":outcome": {"S": outcome},
                        ":me": {"S": execution_arn},
                    },
                )
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            return False
        return True

    def forget(self, *, model: str, tuning_job_arn: str, execution_arn: str) -> None:
        """Drop this execution's claim (it gave up waiting), so a redelivered event can promote the tuning job."""
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}},
                ConditionExpression="execution_arn = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}},
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def lock_holder(self, model: str) -> dict[str, str] | None:
        """The current lock of a model, for operators' tools (`promote status`) and the operator rollback."""
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}}, ConsistentRead=True
        ).get("Item")
        if item is None or int(item["lease_expires_at"]["N"]) < int(self._clock()):
            return None
        return {"holder": item["holder"]["S"], "release_id": item["release_id"]["S"]}


def execution_liveness(stepfunctions: Any) -> Callable[[str], bool]:
    """A liveness check over Step Functions: an execution that is no longer RUNNING cannot hold a lock."""

    def is_running(execution_arn: str) -> bool:
        try:
            return bool(stepfunctions.describe_execution(executionArn=execution_arn)["status"] == "RUNNING")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return False
            raise

    return is_running
