"""Verify a release on an index: every file visible and identical, installable, smoke-tested.

The package itself is installed only from the index under test, pinned to the sha256 of the
local files; its dependencies only from the production index. Ambient pip and uv
configuration is ignored, so nothing can come from anywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from releasekit._distributions import Distribution, find_distributions, single_version
from releasekit._polling import Backoff, Deadline, poll
from releasekit._process import find_uv
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.credentials import scrubbed_environ
from releasekit.errors import VerifyError
from releasekit.indexes import PYPI, Index, IndexClient, RetryPolicy, resolve_index

#: How the index is polled: a first look after 0.05 s, then at most 0.4 s apart for the
#: first 30 s, so a new file is noticed within 0.5 s of appearing; then ever longer, up to
#: 5 s apart. A real index lists a new file within seconds (its CDN purges the project's
#: page on upload); a slower one is lagging, and brisk polling would not help. Over the
#: default 300 s timeout this makes about 130 requests for one small page, fewer than
#: polling every 2 s throughout (155).
POLL_BACKOFF = Backoff(first=0.05, factor=2.0, cap=0.4, relax_after=30.0, relaxed_cap=5.0)

#: Variables of pip and uv that cannot widen where packages come from; all others are removed.
_KEPT_INSTALLER_VARS = frozenset(
    {"UV_CACHE_DIR", "UV_NO_CACHE", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT"}
)
_DROPPED_VARS = frozenset({"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX"})

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
class VerifyReport:
    """What :func:`verify` established, and how long each phase took (seconds)."""

    name: str
    version: str
    index: Index
    dependency_index: Index
    files: tuple[Distribution, ...]
    installer: str
    modules: tuple[str, ...]
    dependencies: tuple[str, ...]
    smoke: tuple[SmokeResult, ...]
    visible_after: float
    install_seconds: float
    smoke_seconds: float
    total_seconds: float


def verify(
    project: Project,
    index: Index | str,
    *,
    timeout: float = 300.0,
    dist_dir: Path | None = None,
    dependency_index: Index | None = None,
) -> VerifyReport:
    """Verify the release in the dist dir on ``index`` (an :class:`Index` or its name).

    Waits up to ``timeout`` seconds until every local file is listed with the same sha256,
    then installs that exact version into a fresh isolated environment (the package from
    ``index`` only, its dependencies from ``dependency_index`` only, by default PyPI), checks
    it is consistent, imports its top-level modules, checks its version and runs the
    project's smoke commands. Raises :class:`VerifyError` on any failure.
    """
    started = time.perf_counter()
    dists = find_distributions(dist_dir or project.dist_dir, project.name)
    version = str(single_version(dists))
    configured = project.settings["indexes"]
    if isinstance(index, str):
        index = resolve_index(index, configured)
    if dependency_index is None:
        dependency_index = resolve_index(PYPI, configured)
    reporter = get_reporter()
    visible_after = wait_until_visible(project.name, version, dists, index, timeout)
    reporter.success(
        f"{project.name} {version}: {len(dists)} file{'s' if len(dists) != 1 else ''} "
        f"listed on {index.display} with identical sha256, after {visible_after:.2f} s."
    )
    with tempfile.TemporaryDirectory(prefix="releasekit-verify-") as tmp:
        install_started = time.perf_counter()
        env = VerifyEnvironment.create(Path(tmp))
        probe = env.install(project.name, version, dists, index, dependency_index)
        install_seconds = time.perf_counter() - install_started
        smoke_started = time.perf_counter()
        smoke = env.smoke_test(project.name, version, probe.modules, project.smoke)
        smoke_seconds = time.perf_counter() - smoke_started
    report = VerifyReport(
        name=project.name,
        version=version,
        index=index,
        dependency_index=dependency_index,
        files=tuple(dists),
        installer=env.installer,
        modules=tuple(probe.modules),
        dependencies=tuple(probe.dependencies),
        smoke=tuple(smoke),
        visible_after=visible_after,
        install_seconds=install_seconds,
        smoke_seconds=smoke_seconds,
        total_seconds=time.perf_counter() - started,
    )
    reporter.table(
        f"Verified {project.name} {version} on {index.display}",
        ("phase", "time"),
        [
            (f"visible on {index.name}", f"{report.visible_after:.2f} s"),
            (f"install ({report.installer})", f"{report.install_seconds:.2f} s"),
            (
                f"smoke ({len(report.smoke)} command{'s' if len(report.smoke) != 1 else ''})",
                f"{report.smoke_seconds:.2f} s",
            ),
            ("total", f"{report.total_seconds:.2f} s"),
        ],
    )
    return report


def wait_until_visible(
    name: str, version: str, dists: Sequence[Distribution], index: Index, timeout: float
) -> float:
    """Poll ``index`` until every one of ``dists`` is listed with its sha256; seconds taken.

    A file listed with another sha256 fails at once (indexes never replace a file); files
    still missing when ``timeout`` passes fail with the list of them.
    """
    deadline = Deadline(timeout)
    retry = RetryPolicy(total_seconds=min(RetryPolicy().total_seconds, max(timeout, 1.0)))
    missing: list[Distribution] = list(dists)
    with IndexClient(index, retry=retry) as client:

        def look() -> bool | None:
            missing[:] = _missing_files(client, name, missing, index)
            return True if not missing else None

        if look() is None:
            listing = ", ".join(d.filename for d in missing)
            with get_reporter().status(
                f"Waiting up to {timeout:g} s for {name} {version} on {index.display}; "
                f"not listed yet: {listing}"
            ):
                poll(look, deadline.remaining, POLL_BACKOFF)
    if missing:
        listing = ", ".join(d.filename for d in missing)
        raise VerifyError(
            f"{name} {version} is not on {index.display} after {deadline.elapsed:.1f} s: "
            f"not listed: {listing}.",
            why="The upload did not happen or did not finish, or the index is slow to list "
            "new files.",
            fix=f"Upload it (`nox -s upload_{index.name}`), then verify again; give a slow "
            "index more time with `-- --timeout SECONDS`.",
        )
    return deadline.elapsed


def _missing_files(
    client: IndexClient,
    name: str,
    wanted: Sequence[Distribution],
    index: Index,
) -> list[Distribution]:
    listed = {item.filename: item for item in client.project_files(name)}
    missing = []
    for dist in wanted:
        item = listed.get(dist.filename)
        if item is None:
            missing.append(dist)
            continue
        remote = client.listed_sha256(item, dist.size)
        if remote is None:
            missing.append(dist)
            continue
        if remote != dist.sha256:
            raise VerifyError(
                f"{dist.filename} on {index.display} is not the local file: the index has "
                f"sha256 {remote}, the local file has sha256 {dist.sha256}.",
                why="The dist dir was rebuilt after the upload (a rebuild changes the bytes), "
                "or another upload of this version came first. An index never replaces a file.",
                fix="Bump the version, build, upload and verify again; a version number can "
                "never be reused.",
            )
    return missing


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
    wanted = []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise VerifyError(
                f"The package declares an invalid requirement {line!r}: {exc}.",
                fix="Correct it in [project] dependencies, then release a new version.",
            ) from exc
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
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
        uv = None if os.environ.get("RELEASEKIT_NO_UV") else find_uv()
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
    ) -> Probe:
        """Install ``name==version`` from ``index`` (hash-pinned), then its dependencies from
        ``dependency_index``, then check the environment is consistent."""
        pin = f"{name}=={version}"
        hashes = " ".join(f"--hash=sha256:{d.sha256}" for d in dists)
        requirements = self.workdir / "package.txt"
        requirements.write_text(f"{pin} {hashes}\n", encoding="utf-8")
        with get_reporter().status(f"Installing {pin} from {index.display} ({self.installer})"):
            self._run(
                [
                    *self._pip("install"),
                    "--no-deps",
                    "--require-hashes",
                    "--index-url",
                    index.simple_url,
                    *(["--refresh-package", name] if self.uv else []),
                    "-r",
                    str(requirements),
                ],
                f"Installing {pin} from {index.display}",
                why="The index lists the files but could not serve an installable one for this "
                "interpreter, or the files it served were not the ones built here.",
                fix="Read the installer's output above.",
            )
        probe = self.probe(name)
        dependencies = runtime_requirements(probe.dependencies)
        if dependencies:
            constraints = self.workdir / "constraints.txt"
            constraints.write_text(pin + "\n", encoding="utf-8")
            listing = ", ".join(dependencies)
            with get_reporter().status(
                f"Installing the dependencies of {name} from {dependency_index.display}: {listing}"
            ):
                self._run(
                    [
                        *self._pip("install"),
                        "--index-url",
                        dependency_index.simple_url,
                        "-c",
                        str(constraints),
                        *dependencies,
                    ],
                    f"Installing the dependencies of {pin} ({listing}) from "
                    f"{dependency_index.display}",
                    why="Dependencies are installed only from the production index, never from "
                    "the index under test (a name there may belong to someone else); one of "
                    "them is missing there or has no matching version.",
                    fix="Publish the dependency on the production index first, or correct the "
                    "requirement, then release a new version.",
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
            result = subprocess.run(  # noqa: S602 - the project's own configured shell commands
                command,
                shell=True,
                cwd=self.workdir,
                env=installer_environ(self.venv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
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

    def _run(self, command: list[str], what: str, *, why: str = "", fix: str = "") -> str:
        result = subprocess.run(
            command,
            cwd=self.workdir,
            env=installer_environ(self.venv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
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
