"""A fresh, isolated environment: the package installed only from the index under test, its
dependencies only from the production index, ambient pip/uv configuration ignored; probed and
smoke-tested there."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from releasekit._distributions import Distribution, applicable_requirements
from releasekit._process import find_uv, run
from releasekit._report import get_reporter
from releasekit._workspace import Sibling
from releasekit.credentials import netrc_for, scrubbed_environ
from releasekit.errors import VerifyError
from releasekit.indexes import Index

_log = logging.getLogger(__name__)

#: Variables of pip and uv that cannot widen where packages come from; all others are removed.
_KEPT_INSTALLER_VARS = frozenset(
    {"UV_CACHE_DIR", "UV_NO_CACHE", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT"}
)
_DROPPED_VARS = frozenset({"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "NETRC"})

# Run in the verify environment's interpreter with -I: the installed distribution's version,
# its requirements, and its top-level modules (top_level.txt, else inferred from its files).
_PROBE = """
import json, re, sys
from importlib import metadata
canon = lambda s: re.sub(r"[-_.]+", "-", s).lower()
name = sys.argv[1]
dist = metadata.distribution(name)
tops = sorted(
    top for top, owners in metadata.packages_distributions().items()
    if top.isidentifier() and any(canon(owner) == canon(name) for owner in owners)
)
print(json.dumps({"version": dist.version, "requires": dist.requires or [], "modules": tops}))
"""

_IMPORT = """
import importlib, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
    print("imported", module)
"""


@dataclass(frozen=True)
class SmokeResult:
    """One smoke command that passed: the command, its output, and how long it took."""

    command: str
    output: str
    seconds: float


@dataclass(frozen=True)
class Probe:
    """What the verify environment says about the installed package."""

    version: str
    modules: list[str]
    dependencies: list[str]


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
        env["PATH"] = os.pathsep.join([str(_bin_dir(venv)), env.get("PATH", os.defpath)])
    return env


def _bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


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
        self.python = _bin_dir(venv) / ("python.exe" if os.name == "nt" else "python")

    @classmethod
    def create(cls, workdir: Path) -> VerifyEnvironment:
        """Create the environment (``RELEASEKIT_NO_UV=1`` forces the pip fallback)."""
        uv = find_uv()
        venv = workdir / "venv"
        if uv:
            command = [uv, "venv", "--no-config", "--quiet", "--python", sys.executable, str(venv)]
        else:
            command = [sys.executable, "-m", "venv", str(venv)]
            if _outer_pip():
                command.insert(3, "--without-pip")
        env = cls(workdir, venv, uv)
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
    ) -> Probe:
        """Install ``name==version`` from ``index`` (hash-pinned), then its dependencies from
        ``dependency_index``, then check the environment is consistent.

        ``siblings`` (monorepo packages released together with it) are installed with it,
        each pinned to its version and the sha256 of its files, from ``index`` too; the
        dependencies of all of them from ``dependency_index``. ``index_credentials`` are the
        read credentials of a private ``index`` (default: a user and password given in its
        URL): the installer gets them only through a mode-600 netrc file for that step
        (:func:`netrc_for`).
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
            self._run(
                [
                    *self._pip("install"),
                    "--no-deps",
                    "--require-hashes",
                    "--index-url",
                    index.simple_url,
                    *(
                        part
                        for n, _v, _files in together
                        for part in ("--refresh-package", n)
                        if self.uv
                    ),
                    "-r",
                    str(requirements),
                ],
                f"Installing {shown} from {index.display}",
                why="The index lists the files but could not serve an installable one for "
                "this interpreter, or the files it served were not the ones built here.",
                fix="Read the installer's output above.",
                extra=netrc,
            )
        probe = self.probe(name)
        dependencies = runtime_requirements(probe.dependencies)
        installed = {canonicalize_name(n) for n, _v, _files in together}
        wanted = dict.fromkeys(
            requirement
            for requires in [
                probe.dependencies,
                *(self.probe(s.name).dependencies for s in siblings),
            ]
            for requirement in runtime_requirements(requires)
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
        self._run(
            self._pip("check"),
            f"Checking the dependencies of {pin}",
            why="An installed requirement is missing or has a conflicting version.",
            fix="Correct the requirements in [project] dependencies.",
        )
        return Probe(probe.version, probe.modules, dependencies)

    def probe(self, name: str) -> Probe:
        """The installed version, requirements and top-level modules of ``name``."""
        output = self._run(
            [str(self.python), "-I", "-c", _PROBE, name], f"Reading the metadata of {name}"
        )
        data = json.loads(output.strip().splitlines()[-1])
        return Probe(str(data["version"]), list(data["modules"]), list(data["requires"]))

    def smoke_test(
        self, name: str, version: str, modules: Sequence[str], commands: Sequence[str]
    ) -> list[SmokeResult]:
        """Import ``modules``, check the installed version, then run each smoke command."""
        reporter = get_reporter()
        if modules:
            self._run(
                [str(self.python), "-I", "-c", _IMPORT, *modules],
                f"Importing {', '.join(modules)}",
                why="The installed package fails to import: a missing file or dependency.",
                fix="Read the traceback above; check what the wheel contains "
                "(`unzip -l dist/*.whl`).",
            )
        installed = self.probe(name).version
        if installed != version:
            raise VerifyError(
                f"The verify environment has {name} {installed}, not {version}.",
                why="The index served another version than the one built here.",
                fix="Check the files on the index and the dist dir.",
            )
        reporter.success(f"{name} {version} imports ({', '.join(modules) or 'no modules'}).")
        results = []
        for command in commands:
            started = time.perf_counter()
            result = run(  # noqa: S604 - the project's own configured shell commands
                command,
                cwd=self.workdir,
                env=installer_environ(self.venv),
                merge_output=True,
                shell=True,
            )
            reporter.output(f"$ {command}  (exit {result.returncode})", result.stdout)
            if result.returncode != 0:
                raise VerifyError(
                    f"Smoke command `{command}` exited {result.returncode}.",
                    why="The installed package does not work as the smoke command expects "
                    "(its output is above).",
                    fix="Fix the package or the command in [tool.releasekit] smoke, then "
                    "release a new version.",
                )
            results.append(SmokeResult(command, result.stdout, time.perf_counter() - started))
        return results

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
            get_reporter().output(f"{what} failed; its output:", result.stdout + result.stderr)
            raise VerifyError(
                f"{what} failed (exit {result.returncode}).",
                why=why or "The command's output is shown above.",
                fix=fix or "Correct what the output names, then verify again.",
            )
        return result.stdout


def _outer_pip() -> bool:
    """True when this interpreter has pip (it can then install into a venv without its own)."""
    from importlib.util import find_spec

    return find_spec("pip") is not None
