"""The changelog section of a release, from Conventional Commits, with commitizen.

commitizen does the parts it is good at: its configuration (``[tool.commitizen]``), its
commit rules (the ``name`` plugin's parser and pattern), its commit parsing and its release
tree (:func:`commitizen.changelog.generate_tree_from_commits`). releasekit chooses the
commits itself, because ``cz changelog`` cannot limit them to a directory: ``git log
<previous tag>..HEAD -- <package dir>`` in a monorepo. The section is written in Keep a
Changelog style (``## [0.2.0] - 2026-01-31``, ``### Added``, ``### Fixed``).

Which configuration wins, where both speak:

- ``[tool.releasekit]`` wins for the tag (``tag-format``; commitizen's ``tag_format`` is
  only compared, and a difference is warned about), the version scheme (always PEP 440) and
  where the version is read (``[project] version`` or ``version-files``).
- ``[tool.commitizen]`` is followed for ``name`` (the commit rules), ``change_type_map``,
  ``change_type_order``, ``changelog_file`` (Markdown only), ``bump_message`` (the release
  commit's message), ``version`` and ``version_files`` (also set to the new version).
  Hooks (``pre_bump_hooks``, ``post_bump_hooks``), ``gpg_sign`` and ``annotated_tag`` are
  not used: the release tag is always annotated.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Any, cast

from releasekit._commitizen import (
    BaseCommitizen,
    BaseConfig,
    CommitizenException,
    GitCommit,
    TomlConfig,
    committer_factory,
)
from releasekit._commitizen import changelog as cz_changelog
from releasekit._git import Repository
from releasekit._project import Project, read_pyproject
from releasekit.errors import ConfigError

#: Conventional commit types as Keep a Changelog headings (unless change_type_map is set).
KEEP_A_CHANGELOG_TYPES = {
    "BREAKING CHANGE": "Changed",
    "feat": "Added",
    "refactor": "Changed",
    "perf": "Changed",
    "fix": "Fixed",
}
KEEP_A_CHANGELOG_ORDER = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]
DEFAULT_RULES = "cz_conventional_commits"
CHANGELOG_INTRO = (
    "# Changelog\n\n"
    "All notable changes to this project are documented in this file.\n"
    "The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),\n"
    "and versions follow PEP 440.\n\n"
    "## [Unreleased]\n\n"
)
_LOG_FORMAT = "%H%n%P%n%s%n%an%n%ae%n%b"  # what GitCommit.from_rev_and_commit parses
_DELIMITER = "\x1e--releasekit-commit--\x1e"
_HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<title>.*?)[ \t]*$")
_UNRELEASED = re.compile(r"^\[?unreleased\]?$", re.IGNORECASE)


def commitizen_config(project: Project) -> BaseConfig:
    """commitizen's configuration from the project's pyproject.toml (defaults without it)."""
    try:
        data = project.pyproject.read_bytes() if project.pyproject.is_file() else b""
        return TomlConfig(data=data, path=project.pyproject)
    except CommitizenException as exc:
        raise ConfigError(f"[tool.commitizen] in {project.pyproject}: {exc}") from exc


def commitizen_settings(project: Project) -> dict[str, Any]:
    """The ``[tool.commitizen]`` settings, commitizen's defaults filled in."""
    return dict(commitizen_config(project).settings)


def release_message(project: Project, version: str) -> str:
    """The release commit's message: commitizen's ``bump_message`` if set, else a chore."""
    template = commitizen_settings(project).get("bump_message")
    if template:
        return Template(template).safe_substitute(
            current_version=project.version, new_version=version
        )
    return f"chore(release): {project.name} {version}"


def tag_format_conflict(project: Project, version: str) -> str | None:
    """A warning when ``[tool.commitizen] tag_format`` names another tag than releasekit."""
    tool = read_pyproject(project.pyproject).get("tool", {})
    theirs_format = tool.get("commitizen", {}).get("tag_format") if isinstance(tool, dict) else None
    if not isinstance(theirs_format, str):
        return None
    theirs = Template(theirs_format).safe_substitute(version=version)
    ours = project.tag(version)
    if theirs == ours:
        return None
    return (
        f"[tool.commitizen] tag_format gives the tag {theirs}, [tool.releasekit] tag-format "
        f"gives {ours}; releasekit uses {ours}."
    )


def commits_since(project: Project, repository: Repository, since: str | None) -> list[GitCommit]:
    """Commits after tag ``since`` (all when None) that touch the project's directory."""
    args = ["log", "--topo-order", f"--pretty=format:{_LOG_FORMAT}{_DELIMITER}"]
    args.append(f"{since}..HEAD" if since else "HEAD")
    package_dir = repository.relative(project.root)
    if package_dir != ".":
        args += ["--", package_dir]
    entries = repository.run(*args).split(_DELIMITER)
    return [GitCommit.from_rev_and_commit(entry.strip("\n")) for entry in entries if entry.strip()]


def _change_types(config: BaseConfig, rules: BaseCommitizen) -> tuple[dict[str, str], list[str]]:
    """Headings and their order: [tool.commitizen], else Keep a Changelog, else the plugin's."""
    settings = config.settings
    default = settings["name"] == DEFAULT_RULES
    mapping = settings.get("change_type_map") or (
        KEEP_A_CHANGELOG_TYPES if default else rules.change_type_map or {}
    )
    order = cast("list[str] | None", settings.get("change_type_order")) or (
        KEEP_A_CHANGELOG_ORDER if default else rules.change_type_order or []
    )
    return dict(mapping), list(order)


def section(project: Project, version: str, commits: list[GitCommit]) -> str:
    """The Markdown section of ``version``: its heading, then the changes by type."""
    config = commitizen_config(project)
    try:
        rules = committer_factory(config)
    except CommitizenException as exc:
        raise ConfigError(f"[tool.commitizen] name: {exc}".strip()) from exc
    mapping, order = _change_types(config, rules)
    tree = cz_changelog.generate_tree_from_commits(
        commits,
        [],
        rules.commit_parser or r"(?P<message>.*)",
        rules.changelog_pattern or r".*",
        unreleased_version=version,
        change_type_map=mapping,
        changelog_message_builder_hook=rules.changelog_message_builder_hook,
    )
    release = next(iter(cz_changelog.generate_ordered_changelog_tree(tree, order)))
    lines = [f"## [{release['version']}] - {release['date']}", ""]
    for change_type, changes in release["changes"].items():
        lines += [f"### {change_type or 'Other'}", ""]
        for change in changes:
            scope = f"**{change['scope']}**: " if change.get("scope") else ""
            breaking = "**Breaking:** " if change.get("breaking") else ""
            lines.append(f"- {breaking}{scope}{change.get('message') or ''}".rstrip())
        lines.append("")
    if not release["changes"]:
        lines += ["No changes of note.", ""]
    return "\n".join(lines) + "\n"


def changelog_path(project: Project) -> Path:
    """Where the changelog lives: ``[tool.commitizen] changelog_file``, else CHANGELOG.md."""
    name = str(commitizen_settings(project).get("changelog_file") or "CHANGELOG.md")
    path = project.root / name
    if path.suffix.lower() not in (".md", ".markdown"):
        raise ConfigError(
            f"[tool.commitizen] changelog_file {name!r} is not Markdown.",
            why="releasekit writes the changelog in Keep a Changelog Markdown.",
            fix="Use a .md changelog file (CHANGELOG.md).",
        )
    return path


def with_section(existing: str | None, new_section: str) -> str:
    """The changelog with ``new_section`` added as the newest release.

    Notes written by hand under ``## [Unreleased]`` move into the new section, and the
    Unreleased heading stays, empty. Without it the section goes above the newest release.
    """
    if existing is None:
        return CHANGELOG_INTRO + new_section
    lines = existing.splitlines(keepends=True)
    headings = [(i, m) for i, line in enumerate(lines) if (m := _HEADING.match(line.rstrip("\n")))]
    unreleased = next((h for h in headings if _UNRELEASED.match(h[1]["title"])), None)
    if unreleased is None:
        first = next((i for i, m in headings if len(m["level"]) == 2), len(lines))
        before = "".join(lines[:first])
        if before and not before.endswith("\n\n"):
            before += "\n" if before.endswith("\n") else "\n\n"
        rest = "".join(lines[first:])
        return before + new_section + ("\n" + rest if rest else "")
    start, match = unreleased
    level = len(match["level"])
    end = next((i for i, m in headings if i > start and len(m["level"]) <= level), len(lines))
    notes = "".join(lines[start + 1 : end]).strip("\n")
    if notes:
        heading, _, body = new_section.partition("\n\n")
        new_section = f"{heading}\n\n{notes}\n\n{body}"
    rest = "".join(lines[end:])
    return "".join(lines[: start + 1]) + "\n" + new_section + ("\n" + rest if rest else "")
