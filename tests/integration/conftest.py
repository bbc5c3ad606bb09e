"""Fixtures of the integration tests: the Model Registry as SageMaker runs it, over moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local import registry


@pytest.fixture
def registry_as(aws: dict[str, Any]) -> Iterator[Callable[[tuple[str, str] | None], None]]:
    """The Model Registry as SageMaker runs it (local.registry): it records who made each change. `act(identity)`
    sets who the next calls are made by: (role, session), or None for the account owner."""
    who: list[tuple[str, str] | None] = [None]
    bridge = registry.RegistryBridge(caller=lambda: who[0])
    registry.HOOKS.activate(bridge)

    def act(identity: tuple[str, str] | None) -> None:
        who[0] = (f"arn:aws:iam::123456789012:role/{identity[0]}", identity[1]) if identity else None

    yield act
    registry.HOOKS.deactivate(bridge)
