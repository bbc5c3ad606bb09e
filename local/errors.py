"""Errors that mean a local run could not be set up (the CLI exits 2 on any of them, with the message)."""

from __future__ import annotations


class SetupError(Exception):
    """The local world cannot be built or the input is unusable; the message says which file and what is wrong."""


class UsageError(SetupError):
    """Bad input to the runtime: unknown state, an event without a model, a model without a catalog."""
