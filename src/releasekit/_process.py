"""Child processes: the tools releasekit runs (uv), found once."""

from __future__ import annotations

import functools
import shutil
import threading

_UV_LOCK = threading.Lock()


def find_uv() -> str | None:
    """Path of the uv binary (the ``uv`` package's, else one on PATH), or None.

    Looked up once, under a lock: several packages build at once in a monorepo, and the
    ``uv`` package's lookup reads ``sysconfig``, whose first use is not thread-safe.
    """
    with _UV_LOCK:
        return _locate_uv()


@functools.cache
def _locate_uv() -> str | None:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")
