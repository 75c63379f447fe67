"""Waiting without fixed sleeps: exponential backoff under a deadline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays that start at ``first`` seconds and grow by ``factor`` up to ``cap``.

    With ``relax_after``, once that many seconds of delays have passed the delays keep
    growing up to ``relaxed_cap`` instead: brisk at first, patient later.
    """

    first: float = 0.05
    factor: float = 2.0
    cap: float = 2.0
    relax_after: float = math.inf
    relaxed_cap: float = 0.0

    def delays(self) -> Iterator[float]:
        """An endless series of delays."""
        delay, waited = self.first, 0.0
        while True:
            yield delay
            waited += delay
            cap = max(self.cap, self.relaxed_cap) if waited >= self.relax_after else self.cap
            delay = min(delay * self.factor, cap)


class Deadline:
    """A point in time, measured on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.seconds = seconds

    @property
    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return time.monotonic() - self.start

    @property
    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining <= 0

    def wait(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less if the deadline comes first."""
        time.sleep(min(delay, self.remaining))


def poll(check: Callable[[], T | None], timeout: float, backoff: Backoff | None = None) -> T | None:
    """Call ``check`` until it returns something other than None, or ``timeout`` passes.

    Returns that value, or None when the deadline passed first (``check`` runs at least once).
    """
    deadline = Deadline(timeout)
    for delay in (backoff or Backoff()).delays():
        result = check()
        if result is not None or deadline.expired:
            return result
        deadline.wait(delay)
    return None  # pragma: no cover - the series above never ends
