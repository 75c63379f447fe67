"""Verify a release on an index: every file visible and identical, installable, smoke-tested.

The package itself is installed only from the index under test, pinned to the sha256 of the
local files; its dependencies only from the production index, except the monorepo siblings
released with it, which come from the index under test, pinned the same way. Ambient pip and
uv configuration is ignored, so nothing can come from anywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from releasekit._distributions import Distribution, find_distributions, single_version
from releasekit._installers import installer_environ
from releasekit._polling import Backoff, Deadline, poll
from releasekit._process import run
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._venv import VerifyEnvironment
from releasekit._workdirs import fresh_workdir
from releasekit._workspace import released_siblings
from releasekit.credentials.sources import read_auth
from releasekit.errors import VerifyError
from releasekit.indexes import PYPI, TESTPYPI, Index, IndexClient, ProjectPage, RetryPolicy
from releasekit.indexes.provenance import FileProvenance, read_provenance

_log = logging.getLogger(__name__)

#: How the index is polled: a first look after 0.05 s, then at most 0.4 s apart for the
#: first 30 s, so a new file is noticed within 0.5 s of appearing; then ever longer, up to
#: 5 s apart. A real index lists a new file within seconds (its CDN purges the project's
#: page on upload); a slower one is lagging, and brisk polling would not help. Over the
#: default 300 s timeout this makes about 130 requests for one small page, fewer than
#: polling every 2 s throughout (155).
POLL_BACKOFF = Backoff(first=0.05, factor=2.0, cap=0.4, relax_after=30.0, relaxed_cap=5.0)


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
    provenance: tuple[FileProvenance, ...]
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
    siblings: Sequence[Project] = (),
) -> VerifyReport:
    """Verify the release in the dist dir on ``index`` (an :class:`Index` or its name).

    Waits up to ``timeout`` seconds until every local file is listed with the same sha256,
    then installs that exact version into a fresh isolated environment (the package from
    ``index`` only, its dependencies from ``dependency_index`` only, by default PyPI), checks
    it is consistent, imports its top-level modules, checks its version and runs the
    project's smoke commands. Raises :class:`VerifyError` on any failure.

    ``siblings`` are the other packages of a monorepo: those the project requires whose
    built version satisfies the requirement are installed with it from ``index``, each pinned
    to the sha256 of its local files (:func:`releasekit._workspace.released_siblings`). A
    private index is read with its credentials when it has any.
    """
    started = time.perf_counter()
    if isinstance(index, str):
        index = project.index(index)
    dists = find_distributions(dist_dir or project.dist_dir, project.name)
    version = str(single_version(dists))
    if dependency_index is None:
        dependency_index = project.index(PYPI)
    reporter = get_reporter()
    together = released_siblings(project, siblings)
    credentials = read_auth(index, project.name)
    deadline = Deadline(timeout)
    for sibling in together:
        wait_until_visible(
            sibling.name, sibling.version, sibling.files, index, deadline.remaining, credentials
        )
    page = wait_until_visible(project.name, version, dists, index, deadline.remaining, credentials)
    visible_after = deadline.elapsed
    if together:
        listing = ", ".join(f"{s.name} {s.version}" for s in together)
        reporter.info(
            f"Siblings released with {project.name}, installed from {index.name}: {listing}."
        )
    reporter.success(
        f"{project.name} {version}: {len(dists)} file{'s' if len(dists) != 1 else ''} "
        f"listed on {index.display} with identical sha256, after {visible_after:.2f} s."
    )
    provenance = check_publishers(project, version, dists, index, credentials, page)
    with fresh_workdir() as workdir:
        install_started = time.perf_counter()
        env = VerifyEnvironment.create(workdir)
        probe = env.install(
            project.name,
            version,
            dists,
            index,
            dependency_index,
            siblings=together,
            index_credentials=credentials,
            deadline=deadline,
        )
        install_seconds = time.perf_counter() - install_started
        smoke_started = time.perf_counter()
        scripts = env.check_installed(project.name, version, probe.modules)
        reporter.success(
            f"{project.name} {version} imports ({', '.join(probe.modules) or 'no modules'})"
            + (f"; scripts: {', '.join(scripts)}." if scripts else ".")
        )
        smoke = [smoke_command(env, command) for command in project.smoke]
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
        provenance=tuple(provenance),
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


def smoke_command(env: VerifyEnvironment, command: str) -> SmokeResult:
    """Run the smoke ``command`` through the shell in the verify environment ``env``."""
    started = time.perf_counter()
    result = run(  # noqa: S604 - the project's own configured shell commands
        command,
        cwd=env.workdir,
        env=installer_environ(env.venv),
        merge_output=True,
        shell=True,
    )
    get_reporter().output(f"$ {command}  (exit {result.returncode})", result.stdout)
    if result.returncode != 0:
        raise VerifyError(
            f"Smoke command `{command}` exited {result.returncode}.",
            why="The installed package does not work as the smoke command expects "
            "(its output is above).",
            fix="Fix the package or the command in [tool.releasekit] smoke, then "
            "release a new version.",
        )
    return SmokeResult(command, result.stdout, time.perf_counter() - started)


def check_publishers(
    project: Project,
    version: str,
    dists: Sequence[Distribution],
    index: Index,
    credentials: tuple[str, str] | None = None,
    page: ProjectPage | None = None,
) -> list[FileProvenance]:
    """Read and verify (offline) the provenance of each of ``dists`` on ``index``, and show
    who published each file. ``page`` is the project's page as already read (default: read
    it now); it must list every one of ``dists``.

    With ``expect-publisher`` set, a file whose provenance is missing, does not verify, or
    names another publisher raises :class:`VerifyError`, unless the index offers no
    provenance at all (PEP 740 API version below 1.3: a warning says it was not checked).
    """
    reporter = get_reporter()
    expected = project.settings.expect_publisher
    with IndexClient(index, credentials=credentials) as client:
        if page is None:
            page = client.project_page(project.name)
        listed = {item.filename: item for item in page.files}
        pairs = [(listed[d.filename], d.sha256) for d in dists if d.filename in listed]
        if not page.offers_provenance:
            note = f"{index.display} offers no provenance (PEP 740)"
            if expected:
                reporter.warn(f"{note}: the publisher ({expected}) was not checked.")
            else:
                reporter.info(f"{note}.")
            return []
        found = read_provenance(client, pairs)
    reporter.table(
        f"Who published {project.name} {version} on {index.display}",
        ("file", "publisher"),
        [(p.filename, p.describe()) for p in found],
    )
    if expected is None:
        return found
    problems = [(p.filename, why) for p in found if (why := p.expectation_problem(expected))]
    if problems:
        listing = "; ".join(f"{name}: {why}" for name, why in problems)
        raise VerifyError(
            f"{len(problems)} file{'s' if len(problems) != 1 else ''} of {project.name} "
            f"{version} on {index.display} {'were' if len(problems) != 1 else 'was'} not "
            f"published by {expected}: {listing}.",
            why="expect-publisher says every file must carry provenance from that repository's "
            "trusted publisher. A file without it was uploaded without attestations (with an "
            "API token, or by a tool that does not sign); one from another publisher came from "
            "another repository or workflow, or from a leaked token.",
            fix="Publish from the repository's own workflow with trusted publishing and "
            "attestations (the workflow `nox -s init_ci` writes). If nobody on the team "
            "uploaded these files, follow the incident steps: revoke tokens, check the "
            "trusted publishers on the index, yank the version (docs: incidents).",
        )
    reporter.success(f"Every file was published by {expected} (provenance verified).")
    return found


def wait_until_visible(
    name: str,
    version: str,
    dists: Sequence[Distribution],
    index: Index,
    timeout: float,
    credentials: tuple[str, str] | None = None,
) -> ProjectPage:
    """Poll ``index`` until two reads in a row list every one of ``dists`` with its sha256
    (a cache in front of the index may answer from a stale copy); returns the second read.

    A file listed with another sha256 fails at once (indexes never replace a file); files
    still missing when ``timeout`` passes fail with the list of them.
    """
    deadline = Deadline(timeout)
    retry = RetryPolicy(total_seconds=min(RetryPolicy().total_seconds, max(timeout, 1.0)))
    missing: list[Distribution] = list(dists)
    hashed: dict[str, str] = {}  # files a page lists without a sha256, downloaded and hashed
    listed_once = False
    pages: list[ProjectPage] = []  # the latest read
    with IndexClient(index, retry=retry, credentials=credentials) as client:

        def look() -> bool | None:
            nonlocal listed_once
            missing[:] = _missing_files(client, name, dists, index, hashed, pages)
            if missing:
                return None
            listed_once = True
            missing[:] = _missing_files(client, name, dists, index, hashed, pages)  # 2nd read
            if missing:
                _log.debug("%s listed every file of %s, then not: stale answers", index.name, name)
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
            why="The index listed every file at times but not in two reads in a row: a cache "
            "in front of it (its CDN) still answers from a stale copy."
            if listed_once
            else "The upload did not happen or did not finish, or the index is slow to list "
            "new files.",
            fix=f"Upload it (`nox -s {upload_session(index.name)}`), then verify again; give "
            "a slow index more time with `-- --timeout SECONDS`.",
        )
    return pages[-1]


def _missing_files(
    client: IndexClient,
    name: str,
    wanted: Sequence[Distribution],
    index: Index,
    hashed: dict[str, str],
    pages: list[ProjectPage],
) -> list[Distribution]:
    pages[:] = [client.project_page(name)]  # the latest read
    listed = {item.filename: item for item in pages[-1].files}
    missing = []
    for dist in wanted:
        item = listed.get(dist.filename)
        remote = None
        if item is not None:
            remote = hashed.get(dist.filename) or client.listed_sha256(item, dist.size)
        if item is None or remote is None:
            missing.append(dist)
            continue
        if item.sha256 is None:
            hashed[dist.filename] = remote
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


def upload_session(index: str) -> str:
    """The session (and its arguments) that uploads to the index called ``index``."""
    return f"upload_{index}" if index in (PYPI, TESTPYPI) else f"upload -- --index {index}"
