"""The one changelog heading parser (Markdown and reStructuredText), the file a project's
changelog is in, and a new section written in that file's own format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import git
from releasekit._changelog import changelog_format, changelog_path, with_section
from releasekit._doctor import doctor
from releasekit._headings import headings, retitled
from releasekit._project import Project
from releasekit._release import release
from releasekit._report import captured
from releasekit._yank import mark_changelog
from releasekit.errors import ConfigError
from releasekit.indexes.local import LocalIndex

RST = """\
=========
Changelog
=========

Unreleased
----------

- notes by hand

1.1.0 (2026-02-01)
------------------

Fixed
~~~~~

- a fix

v1.0.0 (2026-01-01)
-------------------
"""
SECTION = "## [1.2.0] - 2026-03-01\n\n### Added\n\n- a feature\n"


def test_markdown_headings() -> None:
    text = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-01-01\n### Fixed\n"
    found = headings(text)
    assert [(h.level, h.title, h.line) for h in found] == [
        (1, "Changelog", 0),
        (2, "[Unreleased]", 2),
        (2, "[1.0.0] - 2026-01-01", 4),
        (3, "Fixed", 5),
    ]
    assert [h.version for h in found] == [None, None, Version("1.0.0"), None]
    begin, end = found[2].title_span
    assert text[begin:end] == "[1.0.0] - 2026-01-01"


def test_rst_headings_levels_follow_the_order_styles_appear() -> None:
    found = headings(RST, "rst")
    assert [(h.level, h.title) for h in found] == [
        (1, "Changelog"),
        (2, "Unreleased"),
        (2, "1.1.0 (2026-02-01)"),
        (3, "Fixed"),
        (2, "v1.0.0 (2026-01-01)"),
    ]
    assert (found[0].line, found[0].end) == (0, 3)  # overline, title, underline
    assert found[4].version == Version("1.0.0")


def test_retitled_rst_lengthens_the_adornments() -> None:
    heading = headings(RST, "rst")[2]
    text = retitled(RST, heading, heading.title + " [YANKED]")
    assert "1.1.0 (2026-02-01) [YANKED]\n---------------------------\n" in text
    assert headings(text, "rst")[2].title == "1.1.0 (2026-02-01) [YANKED]"


def test_mark_changelog_rst_round_trip() -> None:
    marked = mark_changelog(RST, Version("1.0.0"), yanked=True, form="rst")
    assert marked is not None
    assert "v1.0.0 (2026-01-01) [YANKED]\n----------------------------\n" in marked
    assert mark_changelog(marked, Version("1.0.0"), yanked=True, form="rst") == marked
    assert mark_changelog(marked, Version("1.0.0"), yanked=False, form="rst") == RST


def test_with_section_in_rst_uses_the_file_styles_and_keeps_unreleased_notes() -> None:
    text = with_section(RST, SECTION, "rst")
    assert text.startswith("=========\nChangelog\n=========\n\n")
    assert (
        "Unreleased\n----------\n\n"
        "[1.2.0] - 2026-03-01\n--------------------\n\n- notes by hand\n\n"
        "Added\n~~~~~\n\n- a feature\n\n"
        "1.1.0 (2026-02-01)\n"
    ) in text
    assert [h.level for h in headings(text, "rst")] == [1, 2, 2, 3, 2, 3, 2]


def test_with_section_in_rst_without_unreleased_goes_above_the_newest_release() -> None:
    existing = "History\n=======\n\n0.1.0\n-----\n\n- first\n"
    text = with_section(existing, SECTION, "rst")
    assert text == (
        "History\n=======\n\n[1.2.0] - 2026-03-01\n--------------------\n\n"
        "Added\n~~~~~\n\n- a feature\n\n0.1.0\n-----\n\n- first\n"
    )


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        ((), "CHANGELOG.md"),
        (("NEWS.md", "CHANGES.rst"), "CHANGES.rst"),
        (("HISTORY.md", "CHANGELOG.rst"), "CHANGELOG.rst"),
        (("CHANGELOG.rst", "CHANGELOG.md"), "CHANGELOG.md"),
        (("CHANGES",), "CHANGES"),
        (("HISTORY.txt", "NEWS"), "HISTORY.txt"),
    ],
)
def test_changelog_path_finds_the_existing_file(
    make_project: Callable[..., Path], present: tuple[str, ...], chosen: str
) -> None:
    root = make_project()
    for name in present:
        (root / name).write_text("# Changelog\n")
    assert changelog_path(Project.load(root)) == root / chosen


def test_a_changelog_without_suffix_is_read_by_its_headings(tmp_path: Path) -> None:
    rst, md = tmp_path / "CHANGES", tmp_path / "NEWS.txt"
    rst.write_text("Changelog for six\n=================\n\n1.16.0\n------\n\n- Fixed.\n")
    md.write_text("# News\n\n## 1.0\n")
    assert (changelog_format(rst), changelog_format(md)) == ("rst", "md")
    assert changelog_format(tmp_path / "CHANGES.json") is None


def test_release_writes_into_an_existing_changes_rst(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    (root / "CHANGES.rst").write_text("Changes\n=======\n\n0.1.0\n-----\n\n- first\n")
    git(root, "add", "CHANGES.rst")
    git(root, "commit", "-q", "-m", "fix: keep a changelog")
    with LocalIndex("pypi", "pypi-unused") as pypi:
        for key, value in pypi.environ().items():
            monkeypatch.setenv(key, value)
        release(Project.load(root), "0.2.0")
    assert not (root / "CHANGELOG.md").exists()
    found = headings((root / "CHANGES.rst").read_text(), "rst")
    assert [(h.level, h.version) for h in found if h.version] == [
        (2, Version("0.2.0")),
        (2, Version("0.1.0")),
    ]
    assert "Fixed" in [h.title for h in found]


def test_changelog_file_setting_is_what_release_writes_and_doctor_names(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(releasekit='changelog-file = "docs/HISTORY.rst"')
    (root / "CHANGES.md").write_text("# Changes\n")  # would be found, the setting wins
    (root / "docs").mkdir()
    (root / "docs" / "HISTORY.rst").write_text("History\n=======\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "docs: history")
    project = Project.load(root)
    with captured() as out:
        doctor(project)
    assert f"changelog: release writes {root / 'docs' / 'HISTORY.rst'} (exists)." in out.getvalue()
    release(project, "0.2.0", index_check=False)
    history = (root / "docs" / "HISTORY.rst").read_text()
    assert history.startswith("History\n=======\n\n[0.2.0] - ")
    assert (root / "CHANGES.md").read_text() == "# Changes\n"


def test_a_commitizen_setting_that_is_not_a_table_is_an_explained_config_error(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool]\ncommitizen = "cz_conventional"\n')
    with pytest.raises(ConfigError, match=r"is a str, not a table") as caught:
        changelog_path(Project.load(root))
    assert caught.value.fix is not None and "[tool.commitizen]" in caught.value.fix
