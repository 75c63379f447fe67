"""Release a version: guards, version set everywhere, changelog, one commit, one annotated tag.

Every guard is checked before anything changes. The changes then happen as one
transaction: if any step fails (or the process is interrupted) the repository is put back
exactly as it was: same HEAD, same tags, every edited file restored byte for byte.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from packaging.version import Version

from releasekit._changelog import (
    changelog_format,
    changelog_path,
    commit_rules,
    commitizen_config,
    commits_since,
    release_message,
    section,
    tag_format_conflict,
    with_section,
)
from releasekit._commitizen import GitCommit, VersionIncrement, get_version_scheme
from releasekit._git import Repository
from releasekit._project import Project, decoded
from releasekit._report import get_reporter
from releasekit._stamp import (
    FileEdit,
    canonical_version,
    restore,
    signals_deferred,
    sigterm_raises,
    version_edits,
    write_bytes,
)
from releasekit.errors import (
    ConfigError,
    GitError,
    IndexUnavailable,
    ReleaseError,
    ReleasekitError,
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


def describe(plan: ReleasePlan, repository: Repository) -> None:
    """Print every change ``plan`` makes: file diffs, the commit, the tag, the push."""
    reporter = get_reporter()
    for edit in plan.edits:
        name = repository.relative(edit.path)
        diff = difflib.unified_diff(
            (edit.before or b"").decode("utf-8").splitlines(keepends=True),
            edit.after.decode("utf-8").splitlines(keepends=True),
            fromfile=f"a/{name}" if edit.before is not None else "/dev/null",
            tofile=f"b/{name}",
        )
        reporter.output(f"{name}:", "".join(diff))
    since = f"since {plan.previous_tag}" if plan.previous_tag else "since the first commit"
    reporter.info(f"Changelog: conventional commits {since}.")
    reporter.info(f"Commit on {plan.branch}: {plan.commit_message}")
    reporter.info(f"Annotated tag: {plan.tag} ({plan.tag_message})")
    if plan.remote:
        reporter.info(f"Push (atomic) to {plan.remote}: {plan.branch} and {plan.tag}")


def _rollback(plan: ReleasePlan, repository: Repository, head: str) -> list[str]:
    """Put HEAD, the tags and the edited files back; return what could not be restored."""
    with signals_deferred():
        problems = []
        try:
            if repository.tag_exists(plan.tag):
                repository.run("tag", "--delete", plan.tag)
            repository.run("reset", "--quiet", "--mixed", head)
        except GitError as exc:
            problems.append(exc.what)
        restore(plan.edits)
        try:
            left = repository.status().splitlines()
        except GitError as exc:
            left = [exc.what]
        if left:
            problems.append("still differing from before: " + ", ".join(left))
        return problems


def apply(plan: ReleasePlan, repository: Repository) -> str:
    """Make the changes of ``plan``: files, one commit, one annotated tag, the push.

    Any failure, KeyboardInterrupt or SIGTERM before the push is done restores the
    repository as it was and re-raises (failures as :class:`ReleaseError`). Signals are
    held while a local step runs, so git is never killed half way through writing. The push
    can be interrupted (git and its hooks are stopped); then, or when it fails, the remote
    is asked whether it has the tag: if it has (or cannot say), the commit and tag are kept
    and the message says so. Returns the release commit.
    """
    head = repository.head()
    step = "write the files"
    pushed = False
    try:
        with sigterm_raises():
            with signals_deferred():
                for edit in plan.edits:
                    write_bytes(edit.path, edit.after)
            step = "commit"
            paths = [repository.relative(edit.path) for edit in plan.edits]
            with signals_deferred():
                repository.run("add", "--", *paths)
                repository.run("commit", "--quiet", "--message", plan.commit_message, "--", *paths)
            step = "tag"
            with signals_deferred():
                repository.run("tag", "--annotate", plan.tag, "--message", plan.tag_message)
            if plan.remote:
                step = "push"
                branch = f"refs/heads/{plan.branch}"
                repository.run(
                    "push",
                    "--atomic",
                    "--quiet",
                    plan.remote,
                    f"{branch}:{branch}",
                    f"refs/tags/{plan.tag}:refs/tags/{plan.tag}",
                )
                pushed = True
            return repository.head()
    except BaseException as exc:
        if pushed:
            raise
        remote_state = ""
        if step == "push" and plan.remote:
            kept = _push_outcome(plan, plan.remote, repository, exc)
            if kept is exc:
                raise
            if kept is not None:
                raise kept from exc
            remote_state = f"the remote {plan.remote!r} does not have the tag {plan.tag}; "
        problems = _rollback(plan, repository, head)
        if not isinstance(exc, Exception):
            get_reporter().warn(
                f"Release of {plan.project.name} {plan.version} interrupted at step {step!r}; "
                + remote_state
                + ("the repository was restored." if not problems else "; ".join(problems))
            )
            raise
        detail = exc.what if isinstance(exc, ReleasekitError) else f"{type(exc).__name__}: {exc}"
        restored = (
            f"The repository was restored: HEAD {head[:12]}, no tag {plan.tag}, files as before."
            if not problems
            else "The repository could not be fully restored: " + "; ".join(problems)
        )
        raise ReleaseError(
            f"Releasing {plan.project.name} {plan.version} failed at step {step!r}: {detail}\n"
            + restored,
            why="The step failed for the reason given (a git hook, permissions, the remote).",
            fix="Correct the cause, then run the same release again.",
        ) from exc


def _push_outcome(
    plan: ReleasePlan, remote: str, repository: Repository, exc: BaseException
) -> BaseException | None:
    """After a push that failed or was interrupted: None when ``remote`` lacks the tag (undo
    the release), else what to raise with the local commit and tag kept (already reported
    when ``exc`` is an interrupt, which is then raised as it is)."""
    try:
        landed: bool | None = repository.remote_has_tag(remote, plan.tag)
        reason = ""
    except GitError as error:
        landed, reason = None, error.what.splitlines()[-1]
    if landed is False:
        return None
    commit = repository.head()[:12]
    name = f"{plan.project.name} {plan.version}"
    if landed:
        state = (
            f"the push went through: {remote!r} has the tag {plan.tag} and commit {commit} "
            f"on {plan.branch}. The release stands; nothing was undone."
        )
        fix = "Nothing to redo: publish from the tag as usual."
    else:
        state = (
            f"whether {remote!r} has the tag {plan.tag} could not be checked ({reason}). "
            f"The commit {commit} and the tag were kept."
        )
        fix = (
            f"Check with `git ls-remote --tags {remote} {plan.tag}`: if the tag is there the "
            f"release stands; if not, push with `git push --atomic {remote} {plan.branch} "
            f"{plan.tag}`."
        )
    if not isinstance(exc, Exception):
        get_reporter().warn(f"Release of {name} interrupted during the push; {state} {fix}")
        return exc
    detail = exc.what if isinstance(exc, ReleasekitError) else f"{type(exc).__name__}: {exc}"
    return ReleaseError(
        f"The push of {name} reported a failure: {detail}\nYet {state}",
        why="The remote took the push, but its answer did not reach releasekit intact."
        if landed
        else "git reported a failure, and the remote could not be asked whether the push arrived.",
        fix=fix,
    )


def release(
    project: Project,
    version: str,
    *,
    push: bool = False,
    dry_run: bool = False,
    index_check: bool = True,
) -> ReleasePlan:
    """Release ``version`` of ``project`` (see the module docstring); returns the plan.

    ``dry_run`` checks the guards and prints every change without making any.
    """
    reporter = get_reporter()
    repository = Repository(project.root)
    plan = plan_release(project, version, push=push, index_check=index_check, repository=repository)
    if dry_run:
        describe(plan, repository)
        reporter.success(
            f"Dry run: {project.name} {plan.version} would be released; nothing changed."
        )
        return plan
    commit = apply(plan, repository)
    reporter.success(
        f"Released {project.name} {plan.version}: commit {commit[:12]}, tag {plan.tag}"
        + (f", pushed to {plan.remote}." if plan.remote else ".")
    )
    if not plan.remote:
        reporter.info(
            f"Push to publish: git push --atomic {repository.remote()} {plan.branch} {plan.tag}"
        )
    return plan


# --- release auto: the next version from conventional commits ------------------------------

Prerelease = Literal["alpha", "beta", "rc"]
_COMMIT_TYPE = re.compile(r"^(?P<type>[A-Za-z]+)(?:\([^)]*\))?!?:")


@dataclass(frozen=True)
class AutoVersion:
    """The next version chosen from the commits since ``since`` (the last tag, or None).

    ``version`` is None when no commit asks for a release; ``increment`` is commitizen's
    (``MAJOR``, ``MINOR``, ``PATCH``) and ``deciding`` the commits that asked for it.
    """

    current: str
    since: str | None
    commits: list[GitCommit]
    increment: str | None
    deciding: list[GitCommit]
    version: str | None

    def nothing_to_release(self) -> str:
        """Why no version was chosen: how many commits, and of which types."""
        since = f"since {self.since}" if self.since else "in the history"
        if not self.commits:
            return f"Nothing to release {since}: no commits."
        types = sorted({_commit_type(commit) for commit in self.commits})
        count = len(self.commits)
        return (
            f"Nothing to release {since}: {count} commit{'s' if count != 1 else ''}, "
            f"{'all ' if count > 1 else ''}{'/'.join(types)}."
        )


def _commit_type(commit: GitCommit) -> str:
    found = _COMMIT_TYPE.match(commit.title)
    return found["type"].lower() if found else "not conventional"


def next_version(
    project: Project,
    prerelease: Prerelease | None = None,
    *,
    repository: Repository | None = None,
) -> AutoVersion:
    """The version ``release auto`` releases, by commitizen's bump rules.

    The commits since the project's last tag (in a monorepo, those touching its directory)
    give the increment: a breaking change MAJOR, ``feat`` MINOR, ``fix`` PATCH (or the
    rules of ``[tool.commitizen]``; with ``major_version_zero`` a 0.x version's breaking
    change is MINOR). ``prerelease`` asks for an ``alpha``, ``beta`` or ``rc`` release.
    """
    repository = repository or Repository(project.root)
    since = repository.last_tag(project)
    tagged = project.version_of_tag(since) if since else None
    current = str(tagged) if tagged is not None else project.version
    commits = commits_since(project, repository, since)
    config = commitizen_config(project)
    rules = commit_rules(config)
    settings = config.settings
    zero = bool(settings.get("major_version_zero"))
    bump_map = rules.bump_map_major_version_zero if zero else rules.bump_map
    pattern = rules.bump_pattern
    if not pattern or not bump_map:
        raise ConfigError(
            f"The commit rules {settings['name']!r} of [tool.commitizen] cannot choose versions.",
            why="They define no bump pattern or bump map.",
            fix="Give the version: `nox -s release -- VERSION`.",
        )
    candidates = rules.filter_commits_before_bump(commits)

    def increment_of(found: list[GitCommit]) -> VersionIncrement:
        messages = (commit.message for commit in found)
        return VersionIncrement.get_highest_by_messages(messages, pattern, bump_map)

    highest = increment_of(candidates)
    version = get_version_scheme(settings, "pep440")(current)
    if zero and version.release[0]:
        raise ConfigError(
            f"[tool.commitizen] major_version_zero is set, but {project.name} is at {current}.",
            why="major_version_zero only applies while the major version is 0.",
            fix="Remove major_version_zero from [tool.commitizen].",
        )
    increment = None if highest == VersionIncrement.NONE else str(highest)
    chosen = None
    # As `cz bump`: no increment means no release, unless a pre-release is to be finalised
    # or continued; a result equal to the current version is no release either.
    if increment is not None or version.is_prerelease:
        bumped = str(
            version.bump(
                increment,  # type: ignore[arg-type]
                prerelease=prerelease,
                prerelease_offset=int(settings.get("prerelease_offset", 0)),
            )
        )
        chosen = bumped if bumped != current else None
    deciding = [c for c in candidates if increment and increment_of([c]) == highest]
    return AutoVersion(current, since, commits, increment, deciding, chosen)


def show_auto_version(project: Project, auto: AutoVersion) -> None:
    """Report the version ``release auto`` chose, and the commits that decided it."""
    reporter = get_reporter()
    since = f"since {auto.since}" if auto.since else "in the history"
    if auto.version is None:
        reporter.success(auto.nothing_to_release())
        return
    if auto.increment is None:
        reporter.info(
            f"{project.name} {auto.current} becomes the final release {auto.version} "
            f"({len(auto.commits)} commits {since}, none bumping further)."
        )
        return
    reporter.info(
        f"{project.name} {auto.current} -> {auto.version}: {auto.increment} change "
        f"({len(auto.deciding)} of {len(auto.commits)} commits {since} decided it):"
    )
    for commit in auto.deciding:
        reporter.info(f"  {commit.rev[:12]} {commit.title}")
