"""Stamped builds: `build --version V` / `--dev`, the tree restored byte for byte, and
check_dist accepting stamped files only when they are a stamp of this tree."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import git, run_nox
from releasekit._project import Project
from releasekit._release import release
from releasekit._stamp import canonical_version, dev_version, stamped
from releasekit.errors import VersionError

pytestmark = pytest.mark.slow


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the work tree but .git and dist."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {".git", "dist"} & set(path.relative_to(root).parts)
    }


@pytest.fixture
def released(make_project: Callable[..., Path]) -> Path:
    """A sample project released as 0.2.0 (tagged), then one more commit."""
    root = make_project()
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    release(Project.load(root), "0.2.0", index_check=False)
    (root / "src" / "sample_pkg" / "more.py").write_text("MORE = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: more")
    return root


def built_versions(root: Path) -> set[str]:
    names = [path.name for path in (root / "dist").iterdir()]
    assert len(names) == 2, names
    return {name.split("-")[1].removesuffix(".tar.gz") for name in names}


def test_build_dev_stamps_a_dev_release_above_the_last(released: Path) -> None:
    before = tree(released)
    result = run_nox(released, "-s", "build", "--", "--dev")
    assert result.returncode == 0, result.stdout
    (version,) = built_versions(released)
    assert version == "0.2.1.dev1"  # one commit since sample-pkg-v0.2.0
    assert Version(version) > Version("0.2.0")
    assert tree(released) == before
    assert git(released, "status", "--porcelain") == ""
    checked = run_nox(released, "-s", "check_dist")
    assert checked.returncode == 0, checked.stdout
    assert "0.2.1.dev1 pass" in checked.stdout


def test_build_dev_uses_the_ci_run_number(released: Path) -> None:
    result = run_nox(released, "-s", "build", "--", "--dev", env={"GITHUB_RUN_NUMBER": "42"})
    assert result.returncode == 0, result.stdout
    assert built_versions(released) == {"0.2.1.dev42"}


def test_build_version_stamps_that_version_for_this_build_only(released: Path) -> None:
    before = tree(released)
    result = run_nox(released, "-s", "build", "--", "--version", "1.2.3")
    assert result.returncode == 0, result.stdout
    assert built_versions(released) == {"1.2.3"}
    assert tree(released) == before
    assert git(released, "status", "--porcelain") == ""
    checked = run_nox(released, "-s", "check_dist")
    assert checked.returncode == 0, checked.stdout


def test_check_dist_refuses_stamped_files_of_another_tree(released: Path) -> None:
    assert run_nox(released, "-s", "build", "--", "--version", "1.2.3").returncode == 0
    pyproject = released / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("A sample package.", "Changed since."))
    git(released, "commit", "-q", "-am", "docs: describe it differently")
    checked = run_nox(released, "-s", "check_dist")
    assert checked.returncode != 0
    assert "version 1.2.3 differs from the project's 0.2.0" in checked.stdout


def test_check_dist_refuses_stale_files_of_an_older_version(released: Path) -> None:
    assert run_nox(released, "-s", "build", "--", "--version", "0.1.5").returncode == 0
    checked = run_nox(released, "-s", "check_dist")
    assert checked.returncode != 0
    assert "version 0.1.5 differs from the project's 0.2.0" in checked.stdout


def test_failed_build_restores_the_tree(make_project: Callable[..., Path]) -> None:
    root = make_project(backend="setuptools")
    (root / "setup.py").write_text("raise SystemExit('this build fails on purpose')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: a build that fails")
    before = tree(root)
    result = run_nox(root, "-s", "build", "--", "--version", "1.2.3")
    assert result.returncode != 0
    assert "Building sample-pkg 1.2.3" in result.stdout  # it failed while stamped
    assert tree(root) == before
    assert git(root, "status", "--porcelain") == ""


def test_bad_stamp_versions_are_refused(released: Path) -> None:
    for args, says in (
        (["--version", "v1.2.3"], "Write it as 1.2.3"),
        (["--version", "banana"], "'banana' is not a valid PEP 440 version"),
        (["--version", "1.2.3", "--dev"], "--version and --dev both given"),
    ):
        result = run_nox(released, "-s", "build", "--", *args)
        assert result.returncode != 0
        assert says in result.stdout, result.stdout
        assert "Traceback" not in result.stdout


def test_stamp_restores_on_exception(make_project: Callable[..., Path]) -> None:
    root = make_project()
    before = tree(root)
    project = Project.load(root)

    def build_that_fails() -> None:
        with stamped(project, "9.9.9") as stamp:
            assert stamp.version == "9.9.9"
            assert Project.load(root).version == "9.9.9"
            assert '__version__ = "9.9.9"' in (root / "src/sample_pkg/__init__.py").read_text()
            raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        build_that_fails()
    assert tree(root) == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stamp_restores_when_the_process_is_interrupted(
    make_project: Callable[..., Path], signum: int
) -> None:
    root = make_project()
    before = tree(root)
    script = textwrap.dedent(
        f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job ignores it
        from releasekit._project import Project
        from releasekit._stamp import stamped
        with stamped(Project.load({str(root)!r}), "9.9.9"):
            print("stamped", flush=True)
            sys.stdin.read()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "stamped"
    assert Project.load(root).version == "9.9.9"
    child.send_signal(signum)
    _out, err = child.communicate(timeout=30)
    assert child.returncode != 0, err
    assert tree(root) == before


def test_dev_version_without_a_tag_counts_every_commit(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_RUN_NUMBER", raising=False)
    root = make_project(version="1.4.2")
    assert dev_version(Project.load(root)) == "1.4.3.dev1"
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "run-7")
    with pytest.raises(VersionError, match="GITHUB_RUN_NUMBER"):
        dev_version(Project.load(root))


@pytest.mark.parametrize(
    ("text", "full", "says"),
    [
        ("v1.0.0", False, "Write it as 1.0.0"),
        ("1.0.0-rc1", False, "Write it as 1.0.0rc1"),
        ("1.0", True, "Write it as 1.0.0"),
        ("1.0rc1", True, "Write it as 1.0.0rc1"),
        ("1.0.0+abc", False, "local part"),
        ("1.0.0.", False, "not a valid PEP 440"),
    ],
)
def test_canonical_version_refusals(text: str, full: bool, says: str) -> None:
    with pytest.raises(VersionError, match=says):
        canonical_version(text, full=full)


def test_canonical_version_accepts() -> None:
    assert canonical_version("1.0", full=False) == Version("1.0")
    assert canonical_version("2.0.0rc1", full=True) == Version("2.0.0rc1")
