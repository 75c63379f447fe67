"""release: guards, version and changelog, commit and annotated tag, push, and rollback."""

from __future__ import annotations

import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import git, run_nox, write_project
from releasekit._changelog import with_section
from releasekit._project import Project
from releasekit._release import release
from releasekit.errors import ReleaseError, ReleasekitError, VersionError
from releasekit.indexes.local import LocalIndex

State = tuple[str, str, dict[str, bytes]]


def state(root: Path) -> State:
    """HEAD, every tag with its object, and every file of the work tree (not .git)."""
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }
    return git(root, "rev-parse", "HEAD"), git(root, "for-each-ref", "refs/tags"), files


def commit_file(root: Path, name: str, text: str, message: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def sample(make_project: Callable[..., Path]) -> Path:
    """A sample project at 0.1.0 with a `fix:` and a `feat:` commit after the first."""
    root = make_project()
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    commit_file(root, "src/sample_pkg/fix.py", "FIXED = True\n", "fix: handle empty input")
    commit_file(root, "src/sample_pkg/cli.py", "FLAG = 1\n", "feat(cli): add a --flag option")
    return root


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    """A local index standing in for PyPI, for this process and for nox subprocesses."""
    with LocalIndex("pypi", "pypi-unused") as index:
        for key, value in index.environ().items():
            monkeypatch.setenv(key, value)
        yield index


def publish_fake(index: LocalIndex, version: str) -> None:
    """Put a file of sample-pkg ``version`` on the index (its listing is all that matters)."""
    (index.root / "packages" / f"sample_pkg-{version}-py3-none-any.whl").write_bytes(b"wheel")


def test_release_sets_version_tags_and_writes_changelog(sample: Path, pypi: LocalIndex) -> None:
    publish_fake(pypi, "0.1.0")
    result = run_nox(sample, "-s", "release", "--", "0.2.0")
    assert result.returncode == 0, result.stdout
    project = Project.load(sample)
    assert project.version == "0.2.0"
    assert '__version__ = "0.2.0"' in (sample / "src/sample_pkg/__init__.py").read_text()
    assert git(sample, "cat-file", "-t", "sample-pkg-v0.2.0").strip() == "tag"
    assert git(sample, "rev-parse", "sample-pkg-v0.2.0^{commit}") == git(
        sample, "rev-parse", "HEAD"
    )
    assert git(sample, "log", "-1", "--format=%s").strip() == "chore(release): sample-pkg 0.2.0"
    assert git(sample, "rev-list", "--count", "HEAD").strip() == "4"
    changelog = (sample / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    section = changelog.split("## [0.2.0] - ", 1)[1]
    fixed = section.split("### Fixed", 1)[1]
    assert "- handle empty input" in fixed
    assert "- **cli**: add a --flag option" in section.split("### Fixed", 1)[0]
    assert git(sample, "status", "--porcelain") == ""


def _tag_exists(root: Path, _index: LocalIndex) -> None:
    git(root, "tag", "-a", "sample-pkg-v0.2.0", "-m", "made by hand")


def _on_index(_root: Path, index: LocalIndex) -> None:
    publish_fake(index, "0.2.0")


def _above_on_index(_root: Path, index: LocalIndex) -> None:
    publish_fake(index, "0.5.0")


def _dirty(root: Path, _index: LocalIndex) -> None:
    (root / "README.md").write_text("# Changed\n")


def _untracked(root: Path, _index: LocalIndex) -> None:
    (root / "notes.txt").write_text("scratch\n")


def _other_branch(root: Path, _index: LocalIndex) -> None:
    git(root, "switch", "-q", "-c", "topic")


def _nothing(_root: Path, _index: LocalIndex) -> None:
    pass


@pytest.mark.parametrize(
    ("version", "setup", "error", "says"),
    [
        ("v0.3.0", _nothing, VersionError, ["'v0.3.0'", "canonical", "0.3.0"]),
        ("0.2", _nothing, VersionError, ["'0.2'", "major.minor.patch", "0.2.0"]),
        ("banana", _nothing, VersionError, ["'banana'", "not a valid PEP 440"]),
        ("0.2.0.", _nothing, VersionError, ["'0.2.0.'", "not a valid PEP 440"]),
        ("0.2.0+local", _nothing, VersionError, ["local part"]),
        ("0.0.9", _nothing, ReleaseError, ["0.0.9", "not above", "0.1.0"]),
        ("0.1.0", _nothing, ReleaseError, ["0.1.0", "not above"]),
        ("0.2.0", _tag_exists, ReleaseError, ["sample-pkg-v0.2.0", "already exists"]),
        ("0.2.0", _on_index, ReleaseError, ["0.2.0", "already on"]),
        ("0.3.0", _above_on_index, ReleaseError, ["0.3.0", "not above 0.5.0"]),
        ("0.2.0", _dirty, ReleaseError, ["not clean", "README.md"]),
        ("0.2.0", _untracked, ReleaseError, ["not clean", "notes.txt"]),
        ("0.2.0", _other_branch, ReleaseError, ["branch topic", "release branch main"]),
    ],
)
def test_refusals_change_nothing(
    sample: Path,
    pypi: LocalIndex,
    version: str,
    setup: Callable[[Path, LocalIndex], None],
    error: type[ReleasekitError],
    says: list[str],
) -> None:
    setup(sample, pypi)
    before = state(sample)
    with pytest.raises(error) as refused:
        release(Project.load(sample), version)
    for words in says:
        assert words in str(refused.value)
    assert state(sample) == before


def test_refusal_through_nox_is_one_message(sample: Path, pypi: LocalIndex) -> None:
    before = state(sample)
    result = run_nox(sample, "-s", "release", "--", "banana")
    assert result.returncode != 0
    assert "'banana' is not a valid PEP 440 version" in result.stdout
    assert "Traceback" not in result.stdout
    assert state(sample) == before


def test_unreachable_index_refuses_unless_told(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RELEASEKIT_PYPI_SIMPLE_URL", f"http://127.0.0.1:{port}/simple/")
    before = state(sample)
    with pytest.raises(ReleaseError, match="--no-index-check"):
        release(Project.load(sample), "0.2.0")
    assert state(sample) == before
    release(Project.load(sample), "0.2.0", index_check=False)
    assert Project.load(sample).version == "0.2.0"


def test_no_index_check_sends_no_request(sample: Path) -> None:
    # The index is on a closed port: any request would show in the verbose trail (and, when
    # it fails, in a warning); the docs promise offline use.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {"RELEASEKIT_PYPI_SIMPLE_URL": f"http://127.0.0.1:{port}/simple/"}
    result = run_nox(
        sample, "-s", "release", "--", "0.2.0", "--no-index-check", "--verbose", env=env
    )
    assert result.returncode == 0, result.stdout
    assert "$ git" in result.stdout  # the trail is on
    assert port not in result.stdout
    assert "index check" not in result.stdout


def test_dry_run_prints_every_change_and_touches_nothing(sample: Path, pypi: LocalIndex) -> None:
    before = state(sample)
    result = run_nox(sample, "-s", "release", "--", "0.2.0", "--dry-run")
    assert result.returncode == 0, result.stdout
    for expected in (
        '+version = "0.2.0"',
        '+__version__ = "0.2.0"',
        "+++ b/CHANGELOG.md",
        "+- handle empty input",
        "chore(release): sample-pkg 0.2.0",
        "sample-pkg-v0.2.0",
        "nothing changed",
    ):
        assert expected in result.stdout, (expected, result.stdout)
    assert state(sample) == before


def _bare_remote(root: Path) -> Path:
    remote = root.parent / "remote.git"
    git(root.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    return remote


def test_push_sends_commit_and_tag(sample: Path, pypi: LocalIndex) -> None:
    remote = _bare_remote(sample)
    result = run_nox(sample, "-s", "release", "--", "0.2.0", "--push")
    assert result.returncode == 0, result.stdout
    head = git(sample, "rev-parse", "HEAD").strip()
    assert git(remote, "rev-parse", "main").strip() == head
    assert git(remote, "cat-file", "-t", "sample-pkg-v0.2.0").strip() == "tag"
    assert git(remote, "rev-parse", "sample-pkg-v0.2.0^{commit}").strip() == head


def test_push_refuses_a_tag_already_on_the_remote(sample: Path, pypi: LocalIndex) -> None:
    _bare_remote(sample)
    git(sample, "tag", "sample-pkg-v0.2.0")
    git(sample, "push", "-q", "origin", "sample-pkg-v0.2.0")
    git(sample, "tag", "-d", "sample-pkg-v0.2.0")
    before = state(sample)
    with pytest.raises(ReleaseError, match="already exists on the remote 'origin'"):
        release(Project.load(sample), "0.2.0", push=True)
    assert state(sample) == before


def test_failing_commit_hook_rolls_everything_back(sample: Path, pypi: LocalIndex) -> None:
    hook = sample / ".git" / "hooks" / "commit-msg"
    hook.write_text("#!/bin/sh\necho 'commit-msg: refused by policy' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    before = state(sample)
    result = run_nox(sample, "-s", "release", "--", "0.2.0")
    assert result.returncode != 0
    assert "refused by policy" in result.stdout
    assert "The repository was restored" in result.stdout
    assert "Traceback" not in result.stdout
    assert state(sample) == before


def test_rejected_push_rolls_back_commit_and_tag(sample: Path, pypi: LocalIndex) -> None:
    remote = _bare_remote(sample)
    other = sample.parent / "other"
    git(sample.parent, "clone", "-q", str(remote), str(other))
    commit_file(other, "elsewhere.txt", "x\n", "docs: a commit pushed from elsewhere")
    git(other, "push", "-q", "origin", "main")
    before = state(sample)
    with pytest.raises(ReleaseError, match="step 'push'") as failed:
        release(Project.load(sample), "0.2.0", push=True)
    assert "The repository was restored" in str(failed.value)
    assert state(sample) == before
    assert "sample-pkg-v0.2.0" not in git(remote, "tag", "--list")


def test_monorepo_changelog_lists_only_commits_of_the_package(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    write_project(root / "packages" / "sample-pkg")
    (root / "pyproject.toml").write_text('[tool.releasekit]\npackage-dir = "packages/sample-pkg"\n')
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chore: start")
    commit_file(
        root, "packages/sample-pkg/src/sample_pkg/a.py", "A = 1\n", "fix: inside the package"
    )
    commit_file(root, "packages/other/b.py", "B = 1\n", "fix: in another package")
    release(Project.load(root), "0.2.0", index_check=False)
    changelog = (root / "packages" / "sample-pkg" / "CHANGELOG.md").read_text()
    assert "- inside the package" in changelog
    assert "another package" not in changelog
    assert git(root, "tag", "--list").split() == ["sample-pkg-v0.2.0"]
    assert git(root, "status", "--porcelain") == ""


def test_second_release_lists_commits_since_the_previous_tag(sample: Path) -> None:
    release(Project.load(sample), "0.2.0", index_check=False)
    commit_file(sample, "src/sample_pkg/late.py", "L = 1\n", "fix: a later fix")
    release(Project.load(sample), "0.2.1", index_check=False)
    changelog = (sample / "CHANGELOG.md").read_text()
    newest = changelog.split("## [0.2.1]", 1)[1].split("## [0.2.0]", 1)[0]
    assert "a later fix" in newest
    assert "handle empty input" not in newest
    assert changelog.index("## [Unreleased]") < changelog.index("## [0.2.1]")
    assert changelog.index("## [0.2.1]") < changelog.index("## [0.2.0]")


def test_commitizen_configuration_is_followed(make_project: Callable[..., Path]) -> None:
    root = make_project(
        releasekit='\n[tool.commitizen]\nversion = "0.1.0"\nversion_files = ["README.md"]\n'
        'bump_message = "release: $current_version to $new_version"\n'
        'changelog_file = "HISTORY.md"\n'
        'change_type_map = { fix = "Bug fixes", feat = "Features" }\n'
        'tag_format = "v$version"\n',
        readme="# Sample\n\nInstall sample-pkg==0.1.0.\n",
    )
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    commit_file(root, "src/sample_pkg/fix.py", "F = 1\n", "fix: handle empty input")
    release(Project.load(root), "0.2.0", index_check=False)
    pyproject = (root / "pyproject.toml").read_text()
    assert pyproject.count('version = "0.2.0"') == 2
    assert "sample-pkg==0.2.0" in (root / "README.md").read_text()
    assert git(root, "log", "-1", "--format=%s").strip() == "release: 0.1.0 to 0.2.0"
    history = (root / "HISTORY.md").read_text()
    assert "### Bug fixes\n\n- handle empty input" in history
    assert not (root / "CHANGELOG.md").exists()
    assert git(root, "tag", "--list").split() == ["sample-pkg-v0.2.0"]  # releasekit's format


def test_pyproject_formatting_is_kept(make_project: Callable[..., Path]) -> None:
    root = make_project()
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('version = "0.1.0"', "version   =   '0.1.0'  # ours")
    pyproject.write_text(text)
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "rm@example.invalid")
    git(root, "commit", "-q", "-am", "style: spacing")
    release(Project.load(root), "0.2.0", index_check=False)
    assert pyproject.read_text() == text.replace("'0.1.0'", "'0.2.0'")


def test_unreleased_notes_move_into_the_new_section() -> None:
    existing = (
        "# Changelog\n\n## [Unreleased]\n\nWritten by hand.\n\n"
        "## [0.1.0] - 2020-01-01\n\n### Added\n\n- first\n"
    )
    new = "## [0.2.0] - 2020-02-02\n\n### Fixed\n\n- a fix\n"
    assert with_section(existing, new) == (
        "# Changelog\n\n## [Unreleased]\n\n"
        "## [0.2.0] - 2020-02-02\n\nWritten by hand.\n\n### Fixed\n\n- a fix\n\n"
        "## [0.1.0] - 2020-01-01\n\n### Added\n\n- first\n"
    )


def test_section_goes_above_the_newest_release_without_unreleased() -> None:
    existing = "# History\n\n## 0.1.0\n\n- first\n"
    new = "## [0.2.0] - 2020-02-02\n\n### Fixed\n\n- a fix\n"
    assert with_section(existing, new) == (
        "# History\n\n## [0.2.0] - 2020-02-02\n\n### Fixed\n\n- a fix\n\n## 0.1.0\n\n- first\n"
    )


def test_sigterm_during_the_commit_rolls_everything_back(sample: Path, pypi: LocalIndex) -> None:
    # The hook lets the commit succeed but first sends SIGTERM to the nox process (its
    # grandparent): the release must stop after that step and undo the commit.
    hook = sample / ".git" / "hooks" / "post-commit"
    hook.write_text(
        "#!/bin/sh\nnox_pid=$(awk '{print $4}' /proc/$PPID/stat)\nkill -TERM \"$nox_pid\"\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    before = state(sample)
    result = run_nox(sample, "-s", "release", "--", "0.2.0")
    assert result.returncode != 0, result.stdout
    assert "interrupted at step 'commit'; the repository was restored" in result.stdout
    assert state(sample) == before
