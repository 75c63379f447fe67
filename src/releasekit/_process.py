"""Child processes: the one way releasekit starts a program, and the tools it runs (uv).

Every child gets an environment without credentials
(:func:`releasekit.credentials.environment.child_environ`: by default this process's
environment, else the one given, either way with every credential removed by name and by
value), and its command is logged (redacted) for the verbose trail. Every child starts in a
process group of its own; when waiting for it is interrupted (KeyboardInterrupt, or SIGTERM
turned into SystemExit), the whole group is killed and reaped before the interrupt goes on,
so no backend, hook or installer outlives releasekit. A child waited for in another thread
(a package of a monorepo, on a thread pool) is not interrupted: the interrupted thread
stops every running child with :func:`children_stopped`. The one exception is a command that
may ask at the terminal (``git push`` wanting an SSH passphrase or a password): where this
process has a terminal, it stays in this process's session so that it can ask.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from releasekit.credentials.environment import child_environ

_log = logging.getLogger(__name__)
_UV_LOCK = threading.Lock()
_CHILDREN_LOCK = threading.Lock()
#: The children of :func:`run` and :func:`start` not known to be over, and whether each has a
#: process group of its own (weak: a streaming child is forgotten with its Popen).
_children: weakref.WeakKeyDictionary[subprocess.Popen[Any], bool] = weakref.WeakKeyDictionary()
_stopping = 0  # how many children_stopped blocks are open
if sys.platform == "win32":
    _OWN_GROUP: dict[str, Any] = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
else:
    _OWN_GROUP: dict[str, Any] = {"start_new_session": True}


def _shown(part: str) -> str:
    lines = part.strip().count("\n") + 1
    return f"<script of {lines} lines>" if lines > 1 else part


def _log_command(command: Sequence[str] | str, cwd: Path) -> None:
    if isinstance(command, str):
        shown = command
    else:
        shown = shlex.join(_shown(str(part)) for part in command)
    _log.debug("$ %s  (in %s)", shown, cwd)


def stop_group(process: subprocess.Popen[Any], *, own_group: bool = True) -> None:
    """Kill ``process`` and every process in its group (its children), then reap it.

    ``own_group=False``: the child shares this process's group, so only it is killed.
    """
    if not own_group:
        with suppress(OSError):
            process.kill()
    elif sys.platform == "win32":
        with suppress(OSError):
            process.send_signal(signal.CTRL_BREAK_EVENT)
        with suppress(OSError):
            process.terminate()
    else:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _watch(process: subprocess.Popen[Any], *, own_group: bool) -> None:
    """Count ``process`` among the running children; inside :func:`children_stopped`, it is
    killed at once."""
    with _CHILDREN_LOCK:
        _children[process] = own_group
        stopping = _stopping > 0
    if stopping:
        stop_group(process, own_group=own_group)


@contextmanager
def children_stopped() -> Iterator[None]:
    """Kill every running child of :func:`run` and :func:`start`, in every thread, with its
    process group; inside the block, a child started in the meantime is killed at once.

    For an interrupted thread whose worker threads wait for children: their waits end,
    and no new child of theirs runs while the block waits for them to return.
    """
    global _stopping
    with _CHILDREN_LOCK:
        _stopping += 1
        running = [(p, group) for p, group in _children.items() if p.returncode is None]
    try:
        for process, own_group in running:
            stop_group(process, own_group=own_group)
        yield
    finally:
        with _CHILDREN_LOCK:
            _stopping -= 1


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
    may_prompt: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` and wait for it; its output is captured as text.

    The child gets ``env`` (default: this environment), without credentials; its stdin is
    ``input``, else empty. ``merge_output`` sends stderr into stdout; ``shell`` runs a
    command line through the shell (the project's own smoke commands). Never raises for an
    exit status: the caller reads ``returncode``. An :class:`OSError` (no such program)
    passes through. An interrupt while it runs kills the child's process group first.
    ``may_prompt``: the child may ask the user at the terminal, so when there is one it stays
    in this session (a new session has no terminal to ask at).
    """
    _log_command(command, cwd)
    own_group = not (may_prompt and _has_terminal())
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=child_environ(env),
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        shell=shell,
        text=True,
        encoding=encoding,
        errors=errors,
        **(_OWN_GROUP if own_group else {}),
    ) as process:
        try:
            _watch(process, own_group=own_group)
            stdout, stderr = process.communicate(input)
        except BaseException:
            stop_group(process, own_group=own_group)
            raise
        finally:
            with _CHILDREN_LOCK:
                _children.pop(process, None)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _has_terminal() -> bool:
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except ValueError:  # closed
        return False


def start(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in ``cwd`` with pipes to its stdin and stdout, for streaming.

    Its environment and process group are as in :func:`run`; the caller writes, reads and
    waits (and calls :func:`stop_group` when interrupted). :func:`children_stopped` kills it
    too while it runs.
    """
    _log_command(command, cwd)
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=child_environ(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        **_OWN_GROUP,
    )
    _watch(process, own_group=True)
    return process


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
