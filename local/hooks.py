"""Install-once patches of moto internals that act only while a local runtime is running.

moto is process-wide, so at most one runtime is active at a time; while none is, every hook calls moto's original.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Hooks(Generic[T]):
    """One set of patches (installed on first activation, never removed) and the bridge they route to."""

    def __init__(self, patch: Callable[[dict[str, Any]], None]) -> None:
        self.originals: dict[str, Any] = {}
        self.current: T | None = None
        self._patch = patch
        self._lock = threading.Lock()

    def install(self) -> None:
        """Apply the patches once; `patch` records what it replaced in `originals`."""
        with self._lock:
            if not self.originals:
                self._patch(self.originals)

    def activate(self, bridge: T) -> None:
        self.install()
        if self.current is not None and self.current is not bridge:
            raise RuntimeError("another local runtime is already running in this process (moto is process-wide)")
        self.current = bridge

    def deactivate(self, bridge: T) -> None:
        if self.current is bridge:
            self.current = None
