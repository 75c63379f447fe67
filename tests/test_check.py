"""check_dist: every problem listed at once, on real built files."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import write_project
from releasekit._build import build
from releasekit._check import check
from releasekit._project import Project
from releasekit.errors import CheckFailed, DistributionError

BAD_RST = "Title\n=====\n\n.. code-block:: nonsense\n   :bogus-option:\n\n`unclosed\n"


def problems(project: Project) -> list[str]:
    with pytest.raises(CheckFailed) as caught:
        check(project)
    return caught.value.problems


def test_clean_build_passes(project: Project) -> None:
    assert sorted(d.kind for d in check(project)) == ["sdist", "wheel"]


def test_version_file_disagreeing_names_both_versions(project: Project) -> None:
    init = project.root / "src" / "sample_pkg" / "__init__.py"
    init.write_text(init.read_text().replace('"0.1.0"', '"0.1.1"'))
    (found,) = problems(project)
    assert "0.1.1" in found and "0.1.0" in found and "__init__.py:__version__" in found


def test_unrenderable_rst_readme_fails(tmp_path: Path) -> None:
    root = write_project(tmp_path / "rst", readme=BAD_RST, readme_name="README.rst")
    project = Project.load(root)
    build(project)
    found = problems(project)
    assert len(found) == 2  # the sdist and the wheel
    assert all("would not render" in p for p in found)


def test_every_problem_is_listed(project: Project) -> None:
    (sdist,) = project.dist_dir.glob("*.tar.gz")
    sdist.unlink()
    (wheel,) = project.dist_dir.glob("*.whl")
    shutil.copy(wheel, project.dist_dir / wheel.name.replace("0.1.0", "0.0.9"))
    found = problems(project)
    text = "\n".join(found)
    assert "no sdist" in text
    assert "mixes versions 0.0.9, 0.1.0" in text
    assert "filename says version 0.0.9 but its metadata says 0.1.0" in text
    assert "version 0.0.9 differs from the project's 0.1.0" in text


def test_corrupt_wheel_is_one_clear_problem(project: Project) -> None:
    (wheel,) = project.dist_dir.glob("*.whl")
    wheel.write_bytes(b"this is not a zip file")
    (found,) = problems(project)
    assert wheel.name in found and "unreadable" in found


def test_a_file_checked_before_and_replaced_since_is_checked_again(project: Project) -> None:
    """check_dist then upload check each file once per content: a file rewritten under the
    same name between two checks is checked anew, never taken on the first one's word."""
    assert len(check(project)) == 2
    (wheel,) = project.dist_dir.glob("*.whl")
    wheel.write_bytes(b"this is not a zip file")
    (found,) = problems(project)
    assert wheel.name in found and "unreadable" in found


def test_a_file_whose_content_was_checked_is_not_read_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import releasekit._check as checking

    assert len(check(project)) == 2
    read: list[Path] = []
    monkeypatch.setattr(checking, "pypi_problems", lambda path, **_kw: read.append(path))
    assert len(check(project)) == 2
    assert read == []


def test_wheel_without_metadata(project: Project) -> None:
    (wheel,) = project.dist_dir.glob("*.whl")
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("sample_pkg/__init__.py", "")
    (found,) = problems(project)
    assert wheel.name in found


def test_oversized_file(tmp_path: Path) -> None:
    root = write_project(tmp_path / "big", releasekit="max-file-size-mb = 1")
    (root / "src" / "sample_pkg" / "blob.bin").write_bytes(__import__("os").urandom(1_200_000))
    project = Project.load(root)
    build(project)
    found = problems(project)
    assert len(found) == 2 and all("over the index limit of 1 MB" in p for p in found)


def test_missing_and_empty_dist_dir(project: Project) -> None:
    shutil.rmtree(project.dist_dir)
    with pytest.raises(DistributionError, match="does not exist"):
        check(project)
    project.dist_dir.mkdir()
    with pytest.raises(DistributionError, match="No distribution files"):
        check(project)


def test_tag_build_must_match_the_tag(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REF_TYPE", "tag")
    monkeypatch.setenv("GITHUB_REF_NAME", "sample-pkg-v0.1.0")
    assert len(check(project)) == 2
    monkeypatch.setenv("GITHUB_REF_NAME", "sample-pkg-v0.2.0")
    (found,) = problems(project)
    assert "tag sample-pkg-v0.2.0 (version 0.2.0)" in found
    assert "files are version 0.1.0" in found
    monkeypatch.setenv("GITHUB_REF_NAME", "other-pkg-v9.0.0")  # another package's tag
    assert len(check(project)) == 2
    monkeypatch.delenv("GITHUB_REF_TYPE")
    monkeypatch.setenv("CI_COMMIT_TAG", "sample-pkg-v0.0.1")
    assert "version 0.0.1" in problems(project)[0]
