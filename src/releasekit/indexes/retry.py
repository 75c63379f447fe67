"""What is worth retrying against an index, and how long."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from releasekit._polling import Backoff, Deadline
from releasekit.errors import IndexUnavailable
from releasekit.indexes.endpoints import Index

T = TypeVar("T")
_log = logging.getLogger(__name__)


def is_transient(exc: Exception) -> bool:
    """True for failures worth retrying: connection trouble, timeouts, 5xx and 429 answers."""
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status == 429
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.5, factor=2.0, cap=8.0))
    total_seconds: float = 60.0

    def run(self, action: Callable[[], T], what: str, index: Index) -> T:
        """Run ``action``, retrying transient failures (then :class:`IndexUnavailable`)."""
        deadline = Deadline(self.total_seconds)
        delays = self.backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt >= self.attempts or deadline.expired:
                    raise IndexUnavailable(
                        f"Could not {what} at {index.display} after {attempt} "
                        f"tr{'ies' if attempt > 1 else 'y'} over {deadline.elapsed:.1f} s: "
                        f"{describe_http_failure(exc)}.",
                        why="The index is down, unreachable from here, or overloaded.",
                        fix="Check the URL and your network, then run the same session again; "
                        "it resumes where it stopped.",
                    ) from exc
                delay = next(delays)
                _log.debug(
                    "%s at %s failed (%s); try %d of %d in %.2f s",
                    what,
                    index.display,
                    describe_http_failure(exc),
                    attempt + 1,
                    self.attempts,
                    min(delay, deadline.remaining),
                )
                deadline.wait(delay)


def describe_http_failure(exc: Exception) -> str:
    """A short plain description of an HTTP failure."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
