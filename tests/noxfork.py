"""``python -m nox`` without paying for its start-up each time: a server process imports nox
and releasekit's sessions once, then forks one child per run. Each child is a new process
(its own pid, environment, working directory, standard streams, exit status and global
state, as a fresh ``python -m nox`` has), only its imports are already done.

Used by ``conftest.run_nox`` on Linux; elsewhere (no ``fork``, or a platform where forking
after these imports is unsafe) ``run_nox`` starts ``python -m nox`` itself.

Run as a script, this file is the server: it reads one JSON request a line on stdin
(``cwd``, ``args``, ``env``, ``output``) and answers on stdout with the child's pid, then
with its exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

#: What the sessions import on their way (their own modules import the rest lazily, and a
#: child imports those as a fresh process would).
PRELOAD = (
    "nox._cli",
    "nox.sessions",
    "nox.command",
    "releasekit.nox",
    "releasekit._build",
    "releasekit._check",
    "releasekit._doctor",
    "releasekit._release",
    "releasekit._rehearse",
    "releasekit._upload",
    "releasekit._verify",
    # Imported, never initialised (keyring picks its backend on first use, from the
    # child's own environment).
    "httpx",
    "keyring",
    "secretstorage",
    "trove_classifiers",
    "twine.commands.check",
    "twine.commands.upload",
)

#: Variables that Python reads only when it starts: a run that sets them differently needs
#: a new interpreter, not a fork.
_STARTUP_VARIABLES = ("PYTHON",)


def supported() -> bool:
    """True where forking the server is safe (Linux: no fork on Windows, and macOS system
    frameworks refuse to run in a child forked after they were loaded), unless
    ``RELEASEKIT_TESTS_NO_FORK`` asks for a new interpreter each run."""
    return sys.platform == "linux" and hasattr(os, "fork") and not _no_fork()


def _no_fork() -> bool:
    return os.environ.get("RELEASEKIT_TESTS_NO_FORK", "") not in ("", "0")


def _startup(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(_STARTUP_VARIABLES)}


class NoxServer:
    """The client side: one server per test process, started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._startup = _startup(os.environ)
        self._lock = threading.Lock()

    def accepts(self, env: Mapping[str, str]) -> bool:
        """True when a child forked from the server is what ``env`` would start: every
        variable Python reads at start-up has the value the server started with."""
        return _startup(env) == self._startup

    def _server(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                env={
                    **{k: v for k, v in os.environ.items() if k not in _startup(os.environ)},
                    **self._startup,
                },
            )
        return self._process

    def run(
        self, cwd: Path, args: tuple[str, ...], env: dict[str, str], output: Path, timeout: float
    ) -> int:
        """Run ``nox *args`` in a forked child; its stdout and stderr go to ``output``.
        Returns the exit status (negative: killed by that signal)."""
        with self._lock:
            server = self._server()
            assert server.stdin is not None and server.stdout is not None
            request = {"cwd": str(cwd), "args": list(args), "env": env, "output": str(output)}
            server.stdin.write(json.dumps(request) + "\n")
            pid = int(json.loads(server.stdout.readline())["pid"])
            expired = threading.Event()

            def kill() -> None:
                expired.set()
                os.kill(pid, 9)

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                answer = server.stdout.readline()
            finally:
                timer.cancel()
            if not answer:
                raise RuntimeError("the nox fork server died")
            if expired.is_set():
                raise subprocess.TimeoutExpired(["nox", *args], timeout)
            return int(json.loads(answer)["returncode"])

    def close(self) -> None:
        """End the server (it exits when its stdin closes)."""
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait()
            self._process = None


# --- the server ------------------------------------------------------------------------------


def _child(request: dict[str, Any], channels: tuple[int, ...]) -> None:
    """In the forked child: become ``python -m nox ARGS`` in ``cwd``; never returns."""
    code = 1
    try:
        for fd in channels:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # found again from this environment (TMPDIR ...) when asked
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(stdin, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(stdin)
        os.close(out)
        import nox.__main__

        sys.argv = [nox.__main__.__file__, *request["args"]]
        sys.path[0] = os.getcwd()  # what `python -m` puts first
        try:
            nox.__main__.main()
            code = 0
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        # The rest of an interpreter's shutdown: non-daemon threads, then atexit.
        threading._shutdown()  # type: ignore[attr-defined]
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream at exit: nothing to flush
                stream.flush()
        os._exit(code)


def _exit_code(code: object) -> int:
    """The status ``SystemExit(code)`` gives, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _serve() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # not installed here: the child imports less
            importlib.import_module(name)
    requests: IO[str] = os.fdopen(os.dup(0), "r")
    replies: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # the children get their own streams; the server writes nowhere
    os.close(devnull)
    channels = (requests.fileno(), replies.fileno())
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, channels)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    _serve()
