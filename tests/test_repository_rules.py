"""Rules the repository keeps: no index hostname in any tracked file, workflows that publish
only through the nox sessions, every SPEC session registered, and no pointer from the docs,
the README or a message to a file that is not in the repository."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from twine.utils import DEFAULT_REPOSITORY, TEST_REPOSITORY

from conftest import run_nox

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TEMPLATE = ROOT / "src" / "releasekit" / "ci" / "templates" / "publish.yml"
SPEC_SESSIONS = [
    "build",
    "check_dist",
    "upload_testpypi",
    "upload_pypi",
    "verify_testpypi",
    "verify_pypi",
    "yank",
    "release",
    "status",
    "doctor",
    "audit",
    "scan_secrets",
    "rehearse",
    "upload",
    "verify",
]


def index_hostnames() -> set[str]:
    """The public indexes' hosts, from twine's upload endpoints (with and without upload.)."""
    hosts = {urlsplit(url).hostname or "" for url in (DEFAULT_REPOSITORY, TEST_REPOSITORY)}
    return hosts | {host.removeprefix("upload.") for host in hosts}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_hostnames_come_from_twine() -> None:
    hosts = index_hostnames()
    assert len(hosts) >= 3
    assert all("." in host for host in hosts)


def test_no_index_hostname_in_tracked_files() -> None:
    pattern = re.compile("|".join(re.escape(h) for h in index_hostnames()), re.IGNORECASE)
    found = []
    for path in tracked_files():
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert not found, "index hostname written in: " + ", ".join(found)


def run_lines(path: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\s*-? ?run: (.+)$", path.read_text(), re.M)]


@pytest.mark.parametrize("path", [*WORKFLOWS, TEMPLATE], ids=lambda p: p.name)
def test_workflow_steps_run_nox_sessions_only(path: Path) -> None:
    lines = run_lines(path)
    assert lines
    # The one exception: the manual release job starts the workflow on the tag it pushed.
    others = [line for line in lines if not re.search(r"\bnox -s [a-z_]", line)]
    assert others in ([], ['gh workflow run "$WORKFLOW" --ref "$TAG"']), others
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "twine" in line or "pypi-publish" in line]


@pytest.mark.parametrize("path", [*WORKFLOWS, TEMPLATE], ids=lambda p: p.name)
def test_workflow_actions_pinned_and_least_privilege(path: Path) -> None:
    text = path.read_text()
    uses = re.findall(r"uses: (\S+)", text)
    assert uses
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses
    assert re.search(r"^permissions: \{\}$", text, re.M)
    kept = text.count("persist-credentials: true # zizmor: ignore[artipacked]")  # git push
    assert kept <= 1
    assert text.count("persist-credentials: false") + kept == text.count("actions/checkout@")


@pytest.mark.parametrize("path", [ROOT / ".github" / "workflows" / "publish.yml", TEMPLATE])
def test_only_publishing_jobs_get_id_token(path: Path) -> None:
    jobs = re.split(r"^  (?=[a-z_-]+:\n)", path.read_text().split("\njobs:\n", 1)[1], flags=re.M)
    with_token = [job.split(":", 1)[0] for job in jobs if "id-token: write" in job]
    assert sorted(with_token) == ["pypi", "testpypi"]
    for job in jobs:
        if "id-token: write" in job:
            assert re.search(r"environment: (testpypi|pypi)\n", job)
            assert "upload_" in job


@pytest.mark.parametrize("path", [ROOT / ".github" / "workflows" / "publish.yml", TEMPLATE])
def test_verify_runs_apart_from_id_token_and_secrets(path: Path) -> None:
    """Verification installs and runs the released code: never where a credential is."""
    jobs = re.split(r"^  (?=[a-z_-]+:\n)", path.read_text().split("\njobs:\n", 1)[1], flags=re.M)
    verifying = {job.split(":", 1)[0]: job for job in jobs if "verify_" in job}
    assert sorted(verifying) == ["verify-pypi", "verify-testpypi"]
    for name, job in verifying.items():
        assert "id-token" not in job and "secrets." not in job and "environment:" not in job
        assert re.search(r"^    permissions:\n      contents: read\n    steps:", job, re.M)
        assert f"needs: {name.removeprefix('verify-')}\n" in job


@pytest.mark.parametrize("path", [*WORKFLOWS, TEMPLATE], ids=lambda p: p.name)
def test_run_lines_take_values_from_the_environment_only(path: Path) -> None:
    """No `${{ }}` and, in the template, no placeholder but the two that stand for fixed
    text (`--package "$PACKAGE"` or nothing): values come from `env:`."""
    lines = [re.sub("@(PACKAGE_ARG|POSARGS)@", "", line) for line in run_lines(path)]
    assert not [line for line in lines if "${{" in line or "@" in line], lines


def test_nox_lists_every_spec_session(make_project: Callable[..., Path]) -> None:
    project = make_project()
    result = run_nox(project, "-l")
    assert result.returncode == 0, result.stdout
    listed = set(re.findall(r"^[*-] (\w+)", result.stdout, re.M))
    missing = [name for name in SPEC_SESSIONS if name not in listed]
    assert not missing, f"nox -l does not list {missing}:\n{result.stdout}"


def test_docs_describe_every_session_and_key() -> None:
    from releasekit._settings import INDEX_KEYS, KEYS
    from releasekit.nox import SESSIONS

    sessions = (ROOT / "docs" / "sessions.md").read_text()
    headings = {
        name
        for line in re.findall(r"^## (.+)$", sessions, re.M)
        for name in re.findall(r"`(\w+)`", line)
    }
    assert not [name for name in [*SPEC_SESSIONS, *SESSIONS] if name not in headings]
    config = (ROOT / "docs" / "configuration.md").read_text()
    assert not [key for key in KEYS if f"### `{key}`" not in config]
    assert not [key for key in INDEX_KEYS if f"| `{key}` |" not in config]


#: Markdown files that messages and docs name in the user's project, or that a session writes.
NOT_OURS = {"CHANGELOG.md", ".bench/bench.md", ".realworld/realworld.md"}
MARKDOWN_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[A-Za-z][\w.-]*\.md)\b")


def test_docs_and_messages_point_only_at_files_in_the_repository() -> None:
    """A page of docs/ links to its neighbours; anything else names a path from the root."""
    readers = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "src").rglob("*.py")]
    missing = []
    for path in readers:
        for name in MARKDOWN_PATH.findall(path.read_text(encoding="utf-8")):
            here = path.parent if path.parent.name == "docs" else ROOT
            if name not in NOT_OURS and not (here / name).is_file():
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert readers
    assert not missing
