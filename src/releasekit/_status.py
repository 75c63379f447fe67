"""What the indexes hold of a project now: releases, upload times, yanks, provenance, downloads.

For monitoring (``nox -s status``): one table per index, or one JSON document for scripts.
Download counts come from a download-statistics service only when ``RELEASEKIT_STATS_URL``
names one; releasekit writes no such address itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from packaging.version import Version

from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.credentials.sources import read_auth
from releasekit.errors import IndexUnavailable, ReleasekitError
from releasekit.indexes import PYPI, TESTPYPI, USER_AGENT, IndexClient, ProjectPage
from releasekit.indexes.provenance import FileProvenance, read_provenance

#: The environment variable naming the download-statistics endpoint: a URL with ``{name}``
#: (the normalised project name) answering ``{"downloads": {"YYYY-MM-DD": {VERSION: COUNT}}}``.
STATS_URL_ENV = "RELEASEKIT_STATS_URL"
#: Downloads are summed over this many recent days.
RECENT_DAYS = 30


@dataclass(frozen=True)
class ReleaseStatus:
    """One release on an index."""

    version: str
    uploaded: str | None
    yanked: bool
    files: int
    provenance: str
    downloads: int | None = None


@dataclass(frozen=True)
class IndexStatus:
    """What one index holds of the project (``error`` when it could not be read)."""

    index: str
    url: str
    project_status: str | None = None
    status_reason: str | None = None
    latest: str | None = None
    days_since_last_release: int | None = None
    releases: tuple[ReleaseStatus, ...] = ()
    downloads_note: str | None = None
    error: str | None = None


def status(
    project: Project,
    indexes: Sequence[str] = (PYPI, TESTPYPI),
    *,
    as_json: bool = False,
    now: datetime | None = None,
) -> list[IndexStatus]:
    """Read each of ``indexes`` and show the project's releases there: upload time, yanked
    state, files, provenance (publisher, verified offline, or ``none``), recent downloads
    (PyPI, with ``RELEASEKIT_STATS_URL``), the latest version and days since the last release.

    Shown as tables, or with ``as_json`` as one JSON document. An index that cannot be read
    is reported and the others are still shown; then :class:`IndexUnavailable` is raised.
    """
    now = now or datetime.now(timezone.utc)
    found = [_index_status(project, name, now, quiet=as_json) for name in indexes]
    reporter = get_reporter()
    if as_json:
        document = {"project": project.name, "indexes": [asdict(s) for s in found]}
        reporter.info(json.dumps(document, indent=2))
    else:
        for one in found:
            _show(project, one)
    failed = [s for s in found if s.error]
    if failed:
        raise IndexUnavailable(
            "\n".join(f"{s.index}: {s.error}" for s in failed),
            why="status reads each index's simple API; an index that cannot be reached "
            "cannot be shown.",
            fix="Check the network (and HTTPS_PROXY), or the index's URL "
            "(RELEASEKIT_<INDEX>_SIMPLE_URL); `-- --index NAME` shows one index.",
        )
    return found


def _index_status(project: Project, name: str, now: datetime, *, quiet: bool) -> IndexStatus:
    index = project.index(name)
    reading = f"Reading {project.name} on {index.display}"
    try:
        with (
            IndexClient(index, credentials=read_auth(index, project.name)) as client,
            nullcontext() if quiet else get_reporter().status(reading),
        ):
            page = client.project_page(project.name)
            provenance = _provenance(client, page)
    except ReleasekitError as exc:
        return IndexStatus(index.name, index.simple_url, error=exc.what)
    downloads, note = _downloads(project) if name == PYPI else ({}, None)
    releases = []
    for version, files in sorted(page.by_version.items(), reverse=True):
        first = page.first_upload(version)
        releases.append(
            ReleaseStatus(
                version=str(version),
                uploaded=first.isoformat(timespec="seconds") if first else None,
                yanked=all(f.is_yanked for f in files),
                files=len(files),
                provenance=_summary([provenance[f.filename] for f in files])
                if page.offers_provenance
                else "not offered",
                downloads=downloads.get(str(version)) if name == PYPI and downloads else None,
            )
        )
    times = [t for v in page.by_version if (t := page.first_upload(v)) is not None]
    return IndexStatus(
        index=index.name,
        url=index.simple_url,
        project_status=page.status if page.found else None,
        status_reason=page.status_reason,
        latest=_latest(page),
        days_since_last_release=(now - max(times)).days if times else None,
        releases=tuple(releases),
        downloads_note=note,
    )


def _provenance(client: IndexClient, page: ProjectPage) -> dict[str, FileProvenance]:
    if not page.offers_provenance:
        return {}
    found = read_provenance(client, [(item, None) for item in page.files])
    return {p.filename: p for p in found}


def _summary(files: list[FileProvenance]) -> str:
    """One line for a release: each distinct publisher line, in the order of its files."""
    lines = list(dict.fromkeys(p.describe() for p in files))
    return "; ".join(lines) if lines else "none"


def _latest(page: ProjectPage) -> str | None:
    """The highest version an installer would choose: not yanked, final if there is one."""
    live = [v for v, files in page.by_version.items() if not all(f.is_yanked for f in files)]
    final = [v for v in live if not v.is_prerelease]
    chosen = final or live
    return str(max(chosen)) if chosen else None


def _downloads(project: Project) -> tuple[dict[str, int], str]:
    """Recent downloads per version from ``RELEASEKIT_STATS_URL``, and a note on them."""
    template = os.environ.get(STATS_URL_ENV)
    if not template:
        return {}, (
            f"downloads not shown: set {STATS_URL_ENV} to a download-statistics endpoint "
            "(a URL with {name}) to see them"
        )
    url = template.replace("{name}", project.normalized_name)
    try:
        with httpx.Client(
            timeout=10.0, headers={"User-Agent": USER_AGENT}, follow_redirects=True
        ) as http:
            response = http.get(url)
            response.raise_for_status()
            data = response.json()
        return _recent(data), f"downloads: last {RECENT_DAYS} days, from {url}"
    except (httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError) as exc:
        return {}, f"downloads skipped: the statistics service at {url} did not answer ({exc})"


def _recent(data: Any) -> dict[str, int]:
    """Sum ``{"downloads": {day: {version: count}}}`` over the last :data:`RECENT_DAYS`."""
    since = (datetime.now(timezone.utc) - timedelta(days=RECENT_DAYS)).date().isoformat()
    totals: dict[str, int] = {}
    for day, counts in data["downloads"].items():
        if str(day) >= since:
            for version, count in counts.items():
                totals[str(Version(version))] = totals.get(str(Version(version)), 0) + int(count)
    return totals


def _show(project: Project, one: IndexStatus) -> None:
    reporter = get_reporter()
    if one.error:
        reporter.warn(f"{one.index}: {one.error}")
        return
    if one.project_status is None:
        reporter.info(f"{one.index}: {project.name} is not on this index.")
        return
    latest = one.latest or "none installable"
    since = (
        f", last release {one.days_since_last_release} days ago"
        if one.days_since_last_release is not None
        else ""
    )
    reason = f" ({one.status_reason})" if one.status_reason else ""
    reporter.info(
        f"{one.index}: {project.name} is {one.project_status}{reason}; latest {latest}{since}."
    )
    downloads = one.index == PYPI and any(r.downloads is not None for r in one.releases)
    columns = ("version", "uploaded", "yanked", "files", "provenance")
    rows: list[tuple[object, ...]] = [
        (r.version, r.uploaded or "?", "yanked" if r.yanked else "", r.files, r.provenance)
        + ((r.downloads if r.downloads is not None else 0,) if downloads else ())
        for r in one.releases
    ]
    reporter.table(
        f"{project.name} on {one.index}",
        (*columns, f"downloads ({RECENT_DAYS} d)") if downloads else columns,
        rows,
    )
    if one.downloads_note:
        reporter.info(one.downloads_note)
