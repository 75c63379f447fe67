"""release auto: the next version from conventional commits, by commitizen's bump rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import git, run_nox
from releasekit._autoversion import next_version
from releasekit._project import Project
from releasekit.indexes.local import LocalIndex


def commit(root: Path, message: str) -> None:
    """An empty-content change committed with ``message`` (a new file each time)."""
    count = len(list(root.glob("change-*.txt")))
    (root / f"change-{count}.txt").write_text(message)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def tagged(make_project: Callable[..., Path]) -> Callable[..., Path]:
    """A sample project at 0.1.0 (or ``version``), tagged, then the given commits."""

    def make(*messages: str, version: str = "0.1.0", commitizen: str = "") -> Path:
        root = make_project(version=version)
        if commitizen:
            with (root / "pyproject.toml").open("a") as pyproject:
                pyproject.write(f"\n[tool.commitizen]\n{commitizen}\n")
            git(root, "commit", "-q", "-am", "chore: configure commitizen")
        git(root, "tag", "-a", f"sample-pkg-v{version}", "-m", version)
        for message in messages:
            commit(root, message)
        return root

    return make


@pytest.mark.parametrize(
    ("messages", "expected", "increment"),
    [
        (["fix: handle empty input", "docs: typo"], "0.1.1", "PATCH"),
        (["fix: a bug", "feat(cli): add --flag", "chore: tidy"], "0.2.0", "MINOR"),
        (["feat: new API", "refactor!: drop the old API"], "1.0.0", "MAJOR"),
        (["fix: x", "feat: y\n\nBREAKING CHANGE: z is gone"], "1.0.0", "MAJOR"),
    ],
)
def test_auto_takes_the_increment_of_the_commits(
    tagged: Callable[..., Path], messages: list[str], expected: str, increment: str
) -> None:
    auto = next_version(Project.load(tagged(*messages)))
    assert (auto.current, auto.since, auto.version) == ("0.1.0", "sample-pkg-v0.1.0", expected)
    assert auto.increment == increment
    assert len(auto.commits) == len(messages)
    deciding = {c.title for c in auto.deciding}
    assert deciding and deciding <= {m.splitlines()[0] for m in messages}
    assert all("docs" not in title and "chore" not in title for title in deciding)


def test_major_version_zero_keeps_a_breaking_change_in_0x(tagged: Callable[..., Path]) -> None:
    root = tagged("feat!: new API", commitizen="major_version_zero = true")
    assert next_version(Project.load(root)).version == "0.2.0"


def test_a_breaking_change_above_1_is_major(tagged: Callable[..., Path]) -> None:
    root = tagged("fix!: reject bad input", version="1.4.2")
    assert next_version(Project.load(root)).version == "2.0.0"


def test_prerelease_rc_then_final(tagged: Callable[..., Path]) -> None:
    root = tagged("feat: new API")
    project = Project.load(root)
    assert next_version(project, "rc").version == "0.2.0rc0"
    assert next_version(project, "alpha").version == "0.2.0a0"
    git(root, "tag", "-a", "sample-pkg-v0.2.0rc0", "-m", "rc")
    commit(root, "fix: a bug found in the rc")
    assert next_version(project, "rc").version == "0.2.0rc1"
    assert next_version(project).version == "0.2.0"


def test_nothing_to_bump_is_explained(tagged: Callable[..., Path]) -> None:
    root = tagged("chore: tidy", "docs: typo", "chore(ci): pin")
    auto = next_version(Project.load(root))
    assert auto.version is None and auto.increment is None
    assert auto.nothing_to_release() == (
        "Nothing to release since sample-pkg-v0.1.0: 3 commits, all chore/docs."
    )


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    """A local index standing in for PyPI, for nox subprocesses."""
    with LocalIndex("pypi", "pypi-unused") as index:
        for key, value in index.environ().items():
            monkeypatch.setenv(key, value)
        yield index


def test_session_nothing_to_release_exits_0(tagged: Callable[..., Path], pypi: LocalIndex) -> None:
    root = tagged("chore: tidy", "docs: typo", "chore(ci): pin")
    head = git(root, "rev-parse", "HEAD")
    outputs = root.parent / "github-output"
    outputs.write_text("")
    result = run_nox(root, "-s", "release", "--", "auto", env={"GITHUB_OUTPUT": str(outputs)})
    assert result.returncode == 0, result.stdout
    assert outputs.read_text() == ""  # no tag: the workflow starts no publishing run
    assert "Nothing to release since sample-pkg-v0.1.0: 3 commits, all chore/docs." in result.stdout
    assert git(root, "rev-parse", "HEAD") == head
    assert "sample-pkg-v0.1.1" not in git(root, "tag")


def test_session_releases_the_chosen_version(tagged: Callable[..., Path], pypi: LocalIndex) -> None:
    root = tagged("fix: a bug", "feat(cli): add --flag", "docs: typo")
    outputs = root.parent / "github-output"
    result = run_nox(
        root,
        "-s",
        "release",
        "--",
        "auto",
        "--prerelease",
        "rc",
        env={"GITHUB_OUTPUT": str(outputs)},
    )
    assert result.returncode == 0, result.stdout
    assert outputs.read_text() == "tag=sample-pkg-v0.2.0rc0\n"
    assert "0.1.0 -> 0.2.0rc0: MINOR change (1 of 3 commits" in result.stdout
    assert "feat(cli): add --flag" in result.stdout
    assert "sample-pkg-v0.2.0rc0" in git(root, "tag")
    assert 'version = "0.2.0rc0"' in (root / "pyproject.toml").read_text()


def test_session_refuses_prerelease_with_a_version(project_dir: Path) -> None:
    result = run_nox(project_dir, "-s", "release", "--", "0.2.0", "--prerelease", "rc")
    assert result.returncode != 0
    assert "--prerelease chooses the version with auto" in result.stdout
    assert "Traceback" not in result.stdout
