"""Child processes: the one way releasekit starts a program, and the tools it runs (uv).

Every child gets an environment without credentials
(:func:`releasekit.credentials.environment.child_environ`: by default this process's
environment, else the one given, either way with every credential removed by name and by
value), and its command is logged (redacted) for the verbose trail.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from releasekit.credentials.environment import child_environ

_log = logging.getLogger(__name__)
_UV_LOCK = threading.Lock()


def _shown(part: str) -> str:
    lines = part.strip().count("\n") + 1
    return f"<script of {lines} lines>" if lines > 1 else part


def _log_command(command: Sequence[str] | str, cwd: Path) -> None:
    if isinstance(command, str):
        shown = command
    else:
        shown = shlex.join(_shown(str(part)) for part in command)
    _log.debug("$ %s  (in %s)", shown, cwd)


def run(
    command: Sequence[str] | str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    merge_output: bool = False,
    shell: bool = False,
    encoding: str | None = None,
    errors: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` and wait for it; its output is captured as text.

    The child gets ``env`` (default: this environment), without credentials; its stdin is
    ``input``, else empty. ``merge_output`` sends stderr into stdout; ``shell`` runs a
    command line through the shell (the project's own smoke commands). Never raises for an
    exit status: the caller reads ``returncode``. An :class:`OSError` (no such program)
    passes through.
    """
    _log_command(command, cwd)
    return subprocess.run(
        command,
        cwd=cwd,
        env=child_environ(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        shell=shell,
        text=True,
        encoding=encoding,
        errors=errors,
        check=False,
    )


def start(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in ``cwd`` with pipes to its stdin and stdout, for streaming.

    Its environment is as in :func:`run`; the caller writes, reads and waits.
    """
    _log_command(command, cwd)
    return subprocess.Popen(
        command, cwd=cwd, env=child_environ(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


def find_uv() -> str | None:
    """Path of the uv binary (the ``uv`` package's, else one on PATH), or None.

    Looked up once, under a lock: several packages build at once in a monorepo, and the
    ``uv`` package's lookup reads ``sysconfig``, whose first use is not thread-safe.
    ``RELEASEKIT_NO_UV=1`` makes it None (the pip and pypa/build fallbacks).
    """
    if os.environ.get("RELEASEKIT_NO_UV"):
        _log.debug("RELEASEKIT_NO_UV is set: not using uv")
        return None
    with _UV_LOCK:
        uv = _locate_uv()
    if uv is None:
        _log.debug("uv not found: falling back to pip and pypa/build")
    return uv


@functools.cache
def _locate_uv() -> str | None:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")
