"""Build processes reused from one package of a monorepo to the next.

PEP 517 says a front end SHOULD call each hook in a fresh subprocess, so that a backend may
change process-global state (the environment, the working directory, its module globals)
as it likes. A fresh process per package costs the interpreter's start and the backend's
imports, about four times what a second build in the same process costs (hatchling:
~0.08 s of CPU against ~0.02 s). So inside :func:`reused_build_processes`, a build goes to
a build server (``_pep517/_driver.py serve``) that already runs that shared environment's
python with that backend imported, when it is safe:

* the backend is one known to keep no state from one build to the next
  (:data:`REUSABLE_BACKENDS`; setuptools is not: it runs the project's own ``setup.py``
  in the process, which may change anything) and does not come from the tree
  (``backend-path``: another tree may bring another backend under the same name);
* each build gets its whole environment (``os.environ`` replaced, never on a command line,
  without credentials as every child's) and its own working directory, and the server's
  file descriptors 1 and 2 point at a file of that build's own while it runs, so that
  nothing the backend or its child processes write reaches the protocol channel or
  another build's output.

Every other build, and every build outside the context, runs in a fresh process. Builds
running at once each have a server of their own, up to one per CPU (a build keeps a CPU
busy: more servers would only add starts); a build beyond that waits for one to be idle,
and an idle one goes back to the pool. A server that ends during a build (killed, crashed) fails
that build with what it printed (:class:`ServerEnded`) and is gone: the next build starts
another. Leaving the context, also on an interrupt, ends every server: stdin closed, it
exits; one still running after a few seconds, or busy with a build, is killed with its
process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from releasekit._polling import Backoff, Deadline, poll
from releasekit._process import start, stop_group
from releasekit.credentials.environment import child_environ

#: Backends that keep no state between builds in one process (their import is the cost).
REUSABLE_BACKENDS = frozenset(
    {"hatchling.build", "flit_core.buildapi", "pdm.backend", "poetry.core.masonry.api"}
)
#: Seconds the servers have to exit once their stdin is closed, before they are killed.
CLOSE_SECONDS = 5.0
_DRIVER = Path(__file__).with_name("_pep517") / "_driver.py"


class ServerEnded(Exception):
    """A build server ended during a build; ``output`` is what the build printed."""

    def __init__(self, output: str, returncode: int) -> None:
        super().__init__(f"the build process ended during the build (exit status {returncode})")
        self.output = output
        self.returncode = returncode


Key = tuple[str, str, tuple[tuple[str, str], ...]]


class _Pool:
    """The servers of one :func:`reused_build_processes` context: idle ones by key, busy
    ones, and how many of each key run (at most ``limit``: one per CPU)."""

    def __init__(self, limit: int) -> None:
        self.changed = threading.Condition()
        self.limit = limit
        self.idle: dict[Key, list[subprocess.Popen[bytes]]] = {}
        self.busy: dict[subprocess.Popen[bytes], Key] = {}
        self.running: Counter[Key] = Counter()
        self.closed = False

    def borrow(self, key: Key, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """An idle server for ``key``; else a new one (started with ``env``) unless ``limit``
        of them run already: then the first of those to be idle."""
        with self.changed:
            self.changed.wait_for(
                lambda: self.idle.get(key) or self.running[key] < self.limit or self.closed
            )
            idle = self.idle.get(key)
            if idle:
                server = idle.pop()
                self.busy[server] = key
                return server
            self.running[key] += 1
        python, backend, _ = key
        try:
            server = start([python, str(_DRIVER), "serve", backend], cwd=_DRIVER.parent, env=env)
        except BaseException:
            self._gone(key)
            raise
        with self.changed:
            self.busy[server] = key
        return server

    def give_back(self, server: subprocess.Popen[bytes]) -> None:
        """``server`` is idle again (it is ended when the pool is closed already)."""
        with self.changed:
            key = self.busy.pop(server, None)
            if key is None:  # the pool was closed during its build: it is ended already
                return
            if not self.closed:
                self.idle.setdefault(key, []).append(server)
                self.changed.notify_all()
                return
        _close([server])

    def discard(self, server: subprocess.Popen[bytes]) -> None:
        """``server`` ended, or must: kill what is left of it (unless closing does)."""
        with self.changed:
            key = self.busy.pop(server, None)
        if key is not None:
            _kill(server)
            self._gone(key)

    def _gone(self, key: Key) -> None:
        with self.changed:
            self.running[key] -= 1
            self.changed.notify_all()

    def close(self) -> None:
        """End every server: the idle ones by closing their stdin, the busy ones killed."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
            idle = [server for servers in self.idle.values() for server in servers]
            busy = list(self.busy)
            self.idle.clear()
            self.busy.clear()
        for server in busy:
            _kill(server)
        _close(idle)


def _kill(server: subprocess.Popen[bytes]) -> None:
    """Kill ``server`` (not reaped yet) and its process group, reap it, close its pipes."""
    stop_group(server)
    _close_pipes(server)


def _close_pipes(server: subprocess.Popen[bytes]) -> None:
    for pipe in (server.stdin, server.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _close(servers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Close the stdin of ``servers`` (they exit), wait for them, kill those that do not."""
    for server in servers:
        if server.stdin is not None:
            with contextlib.suppress(OSError):
                server.stdin.close()
    deadline = Deadline(CLOSE_SECONDS)
    for server in servers:
        if poll(server.poll, deadline.remaining, Backoff(first=0.005, cap=0.2)) is None:
            stop_group(server)
        _close_pipes(server)


_GUARD = threading.Lock()
_ACTIVE: list[_Pool] = []  # the pool while a context is open (once per nested context)


@contextlib.contextmanager
def reused_build_processes() -> Iterator[None]:
    """Within this context, builds of allow-listed backends reuse build processes
    (see the module's description); every one of them is ended on leaving it.

    Contexts may nest or be open in several threads at once: they share one pool, closed
    when the last of them is left.
    """
    with _GUARD:
        pool = _ACTIVE[0] if _ACTIVE else _Pool(os.cpu_count() or 1)
        _ACTIVE.append(pool)
    try:
        yield
    finally:
        with _GUARD:
            _ACTIVE.pop()
            last = not _ACTIVE
        if last:
            pool.close()


def reusable(backend: str, paths: Sequence[str]) -> bool:
    """Whether builds with ``backend`` (and its ``backend-path``) may share a process."""
    return backend in REUSABLE_BACKENDS and not paths


def _ask(server: subprocess.Popen[bytes], request: Mapping[str, Any]) -> dict[str, Any] | None:
    """Send ``request`` and read the answer; None when the server ended first."""
    stdin, stdout = server.stdin, server.stdout
    if stdin is None or stdout is None:  # pragma: no cover - both are pipes
        return None
    try:
        stdin.write(json.dumps(request).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        answer = json.loads(line) if line else None
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def served_build(
    python: Path, backend: str, env: Mapping[str, str], request: Mapping[str, Any]
) -> tuple[int, str, dict[str, Any]] | None:
    """Build ``request`` (``kinds``, ``source``, ``outdir``, ``check``: see the driver) with
    ``env`` in a server of ``python`` and ``backend``: its exit status, output and report.

    None when no :func:`reused_build_processes` context is open: the caller builds in a
    fresh process. Raises :class:`ServerEnded` when the server ended during the build.
    """
    with _GUARD:
        pool = _ACTIVE[0] if _ACTIVE else None
    if pool is None:
        return None
    environ = child_environ(env)
    starts = tuple(sorted((k, v) for k, v in environ.items() if k.upper().startswith("PYTHON")))
    key: Key = (str(python), backend, starts)  # what the interpreter reads as it starts
    handle, name = tempfile.mkstemp(prefix="releasekit-build-output-")
    os.close(handle)
    output = Path(name)
    try:
        server = pool.borrow(key, environ)
        try:
            answer = _ask(server, {**request, "env": environ, "output": name})
            text = output.read_text(encoding="utf-8", errors="replace")
        except BaseException:  # interrupted while it builds: nothing of it may outlive us
            pool.discard(server)
            raise
    finally:
        with contextlib.suppress(OSError):
            output.unlink()
    if answer is None:
        pool.discard(server)
        code = server.wait()  # reaped by the discard, or by the close that killed it
        ended = f"The build process (pid {server.pid}) ended during the build (exit status {code})."
        raise ServerEnded(f"{text}\n{ended}\n", code)
    pool.give_back(server)
    report = answer.get("report")
    return int(answer.get("returncode", 1)), text, report if isinstance(report, dict) else {}
