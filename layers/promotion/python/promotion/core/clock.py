"""The one clock the domain reads for rollout time windows.

On AWS it is the wall clock. The local runtime compresses Wait states (an hour of bake passes in milliseconds), so it
advances this clock by each Wait's seconds, and the CloudWatch datapoints its traffic simulator writes and the
windows EvaluateStage queries agree on simulated time. Nothing else may move it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """The current time (UTC), plus whatever simulated time the local runtime has added."""
    return datetime.now(UTC) + _offset


def advance(seconds: float) -> None:
    """Move the clock forward by simulated seconds (local runtime only)."""
    global _offset  # noqa: PLW0603 - the single, documented seam
    _offset += timedelta(seconds=seconds)


def reset() -> None:
    global _offset  # noqa: PLW0603
    _offset = timedelta(0)
