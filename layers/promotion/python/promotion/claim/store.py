"""Claims and the per-model lock in DynamoDB: one promotion per tuning job, one promotion per model at a time, in
the order the tuning jobs completed.

Items (table keys `pk`, `sk`):
- claim `MODEL#<model>` / `CLAIM#<tuning job arn>`: which execution owns the tuning job's promotion; a second
  event for the same tuning job is a duplicate, unless its owner ended before finishing it (a crashed
  ClaimPromotion, a stopped execution): then the redelivered event takes the claim over.
- lock `MODEL#<model>` / `LOCK`: the execution promoting the model now. A lock whose holder is no longer running
  (Step Functions says so) is taken over, so a promotion that died never blocks its model. A running holder keeps it
  however long it takes, even past the lease written with it (the item's TTL and information for operators): taking
  a lock from a live promotion would let two promotions of one model write production at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.state import ClaimStatus
from promotion.core.errors import LockLost, aws_error_code

WAITING = "WAITING"
ACTIVE = "ACTIVE"
DONE = "DONE"


@dataclass(frozen=True)
class ClaimAttempt:
    status: ClaimStatus
    reason: str
    release_id: str | None = None  # the release the claim holds (None for a duplicate)


def condition_held(write: Callable[..., Any], **request: Any) -> bool:
    """Run one conditional DynamoDB write: False when its condition did not hold (nothing was written)."""
    try:
        write(**request)
    except ClientError as error:
        if aws_error_code(error) != "ConditionalCheckFailedException":
            raise
        return False
    return True


def query_partition(
    dynamodb: Any, table: str, model: str, attributes: Sequence[str], prefix: str | None = None
) -> list[dict[str, Any]]:
    """Every item of the model's partition (`MODEL#<model>`) whose sort key begins with `prefix` (all of them when it
    is None), strongly consistent, projected on `attributes` (which begin with "pk", "sk"): what people's policies
    let them read, the same Query for every reader of the partition."""
    names = {f"#a{index}": name for index, name in enumerate(attributes)}
    condition = "#a0 = :pk"
    values = {":pk": {"S": f"MODEL#{model}"}}
    if prefix is not None:
        condition += " AND begins_with(#a1, :prefix)"
        values[":prefix"] = {"S": prefix}
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        ExpressionAttributeNames=names,
        ProjectionExpression=", ".join(names),
        Select="SPECIFIC_ATTRIBUTES",
        ConsistentRead=True,
    ):
        items.extend(page.get("Items", []))
    return items


# An operator's rollback holds the model's lock as `operator-rollback:<request event id>`; no execution backs it, so
# it counts as alive until its lease ends (well past the rollback function's 120 s timeout).
OPERATOR_HOLDER_PREFIX = "operator-rollback:"
OPERATOR_LOCK_LEASE_SECONDS = 900


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
        before it may take the lock, so an older tuning job whose event arrives moments later still goes first.
        The attempt carries the release id the claim holds: `release_id`, or a new one when an abandoned claim
        was taken over."""
        now = int(self._clock())
        claimed = self._write_claim(
            model=model,
            tuning_job_arn=tuning_job_arn,
            release_id=release_id,
            execution_arn=execution_arn,
            event_time=event_time,
            lease_expires_at=now + lease_seconds,
        )
        if isinstance(claimed, ClaimAttempt):
            return claimed
        release_id = claimed
        if settle:
            return ClaimAttempt(
                ClaimStatus.WAIT,
                f"claimed tuning job {tuning_job_arn}; waiting one lock period for older tuning jobs of model "
                f"{model} whose events may still be on their way",
                release_id,
            )
        older = self._older_pending_claim(model, tuning_job_arn, event_time, execution_arn, now)
        if older is not None:
            return ClaimAttempt(ClaimStatus.WAIT, older, release_id)

        holder = self._take_lock(model, release_id, execution_arn, now, lease_seconds)
        if holder is not None:
            return ClaimAttempt(ClaimStatus.WAIT, holder, release_id)
        if not self._set_claim_status(model, tuning_job_arn, ACTIVE, owner=execution_arn):
            self.release_lock(model=model, execution_arn=execution_arn)
            return ClaimAttempt(
                ClaimStatus.DUPLICATE,
                f"tuning job {tuning_job_arn} was taken over by another delivery while this execution waited",
            )
        return ClaimAttempt(
            ClaimStatus.CLAIMED, f"claimed tuning job {tuning_job_arn} and the lock of model {model}", release_id
        )

    def _write_claim(
        self,
        *,
        model: str,
        tuning_job_arn: str,
        release_id: str,
        execution_arn: str,
        event_time: datetime,
        lease_expires_at: int,
    ) -> str | ClaimAttempt:
        """Write (or renew) this execution's claim: the release id it holds, or a DUPLICATE attempt.

        A claim is DONE when its promotion published a result (promoted or not): that tuning job is never promoted
        again. A claim still WAITING or ACTIVE whose owner is no longer running was abandoned (ClaimPromotion
        crashed after writing it, the execution was stopped or timed out): a redelivered event takes it over under
        a new release id, so that it neither reuses the dead execution's backup (taken of production as it was
        then) nor collides with the SageMaker jobs it may have started."""
        key = {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}}
        item = {
            **key,
            "execution_arn": {"S": execution_arn},
            "release_id": {"S": release_id},
            "event_time": {"S": event_time.isoformat()},
            "status": {"S": WAITING},
            "lease_expires_at": {"N": str(lease_expires_at)},
        }
        for _ in range(2):  # twice: the item may vanish between a refused put and the read (its owner gave up)
            if condition_held(
                self._dynamodb.put_item,
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            ):
                return release_id
            owner = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            if owner is None:
                continue
            owner_arn, owner_status = owner["execution_arn"]["S"], owner.get("status", {}).get("S", "?")
            if owner_arn == execution_arn:  # this execution's next look: keep the release id, renew the lease
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET lease_expires_at = :lease",
                    ConditionExpression="execution_arn = :me",
                    ExpressionAttributeValues={":lease": {"N": str(lease_expires_at)}, ":me": {"S": execution_arn}},
                )
                return str(owner["release_id"]["S"])
            duplicate = ClaimAttempt(
                ClaimStatus.DUPLICATE,
                f"tuning job {tuning_job_arn} is already claimed by execution {owner_arn} (status {owner_status}); "
                "this event is a duplicate and was ignored",
            )
            if owner_status == DONE or self._is_running(owner_arn):
                return duplicate
            takeovers = int(owner.get("takeovers", {}).get("N", "0")) + 1
            renamed = f"{release_id}-t{takeovers}"
            taken = {**item, "release_id": {"S": renamed}, "takeovers": {"N": str(takeovers)}}
            # `OR execution_arn = :me`: botocore may resend a put that did land; the resend must not fail.
            if condition_held(
                self._dynamodb.put_item,
                TableName=self._table,
                Item=taken,
                ConditionExpression="(execution_arn = :stale AND #status <> :done) OR execution_arn = :me",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":stale": {"S": owner_arn},
                    ":done": {"S": DONE},
                    ":me": {"S": execution_arn},
                },
            ):
                return renamed
            return duplicate  # another delivery took it over first, or its owner finished meanwhile
        raise AssertionError(f"the claim of {tuning_job_arn} neither exists nor can be written")

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
        condition = "attribute_not_exists(pk) OR holder = :me"
        values: dict[str, Any] = {":me": {"S": execution_arn}}
        if current is not None and current["holder"]["S"] != execution_arn:
            holder = current["holder"]["S"]
            if self._holder_alive(current):
                return self._locked_by(model, current)
            # The holder ended without releasing (crash, manual stop): take over exactly that stale lock.
            condition = "holder = :stale"
            values = {":stale": {"S": holder}}
        if condition_held(
            self._dynamodb.put_item,
            TableName=self._table,
            Item={
                **key,
                "holder": {"S": execution_arn},
                "release_id": {"S": release_id},
                # No TTL (`expires_at`) on the lock: DynamoDB deleting it under a long, live promotion would
                # let the next one in. A lock is deleted when released, or taken over when its holder died.
                "lease_expires_at": {"N": str(now + lease)},
            },
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        ):
            return None
        current = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item", {})
        return self._locked_by(model, current)

    def _holder_alive(self, lock: dict[str, Any]) -> bool:
        """A promotion holds the lock while its execution runs; an operator's rollback until its lease ends."""
        holder = lock["holder"]["S"]
        if holder.startswith(OPERATOR_HOLDER_PREFIX):
            return int(lock.get("lease_expires_at", {}).get("N", "0")) >= int(self._clock())
        return self._is_running(holder)

    def lock_for_operator(self, model: str, request_id: str) -> str | None:
        """Take the model's lock for an operator's rollback (held for the whole restore, so no promotion can claim
        and back up a half-restored production); the reason to refuse when a promotion holds it."""
        holder = OPERATOR_HOLDER_PREFIX + request_id
        return self._take_lock(model, "operator-rollback", holder, int(self._clock()), OPERATOR_LOCK_LEASE_SECONDS)

    def renew_operator_lock(self, model: str, request_id: str) -> None:
        """Extend an operator rollback's lease while it waits for the endpoint; LockLost when it is no longer held."""
        now = int(self._clock())
        if not condition_held(
            self._dynamodb.update_item,
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}},
            UpdateExpression="SET lease_expires_at = :until",
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={
                ":me": {"S": OPERATOR_HOLDER_PREFIX + request_id},
                ":until": {"N": str(now + OPERATOR_LOCK_LEASE_SECONDS)},
            },
        ):
            raise LockLost(f"the operator rollback {request_id} no longer holds the lock of {model}")

    def release_operator_lock(self, model: str, request_id: str) -> None:
        condition_held(
            self._dynamodb.delete_item,
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}},
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": OPERATOR_HOLDER_PREFIX + request_id}},
        )

    @staticmethod
    def _locked_by(model: str, lock: dict[str, Any]) -> str:
        return (
            f"model {model} is locked by execution {lock.get('holder', {}).get('S', '?')} "
            f"(release {lock.get('release_id', {}).get('S', '?')}); waiting for it to finish"
        )

    def _set_claim_status(self, model: str, tuning_job_arn: str, status: str, *, owner: str) -> bool:
        """Set the claim's status if `owner` still owns it (a takeover may have happened while it waited)."""
        return condition_held(
            self._dynamodb.update_item,
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}},
            UpdateExpression="SET #status = :status",
            ConditionExpression="execution_arn = :me",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": status}, ":me": {"S": owner}},
        )

    def finish(self, *, model: str, tuning_job_arn: str | None, execution_arn: str, outcome: str) -> bool:
        """Mark the claim done and release the lock if this execution holds it; True when a lock was released."""
        if tuning_job_arn is not None:
            condition_held(  # a claim taken over since is not this execution's to finish
                self._dynamodb.update_item,
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
        return self.release_lock(model=model, execution_arn=execution_arn)

    def release_lock(self, *, model: str, execution_arn: str) -> bool:
        """Delete the model's lock if this execution holds it; True when it did."""
        return condition_held(
            self._dynamodb.delete_item,
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}},
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )

    def forget(self, *, model: str, tuning_job_arn: str, execution_arn: str) -> None:
        """Drop this execution's claim (it gave up waiting), so a redelivered event can promote the tuning job."""
        condition_held(
            self._dynamodb.delete_item,
            TableName=self._table,
            Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"CLAIM#{tuning_job_arn}"}},
            ConditionExpression="execution_arn = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )

    def lock_holder(self, model: str) -> dict[str, str] | None:
        """The current lock of a model, for operators' tools (`promote status`) and the operator rollback."""
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": f"MODEL#{model}"}, "sk": {"S": "LOCK"}}, ConsistentRead=True
        ).get("Item")
        if item is None or not self._holder_alive(item):  # ended without releasing it
            return None
        return {"holder": item["holder"]["S"], "release_id": item["release_id"]["S"]}


def execution_liveness(stepfunctions: Any) -> Callable[[str], bool]:
    """A liveness check over Step Functions: an execution that is no longer RUNNING cannot hold a lock."""

    def is_running(execution_arn: str) -> bool:
        try:
            return bool(stepfunctions.describe_execution(executionArn=execution_arn)["status"] == "RUNNING")
        except ClientError as error:
            if aws_error_code(error) == "ExecutionDoesNotExist":
                return False
            raise

    return is_running
