"""The git repository a project lives in: state, tags of this project, commits since a tag."""

from __future__ import annotations

import subprocess
from pathlib import Path

from packaging.version import Version

from releasekit._project import Project
from releasekit.errors import ReleaseError


class GitError(ReleaseError):
    """A git command failed."""


class Repository:
    """The git work tree that holds a project; every command runs with ``cwd`` = its root."""

    def __init__(self, path: Path) -> None:
        self.root = Path(self._git(path, "rev-parse", "--show-toplevel").strip())

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        try:
            result = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise GitError(
                f"Could not run git ({exc.strerror}).", fix="Install git and put it on PATH."
            ) from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise GitError(
                f"`git {' '.join(args)}` failed in {cwd}:\n{detail}",
                why="git refused the command for the reason it gives above.",
                fix="Resolve what git reports, then run the session again.",
            )
        return result.stdout

    def run(self, *args: str) -> str:
        """Run ``git args`` at the repository root; its stdout, or :class:`GitError`."""
        return self._git(self.root, *args)

    def head(self) -> str:
        """The commit HEAD points at."""
        return self.run("rev-parse", "HEAD").strip()

    def branch(self) -> str | None:
        """The checked-out branch, or None on a detached HEAD."""
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD").strip()
        except GitError:
            return None

    def status(self) -> str:
        """``git status --porcelain`` (untracked files included, ignored ones not)."""
        return self.run("status", "--porcelain", "--untracked-files=normal")

    def tags(self) -> list[str]:
        """Every local tag name."""
        return self.run("tag", "--list").split()

    def tag_exists(self, tag: str) -> bool:
        """True when a local tag named ``tag`` exists."""
        return tag in self.tags()

    def remote(self) -> str:
        """The remote of the current branch (``branch.<name>.remote``), else ``origin``."""
        branch = self.branch()
        if branch:
            try:
                return self.run("config", f"branch.{branch}.remote").strip()
            except GitError:
                pass
        return "origin"

    def remote_has_tag(self, remote: str, tag: str) -> bool:
        """True when ``remote`` has the tag ``tag`` (asks the remote)."""
        return bool(self.run("ls-remote", "--tags", remote, f"refs/tags/{tag}").strip())

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root, POSIX style (``.`` for the root)."""
        return path.resolve().relative_to(self.root.resolve()).as_posix() or "."

    def project_tags(self, project: Project) -> dict[str, Version]:
        """Tags of ``project`` reachable from HEAD (by its tag-format), with their versions."""
        found: dict[str, Version] = {}
        for tag in self.run("tag", "--list", "--merged", "HEAD").split():
            version = project.version_of_tag(tag)
            if version is not None:
                found[tag] = version
        return found

    def last_tag(self, project: Project, below: Version | None = None) -> str | None:
        """The reachable tag of ``project`` with the highest version (under ``below``)."""
        tags = {
            tag: version
            for tag, version in self.project_tags(project).items()
            if below is None or version < below
        }
        return max(tags, key=tags.__getitem__) if tags else None

    def count_commits(self, since: str | None) -> int:
        """How many commits HEAD has after ``since`` (all of them when None)."""
        return int(self.run("rev-list", "--count", f"{since}..HEAD" if since else "HEAD"))
