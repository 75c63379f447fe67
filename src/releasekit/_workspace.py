"""Several packages of a monorepo at once: independent packages built, checked, uploaded
and verified concurrently, with output that stays readable and every failure listed; a
package after the siblings it requires (dependency order), and the siblings released with it."""

from __future__ import annotations

import email.parser
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from releasekit._archives import inspect
from releasekit._distributions import (
    Distribution,
    applicable_requirements,
    find_distributions,
    single_version,
)
from releasekit._polling import waits_stopped
from releasekit._process import children_stopped
from releasekit._project import Project, read_pyproject
from releasekit._report import captured, get_reporter
from releasekit.errors import ConfigError, DistributionError, PackagesFailed, ReleasekitError

T = TypeVar("T")


def default_jobs(count: int) -> int:
    """How many packages to work on at once (at most ``count``): ``RELEASEKIT_JOBS`` if set,
    else twice the CPUs (the work waits on subprocesses and the network much of the time)."""
    configured = os.environ.get("RELEASEKIT_JOBS", "").strip()
    jobs = int(configured) if configured.isdigit() else 2 * (os.cpu_count() or 1)
    return max(1, min(count, jobs))


def for_each(
    projects: Sequence[Project], action: Callable[[Project], T], *, jobs: int | None = None
) -> list[T]:
    """Run ``action`` on every project, concurrently; results in the order of ``projects``.

    One project runs directly, reporting as it goes. Several run on a thread pool, each
    reporting into its own buffer, which is shown as one block, titled with the package,
    when that package is done. Every package runs to its end even when others fail; then
    one failure is raised as it is, several as :class:`PackagesFailed` listing them all.
    An interrupt (KeyboardInterrupt, SIGTERM's SystemExit) stops them all at once: no
    package starts, every running child is killed (:func:`children_stopped`), every wait
    for an index ends (:func:`waits_stopped`), and the interrupt goes on once every worker
    has returned (what they report is not shown).
    """
    if len(projects) == 1:
        return [action(projects[0])]
    reporter = get_reporter()
    results: dict[int, T] = {}
    failures: dict[int, Exception] = {}

    def task(project: Project) -> tuple[T | None, Exception | None, str]:
        with captured() as buffer:
            try:
                return action(project), None, buffer.getvalue()
            except Exception as exc:
                return None, exc, buffer.getvalue()

    workers = jobs or default_jobs(len(projects))
    reporter.info(f"Working on {len(projects)} packages, up to {workers} at a time.")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="releasekit") as pool:
        futures = {pool.submit(task, project): n for n, project in enumerate(projects)}
        try:
            for future in as_completed(futures):
                number = futures[future]
                project = projects[number]
                result, error, output = future.result()
                if error is None:
                    results[number] = cast(T, result)
                    reporter.output(f"{project.name} ({project.root.name}):", output)
                else:
                    failures[number] = error
                    reporter.output(f"{project.name} ({project.root.name}) failed:", output)
        except BaseException:  # interrupted: stop every package now, say nothing of them
            with children_stopped(), waits_stopped():
                pool.shutdown(cancel_futures=True)
            raise
    if not failures:
        return [results[number] for number in range(len(projects))]
    unexpected = [exc for exc in failures.values() if not isinstance(exc, ReleasekitError)]
    if unexpected:
        raise unexpected[0]
    if len(failures) == 1:
        raise next(iter(failures.values()))
    explained = {projects[n].name: cast(ReleasekitError, failures[n]) for n in sorted(failures)}
    raise PackagesFailed(explained, len(projects))


def requirements_of(project: Project, dist_dir: Path | None = None) -> list[Requirement]:
    """The runtime requirements of ``project`` on this interpreter (extras' ones left out):
    its static ``[project] dependencies``, else the ``Requires-Dist`` of its built wheel (or
    sdist) in ``dist_dir`` (default: the project's), else none."""
    lines: list[str] | None = None
    if project.pyproject.is_file():
        meta = read_pyproject(project.pyproject).get("project")
        if isinstance(meta, dict) and "dependencies" not in meta.get("dynamic", []):
            lines = [str(line) for line in meta.get("dependencies", [])]
    if lines is None:
        lines = _built_requirements(project, dist_dir or project.dist_dir)

    def invalid(line: str, exc: InvalidRequirement) -> ConfigError:
        return ConfigError(
            f"{project.name} declares an invalid requirement {line!r}: {exc}.",
            fix="Correct it in [project] dependencies.",
        )

    return applicable_requirements(lines, invalid)


def _built_requirements(project: Project, dist_dir: Path) -> list[str]:
    try:
        dists = find_distributions(dist_dir, project.name)
    except DistributionError:
        return []
    for dist in sorted(dists, key=lambda d: d.kind != "wheel"):
        metadata = inspect(dist.path).metadata
        if metadata is not None:
            message = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
            return [str(line) for line in message.get_all("Requires-Dist") or []]
    return []


def sibling_requirements(projects: Sequence[Project]) -> dict[str, set[str]]:
    """For each package (by normalised name), the other packages of ``projects`` it requires."""
    names = {project.normalized_name for project in projects}
    return {
        project.normalized_name: {
            name
            for requirement in requirements_of(project)
            if (name := canonicalize_name(requirement.name)) in names
            and name != project.normalized_name
        }
        for project in projects
    }


def dependency_order(projects: Sequence[Project]) -> list[list[Project]]:
    """``projects`` in layers: each package in a layer after every sibling it requires.

    Packages of one layer are independent of each other (and keep their given order).
    A cycle among the packages is a :class:`ConfigError`.
    """
    needs = sibling_requirements(projects)
    layers: list[list[Project]] = []
    done: set[str] = set()
    while len(done) < len(projects):
        ready = [
            p
            for p in projects
            if p.normalized_name not in done and needs[p.normalized_name] <= done
        ]
        if not ready:
            cycle = sorted(name for name in needs if name not in done)
            raise ConfigError(
                f"The packages {', '.join(cycle)} require each other in a cycle.",
                why="Each package is uploaded after the siblings it requires; a cycle has no "
                "such order.",
                fix="Break the cycle in their [project] dependencies.",
            )
        layers.append(ready)
        done.update(p.normalized_name for p in ready)
    return layers


def for_each_in_order(
    projects: Sequence[Project], action: Callable[[Project], T], *, jobs: int | None = None
) -> list[T]:
    """:func:`for_each`, one dependency layer at a time (:func:`dependency_order`): a package
    starts only once every sibling it requires is done. A failing layer stops the run: the
    packages that would follow it are not started. Results in the order of ``projects``."""
    results: dict[str, T] = {}
    for layer in dependency_order(projects):
        for project, result in zip(layer, for_each(layer, action, jobs=jobs), strict=True):
            results[project.normalized_name] = result
    return [results[project.normalized_name] for project in projects]


@dataclass(frozen=True)
class Sibling:
    """A sibling package released together with another: its name, version and built files."""

    name: str
    version: str
    files: tuple[Distribution, ...]


def released_siblings(project: Project, siblings: Sequence[Project]) -> list[Sibling]:
    """The siblings ``project`` requires, directly or through each other, whose built version
    (in their dist dir) satisfies the requirement: the versions to install from the index
    under test together with ``project``. A sibling with no built files, or whose version the
    requirement excludes, is not among them (it comes from the production index)."""
    others = {
        p.normalized_name: p for p in siblings if p.normalized_name != project.normalized_name
    }
    found: dict[str, Sibling] = {}
    pending = [project]
    while pending:
        current = pending.pop()
        for requirement in requirements_of(current):
            name = canonicalize_name(requirement.name)
            sibling = others.get(name)
            if sibling is None or name in found:
                continue
            try:
                files = find_distributions(sibling.dist_dir, sibling.name)
                version = single_version(files)
            except DistributionError:
                continue
            if requirement.specifier.contains(version, prereleases=True):
                found[name] = Sibling(sibling.name, str(version), tuple(files))
                pending.append(sibling)
    return list(found.values())
