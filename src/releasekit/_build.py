"""Build an sdist and a wheel into the dist dir: in a shared build environment made by uv
(:mod:`releasekit._buildenv`), else isolated by ``uv build``, else by pypa/build."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from packaging.version import Version

from releasekit._backend import build_leftovers, version_override_env
from releasekit._buildenv import HookFailed, Unavailable, build_in_shared_env
from releasekit._distributions import Distribution, check_dist_dir, parse_filename
from releasekit._git import Repository
from releasekit._process import find_uv, run
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._tarballs import clamp_times
from releasekit.credentials import scrubbed_environ
from releasekit.errors import BuildError, GitError

_log = logging.getLogger(__name__)
_SAID_ISOLATED = threading.Event()


def build_command(source: Path, outdir: Path, *, sdist_only: bool = False) -> list[str]:
    """The command that builds ``source`` into ``outdir``: sdist first, then the wheel from it
    (not with ``sdist_only``)."""
    only = ["--sdist"] if sdist_only else []
    uv = find_uv()
    if uv:
        return [
            uv,
            "build",
            "--quiet",
            "--python",
            sys.executable,
            "--out-dir",
            str(outdir),
            *only,
            str(source),
        ]
    return [sys.executable, "-m", "build", "--outdir", str(outdir), *only, str(source)]


def build_environ(project: Project) -> dict[str, str]:
    """The build's environment: no credentials, and ``SOURCE_DATE_EPOCH`` (unless already
    set) from the last commit, so that a rebuild of the same commit gives the same bytes."""
    env = scrubbed_environ(project)
    if "SOURCE_DATE_EPOCH" not in env:
        try:
            repository = Repository.find(project.root)
            stamp = repository.run("log", "-1", "--format=%ct").strip() if repository else ""
        except GitError:
            stamp = ""
        if stamp.isdigit():
            env["SOURCE_DATE_EPOCH"] = stamp
    return env


def stale_files(project: Project) -> list[Path]:
    """This project's distribution files already in the dist dir (others are left alone)."""
    if not project.dist_dir.is_dir():
        return []
    return [
        path
        for path in sorted(project.dist_dir.iterdir())
        if (parsed := parse_filename(path.name)) and parsed[0] == project.normalized_name
    ]


def _check_built_version(project: Project, built: list[Path]) -> None:
    """Refuse files that do not carry the version the project had when the build began."""
    wrong = [
        path.name
        for path in built
        if (parsed := parse_filename(path.name)) and parsed[1] != Version(project.version)
    ]
    if wrong:
        raise BuildError(
            f"The build of {project.name} {project.version} produced files of another version: "
            f"{', '.join(wrong)}. The dist dir was left as it was.",
            why="The version files changed while the build ran: another run set a version in "
            "this checkout (build --version, release) or something edited them.",
            fix="Run one build at a time per checkout (stamping runs wait for each other; a "
            "plain build does not), check `git status`, then build again.",
        )


def _failed(project: Project, front_end: str, returncode: int, output: str) -> BuildError:
    get_reporter().output(f"{front_end} output:", output)
    return BuildError(
        f"Building {project.name} failed ({front_end} exited {returncode}).",
        why="The build backend reported the error shown above.",
        fix="Fix the error it names; `python -m build` in the project reproduces it.",
    )


def _shared_build(
    project: Project, outdir: Path, environ: dict[str, str], *, sdist_only: bool
) -> bool:
    """Build in the shared environment for the project's build requirements: the sdist from
    the tree, the wheel from the sdist. False (``outdir`` left empty) when there is no uv or
    no environment could be made: the caller builds in isolation (said once per process)."""
    uv = find_uv()
    if uv is None:
        return False
    try:
        build_in_shared_env(project.root, outdir, uv, environ, sdist_only=sdist_only)
    except HookFailed as exc:
        raise _failed(project, "the build backend", exc.returncode, exc.output) from None
    except Unavailable as exc:
        for path in outdir.iterdir():
            path.unlink()
        if not _SAID_ISOLATED.is_set():
            _SAID_ISOLATED.set()
            get_reporter().warn(
                f"No shared build environment ({exc}); building each package in an isolated "
                "environment instead (slower)."
            )
        return False
    return True


def build(project: Project, *, sdist_only: bool = False) -> list[Distribution]:
    """Build ``project`` and return its sdist and wheel (only the sdist with ``sdist_only``:
    a compiled project's wheels are cibuildwheel's), now in the dist dir.

    The build happens in a temporary directory; only when it succeeds are this project's
    stale files removed from the dist dir and the new ones moved in, so a failed build
    loses nothing. The source tree is left as it was (no new ``*.egg-info``, ``.pdm-build``).
    """
    reporter = get_reporter()
    check_dist_dir(project.dist_dir)
    leftovers_before = build_leftovers(project.root)
    with tempfile.TemporaryDirectory(prefix="releasekit-build-") as tmp:
        outdir = Path(tmp)
        started = time.perf_counter()
        environ = {**build_environ(project), **version_override_env(project)}
        try:
            with reporter.status(f"Building {project.name} {project.version}"):
                if not _shared_build(project, outdir, environ, sdist_only=sdist_only):
                    command = build_command(project.root, outdir, sdist_only=sdist_only)
                    front_end = "uv build" if "build" in command[1:2] else "python -m build"
                    result = run(command, cwd=project.root, env=environ)
                    if result.returncode != 0:
                        output = result.stdout + result.stderr
                        raise _failed(project, front_end, result.returncode, output)
        finally:
            for leftover in build_leftovers(project.root) - leftovers_before:
                shutil.rmtree(leftover, ignore_errors=True)
        built = [path for path in sorted(outdir.iterdir()) if parse_filename(path.name)]
        _check_built_version(project, built)
        epoch = environ.get("SOURCE_DATE_EPOCH", "")
        for path in built:
            if epoch.isdigit() and path.name.endswith(".tar.gz") and clamp_times(path, int(epoch)):
                _log.debug("%s: member times clamped to SOURCE_DATE_EPOCH %s", path.name, epoch)
        project.dist_dir.mkdir(parents=True, exist_ok=True)
        for path in stale_files(project):
            path.unlink()
        dists = []
        for path in built:
            target = project.dist_dir / path.name
            shutil.move(str(path), target)
            dists.append(Distribution.from_path(target))
    elapsed = time.perf_counter() - started
    reporter.table(
        f"Built {project.name} in {elapsed:.2f} s into {project.dist_dir}",
        ("file", "size", "sha256"),
        [(d.filename, f"{d.size:,} B", d.sha256) for d in dists],
    )
    return dists
