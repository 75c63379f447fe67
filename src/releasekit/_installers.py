"""How installers (uv, pip) are run and understood: an environment without secrets or
ambient configuration, and the answers that mean the index (or its CDN) was stale."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename

from releasekit._distributions import Distribution
from releasekit.credentials import scrubbed_environ

#: Variables of pip and uv that cannot widen where packages come from; all others are removed.
_KEPT_INSTALLER_VARS = frozenset(
    {"UV_CACHE_DIR", "UV_NO_CACHE", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT"}
)
_DROPPED_VARS = frozenset({"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "NETRC"})

#: What pip and uv say when the index, or a cache in front of it, gave them a stale answer
#: though the index lists every file: the project or version not there yet, a file not there
#: yet (404), or other bytes than the listed ones. The install is then tried again.
STALE_ANSWERS = (
    "No matching distribution found",  # pip: the page lists no such version (yet)
    "not found in the package registry",  # uv: no page for the project (yet)
    "there is no version of",  # uv: the page lists no such version (yet)
    "404 Not Found",  # uv: a listed file is not there (yet)
    "HTTP error 404",  # pip: the same
    "Hash mismatch",  # uv: a file's bytes are not the ones built here
    "DO NOT MATCH THE HASHES",  # pip: the same
)


def stale_answer(output: str) -> str | None:
    """The first sentence of the line of an installer's ``output`` that says it got a stale
    answer (None: another failure, such as pip ignoring the version for its Requires-Python)."""
    if "require a different python version" in output:
        return None
    for line in output.splitlines():
        if any(sign in line for sign in STALE_ANSWERS):
            return line.strip().removeprefix("cause: ").removeprefix("ERROR: ").split(". ")[0]
    return None


def installable_here(files: Sequence[Distribution]) -> bool:
    """Whether this interpreter (the verify environment's) can install one of ``files``: an
    sdist, or a wheel with one of its tags."""
    here = _tags_here()
    return any(d.kind == "sdist" or here & parse_wheel_filename(d.filename)[3] for d in files)


@functools.cache
def _tags_here() -> frozenset[Tag]:
    """This interpreter's wheel tags (hundreds of them: worked out once)."""
    return frozenset(sys_tags())


def installer_environ(venv: Path | None = None) -> dict[str, str]:
    """The environment for installers and smoke commands: no secrets, no ambient config.

    Every pip and uv variable that could add or change a package source is removed and pip's
    configuration files are switched off. With ``venv``, its bin dir comes first on PATH.
    """
    env = {
        key: value
        for key, value in scrubbed_environ().items()
        if key not in _DROPPED_VARS
        and (not key.startswith(("PIP_", "UV_")) or key in _KEPT_INSTALLER_VARS)
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONNOUSERSITE"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(bin_dir(venv)), env.get("PATH", os.defpath)])
    return env


def bin_dir(venv: Path) -> Path:
    """The directory of an environment's interpreter and scripts."""
    return venv / ("Scripts" if os.name == "nt" else "bin")
