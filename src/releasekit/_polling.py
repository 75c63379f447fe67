"""Waiting without fixed sleeps: exponential backoff under a deadline."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_STOPPING = threading.Event()


class Stopped(BaseException):
    """A worker thread's wait ended early: the process is being interrupted
    (:func:`waits_stopped`). A BaseException, as the interrupt it stands for."""


@contextmanager
def waits_stopped() -> Iterator[None]:
    """Inside the block, every :meth:`Deadline.wait` of another thread than the main one
    ends at once with :class:`Stopped`: the workers of an interrupted main thread stop
    waiting for an index (the main thread's own waits are left to its signals)."""
    _STOPPING.set()
    try:
        yield
    finally:
        _STOPPING.clear()


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
        """Wait ``delay`` seconds, or less if the deadline comes first. In a worker thread,
        :class:`Stopped` when :func:`waits_stopped` ends the wait."""
        seconds = min(delay, self.remaining)
        if threading.current_thread() is threading.main_thread():
            time.sleep(seconds)  # interruptible by a signal everywhere, also on Windows
        elif _STOPPING.wait(seconds):
            raise Stopped


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
