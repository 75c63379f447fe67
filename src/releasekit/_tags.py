"""How a project's release tags are spelt: ``tag-format``, else the style its tags already have.

With no ``tag-format`` set, the repository's tags are read: a tag is a release tag of the
project when it is a PEP 440 version (starting with a digit) after one of the prefixes
releasekit knows: none, ``v``, or the project's name (spelt any way that normalises to it)
followed by ``-``, ``_``, ``/`` or ``@`` and an optional ``v``. In a monorepo only tags that
name the package count. The style of the highest released version wins (a project that
changed styles keeps its newest); every style found is still read as a release tag, so
audit and the changelog see the whole history. No release tag: ``{name}-v{version}``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from releasekit._git import Repository
from releasekit._settings import DEFAULT_TAG_FORMAT
from releasekit.errors import GitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from collections.abc import Iterable

    from releasekit._project import Project

_MARKER = "\x00version\x00"
_SEPARATORS = "-_/@"


@dataclass(frozen=True)
class TagStyle:
    """The tag format a project's releases use, and why releasekit chose it.

    ``formats`` are every format read as this project's release tags (the chosen one
    first); ``reason`` says where the choice came from, in words for ``doctor``.
    """

    format: str
    reason: str
    formats: tuple[str, ...] = field(default=())

    def tag(self, name: str, version: str) -> str:
        """The tag of ``version`` (``name`` is the normalised project name)."""
        return self.format.format(name=name, version=version)

    def version_of(self, name: str, tag: str) -> Version | None:
        """The version ``tag`` releases, or None when it is not a release tag in this style."""
        for fmt in self.formats or (self.format,):
            marker = re.escape(fmt.format(name=name, version=_MARKER))
            # A format may name the version twice: the second must repeat the first.
            field = re.escape(_MARKER)
            pattern = marker.replace(field, "(?P<version>.+)", 1).replace(field, "(?P=version)")
            found = re.fullmatch(pattern, tag)
            if found is None:
                continue
            try:
                return Version(found.group("version"))
            except InvalidVersion:
                continue
        return None


def _name_pattern(name: str) -> str:
    """A regex for every spelling of the normalised ``name`` (case, and ``-_.`` runs)."""
    return "[-_.]+".join(re.escape(part) for part in name.split("-"))


def tag_format_of(tag: str, name: str, *, named_only: bool) -> tuple[str, Version] | None:
    """The format ``tag`` follows and the version it releases, if it is a release tag of the
    project ``name`` (normalised); ``named_only`` refuses tags that do not name it."""
    rest = r"(?-i:(?P<v>v?))(?P<version>\d.*)"
    found = re.fullmatch(
        f"(?P<name>{_name_pattern(name)})(?P<sep>[{re.escape(_SEPARATORS)}])" + rest,
        tag,
        re.IGNORECASE,
    )
    if found is None and not named_only:
        found = re.fullmatch("(?P<name>)(?P<sep>)" + rest, tag)
    if found is None:
        return None
    try:
        version = Version(found["version"])
    except InvalidVersion:
        return None
    spelt = found["name"]
    head = "{name}" if spelt == name else spelt
    return f"{head + found['sep'] if spelt else ''}{found['v']}{{version}}", version


def detect(
    name: str, tags: Iterable[str], *, monorepo: bool, default: str = DEFAULT_TAG_FORMAT
) -> TagStyle:
    """The style of the release tags of project ``name`` among ``tags`` (see the module)."""
    found: dict[str, tuple[str, Version]] = {}
    for tag in tags:
        parsed = tag_format_of(tag, name, named_only=monorepo)
        if parsed is not None:
            found[tag] = parsed
    if not found:
        where = "this monorepo package" if monorepo else "this project"
        reason = f"the default, as no release tags of {where} exist yet (tag-format sets another)"
        return TagStyle(default, reason, (default,))
    counts = Counter(fmt for fmt, _version in found.values())
    latest = max(found, key=lambda tag: (found[tag][1], counts[found[tag][0]]))
    chosen = found[latest][0]
    reason = f"{counts[chosen]} of {len(found)} release tags (latest {latest})"
    others = [f"{count} as {fmt}" for fmt, count in counts.most_common() if fmt != chosen]
    if others:
        reason += f"; also {', '.join(others)}"
    return TagStyle(chosen, reason, (chosen, *(fmt for fmt in counts if fmt != chosen)))


def is_monorepo_package(root: Path, top: Path) -> bool:
    """True when a pyproject.toml above ``root`` (up to ``top``) lists packages: releasekit's
    ``packages`` or a uv workspace's ``members``."""
    root, top = root.resolve(), top.resolve()
    if root == top or top not in root.parents:
        return False
    for directory in root.parents:
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                tool = {}
            if isinstance(tool, dict) and (
                tool.get("releasekit", {}).get("packages")
                or tool.get("uv", {}).get("workspace", {}).get("members")
            ):
                return True
        if directory == top:
            break
    return False


def tag_style(project: Project, repository: Repository | None = None) -> TagStyle:
    """The tag style of ``project``: its ``tag-format`` setting, else its repository's tags."""
    fmt = project.settings.tag_format
    if fmt is not None:
        return TagStyle(fmt, "the tag-format setting", (fmt,))
    try:
        repository = repository or Repository.find(project.root)
        if repository is None:
            return TagStyle(DEFAULT_TAG_FORMAT, "the default: not in a git repository")
        tags = repository.tags()
    except GitError as exc:
        return TagStyle(DEFAULT_TAG_FORMAT, f"the default: git tags unreadable ({exc.what})")
    monorepo = is_monorepo_package(project.root, repository.root)
    return detect(project.normalized_name, tags, monorepo=monorepo)
