"""A monorepo's packages read the token at once: every thread gets it."""

from __future__ import annotations

import sys
import threading

import pytest

from releasekit.credentials.sources import forget_secrets, take_secret


def test_every_thread_that_takes_a_secret_at_once_gets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    try:
        _race(monkeypatch)
    finally:
        sys.setswitchinterval(interval)


def _race(monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(20):
        forget_secrets()
        monkeypatch.setenv("RELEASEKIT_RACE_TOKEN", "pypi-race-value")
        barrier = threading.Barrier(16)
        seen: list[str | None] = []

        def take(barrier: threading.Barrier, seen: list[str | None]) -> None:
            barrier.wait()
            seen.append(take_secret("RELEASEKIT_RACE_TOKEN"))

        threads = [threading.Thread(target=take, args=(barrier, seen)) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == ["pypi-race-value"] * 16
    forget_secrets()
