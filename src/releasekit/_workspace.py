"""Several packages of a monorepo at once: independent packages built, checked, uploaded
and verified concurrently, with output that stays readable and every failure listed."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar, cast

from releasekit._project import Project
from releasekit._report import captured, get_reporter
from releasekit.errors import PackagesFailed, ReleasekitError

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
    if not failures:
        return [results[number] for number in range(len(projects))]
    unexpected = [exc for exc in failures.values() if not isinstance(exc, ReleasekitError)]
    if unexpected:
        raise unexpected[0]
    if len(failures) == 1:
        raise next(iter(failures.values()))
    explained = {projects[n].name: cast(ReleasekitError, failures[n]) for n in sorted(failures)}
    raise PackagesFailed(explained, len(projects))
