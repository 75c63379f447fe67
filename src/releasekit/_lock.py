"""One stamping run at a time per checkout: an OS file lock in the git directory.

``build --version``/``--dev`` and ``release`` write version files for a while; two of them
in one checkout would read each other's edits as the original and leave the tree stamped.
:func:`checkout_lock` holds an exclusive OS lock (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows) on ``<git dir>/releasekit.lock`` (outside git: a file in the
temp dir named after the checkout) while the tree is stamped. The OS drops the lock when
its process ends, however it ends. Threads of one process (a monorepo's packages, built
at once) share it; another process waits for it, then fails with the holder named.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from releasekit._git import Repository
from releasekit._polling import Backoff, poll
from releasekit._report import get_reporter
from releasekit.errors import CheckoutLocked, GitError

#: Seconds a stamping run waits for another one in the same checkout (RELEASEKIT_LOCK_TIMEOUT).
DEFAULT_TIMEOUT = 600.0


def lock_path(root: Path) -> Path:
    """The lock file for the checkout that holds ``root``."""
    try:
        git_dir = Repository(root).run("rev-parse", "--absolute-git-dir").strip()
    except GitError:
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"releasekit-{key}.lock"
    return Path(git_dir) / "releasekit.lock"


def _try_lock(fd: int) -> bool:
    """Take the OS lock on ``fd`` without waiting; False when another process holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass
class _Held:
    """The OS lock of one lock file in this process, and how many blocks hold it."""

    path: Path
    fd: int = -1
    holders: int = 0
    mutex: threading.Lock = field(default_factory=threading.Lock)


_HELD: dict[Path, _Held] = {}
_REGISTRY = threading.Lock()


def _timeout() -> float:
    configured = os.environ.get("RELEASEKIT_LOCK_TIMEOUT", "").strip()
    try:
        return max(0.0, float(configured)) if configured else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):  # Windows refuses to read the locked byte
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text
    return "another process"


def _acquire(held: _Held, doing: str, timeout: float) -> None:
    fd = os.open(held.path, os.O_RDWR | os.O_CREAT, 0o600)
    if not _try_lock(fd):
        get_reporter().info(
            f"Waiting up to {timeout:g} s for another releasekit run to finish stamping this "
            f"checkout ({_holder(held.path)})."
        )
    if poll(lambda: True if _try_lock(fd) else None, timeout, Backoff(0.05, 1.5, 0.5)) is None:
        os.close(fd)
        raise CheckoutLocked(
            f"Another releasekit run is stamping this checkout ({_holder(held.path)}); "
            f"waited {timeout:g} s for it to finish.",
            why="Two runs that set a version in one checkout at once would each build or "
            "commit the other's version and leave the files stamped.",
            fix="Let the other run finish, or run this one in a separate clone; to wait longer "
            "set RELEASEKIT_LOCK_TIMEOUT=SECONDS. The lock is freed when its process ends "
            f"({held.path}).",
        )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"process {os.getpid()}: {doing}\n".encode())
    held.fd = fd


@contextlib.contextmanager
def checkout_lock(root: Path, doing: str) -> Iterator[None]:
    """Hold the checkout's stamping lock for the block (``doing`` names this run to others).

    Waits up to ``RELEASEKIT_LOCK_TIMEOUT`` seconds (default 600) for another process's
    run to finish, then raises :class:`CheckoutLocked`.
    """
    path = lock_path(root)
    with _REGISTRY:
        held = _HELD.setdefault(path, _Held(path))
    with held.mutex:
        if held.holders == 0:
            _acquire(held, doing, _timeout())
        held.holders += 1
    try:
        yield
    finally:
        with held.mutex:
            held.holders -= 1
            if held.holders == 0:
                _unlock(held.fd)
                os.close(held.fd)
                held.fd = -1
