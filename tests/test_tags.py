"""Existing tags: with no tag-format set, the repository's own release-tag style is used by
doctor, release (the new tag, the changelog since the previous tag) and audit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import git, write_project
from releasekit._audit import audit
from releasekit._doctor import doctor
from releasekit._project import Project, load_projects
from releasekit._release import release
from releasekit._report import captured
from releasekit._settings import Settings
from releasekit._tags import detect
from releasekit.indexes.local import LocalIndex


def commit(root: Path, name: str, message: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(message + "\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.mark.parametrize(
    ("tags", "monorepo", "expected"),
    [
        (["1.0.0", "1.1.0", "2.2.1"], False, "{version}"),
        (["v1.0.0", "v2.2.1", "not-a-release", "vbanana"], False, "v{version}"),
        (["sample-pkg-v1.0", "sample-pkg-v1.1"], False, "{name}-v{version}"),
        (["sample-pkg-1.0", "sample-pkg-1.1rc1"], False, "{name}-{version}"),
        (["sample_pkg_v1.0"], False, "sample_pkg_v{version}"),
        (["Sample_Pkg-1.0"], False, "Sample_Pkg-{version}"),
        (["sample-pkg/v1.0", "other/v9.0", "v8.0"], True, "{name}/v{version}"),
        (["sample-pkg@2.0"], False, "{name}@{version}"),
        # Old style kept for history, the newest release's style wins.
        (["sample-pkg-1.0", "sample-pkg-1.1", "sample-pkg-1.2", "v2.0"], False, "v{version}"),
        # A monorepo package never claims tags that do not name it.
        (["v1.0", "1.2", "other-v3.0"], True, "{name}-v{version}"),
        ([], False, "{name}-v{version}"),
        (["banana", "vX", "sample-pkg-vnext", "V1.0"], False, "{name}-v{version}"),
    ],
)
def test_style_is_recognised(tags: list[str], monorepo: bool, expected: str) -> None:
    style = detect("sample-pkg", tags, monorepo=monorepo)
    assert style.format == expected, style.reason


def test_every_style_found_reads_as_a_release_tag() -> None:
    style = detect("sample-pkg", ["sample-pkg-1.0", "v2.0", "other-3.0"], monorepo=False)
    assert style.version_of("sample-pkg", "sample-pkg-1.0") == Version("1.0")
    assert style.version_of("sample-pkg", "v2.0") == Version("2.0")
    assert style.version_of("sample-pkg", "other-3.0") is None
    assert style.tag("sample-pkg", "2.1") == "v2.1"
    assert style.reason == "1 of 2 release tags (latest v2.0); also 1 as {name}-{version}"


@pytest.fixture
def tagged(make_project: Callable[..., Path]) -> Path:
    """A project released three times with `v` tags, one fix since."""
    root = make_project()
    for version in ("0.1.0", "0.2.0", "0.3.0"):
        write_project(root, "sample-pkg", version)
        commit(root, f"notes/{version}.txt", f"feat: work for {version}")
        git(root, "tag", "-a", f"v{version}", "-m", version)
    commit(root, "src/sample_pkg/fix.py", "fix: after the last release")
    return root


def test_doctor_names_the_style_and_why(tagged: Path) -> None:
    with captured() as out:
        doctor(Project.load(tagged))
    assert "tag style v{version}: 3 of 3 release tags (latest v0.3.0)." in out.getvalue()
    assert "tag v0.3.0." in out.getvalue()


def test_doctor_says_the_default_is_used_without_tags(project_dir: Path) -> None:
    with captured() as out:
        doctor(Project.load(project_dir))
    text = out.getvalue()
    assert "tag style {name}-v{version}: the default, as no release tags" in text
    assert "tag sample-pkg-v0.1.0." in text


def test_tag_format_setting_wins_over_the_tags(tagged: Path) -> None:
    project = Project.load(tagged, tag_format="release-{version}")
    assert project.tag("0.4.0") == "release-0.4.0"
    assert project.version_of_tag("v0.3.0") is None
    assert project.tag_style().reason == "the tag-format setting"


def test_release_follows_the_style_and_the_changelog_starts_at_the_previous_tag(
    tagged: Path,
) -> None:
    plan = release(Project.load(tagged), "0.4.0", index_check=False)
    assert plan.tag == "v0.4.0"
    assert plan.previous_tag == "v0.3.0"
    assert git(tagged, "cat-file", "-t", "v0.4.0").strip() == "tag"
    changelog = (tagged / "CHANGELOG.md").read_text()
    assert "after the last release" in changelog
    assert "work for 0.3.0" not in changelog


def test_audit_explains_versions_by_the_existing_tags(tagged: Path) -> None:
    with LocalIndex("pypi", "pypi-unused") as index:
        for version in ("0.1.0", "0.2.0", "0.3.0"):
            wheel = index.root / "packages" / f"sample_pkg-{version}-py3-none-any.whl"
            wheel.write_bytes(b"wheel")
        result = audit(Project.load(tagged), index.index)
    assert result.tagged == {Version(v): f"v{v}" for v in ("0.1.0", "0.2.0", "0.3.0")}
    assert not result.unexplained


def test_monorepo_packages_read_only_their_own_tags(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    write_project(root / "a", "pkg-a", "1.0.0")
    write_project(root / "b", "pkg-b", "2.0.0")
    (root / "pyproject.toml").write_text('[tool.releasekit]\npackages = ["a", "b"]\n')
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: start")
    for tag in ("pkg-a-1.0.0", "pkg_b/v2.0.0", "v3.0.0", "4.0.0"):
        git(root, "tag", tag)
    a, b = load_projects(root)
    assert a.tag("1.1.0") == "pkg-a-1.1.0"
    assert b.tag("2.1.0") == "pkg_b/v2.1.0"
    assert a.version_of_tag("v3.0.0") is None
    assert b.version_of_tag("4.0.0") is None
    assert b.tag_style().reason == "1 of 1 release tags (latest pkg_b/v2.0.0)"


def test_a_tag_format_naming_the_version_twice_reads_its_tags() -> None:
    """Found by Hypothesis: a second {version} made an invalid pattern (a repeated group)."""
    project = Project(
        Path("."),
        "sample-pkg",
        "0.1.0",
        Settings.from_table({"tag-format": "{version}-{version}"}, "t"),
    )
    assert project.version_of_tag("1.2.0-1.2.0") == Version("1.2.0")
    assert project.version_of_tag("1.2.0-1.3.0") is None
