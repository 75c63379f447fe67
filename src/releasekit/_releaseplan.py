"""Planning a release: every guard checked, every change computed, nothing touched yet."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from releasekit._changelog import (
    changelog_format,
    changelog_path,
    commits_since,
    release_message,
    section,
    tag_format_conflict,
    with_section,
)
from releasekit._git import Repository
from releasekit._project import Project, decoded
from releasekit._report import get_reporter
from releasekit._stamp import (
    FileEdit,
    canonical_version,
    version_edits,
)
from releasekit.errors import (
    GitError,
    IndexUnavailable,
    ReleaseError,
)
from releasekit.indexes import IndexClient


@dataclass(frozen=True)
class ReleasePlan:
    """Everything a release will change, decided before anything is changed."""

    project: Project
    version: str
    tag: str
    commit_message: str
    tag_message: str
    edits: list[FileEdit]
    branch: str
    remote: str | None
    previous_tag: str | None


def _refuse(what: str, why: str = "", fix: str = "") -> ReleaseError:
    return ReleaseError(what, why=why, fix=fix)


def check_index(project: Project, version: Version) -> None:
    """Refuse ``version`` unless it is above every release of the project on PyPI.

    A project not yet on the index passes; an unreachable index is an error.
    """
    index = project.index("pypi")
    try:
        with IndexClient(index) as client:
            released = sorted(client.versions(project.name))
    except IndexUnavailable as exc:
        raise _refuse(
            f"Cannot check the versions of {project.name} on {index.display}: {exc.what}",
            why="releasekit refuses a version the index already has or has passed, and "
            "could not ask it.",
            fix="Retry when the index is reachable, or pass --no-index-check if you know the "
            "version is new.",
        ) from exc
    if released and version <= released[-1]:
        already = version in released
        raise _refuse(
            f"{project.name} {version} "
            + ("is already on" if already else f"is not above {released[-1]}, the newest on")
            + f" {index.display}.",
            why="An index never accepts a version twice, and a release must sort above "
            "every earlier one.",
            fix=f"Release a version above {released[-1]}.",
        )


def plan_release(
    project: Project,
    version_text: str,
    *,
    push: bool = False,
    index_check: bool = True,
    repository: Repository | None = None,
) -> ReleasePlan:
    """Check every guard and compute every change of releasing ``version_text``.

    Raises :class:`ReleaseError` or :class:`VersionError` naming the refused value.
    """
    version = canonical_version(version_text, "release version", full=True)
    _check_version_goes_up(project, version)
    repository = repository or Repository(project.root)
    tag = project.tag(str(version))
    branch = project.settings.release_branch
    _check_repository(project, version, tag, branch, repository)
    remote = _check_remote(project, version, tag, repository) if push else None
    if index_check:
        check_index(project, version)
    conflict = tag_format_conflict(project, str(version))
    if conflict:
        get_reporter().warn(conflict)
    previous = repository.last_tag(project, below=version)
    edits = version_edits(project, str(version))
    edits.append(_changelog_edit(project, str(version), repository, previous))
    _check_inside(edits, repository)
    return ReleasePlan(
        project=project,
        version=str(version),
        tag=tag,
        commit_message=release_message(project, str(version)),
        tag_message=f"{project.name} {version}",
        edits=edits,
        branch=branch,
        remote=remote,
        previous_tag=previous,
    )


def _check_version_goes_up(project: Project, version: Version) -> None:
    """Refuse a version that is not above the project's current version."""
    if version <= Version(project.version):
        raise _refuse(
            f"The release version {version} is not above {project.name}'s current version "
            f"{project.version}.",
            why="Versions only go up; an index refuses a version it has seen.",
            fix=f"Choose a version above {project.version}.",
        )


def _check_repository(
    project: Project, version: Version, tag: str, branch: str, repository: Repository
) -> None:
    """Refuse an existing tag, a dirty work tree, or another branch than ``branch``."""
    if repository.tag_exists(tag):
        raise _refuse(
            f"The tag {tag} already exists.",
            why=f"{project.name} {version} was released or tagged before.",
            fix="Choose the next version, or delete the tag if it was made by mistake.",
        )
    dirty = repository.status().splitlines()
    if dirty:
        listing = ", ".join(line[3:] for line in dirty[:5]) + (", ..." if len(dirty) > 5 else "")
        raise _refuse(
            f"The work tree is not clean: {listing}.",
            why="A release commits exactly the version and changelog changes, from a "
            "committed state that CI can rebuild.",
            fix="Commit or stash these changes, then release.",
        )
    current = repository.branch()
    if current != branch:
        raise _refuse(
            f"On {'a detached HEAD' if current is None else f'branch {current}'}, not on the "
            f"release branch {branch}.",
            why="Releases are tagged on the release branch (setting `release-branch`).",
            fix=f"`git switch {branch}` first, or set release-branch in [tool.releasekit].",
        )


def _check_remote(project: Project, version: Version, tag: str, repository: Repository) -> str:
    """The remote to push to; refused when it cannot be read or already has ``tag``."""
    remote = repository.remote()
    try:
        on_remote = repository.remote_has_tag(remote, tag)
    except GitError as exc:
        raise _refuse(
            f"Cannot read the tags of the remote {remote!r}: {exc.what}",
            fix="Check `git remote -v` and your access, or release without --push.",
        ) from exc
    if on_remote:
        raise _refuse(
            f"The tag {tag} already exists on the remote {remote!r}.",
            why=f"{project.name} {version} was released from elsewhere.",
            fix="`git fetch --tags` and choose the next version.",
        )
    return remote


def _check_inside(edits: list[FileEdit], repository: Repository) -> None:
    """Refuse a release that would change a file outside the repository (it cannot commit it)."""
    root = repository.root.resolve()
    outside = [str(p) for edit in edits if not (p := edit.path.resolve()).is_relative_to(root)]
    if outside:
        raise _refuse(
            f"{outside[0]} is outside the repository at {root}, but the release would set "
            "the version in it.",
            why="A release commits every file it changes, and git commits only files inside "
            "the repository.",
            fix="Move the file into the repository, or remove it from `version-files` "
            "([tool.releasekit]) or `version_files` ([tool.commitizen]).",
        )


def _changelog_edit(
    project: Project, version: str, repository: Repository, previous: str | None
) -> FileEdit:
    """The project's changelog with the section of ``version`` (commits since ``previous``)."""
    path = changelog_path(project)
    before = path.read_bytes() if path.is_file() else None
    text = with_section(
        decoded(before, path, "add the release to the changelog") if before is not None else None,
        section(project, version, commits_since(project, repository, previous)),
        changelog_format(path) or "md",
    )
    return FileEdit(path, before, text.encode("utf-8"))
