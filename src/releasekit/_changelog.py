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

from packaging.version import Version

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
from releasekit._headings import MD_HEADING, ChangelogFormat, Heading, headings
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
CHANGELOG_INTRO_RST = "Changelog\n=========\n\n"
#: The names a changelog goes by, in the order they are looked for (each .md, then .rst).
CHANGELOG_NAMES = ("CHANGELOG", "CHANGES", "HISTORY", "NEWS")
_LOG_FORMAT = "%H%n%P%n%s%n%an%n%ae%n%b"  # what GitCommit.from_rev_and_commit parses
_DELIMITER = "\x1e--releasekit-commit--\x1e"
_RST_STYLES = "=-~^\"'`#*+:._"
_UNRELEASED = re.compile(r"^\[?unreleased\]?$", re.IGNORECASE)


def _commitizen_table(project: Project) -> dict[str, Any]:
    """``[tool.commitizen]`` as written (empty without it); refused when it is not a table."""
    tool = read_pyproject(project.pyproject).get("tool", {})
    table = tool.get("commitizen", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(
            f"[tool.commitizen] in {project.pyproject} is a {type(table).__name__}, not a table.",
            why="commitizen's settings (commit rules, tag_format, changelog_file) are keys of "
            "a [tool.commitizen] table.",
            fix="Write it as a table, e.g. [tool.commitizen] followed by name = "
            '"cz_conventional_commits", or remove it.',
        )
    return cast("dict[str, Any]", table)


def commitizen_config(project: Project) -> BaseConfig:
    """commitizen's configuration from the project's pyproject.toml (defaults without it)."""
    _commitizen_table(project)
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
    theirs_format = _commitizen_table(project).get("tag_format")
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


def commit_rules(config: BaseConfig) -> BaseCommitizen:
    """The commit rules (commitizen plugin) that ``config`` names."""
    try:
        return committer_factory(config)
    except CommitizenException as exc:
        raise ConfigError(f"[tool.commitizen] name: {exc}".strip()) from exc


def section(project: Project, version: str, commits: list[GitCommit]) -> str:
    """The Markdown section of ``version``: its heading, then the changes by type."""
    config = commitizen_config(project)
    rules = commit_rules(config)
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
    """The project's changelog: the ``changelog-file`` setting, else ``[tool.commitizen]
    changelog_file``, else the first of CHANGELOG, CHANGES, HISTORY and NEWS (each ``.md``,
    ``.rst``, ``.txt``, then with no suffix) that exists, else CHANGELOG.md (to be created)."""
    if project.settings.changelog_file is not None:
        return project.root / project.settings.changelog_file
    configured = _commitizen_table(project).get("changelog_file")
    if configured:
        path = project.root / str(configured)
        if changelog_format(path) is None:
            raise ConfigError(
                f"[tool.commitizen] changelog_file {str(configured)!r} is neither Markdown "
                "nor reStructuredText.",
                why="releasekit writes the changelog in Keep a Changelog style, in Markdown "
                "or reStructuredText.",
                fix="Use a .md or .rst changelog file (CHANGELOG.md).",
            )
        return path
    found = (
        project.root / f"{stem}{suffix}"
        for stem in CHANGELOG_NAMES
        for suffix in (".md", ".rst", ".txt", "")
    )
    return next((path for path in found if path.is_file()), project.root / "CHANGELOG.md")


def changelog_format(path: Path) -> ChangelogFormat | None:
    """``md`` or ``rst`` from the file's suffix; for ``.txt`` or no suffix (``CHANGES``), from
    its headings (``# ...`` is Markdown, else reStructuredText); None for any other."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "md"
    if suffix in (".rst", ".rest"):
        return "rst"
    if suffix not in ("", ".txt"):
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "md"
    return "md" if any(MD_HEADING.match(line) for line in text.splitlines()) else "rst"


def _rst_section(markdown: str, styles: list[str], release_level: int) -> str:
    """The Markdown ``section`` as reStructuredText, headings in the file's own styles."""
    out = []
    for line in markdown.splitlines():
        match = MD_HEADING.match(line)
        if match is None:
            out.append(line)
            continue
        level = release_level + len(match["level"]) - 2
        while len(styles) < level:
            styles.append(next(c for c in _RST_STYLES if c not in styles))
        out += [match["title"], styles[level - 1] * len(match["title"])]
    return "\n".join(out) + "\n"


def with_section(existing: str | None, new_section: str, form: ChangelogFormat = "md") -> str:
    """The changelog with ``new_section`` (Markdown, from :func:`section`) added as the
    newest release, written in the changelog's ``form``.

    Notes written by hand under an Unreleased heading move into the new section, and the
    heading stays, empty. Without it the section goes above the newest release.
    """
    if existing is None:
        if form == "rst":
            return CHANGELOG_INTRO_RST + _rst_section(new_section, ["="], 2)
        return CHANGELOG_INTRO + new_section
    lines = existing.splitlines(keepends=True)
    found = headings(existing, form)
    release_level = 2
    if form == "rst":
        styles = _rst_styles(existing, found)
        release_level = next(
            (h.level for h in found if h.version or _UNRELEASED.match(h.title)),
            min(len(styles) + 1, 2),
        )
        new_section = _rst_section(new_section, styles, release_level)
    unreleased = next((h for h in found if _UNRELEASED.match(h.title)), None)
    if unreleased is None:
        first = next((h.line for h in found if h.level == release_level), len(lines))
        before = "".join(lines[:first])
        if before and not before.endswith("\n\n"):
            before += "\n" if before.endswith("\n") else "\n\n"
        rest = "".join(lines[first:])
        return before + new_section + ("\n" + rest if rest else "")
    end = next(
        (h.line for h in found if h.line > unreleased.line and h.level <= unreleased.level),
        len(lines),
    )
    notes = "".join(lines[unreleased.end : end]).strip("\n")
    if notes:
        heading, _, body = new_section.partition("\n\n")
        new_section = f"{heading}\n\n{notes}\n\n{body}"
    rest = "".join(lines[end:])
    return "".join(lines[: unreleased.end]) + "\n" + new_section + ("\n" + rest if rest else "")


def _rst_styles(text: str, found: list[Heading]) -> list[str]:
    """The adornment character of each reStructuredText heading level, in level order."""
    styles: dict[int, str] = {}
    for heading in found:
        begin, _end = heading.adornments[-1]
        styles.setdefault(heading.level, text[begin])
    return [styles[level] for level in sorted(styles)]


def release_notes(project: Project, version: str) -> str | None:
    """The text under the changelog heading of ``version`` (its subsections included), as
    written there; None when the changelog is missing or has no heading for that version."""
    path = changelog_path(project)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    found = headings(text, changelog_format(path) or "md")
    wanted = Version(version)
    heading = next((h for h in found if h.version == wanted), None)
    if heading is None:
        return None
    lines = text.splitlines(keepends=True)
    end = next(
        (h.line for h in found if h.line > heading.line and h.level <= heading.level),
        len(lines),
    )
    return "".join(lines[heading.end : end]).strip("\n") + "\n"
