"""Shared build environments: one per set of build requirements, made once by uv, reused.

Packages whose build requirements (``[build-system] requires`` plus what the backend's
``get_requires_for_build_sdist``/``_wheel`` hooks add) are the same build in one
environment, kept under the user's cache directory (``RELEASEKIT_BUILD_ENVS`` overrides it)
in a folder named after a hash of the sorted requirements and the interpreter. The hooks are
called there by ``_pep517/_driver.py``: the sdist from the source tree, then the wheel from
the unpacked sdist, as an isolated build does, without making an environment for each.
Inside :func:`releasekit._buildservers.reused_build_processes`, the packages of a monorepo
whose backend allows it build one after the other in the same process.

An environment is made in a temporary folder and renamed into place as a new generation
beside the old ones (:mod:`releasekit._buildcache`: of two processes making the same one, one
wins and the other uses it; none is removed while a build may be using it); threads of one
process make each one once. A new one is made when no generation is complete, intact (its
interpreter and installed distributions all there) and less than a day old (a new backend
release is picked up as an isolated build would). Its bytecode is compiled when it is made,
so no build compiles the backend again. No credential reaches uv or the backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from releasekit._buildcache import (
    MAX_AGE,
    cache_root,
    clean,
    generations,
    next_generation,
    python_of,
    read_marker,
    write_marker,
)
from releasekit._buildservers import ServerEnded, reusable, served_build
from releasekit._process import run
from releasekit._project import read_pyproject

#: Requirements of a project without ``[build-system]`` (PEP 517's fallback).
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
_SCHEMA = 3
_DRIVER = Path(__file__).with_name("_pep517") / "_driver.py"
_MARK = "@releasekit-hooks-result:"
_NOT_INSTALLED = 3
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class Unavailable(Exception):
    """No shared environment could be made (the caller builds in isolation instead)."""


@dataclass(frozen=True)
class SharedEnv:
    """A ready environment: its folder, interpreter and installed distributions."""

    folder: Path
    python: Path
    requires: tuple[str, ...]
    installed: Mapping[str, str]

    def satisfies(self, requires: Sequence[str]) -> bool:
        """Whether every one of ``requires`` (for this interpreter) is installed here."""
        for line in requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                return False
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            version = self.installed.get(canonicalize_name(requirement.name))
            if version is None or requirement.url or requirement.extras:
                return False
            if not requirement.specifier.contains(version, prereleases=True):
                return False
        return True


def build_system(root: Path) -> tuple[list[str], str, list[str]]:
    """The static ``requires``, the ``build-backend`` and its ``backend-path`` of ``root``."""
    pyproject = root / "pyproject.toml"
    data = read_pyproject(pyproject) if pyproject.is_file() else {}
    system = data.get("build-system")
    if not isinstance(system, dict) or "build-backend" not in system:
        requires = system.get("requires") if isinstance(system, dict) else None
        return list(requires or DEFAULT_REQUIRES), DEFAULT_BACKEND, []
    return (
        [str(line) for line in system.get("requires", [])],
        str(system["build-backend"]),
        [str(path) for path in system.get("backend-path", [])],
    )


def env_key(requires: Sequence[str]) -> str:
    """The folder name of the environment for ``requires`` on this interpreter."""
    key = {
        "schema": _SCHEMA,
        "requires": sorted({line.strip() for line in requires}),
        "python": sys.version,
        "executable": os.path.realpath(sys.executable),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _load(folder: Path, key: str) -> SharedEnv | None:
    """The environment at ``folder`` when it is complete, intact and young enough."""
    marker = read_marker(folder, key, MAX_AGE)
    if marker is None:
        return None
    return SharedEnv(folder, python_of(folder), marker.requires, marker.installed)


def _newest(keydir: Path, key: str) -> SharedEnv | None:
    """The newest generation in ``keydir`` that is complete, intact and young enough."""
    for folder in generations(keydir):
        ready = _load(folder, key)
        if ready is not None:
            return ready
    return None


def _make(
    keydir: Path, key: str, requires: Sequence[str], uv: str, cwd: Path, env: Mapping[str, str]
) -> SharedEnv:
    """Make the environment for ``requires`` in a temporary folder, rename it to the next
    generation in ``keydir`` (or use the one a concurrent maker put there first), then clean
    the cache. Raises :class:`Unavailable`."""
    partial = keydir.with_name(f".{key}-{uuid.uuid4().hex[:12]}")
    steps = [
        [uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(partial)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(python_of(partial)),
            *requires,
        ],
    ]
    try:
        for command in steps[: 2 if requires else 1]:
            result = run(command, cwd=cwd, env=env, merge_output=True)
            if result.returncode != 0:
                raise Unavailable(f"{' '.join(command[:3])} failed: {result.stdout.strip()}")
        write_marker(partial, key, requires)
        ready: SharedEnv | None = None
        for _ in range(3):  # of concurrent makers, the first to rename its folder wins
            target = next_generation(keydir)
            ready = _newest(keydir, key)  # made by another while this one was made
            if ready is None:
                with contextlib.suppress(OSError):
                    os.rename(partial, target)  # never over another one
                    ready = _load(target, key)
            if ready is not None:
                break
    except OSError as exc:
        raise Unavailable(str(exc)) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if ready is None:
        raise Unavailable(f"no environment in {keydir} is usable after making one")
    clean(keydir.parent, key, ready.folder)
    return ready


def shared_env(requires: Sequence[str], uv: str, cwd: Path, env: Mapping[str, str]) -> SharedEnv:
    """The environment for ``requires``: its newest generation, or one made now when there
    is none (or only damaged or old ones). Raises :class:`Unavailable` when it cannot be made."""
    key = env_key(requires)
    keydir = cache_root() / key
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        ready = _newest(keydir, key)
        if ready is None:
            try:
                keydir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise Unavailable(str(exc)) from None
            ready = _make(keydir, key, sorted(set(requires)), uv, cwd, env)
        return ready


@dataclass(frozen=True)
class HookResult:
    """One run of the driver: its exit status, output, and what it reported."""

    returncode: int
    output: str
    requires: list[str]
    built: dict[str, str]


class HookFailed(Exception):
    """The backend failed in the shared environment; ``output`` is what it printed."""

    def __init__(self, output: str, returncode: int) -> None:
        super().__init__(f"the build backend exited {returncode}")
        self.output = output
        self.returncode = returncode


def _result(returncode: int, output: str, report: Mapping[str, object]) -> HookResult:
    requires = report.get("requires", [])
    return HookResult(
        returncode,
        output,
        [str(r) for r in requires] if isinstance(requires, list) else [],
        {
            kind: name
            for kind, name in report.items()
            if kind != "requires" and isinstance(name, str)
        },
    )


@dataclass(frozen=True)
class _Build:
    """What one build needs: the backend, the tree, where files go, and the environment."""

    backend: str
    paths: list[str]
    root: Path
    outdir: Path
    uv: str
    env: Mapping[str, str]

    def call(self, shared: SharedEnv, kinds: str, source: Path, check: bool) -> HookResult:
        outdir = str(self.outdir.resolve())
        if reusable(self.backend, self.paths):
            request = {"kinds": kinds, "source": str(source), "outdir": outdir, "check": check}
            try:
                served = served_build(shared.python, self.backend, self.env, request)
            except ServerEnded as exc:
                raise HookFailed(exc.output, exc.returncode) from None
            if served is not None:
                return _result(*served)
        command = [
            str(shared.python), str(_DRIVER), kinds, str(source), outdir,
            self.backend, json.dumps(self.paths), "check" if check else "trust",
        ]  # fmt: skip
        result = run(command, cwd=self.root, env=self.env, merge_output=True)
        report: dict[str, object] = {}
        for line in result.stdout.splitlines():
            if line.startswith(_MARK):
                with contextlib.suppress(ValueError):
                    report = json.loads(line[len(_MARK) :])
        return _result(result.returncode, result.stdout, report)

    def one(self, shared: SharedEnv, kinds: str, source: Path) -> dict[str, str]:
        """Build ``kinds`` from ``source``, moving to an environment with the backend's
        dynamic requirements when ``shared`` lacks them."""
        check = True
        for _ in range(3):
            result = self.call(shared, kinds, source, check)
            if result.returncode == _NOT_INSTALLED:
                if shared.satisfies(result.requires):
                    check = False  # installed: the driver could not tell (no packaging there)
                else:
                    wanted = [*shared.requires, *result.requires]
                    shared = shared_env(wanted, self.uv, self.root, self.env)
                continue
            if result.returncode != 0 or not all(k in result.built for k in kinds.split("+")):
                raise HookFailed(result.output, result.returncode)
            return result.built
        raise Unavailable(f"the backend's {kinds} requirements keep changing")


def build_in_shared_env(
    root: Path, outdir: Path, uv: str, env: Mapping[str, str], *, sdist_only: bool = False
) -> None:
    """Build the sdist of the tree ``root`` into ``outdir``, then (not with ``sdist_only``)
    the wheel from that sdist, in the shared environment the build requirements call for.

    Both are built in one process when that is safe: the backend neither comes from the tree
    (``backend-path``) nor runs the project's code as it loads (setuptools); else each in a
    fresh one, as PEP 517 front ends do. Inside ``reused_build_processes()``, that process
    may be one that built another package before (:mod:`releasekit._buildservers`).
    Raises :class:`Unavailable` when no environment could be made, :class:`HookFailed` when
    the backend fails.
    """
    requires, backend, paths = build_system(root)
    job = _Build(backend, paths, root, outdir, uv, env)
    shared = shared_env(requires, uv, root, env)
    if sdist_only:
        job.one(shared, "sdist", root)
        return
    if not paths and not backend.startswith("setuptools"):
        job.one(shared, "sdist+wheel", root)
        return
    sdist = job.one(shared, "sdist", root)["sdist"]
    job.one(shared, "wheel", outdir / sdist)
