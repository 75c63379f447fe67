"""Rehearse a whole release against two throwaway local indexes standing in for TestPyPI and
PyPI: build, check, upload, verify, upload again (idempotence), audit. No real index is written to,
no token is needed, and the project's files are left as they were."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from releasekit._audit import audit
from releasekit._build import build
from releasekit._buildservers import reused_build_processes
from releasekit._check import check
from releasekit._distributions import find_distributions, single_version
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._upload import upload
from releasekit._verify import verify
from releasekit._workspace import dependency_order
from releasekit.credentials import Credentials, mint_token, token_credentials
from releasekit.credentials.signing import LocalTestSigner
from releasekit.errors import ReleasekitError
from releasekit.indexes import PYPI, TESTPYPI, builtin_indexes
from releasekit.indexes.local import LocalIndex


@dataclass(frozen=True)
class Step:
    """One step of the rehearsal: its name, what came of it, and how long it took."""

    name: str
    result: str
    seconds: float


class StandIns:
    """The two local indexes of a rehearsal, each with a synthetic token scoped to
    ``projects``, of the instance it stands in for."""

    def __init__(self, stack: ExitStack, projects: Sequence[str]) -> None:
        self.indexes = {
            name: stack.enter_context(
                LocalIndex(name, mint_token(name, projects=projects), pypi_rules=True)
            )
            for name in (TESTPYPI, PYPI)
        }

    def credentials(self, name: str, project: Project) -> Credentials:
        """Credentials for stand-in ``name``, checked offline exactly as real ones are."""
        stand_in = self.indexes[name]
        return token_credentials(
            stand_in.token, stand_in.index, f"the rehearsal token of {name}", project.name
        )


@contextmanager
def stand_ins(projects: Sequence[str]) -> Iterator[StandIns]:
    """Start the two local indexes; stop them (and delete their files) on exit."""
    with ExitStack() as stack:
        yield StandIns(stack, projects)


def _pipeline(
    project: Project, indexes: StandIns, siblings: Sequence[Project]
) -> list[tuple[str, Callable[[], str]]]:
    """The rehearsal's steps, each a name and a callable that returns a one-line result.

    ``siblings`` are the monorepo's packages (staged): those the project requires are
    verified together with it from the stand-in, as just uploaded there."""
    dependencies = project.index(PYPI)
    # Never Sigstore: its log is public and permanent. The local key exercises the same path,
    # and the stand-ins check the attestations with PyPI's models.
    signer = LocalTestSigner() if project.settings.attestations != "never" else None

    def upload_to(name: str, *, again: bool = False) -> Callable[[], str]:
        def step() -> str:
            stand_in = indexes.indexes[name]
            results = upload(
                project, stand_in.index, indexes.credentials(name, project), signer=signer
            )
            statuses = [r.status for r in results]
            if again and any(status != "already there" for status in statuses):
                raise ReleasekitError(
                    f"Uploading again to the {name} stand-in sent files: {', '.join(statuses)}.",
                    why="A second upload of identical files must skip every one of them.",
                    fix="This is a bug in releasekit's idempotence check; please report it.",
                )
            attested = stand_in.attestations
            return ", ".join(
                f"{r.distribution.filename}: {r.status}"
                + (
                    " with attestation"
                    * (r.status == "uploaded" and r.distribution.filename in attested)
                )
                for r in results
            )

        return step

    def verify_on(name: str) -> Callable[[], str]:
        def step() -> str:
            report = verify(
                project,
                indexes.indexes[name].index,
                timeout=60,
                dependency_index=dependencies,
                siblings=siblings,
            )
            return f"installed with {report.installer}, {len(report.smoke)} smoke command(s) passed"

        return step

    def build_step() -> str:
        return ", ".join(d.filename for d in build(project))

    def check_step() -> str:
        return f"{len(check(project))} files pass"

    def audit_step() -> str:
        version = Version(project.version)
        result = audit(project, indexes.indexes[PYPI].index, pending=[version])
        awaiting = "" if version in result.tagged else f"; {version} awaits its tag from release"
        return f"{len(result.tagged)} tagged, {len(result.dev)} dev{awaiting}"

    return [
        ("build", build_step),
        ("check_dist", check_step),
        ("upload_testpypi", upload_to(TESTPYPI)),
        ("verify_testpypi", verify_on(TESTPYPI)),
        ("upload_pypi", upload_to(PYPI)),
        ("verify_pypi", verify_on(PYPI)),
        ("upload_testpypi again", upload_to(TESTPYPI, again=True)),
        ("upload_pypi again", upload_to(PYPI, again=True)),
        ("audit", audit_step),
    ]


def rehearse(projects: Sequence[Project], *, keep: bool = False) -> list[Step]:
    """Run the release pipeline on ``projects`` against two throwaway local indexes.

    Files are built into a temporary dist dir; dependencies are read (never written) from the
    production index, as a real install would. Returns every step; on a failure, the steps so
    far are reported and the error is raised. With ``keep``, the indexes keep running (their
    URLs are shown) until interrupted.
    """
    reporter = get_reporter()
    steps: list[Step] = []
    names = [project.name for project in projects]
    with (
        stand_ins(names) as indexes,
        tempfile.TemporaryDirectory(prefix="releasekit-rehearse-") as tmp,
    ):
        urls = ", ".join(f"{name} at {i.simple_url}" for name, i in indexes.indexes.items())
        reporter.info(f"Rehearsing against throwaway local indexes: {urls}.")
        staged = [
            dataclasses.replace(
                project,
                settings=dataclasses.replace(
                    project.settings, dist_dir=str(Path(tmp) / project.normalized_name)
                ),
            )
            for layer in dependency_order(projects)
            for project in layer
        ]
        try:
            with reused_build_processes():  # one backend process for many packages
                for project in staged:
                    for name, action in _pipeline(project, indexes, staged):
                        label = f"{project.name}: {name}" if len(projects) > 1 else name
                        reporter.info(f"— {label}")
                        started = time.perf_counter()
                        try:
                            result = action()
                        except ReleasekitError:
                            steps.append(Step(label, "FAILED", time.perf_counter() - started))
                            raise
                        steps.append(Step(label, result, time.perf_counter() - started))
        finally:
            total = sum(step.seconds for step in steps)
            reporter.table(
                f"Rehearsal: {len(steps)} steps in {total:.1f} s",
                ("step", "result", "seconds"),
                [(s.name, s.result, f"{s.seconds:.2f}") for s in steps],
            )
        reporter.success("Rehearsal passed: this project can be released as it is.")
        if keep:
            _serve_until_interrupted(indexes, staged)
    return steps


def _serve_until_interrupted(indexes: StandIns, projects: Sequence[Project]) -> None:
    reporter = get_reporter()
    with environment_file(indexes) as env_file:
        for name, stand_in in indexes.indexes.items():
            reporter.info(f"{name} stand-in: {stand_in.simple_url} (upload {stand_in.upload_url})")
        reporter.info(
            f"Their URLs and tokens are in {env_file} (mode 600; the tokens are never shown). "
            "To upload to the stand-ins and verify there with releasekit, load it into the "
            "shell, then run the sessions as usual:\n"
            f"  POSIX shells:  set -a; . '{env_file}'; set +a\n"
            f"  PowerShell:    Get-Content '{env_file}' | ForEach-Object {{ $n, $v = $_ -split "
            "'=', 2; Set-Item \"env:$n\" $v }\n"
            "  then:          nox -s upload_testpypi verify_testpypi\n"
            "While it is loaded, `pypi` means the PyPI stand-in everywhere (also for the "
            "dependencies verify installs)."
        )
        for project in projects:
            version = single_version(find_distributions(project.dist_dir, project.name))
            for name, stand_in in indexes.indexes.items():
                reporter.info(
                    f"Install {project.name} from the {name} stand-in (reading needs no "
                    f"credentials): python -m pip install --no-deps --index-url "
                    f"{stand_in.simple_url} {project.name}=={version}"
                )
        reporter.info("The indexes keep running; press Ctrl-C to stop them.")
        stopped = threading.Event()
        try:
            while not stopped.wait(3600):
                pass
        except KeyboardInterrupt:
            reporter.info("Stopped the rehearsal indexes.")


@contextmanager
def environment_file(indexes: StandIns) -> Iterator[Path]:
    """A ``NAME=value`` file (mode 600, in a private temp dir, removed on exit) with each
    stand-in's URL variables and its token in the index's token variable."""
    lines = []
    for name, stand_in in indexes.indexes.items():
        token_env = builtin_indexes()[name].token_env or f"{stand_in.index.env_prefix}TOKEN"
        variables = {**stand_in.environ(), token_env: stand_in.token}
        lines += [f"{key}={value}\n" for key, value in variables.items()]
    directory = Path(tempfile.mkdtemp(prefix="releasekit-rehearse-env-"))  # mode 700
    path = directory / ".releasekit-rehearse.env"
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as env:
            env.writelines(lines)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
