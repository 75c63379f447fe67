"""A fresh, isolated environment: the package installed only from the index under test, its
dependencies only from the production index, ambient pip/uv configuration ignored; probed and
smoke-tested there."""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import NoReturn
from venv import EnvBuilder

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from releasekit._distributions import Distribution, applicable_requirements
from releasekit._installers import bin_dir, installable_here, installer_environ, stale_answer
from releasekit._polling import Backoff, Deadline, poll
from releasekit._process import find_uv, run
from releasekit._report import get_reporter
from releasekit._workspace import Sibling
from releasekit.credentials import netrc_for
from releasekit.errors import VerifyError
from releasekit.indexes import Index

_log = logging.getLogger(__name__)

# The one child run in the verify environment's interpreter (-I): import the top-level
# modules. The version and scripts are read from the environment's files here (reading them
# there with importlib.metadata would cost four times the interpreter's start-up).
_IMPORT = "import importlib, sys\nfor module in sys.argv[1:]: importlib.import_module(module)"

#: How a stale install is tried again: soon at first, then up to 5 s apart.
RETRY_BACKOFF = Backoff(first=0.2, factor=2.0, cap=1.0, relax_after=30.0, relaxed_cap=5.0)


@dataclass(frozen=True)
class Probe:
    """What the verify environment holds of the installed package."""

    version: str
    modules: list[str]
    dependencies: list[str]


def runtime_requirements(requires: Sequence[str]) -> list[str]:
    """The requirements that apply to this interpreter, markers evaluated, extras' ones dropped."""

    def invalid(line: str, exc: InvalidRequirement) -> VerifyError:
        return VerifyError(
            f"The package declares an invalid requirement {line!r}: {exc}.",
            fix="Correct it in [project] dependencies, then release a new version.",
        )

    wanted = []
    for requirement in applicable_requirements(requires, invalid):
        requirement.marker = None
        wanted.append(str(requirement))
    return wanted


class VerifyEnvironment:
    """A fresh virtual environment in ``workdir``, driven by uv when present, else by pip."""

    def __init__(self, workdir: Path, venv: Path, uv: str | None) -> None:
        self.workdir = workdir
        self.venv = venv
        self.uv = uv
        self.installer = "uv" if uv else "pip"
        self.python = bin_dir(venv) / ("python.exe" if os.name == "nt" else "python")
        self.site_dirs = _site_dirs(venv)

    @classmethod
    def create(cls, workdir: Path) -> VerifyEnvironment:
        """Create the environment (``RELEASEKIT_NO_UV=1`` forces the pip fallback)."""
        uv = find_uv()
        env = cls(workdir, workdir / "venv", uv)
        if uv or _outer_pip():  # no pip needed inside: made here, without a child process
            try:
                EnvBuilder(symlinks=os.name != "nt", with_pip=False).create(env.venv)
            except OSError as exc:
                raise VerifyError(
                    f"Creating the verify environment in {env.venv} failed: {exc}.",
                    why="The temporary directory is not writable, or this Python cannot make "
                    "virtual environments.",
                    fix="Free disk space or set TMPDIR to a writable directory, then verify again.",
                ) from None
        else:
            command = [sys.executable, "-m", "venv", str(env.venv)]
            env._run(command, "Creating the verify environment")
        return env

    def install(
        self,
        name: str,
        version: str,
        dists: Sequence[Distribution],
        index: Index,
        dependency_index: Index,
        *,
        siblings: Sequence[Sibling] = (),
        index_credentials: tuple[str, str] | None = None,
        deadline: Deadline | None = None,
    ) -> Probe:
        """Install ``name==version`` from ``index`` (hash-pinned), then its dependencies from
        ``dependency_index``, then check the environment is consistent.

        ``siblings`` (monorepo packages released together with it) are installed with it,
        each pinned to its version and the sha256 of its files, from ``index`` too; the
        dependencies of all of them from ``dependency_index``. ``index_credentials`` are the
        read credentials of a private ``index`` (default: a user and password given in its
        URL): the installer gets them only through a mode-600 netrc file for that step
        (:func:`netrc_for`). An install that got a stale answer from the index
        (:data:`STALE_ANSWERS`) is tried again until ``deadline`` (default: tried once).
        """
        pin = f"{name}=={version}"
        together = [(name, version, dists), *((s.name, s.version, s.files) for s in siblings)]
        requirements = self.workdir / "package.txt"
        requirements.write_text(
            "".join(
                f"{n}=={v} " + " ".join(f"--hash=sha256:{d.sha256}" for d in files) + "\n"
                for n, v, files in together
            ),
            encoding="utf-8",
        )
        shown = ", ".join(f"{n}=={v}" for n, v, _files in together)
        with (
            get_reporter().status(f"Installing {shown} from {index.display} ({self.installer})"),
            netrc_for(index, index_credentials) as netrc,
        ):
            self._install_fresh(
                [
                    *self._pip("install"),
                    "--no-deps",
                    "--require-hashes",
                    "--index-url",
                    index.simple_url,
                    "-r",
                    str(requirements),
                ],
                f"Installing {shown} from {index.display}",
                # with nothing installable here, a failure is no stale answer: not tried again
                deadline if all(installable_here(f) for _n, _v, f in together) else None,
                netrc,
                [part for n, _v, _files in together for part in ("--refresh-package", n)],
            )
        probes = [self.installed(n) for n, _v, _files in together]
        required = [runtime_requirements(p.dependencies) for p in probes]
        installed = {canonicalize_name(n) for n, _v, _files in together}
        wanted = dict.fromkeys(
            requirement
            for requires in required
            for requirement in requires
            if canonicalize_name(Requirement(requirement).name) not in installed
        )
        if wanted:
            constraints = self.workdir / "constraints.txt"
            constraints.write_text(
                "".join(f"{n}=={v}\n" for n, v, _files in together), encoding="utf-8"
            )
            listing = ", ".join(wanted)
            with (
                get_reporter().status(
                    f"Installing the dependencies of {name} from {dependency_index.display}: "
                    f"{listing}"
                ),
                netrc_for(dependency_index) as netrc,
            ):
                self._run(
                    [
                        *self._pip("install"),
                        "--index-url",
                        dependency_index.simple_url,
                        "-c",
                        str(constraints),
                        *wanted,
                    ],
                    f"Installing the dependencies of {pin} ({listing}) from "
                    f"{dependency_index.display}",
                    why="Dependencies are installed only from the production index, never from "
                    "the index under test (a name there may belong to someone else); one of "
                    "them is missing there or has no matching version.",
                    fix="Publish the dependency on the production index first, or correct the "
                    "requirement, then release a new version. A sibling package of a monorepo "
                    "comes from the index under test only when its new version is built in its "
                    "dist dir and satisfies the requirement.",
                    extra=netrc,
                )
        if any(required):  # with no requirement at all there is nothing to be inconsistent
            self._run(
                self._pip("check"),
                f"Checking the dependencies of {pin}",
                why="An installed requirement is missing or has a conflicting version.",
                fix="Correct the requirements in [project] dependencies.",
            )
        return Probe(probes[0].version, probes[0].modules, required[0])

    def _install_fresh(
        self,
        command: list[str],
        what: str,
        deadline: Deadline | None,
        netrc: dict[str, str],
        refresh: list[str],
    ) -> None:
        """Run the install ``command``; while it fails with a stale answer from the index,
        run it again until ``deadline`` (None: never). Any other failure fails at once.

        uv may answer from its own cache of the index's pages: after a stale answer it is
        run at once with ``refresh`` (its ``--refresh-package`` options), and so on every
        later try. Not on the first: refreshing also makes uv query the interpreter again,
        which costs more than the install itself. pip always asks the index again."""
        env = {**installer_environ(self.venv), **netrc}
        tries: list[subprocess.CompletedProcess[str]] = []
        limit = Deadline(deadline.remaining if deadline else 0.0)
        refresh = refresh if self.uv else []

        def attempt() -> bool | None:
            result = run([*command, *refresh] if tries else command, cwd=self.workdir, env=env)
            cached = not tries and refresh and result.returncode
            if cached and stale_answer(result.stdout + result.stderr):
                _log.debug("uv's first answer was stale: asking the index again at once")
                result = run([*command, *refresh], cwd=self.workdir, env=env)
            tries.append(result)
            if result.returncode == 0:
                return True
            stale = stale_answer(result.stdout + result.stderr)
            if stale is None or deadline is None:
                self._fail(
                    what,
                    result,
                    why="The index lists the files but could not serve an installable one for "
                    "this interpreter, or the files it served were not the ones built here.",
                    fix="Read the installer's output above.",
                )
            if len(tries) == 1 and not limit.expired:
                get_reporter().info(
                    f"The installer got a stale answer ({stale}); trying again for up to "
                    f"{limit.remaining:.0f} s."
                )
            _log.debug("stale answer on try %d: %s", len(tries), stale)
            return None

        if poll(attempt, limit.remaining, RETRY_BACKOFF) is None:
            self._fail(
                what,
                tries[-1],
                why=f"The index lists every file with the right sha256, but in {len(tries)} "
                f"tr{'ies' if len(tries) != 1 else 'y'} over {limit.elapsed:.1f} s the "
                "installer still got a stale answer: a cache in front of the index (its CDN) "
                "still served the project page without the new files, or a file that is not "
                "there yet or has other bytes.",
                fix="Verify again later, or give it more time with `-- --timeout SECONDS`. "
                "Re-uploading is not needed (and not possible).",
            )

    def installed(self, name: str) -> Probe:
        """The installed version, requirements and top-level modules of ``name``, read from
        the environment's files (top_level.txt, else inferred from the files it installed)."""
        dist = self._distribution(name)
        tops = (dist.read_text("top_level.txt") or "").split() or [
            file.parts[0] if len(file.parts) > 1 else inspect.getmodulename(file.name) or ""
            for file in dist.files or ()
        ]
        modules = sorted({top for top in tops if top.isidentifier() and top != "__pycache__"})
        return Probe(dist.version, modules, list(dist.requires or ()))

    def check_installed(self, name: str, version: str, modules: Sequence[str]) -> list[str]:
        """Import ``modules`` in one run of the environment's interpreter and check that the
        environment holds ``version`` of ``name``; returns the distribution's scripts."""
        if modules:
            self._run(
                [str(self.python), "-I", "-c", _IMPORT, *modules],
                f"Importing {', '.join(modules)} from {name}",
                why="The installed package fails to import: a missing file or dependency.",
                fix="Read the traceback above; check what the wheel contains "
                "(`unzip -l dist/*.whl`).",
            )
        dist = self._distribution(name)
        if dist.version != version:
            raise VerifyError(
                f"The verify environment has {name} {dist.version}, not {version}.",
                why="The index served another version than the one built here.",
                fix="Check the files on the index and the dist dir.",
            )
        groups = ("console_scripts", "gui_scripts")
        return sorted(e.name for e in dist.entry_points if e.group in groups)

    def _distribution(self, name: str) -> metadata.Distribution:
        """The installed distribution ``name`` in the environment's site-packages."""
        dist = next(iter(metadata.distributions(name=name, path=self.site_dirs)), None)
        if dist is None:
            raise VerifyError(f"{name} was installed, but is not in {self.venv}'s site-packages.")
        return dist

    def _pip(self, subcommand: str) -> list[str]:
        if self.uv:
            return [self.uv, "pip", subcommand, "--no-config", "--python", str(self.python)]
        if _outer_pip():
            base = [sys.executable, "-m", "pip", "--python", str(self.python)]
        else:
            base = [str(self.python), "-m", "pip"]
        return [*base, subcommand, "--isolated", "--disable-pip-version-check", "--no-input"]

    def _run(
        self,
        command: list[str],
        what: str,
        *,
        why: str = "",
        fix: str = "",
        extra: dict[str, str] | None = None,
    ) -> str:
        env = {**installer_environ(self.venv), **(extra or {})}
        result = run(command, cwd=self.workdir, env=env)
        if result.returncode != 0:
            self._fail(what, result, why=why, fix=fix)
        return result.stdout

    @staticmethod
    def _fail(
        what: str, result: subprocess.CompletedProcess[str], *, why: str = "", fix: str = ""
    ) -> NoReturn:
        get_reporter().output(f"{what} failed; its output:", result.stdout + result.stderr)
        raise VerifyError(
            f"{what} failed (exit {result.returncode}).",
            why=why or "The command's output is shown above.",
            fix=fix or "Correct what the output names, then verify again.",
        )


def _site_dirs(venv: Path) -> list[str]:
    """The site-packages directories of ``venv`` (made for this interpreter's version)."""
    schemes = sysconfig.get_scheme_names()
    scheme = "venv" if "venv" in schemes else "nt" if os.name == "nt" else "posix_prefix"
    base = {"base": str(venv), "platbase": str(venv)}
    return list(
        dict.fromkeys(sysconfig.get_path(key, scheme, base) for key in ("purelib", "platlib"))
    )


def _outer_pip() -> bool:
    """True when this interpreter has pip (it can then install into a venv without its own)."""
    from importlib.util import find_spec

    return find_spec("pip") is not None
