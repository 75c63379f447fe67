"""Which packages of a monorepo changed since a git ref, in dependency order: the plan a CI
matrix fans out over (the ``changed`` session).

A package changed when a file under its directory differs between the ref and HEAD (the
deepest package directory holding the file owns it; the repository root owns what no other
package holds only when the root is itself a package), or when a sibling it requires,
directly or through others, changed: its release must be verified with that sibling. Files
outside every package (the root ``pyproject.toml``, lock files, CI files) change no package:
what is published is built from each package's own directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from releasekit._git import Repository
from releasekit._platforms import wheel_platforms
from releasekit._project import Project
from releasekit._settings import WheelPlatform
from releasekit._workspace import dependency_order, sibling_requirements
from releasekit.errors import GitError

#: What ``event.before`` holds on the first push of a branch: no previous commit at all.
NO_COMMIT = "0" * 40


@dataclass(frozen=True)
class ChangedPackage:
    """A package to work on: its project name, its directory and its dist dir relative to the
    repository root (POSIX, ``.`` for the root), its dependency layer (0: requires no other
    changed package), why it is in the plan (``files``: its own files changed;
    ``dependency``: a sibling it requires did), and the platform families its wheels must
    cover (none for a pure package; see :func:`~releasekit._platforms.wheel_platforms`)."""

    name: str
    path: str
    dist: str
    layer: int
    reason: Literal["files", "dependency"]
    platforms: tuple[WheelPlatform, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The package as one entry of a CI matrix (``package``, ``path``, ``dist``, ``layer``,
        ``reason``, ``platforms``)."""
        return {
            "package": self.name,
            "path": self.path,
            "dist": self.dist,
            "layer": self.layer,
            "reason": self.reason,
            "platforms": list(self.platforms),
        }


def matrix_json(packages: Sequence[ChangedPackage]) -> str:
    """``packages`` as one line of JSON: a list a CI matrix takes (``include:``)."""
    return json.dumps([package.as_json() for package in packages], separators=(",", ":"))


def _repository(root: Path) -> Repository:
    repository = Repository.find(root)
    if repository is None:
        raise GitError(
            f"{root} is not in a git repository.",
            why="Changed packages are found by comparing git commits.",
            fix="Run the session in a clone of the repository.",
        )
    return repository


def _commit(repository: Repository, since: str) -> str:
    commit = repository.commit_of(since)
    if commit is not None:
        return commit
    if repository.is_shallow():
        raise GitError(
            f"{since!r} is not in this shallow clone.",
            why="The clone holds only the latest commits (CI checkouts fetch one by default), "
            "so the commit to compare with is missing.",
            fix="Fetch the whole history: `fetch-depth: 0` on actions/checkout, `GIT_DEPTH: 0` "
            "on GitLab, or `git fetch --unshallow --tags` by hand.",
        )
    raise GitError(
        f"{since!r} names no commit in this repository.",
        why="It is not a branch, tag or commit hash known here (a typo, or not fetched).",
        fix="Check the name with `git rev-parse`, or fetch it (`git fetch --tags`).",
    )


def _owner(path: str, dirs: dict[str, str]) -> str | None:
    """The package whose directory holds ``path`` (the deepest one), or None."""
    parts = path.split("/")
    for end in range(len(parts) - 1, -1, -1):
        owner = dirs.get("/".join(parts[:end]) or ".")
        if owner is not None:
            return owner
    return None


def changed_packages(projects: Sequence[Project], since: str) -> list[ChangedPackage]:
    """The packages of ``projects`` changed between ``since`` (a ref) and HEAD, with every
    package that requires one of them, in dependency order (layer by layer).

    ``since`` = 40 zeros (a branch's first push) puts every package in the plan. An unknown
    ref, a shallow clone that lacks it, and a directory outside git are explained
    :class:`GitError`; a requirement cycle among the packages a ``ConfigError``.
    """
    if not projects:
        return []
    repository = _repository(projects[0].root)
    dirs = {repository.relative(project.root): project.normalized_name for project in projects}
    paths = {name: path for path, name in dirs.items()}
    if since == NO_COMMIT:
        touched = set(dirs.values())
    else:
        changed = repository.changed_paths(_commit(repository, since))
        touched = {owner for path in changed if (owner := _owner(path, dirs)) is not None}
    needs = sibling_requirements(projects)
    dependents: dict[str, set[str]] = {name: set() for name in needs}
    for dependent, required in needs.items():
        for sibling in required:
            dependents[sibling].add(dependent)
    selected, pending = set(touched), list(touched)
    while pending:
        for dependent in dependents[pending.pop()] - selected:
            selected.add(dependent)
            pending.append(dependent)
    chosen = [project for project in projects if project.normalized_name in selected]
    return [
        ChangedPackage(
            project.name,
            paths[project.normalized_name],
            repository.relative(project.dist_dir),
            layer,
            "files" if project.normalized_name in touched else "dependency",
            wheel_platforms(project).families,
        )
        for layer, projects_of_layer in enumerate(dependency_order(chosen))
        for project in projects_of_layer
    ]


def tagged_package(projects: Sequence[Project], tag: str) -> list[ChangedPackage]:
    """The package the release tag ``tag`` releases (in its tag style), as a plan of one; an
    empty plan when ``tag`` is no package's release tag."""
    for project in projects:
        if project.version_of_tag(tag) is not None:
            repository = _repository(project.root)
            path, dist = repository.relative(project.root), repository.relative(project.dist_dir)
            families = wheel_platforms(project).families
            return [ChangedPackage(project.name, path, dist, 0, "files", families)]
    return []
