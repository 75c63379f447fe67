"""The one git wrapper: every git command releasekit runs goes through :class:`Repository`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from releasekit._process import run, start
from releasekit.credentials import scrubbed_environ
from releasekit.errors import GitError

if TYPE_CHECKING:
    import subprocess

    from packaging.version import Version

    from releasekit._project import Project


def _cannot_run(exc: OSError) -> GitError:
    return GitError(f"Could not run git ({exc.strerror}).", fix="Install git and put it on PATH.")


def _environ(environment: Mapping[str, str]) -> dict[str, str]:
    return {**scrubbed_environ(), **environment}


def _git(
    cwd: Path,
    args: tuple[str, ...],
    environment: Mapping[str, str],
    *,
    input: str | None = None,
    errors: str = "strict",
    may_prompt: bool = False,
) -> str:
    """Run ``git args`` in ``cwd``; its stdout (UTF-8), or :class:`GitError` with git's words."""
    try:
        result = run(
            ["git", *args],
            cwd=cwd,
            env=_environ(environment),
            input=input,
            encoding="utf-8",
            errors=errors,
            may_prompt=may_prompt,
        )
    except OSError as exc:
        raise _cannot_run(exc) from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise GitError(
            f"`git {' '.join(args)}` failed in {cwd}:\n{detail}",
            why="git refused the command for the reason it gives above.",
            fix="Resolve what git reports, then run the session again.",
        )
    return result.stdout


class Repository:
    """The git work tree that holds a path; every command runs with ``cwd`` = its root.

    ``environment`` is added to the (credential-free) environment of every git command.
    """

    def __init__(self, path: Path, *, environment: Mapping[str, str] | None = None) -> None:
        self.environment = dict(environment or {})
        self.root = Path(_git(path, ("rev-parse", "--show-toplevel"), self.environment).strip())

    @classmethod
    def find(cls, path: Path, *, environment: Mapping[str, str] | None = None) -> Repository | None:
        """The repository holding ``path`` (a file or directory), or None outside git."""
        directory = path if path.is_dir() else path.parent
        try:
            return cls(directory, environment=environment)
        except GitError as exc:
            if isinstance(exc.__cause__, OSError):  # git itself could not run
                raise
            return None

    def run(
        self, *args: str, input: str | None = None, errors: str = "strict", remote: bool = False
    ) -> str:
        """Run ``git args`` at the repository root; its stdout, or :class:`GitError`.

        ``input`` is the command's stdin; ``errors="surrogateescape"`` keeps paths that are
        not UTF-8 (they round-trip when given back as ``input``). ``remote``: the command
        talks to a remote, and may ask at the terminal for a passphrase or a password.
        """
        return _git(
            self.root, args, self.environment, input=input, errors=errors, may_prompt=remote
        )

    def stream(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``git args`` at the root with byte pipes to its stdin and stdout."""
        try:
            return start(["git", *args], cwd=self.root, env=_environ(self.environment))
        except OSError as exc:
            raise _cannot_run(exc) from exc

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
        return bool(
            self.run("ls-remote", "--tags", remote, f"refs/tags/{tag}", remote=True).strip()
        )

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root, POSIX style (``.`` for the root)."""
        return path.resolve().relative_to(self.root.resolve()).as_posix() or "."

    def project_tags(self, project: Project) -> dict[str, Version]:
        """Tags of ``project`` reachable from HEAD (in its tag style), with their versions."""
        style, name = project.tag_style(), project.normalized_name
        found: dict[str, Version] = {}
        for tag in self.run("tag", "--list", "--merged", "HEAD").split():
            version = style.version_of(name, tag)
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

    def commit_of(self, ref: str) -> str | None:
        """The commit ``ref`` names (a branch, tag or hash), or None when there is none here."""
        try:
            return self.run(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
            ).strip()
        except GitError:
            return None

    def is_shallow(self) -> bool:
        """True in a shallow clone (history cut at some depth, as CI checkouts often are)."""
        return self.run("rev-parse", "--is-shallow-repository").strip() == "true"

    def changed_paths(self, since: str) -> list[str]:
        """The files (POSIX, from the root) that differ between commit ``since`` and HEAD: one
        ``git diff``; a renamed file counts at its old and its new path."""
        listing = self.run(
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            since,
            "HEAD",
            "--",
            errors="surrogateescape",
        )
        return [path for path in listing.split("\0") if path]
