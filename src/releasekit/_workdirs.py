"""Private working directories for verify environments, reused at the same paths.

uv remembers what it learned of an interpreter (its prefix, markers, tags, site-packages)
by the interpreter's path. A verify environment made in a new temporary directory each time
is a new path, so every install starts by running that interpreter to ask again (about
40 ms of CPU per package). Here each environment goes into a slot of one private directory
of this process (``mkdtemp``: mode 700), emptied before and after each use: still a fresh
environment every time, but at a path uv already knows after a slot's first use. Concurrent
verifies take different slots; the directory is removed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_GUARD = threading.Lock()


@dataclass
class _Slots:
    """This process's directory, its owner, how many slots it has made, which are free."""

    root: Path | None = None
    pid: int = 0
    made: int = 0
    free: list[Path] = field(default_factory=list)


_SLOTS = _Slots()


def _take() -> Path:
    """A free slot of this process's directory (made now when none is; a forked child makes
    its own directory)."""
    if _SLOTS.root is None or _SLOTS.pid != os.getpid():
        root = Path(tempfile.mkdtemp(prefix="releasekit-verify-"))
        atexit.register(shutil.rmtree, root, True)
        _SLOTS.root, _SLOTS.pid, _SLOTS.made, _SLOTS.free = root, os.getpid(), 0, []
    if _SLOTS.free:
        return _SLOTS.free.pop()
    _SLOTS.made += 1
    return _SLOTS.root / f"slot-{_SLOTS.made}"


@contextmanager
def fresh_workdir() -> Iterator[Path]:
    """An empty private directory, used by one verify at a time and emptied on exit."""
    with _GUARD:
        slot = _take()
    slot.mkdir()
    try:
        yield slot
    finally:
        shutil.rmtree(slot, ignore_errors=True)
        with _GUARD:
            if slot.parent == _SLOTS.root and not slot.exists():  # else never used again
                _SLOTS.free.append(slot)
