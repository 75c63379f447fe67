"""Environments for child processes: no credential of any kind reaches them.

A variable is a secret when its name says so (a known credential variable, a configured
``token-env``, or a name with ``TOKEN``, ``PASSWORD``, ``SECRET``, ``API_KEY`` ... as a word)
or when its value does (anything :func:`releasekit._redaction.redact` would mask: a PyPI
token, a JWT such as an OIDC identity token, a URL with a password, a registered secret in any
of its encoded forms). Before a child starts, :func:`seal` takes the credentials releasekit
reads out of ``os.environ`` (into the in-memory store of :mod:`releasekit.credentials.sources`)
and, on Linux, overwrites every secret value in this process's initial environment block,
which ``/proc/<pid>/environ`` shows to any process of the same user, and makes this process
non-dumpable so that its memory (``/proc/<pid>/mem``) and environment cannot be read by
other processes of the same user (docs/tokens.md, "What child processes get").
An installer reading a private index gets its read credentials only through a netrc file
(:func:`netrc_for`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from releasekit._redaction import (
    redact,
    register_secret_variable,
    registrations,
    secret_variables,
)
from releasekit.credentials.sources import held_secrets, refuse_plain_http, take_secret
from releasekit.errors import CredentialError

if TYPE_CHECKING:
    from releasekit._project import Project
    from releasekit.indexes import Index

_log = logging.getLogger(__name__)

#: Variables releasekit itself reads credentials from (besides configured ``token-env``).
READ_SECRET_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_PASSWORD")
#: Environment variables that hold or lead to a credential; no child process ever sees them.
SECRET_ENV_VARS = (
    *READ_SECRET_VARS,
    "TWINE_USERNAME",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RUNTIME_URL",
    "CI_JOB_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "GH_TOKEN",
    "SIGSTORE_ID_TOKEN",
    # GitLab CI's identity tokens (`id_tokens`): each can mint an upload token or a signature.
    "PYPI_ID_TOKEN",
    "TESTPYPI_ID_TOKEN",
)
#: A variable name that says it holds a secret (``TOKEN`` etc. as an ``_``-separated word).
SECRET_NAME_PATTERN = re.compile(
    r"(?:^|_)(?:TOKEN|PASSWORD|PASSWD|SECRET|APIKEY|CREDENTIALS?)(?:_|$)"
    r"|API_KEY|ACCESS_KEY|PRIVATE_KEY|AUTH_HEADER",
    re.IGNORECASE,
)
_PR_SET_DUMPABLE = 4


@dataclass
class _Plain:
    """Variables found to hold no secret (never a secret value), valid while no new secret
    is registered: every child's environment is checked variable by variable."""

    registrations: int = -1
    seen: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_PLAIN = _Plain()
#: For this process: what counted as a secret when the environment block was last sealed.
_SEALED: dict[int, tuple[int, bool]] = {}


def is_secret(name: str, value: str) -> bool:
    """True when variable ``name`` with ``value`` may hold a credential (by name or value)."""
    generation = registrations()
    with _PLAIN.lock:
        if _PLAIN.registrations != generation:
            _PLAIN.seen.clear()
            _PLAIN.registrations = generation
        if (name, value) in _PLAIN.seen:
            return False
    secret = (
        name in SECRET_ENV_VARS
        or name in secret_variables()
        or SECRET_NAME_PATTERN.search(name) is not None
        or (bool(value) and redact(value) != value)
    )
    if not secret:
        with _PLAIN.lock:
            if _PLAIN.registrations == generation and len(_PLAIN.seen) < 4096:
                _PLAIN.seen.add((name, value))
    return secret


def scrubbed_environ(project: Project | None = None) -> dict[str, str]:
    """A copy of the environment without any variable that may hold a credential.

    With ``project``, the ``token-env`` variables of its configured indexes are registered
    first (reading the settings registers them too). Calls :func:`seal` first.
    """
    if project is not None:
        for index in project.settings.indexes.values():
            if index.token_env is not None:
                register_secret_variable(index.token_env)
    return child_environ()


def child_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) without any variable that may hold a
    credential, by name or by value; calls :func:`seal` first. Every child gets this."""
    seal()
    base = os.environ if env is None else env
    return {key: value for key, value in base.items() if not is_secret(key, value)}


def seal() -> None:
    """Take every credential releasekit reads out of ``os.environ`` (kept in memory only),
    and, on Linux, wipe every secret from this process's initial environment block and make
    the process non-dumpable while it holds a secret (no-ops elsewhere)."""
    for name in (*READ_SECRET_VARS, *sorted(secret_variables())):
        if name in os.environ:
            take_secret(name)
    if not sys.platform.startswith("linux"):
        return
    sealed = (registrations(), bool(held_secrets()))
    if _SEALED.get(os.getpid()) == sealed:  # the block was wiped for these very secrets
        return
    wiped = _wipe_initial_environment(is_secret)
    if wiped or held_secrets():
        _no_dumps()
    _SEALED[os.getpid()] = sealed


def _wipe_initial_environment(secret: Callable[[str, str], bool]) -> int:
    """Overwrite with NUL bytes the value of each ``NAME=value`` entry of this process's
    initial environment block (what ``/proc/self/environ`` shows) for which ``secret`` is
    true; returns how many were wiped. ``os.environ`` is a copy and keeps its values; a
    variable still in it is put back with ``putenv`` so C code reading it sees the value."""
    try:
        stat = Path("/proc/self/stat").read_bytes()
        fields = stat[stat.rindex(b")") + 2 :].split()
        start, end = int(fields[47]), int(fields[48])
        block = Path("/proc/self/environ").read_bytes()
    except (OSError, ValueError, IndexError):
        return 0
    if len(block) != end - start:
        return 0
    wiped, offset = 0, 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        here, offset = offset, offset + len(entry) + 1
        text = name.decode(errors="replace")
        if not (sep and value and secret(text, value.decode(errors="replace"))):
            continue
        address = start + here + len(name) + 1
        if ctypes.string_at(address, len(value)) != value:  # the block moved: leave it
            return wiped
        ctypes.memset(address, 0, len(value))
        wiped += 1
        if text in os.environ:
            os.putenv(text, os.environ[text])
    if wiped:
        _log.debug("wiped %d secret value(s) from the initial environment block", wiped)
    return wiped


def _no_dumps() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: other processes of the same user (without
    CAP_SYS_PTRACE) can no longer read this process's memory or environment."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: nothing more can be done here
        return


@contextmanager
def netrc_for(index: Index, credentials: tuple[str, str] | None = None) -> Iterator[dict[str, str]]:
    """``{"NETRC": path}`` for an installer reading ``index`` with ``credentials`` (default:
    the user and password given in its simple URL), else ``{}``: a netrc file of mode 600 in a
    private temporary directory, removed on exit. uv and pip read the file ``NETRC`` names,
    so the password is never on a command line. A password for a plain-http host other than
    this machine is refused."""
    auth = credentials or index.simple_auth
    if auth is None:
        yield {}
        return
    refuse_plain_http(index, index.simple_url, "its read credentials")
    username, password = auth
    if any(char.isspace() or char == '"' for char in username + password):
        raise CredentialError(
            "The username or password for the index contains whitespace or a quote, which a "
            "netrc file cannot carry.",
            why="The installer in the verify environment reads the index's credentials from a "
            "netrc file (never from its command line or environment).",
            fix="Use credentials without whitespace or quotes (a token, for example).",
        )
    directory = Path(tempfile.mkdtemp(prefix="releasekit-netrc-"))  # mode 700
    try:
        path = directory / "netrc"
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as netrc:
            netrc.write(f"machine {index.host}\nlogin {username}\npassword {password}\n")
        yield {"NETRC": str(path)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
