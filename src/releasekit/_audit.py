"""Match every version on an index with a git tag: a version no tag explains may be unauthorised."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from releasekit._git import Repository
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.credentials.sources import read_auth
from releasekit.errors import GitError, UnexplainedReleases
from releasekit.indexes import PYPI, Index, IndexClient, IndexFile, ProjectPage
from releasekit.indexes.provenance import read_provenance


@dataclass(frozen=True)
class AuditResult:
    """What an audit found on ``index`` for one project."""

    index: Index
    tagged: dict[Version, str]
    dev: dict[Version, list[IndexFile]]
    unexplained: dict[Version, list[IndexFile]]
    not_on_index: dict[Version, str]
    #: With ``expect-publisher``: each file not published by it, with the reason.
    unattested: dict[Version, list[tuple[IndexFile, str]]] = field(default_factory=dict)


def tagged_versions(project: Project) -> dict[Version, str]:
    """This project's versions that have a release tag in its git repository, with the tag."""
    try:
        tags = Repository(project.root).tags()
    except GitError as exc:
        raise GitError(
            f"Cannot list git tags in {project.root}: {exc.what}",
            why="audit explains each version on the index by its release tag.",
            fix="Run audit inside the project's git repository.",
        ) from exc
    style, name = project.tag_style(), project.normalized_name
    tagged: dict[Version, str] = {}
    for tag in tags:
        version = style.version_of(name, tag)
        if version is not None:
            tagged[version] = tag
    return tagged


def _is_shallow(root: Path) -> bool:
    try:
        return Repository(root).run("rev-parse", "--is-shallow-repository").strip() == "true"
    except GitError:
        return False


def audit(
    project: Project, index: Index | str = PYPI, *, pending: Collection[Version] = ()
) -> AuditResult:
    """Compare the versions of ``project`` on the index with its git tags.

    Dev releases (``X.Y.Z.devN``, continuous uploads) are listed apart and never flagged,
    and so are ``pending`` versions (a rehearsal's, whose tag the release will make).
    With ``expect-publisher`` set, every file's provenance is read and verified too: a file
    not published by that publisher is a finding as well. Raises
    :class:`UnexplainedReleases` when any other version has no tag, or any file has no
    provenance from the expected publisher.
    """
    reporter = get_reporter()
    if isinstance(index, str):
        index = project.index(index)
    tagged = tagged_versions(project)
    expected = project.settings.expect_publisher
    with (
        IndexClient(index, credentials=read_auth(index, project.name)) as client,
        reporter.status(f"Reading {index.display}"),
    ):
        page = client.project_page(project.name)
        unattested = _unattested(client, page, expected, pending) if expected else {}
    versions = page.by_version
    result = AuditResult(
        index=index,
        tagged={v: tagged[v] for v in versions if v in tagged},
        dev={v: f for v, f in versions.items() if v not in tagged and v.is_devrelease},
        unexplained={
            v: f
            for v, f in versions.items()
            if v not in tagged and not v.is_devrelease and v not in pending
        },
        not_on_index={v: t for v, t in tagged.items() if v not in versions},
        unattested=unattested,
    )
    _report(project, result)
    if expected and page.files and not page.offers_provenance:
        reporter.warn(f"{index.display} offers no provenance (PEP 740): publishers not checked.")
    if result.unexplained or result.unattested:
        raise _findings(project, result)
    reporter.success(
        f"Every release of {project.name} on {index.name} has its git tag "
        f"({len(result.tagged)} tagged, {len(result.dev)} dev)"
        + (f" and was published by {expected}." if expected and page.offers_provenance else ".")
    )
    return result


def _unattested(
    client: IndexClient, page: ProjectPage, expected: str, pending: Collection[Version]
) -> dict[Version, list[tuple[IndexFile, str]]]:
    """Each file on ``page`` whose provenance does not show ``expected`` as its publisher."""
    if not page.offers_provenance:
        return {}
    items = [
        (version, item)
        for version, files in sorted(page.by_version.items())
        if version not in pending
        for item in files
    ]
    found: dict[Version, list[tuple[IndexFile, str]]] = {}
    checked = read_provenance(client, [(item, None) for _version, item in items])
    for (version, item), provenance in zip(items, checked, strict=True):
        problem = provenance.expectation_problem(expected)
        if problem:
            found.setdefault(version, []).append((item, problem))
    return found


def _report(project: Project, result: AuditResult) -> None:
    reporter = get_reporter()
    if result.tagged:
        reporter.table(
            f"Releases of {project.name} on {result.index.display} explained by a tag",
            ("version", "tag"),
            [(str(v), tag) for v, tag in sorted(result.tagged.items())],
        )
    if result.dev:
        reporter.info(
            f"Dev releases (continuous uploads, untagged by design): "
            f"{', '.join(str(v) for v in sorted(result.dev))}"
        )
    if result.not_on_index:
        reporter.info(
            f"Tagged but not on {result.index.name} (not released there, or deleted): "
            f"{', '.join(str(v) for v in sorted(result.not_on_index))}"
        )
    if not result.tagged and not result.dev and not result.unexplained:
        reporter.info(f"{result.index.display} has no release of {project.name}.")
    if result.unattested:
        reporter.table(
            f"Files not published by {project.settings.expect_publisher}",
            ("version", "file", "why"),
            [
                (str(v), item.filename, why)
                for v, files in sorted(result.unattested.items())
                for item, why in files
            ],
        )
    if result.unexplained:
        reporter.table(
            "Versions no git tag explains (possibly unauthorised)",
            ("version", "file", "sha256"),
            [
                (str(v), item.filename, item.sha256 or "(not listed)")
                for v, files in sorted(result.unexplained.items())
                for item in files
            ],
        )
        if _is_shallow(project.root) or not result.tagged:
            reporter.warn(
                "this checkout may lack tags (shallow clone, or tags not fetched); "
                "run `git fetch --tags` (CI: actions/checkout with fetch-depth: 0) and audit again"
            )


def _findings(project: Project, result: AuditResult) -> UnexplainedReleases:
    if not result.unexplained:
        return _unattested_error(project, result)
    error = _unexplained(project, result)
    if not result.unattested:
        return error
    also = _unattested_error(project, result)
    return UnexplainedReleases(
        f"{error.what}\nAlso: {also.what}", why=f"{error.why} {also.why}", fix=error.fix
    )


def _unattested_error(project: Project, result: AuditResult) -> UnexplainedReleases:
    count = sum(len(files) for files in result.unattested.values())
    versions = ", ".join(str(v) for v in sorted(result.unattested))
    expected = project.settings.expect_publisher
    return UnexplainedReleases(
        f"{count} file{'s' if count != 1 else ''} of {project.name} on "
        f"{result.index.display} {'were' if count != 1 else 'was'} not published by "
        f"{expected} (versions {versions}).",
        why="expect-publisher says every file comes from that repository's trusted publisher, "
        "with attestations. A file without provenance was uploaded with an API token or by a "
        "tool that does not sign; one from another publisher came from elsewhere.",
        fix="If the team published these files another way, that is the gap to close "
        "(publish only from the workflow, then remove API tokens). If nobody did: revoke every "
        "API token of the project, review its trusted publishers and collaborators on the "
        "index, yank the versions (`nox -s yank -- VERSION --reason ...`), and tell your users.",
    )


def _unexplained(project: Project, result: AuditResult) -> UnexplainedReleases:
    index = result.index
    versions = sorted(result.unexplained)
    count = len(versions)
    listed = ", ".join(str(v) for v in versions)
    secret = f" ({index.token_env})" if index.token_env else ""
    return UnexplainedReleases(
        f"{count} version{'s' if count != 1 else ''} of {project.name} on {index.display} "
        f"{'have' if count != 1 else 'has'} no release tag (such as "
        f"{project.tag(str(versions[0]))}), possibly unauthorised: {listed}.",
        why="Every release should come from a tagged commit; a version no tag explains was "
        "published by hand, from an untagged commit, or with a leaked token.",
        fix="If you published it, tag the commit it came from and push the tag. If nobody "
        "did: revoke the token on the index (account settings, API tokens), create a new "
        f"project-scoped one under a new name, update the CI secret{secret}, review the "
        "project's collaborators and the files listed above (sha256), yank the version "
        "(`nox -s yank -- VERSION --reason ...`), and tell your team and users.",
    )
