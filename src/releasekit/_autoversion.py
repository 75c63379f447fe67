"""``release -- auto``: the next version from the conventional commits since the last
release tag, by commitizen's bump rules (0.x, pre-releases), and the commits that decided it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from releasekit._changelog import (
    commit_rules,
    commitizen_config,
    commits_since,
)
from releasekit._commitizen import GitCommit, VersionIncrement, get_version_scheme
from releasekit._git import Repository
from releasekit._project import Project
from releasekit._report import get_reporter
from releasekit.errors import (
    ConfigError,
)

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
