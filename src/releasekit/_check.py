"""Check built files before anything is uploaded; every problem is listed, not just the first."""

from __future__ import annotations

import dataclasses
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.version import Version

from releasekit._distributions import Distribution, find_distributions
from releasekit._platforms import missing_platform_problem
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit._stamp import stamp_of
from releasekit.ci import detect as detect_ci
from releasekit.errors import CheckFailed, ConfigError
from releasekit.indexes.pypi_rules import FileVerdict, pypi_problems

#: Description content types twine's check does not render (nothing to import for them).
_NOT_RENDERED = ("text/markdown", "text/plain")


def _strict_check(path: Path, metadata: Mapping[str, Any]) -> tuple[list[str], bool, str]:
    """twine's strict check of one file: (warnings, whether the README renders, messages).

    For Markdown and plain text, twine renders nothing and only warns about a missing
    description; only reStructuredText (or no content type) needs twine's check, whose
    import loads docutils (0.3 s).
    """
    description = metadata.get("description")
    content_type = str(metadata.get("description_content_type") or "").split(";")[0]
    if content_type.strip().lower() in _NOT_RENDERED:
        missing = not description or description.rstrip() == "UNKNOWN"
        return (["`long_description` missing."] if missing else []), True, ""
    from twine.commands.check import _check_file, _WarningStream

    stream = _WarningStream()
    warnings, rendered = _check_file(str(path), stream)
    return warnings, rendered, str(stream)


def _twine_problems(dist: Distribution) -> list[str]:
    """twine's strict check of one file (metadata, README rendering)."""
    from twine.exceptions import TwineException
    from twine.package import PackageFile

    try:
        package = PackageFile.from_filename(str(dist.path), comment=None)
        metadata = package.metadata_dictionary()
        warnings, rendered, messages = _strict_check(dist.path, metadata)
    except (
        TwineException,
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        tarfile.TarError,
    ) as exc:
        reason = str(exc).strip() or type(exc).__name__
        return [f"{dist.filename}: unreadable ({reason}); rebuild it."]
    problems = [f"{dist.filename}: {warning}" for warning in warnings]
    if not rendered:
        problems.append(
            f"{dist.filename}: the long description (README) would not render on the index:"
            f" {messages or 'markup errors'}"
        )
    return problems


#: What :func:`_file_problems` found, by file content: check_dist then upload in one run
#: read and render each file once.
_CHECKED: dict[tuple[str, str, bool], tuple[FileVerdict, list[str]]] = {}
_CHECKED_LOCK = threading.Lock()


def _file_problems(dist: Distribution, refuse_platform_tags: bool) -> tuple[FileVerdict, list[str]]:
    """PyPI's rules and twine's strict check of one file. Both depend only on its bytes, so
    the answer is kept for this process by the file's sha256 and name."""
    key = (dist.sha256, dist.filename, refuse_platform_tags)
    with _CHECKED_LOCK:
        known = _CHECKED.get(key)
    if known is not None:
        return known
    verdict = pypi_problems(dist.path, refuse_platform_tags=refuse_platform_tags)
    found = (verdict, _twine_problems(dist) if verdict.valid else [])
    with _CHECKED_LOCK:
        if len(_CHECKED) > 1024:
            _CHECKED.clear()
        _CHECKED[key] = found
    return found


def _identity_problems(dist: Distribution, project: Project) -> list[str]:
    problems = []
    if dist.name != project.normalized_name:
        problems.append(f"{dist.filename}: not a file of this project ({project.name}).")
    if dist.version != Version(project.version):
        problems.append(
            f"{dist.filename}: version {dist.version} differs from the project's {project.version}."
        )
    if dist.size > project.max_file_size:
        problems.append(
            f"{dist.filename}: {dist.size / 1e6:.1f} MB is over the index limit of "
            f"{project.max_file_size // (1024 * 1024)} MB (max-file-size-mb); "
            "leave data files out of the package, or ask the index for a larger limit."
        )
    return problems


def version_file_problems(project: Project) -> list[str]:
    """Every version file that disagrees with the project version (or cannot be read)."""
    problems = []
    for version_file in project.version_files:
        try:
            found = version_file.read()
        except ConfigError as exc:
            problems.append(exc.what)
            continue
        if found != project.version:
            problems.append(
                f"{version_file.spec} says {found} but the project version is {project.version}."
            )
    return problems


def tag_problems(project: Project, versions: list[Version]) -> list[str]:
    """In a CI job started by a release tag of this project, the files must be that version."""
    tag = detect_ci().tag
    tagged = project.version_of_tag(tag) if tag else None
    if tagged is None or versions == [tagged]:
        return []
    found = ", ".join(str(v) for v in versions)
    return [
        f"this job runs for the tag {tag} (version {tagged}) but the files are version {found}; "
        f"tag the commit whose version is {tagged} (`nox -s release -- {tagged}` does both)."
    ]


def check(
    project: Project, dist_dir: Path | None = None, *, refuse_platform_tags: bool = True
) -> list[Distribution]:
    """Check this project's files in the dist dir; return them, or raise :class:`CheckFailed`.

    Checked: every rule PyPI applies at upload (:func:`pypi_problems`: archive structure and
    bounds, metadata, filenames, platform tags, licence files, classifiers, entry points;
    ``refuse_platform_tags=False`` downgrades refused platform tags to a warning); one sdist
    per version; twine's strict metadata and README rendering check; filename against the
    project (name and version); one sdist and one wheel; for a compiled project, a wheel
    of every expected platform family (:mod:`releasekit._platforms`); one version only;
    version files agreeing with the project version; file sizes under the index limit; in a CI job
    started by a release tag of this project, the version the tag names. Files stamped by
    ``build --version``/``--dev`` are checked against their stamped version when they are a
    stamp of this tree (see :func:`releasekit._stamp.stamp_of`).
    """
    dists = find_distributions(dist_dir or project.dist_dir, project.name)
    checked = [_file_problems(d, refuse_platform_tags) for d in dists]
    verdicts = [verdict for verdict, _twine in checked]
    problems = version_file_problems(project)
    readable = all(verdict.safe for verdict in verdicts)
    stamp = stamp_of(project, dists) if readable else None  # stamp_of reads the sdist
    expected = dataclasses.replace(project, version=stamp) if stamp else project
    versions = sorted({d.version for d in dists})
    if len(versions) > 1:
        problems.append(
            f"the dist dir mixes versions {', '.join(map(str, versions))}; rebuild to clear it."
        )
    problems += tag_problems(project, versions)
    kinds = {d.kind for d in dists}
    for kind in ("sdist", "wheel"):
        if kind not in kinds:
            problems.append(f"no {kind} of {project.name} in {dists[0].path.parent}.")
    if missing := missing_platform_problem(
        project, dists, refuse_platform_tags=refuse_platform_tags
    ):
        problems.append(missing)
    sdists = Counter(d.version for d in dists if d.kind == "sdist")
    problems += [
        f"{count} sdists of version {version}; PyPI takes only one sdist per release: "
        "remove all but one (rebuild with `nox -s build`)."
        for version, count in sdists.items()
        if count > 1
    ]
    for dist, (verdict, twine) in zip(dists, checked, strict=True):
        problems += verdict.problems + twine
        problems += _identity_problems(dist, expected)
    if problems:
        raise CheckFailed(problems)
    for verdict in verdicts:
        for warning in verdict.warnings:
            get_reporter().warn(warning)
    names = ", ".join(d.filename for d in dists)
    get_reporter().success(
        f"check_dist: {len(dists)} files of {project.name} {versions[0]} pass ({names})."
    )
    return dists
