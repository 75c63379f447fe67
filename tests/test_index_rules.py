"""The index's current rules, refused before sending (PEP 792 status, the 14-day rule), and
the project's own entry of a tracked uv.lock moved by release."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import git
from provenance_index import Hosted, StandIn
from provenance_index import Project as Page
from releasekit._project import Project
from releasekit._release import release
from releasekit._stamp import version_edits
from releasekit._upload import upload
from releasekit.credentials import Credentials
from releasekit.errors import UploadError
from releasekit.indexes import Index

CREDENTIALS = Credentials("user", "password", "a test")


def hosted_copy(project: Project, kind: str, uploaded: datetime) -> Hosted:
    (path,) = [p for p in project.dist_dir.iterdir() if p.name.endswith(kind)]
    return Hosted(path.name, path.read_bytes(), uploaded=uploaded)


@pytest.mark.parametrize(
    ("status", "reason", "says"),
    [
        ("archived", "moved to another name", "no new files. The index says: moved to another"),
        ("quarantined", None, "is quarantined on pypi ("),
    ],
)
def test_a_closed_project_is_refused_before_sending(
    stand_in: StandIn, project: Project, status: str, reason: str | None, says: str
) -> None:
    stand_in.projects["sample-pkg"] = Page([], status=status, reason=reason)
    with pytest.raises(UploadError, match=r"Nothing was uploaded") as refused:
        upload(project, "pypi", CREDENTIALS)
    assert says in refused.value.what
    assert stand_in.uploads == []


def test_a_deprecated_project_still_takes_files(stand_in: StandIn, project: Project) -> None:
    stand_in.projects["sample-pkg"] = Page([], status="deprecated")
    upload(project, "pypi", CREDENTIALS)
    assert len(stand_in.uploads) == 2


def test_new_files_for_a_release_older_than_14_days_are_refused(
    stand_in: StandIn, project: Project
) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=20)
    stand_in.projects["sample-pkg"] = Page([hosted_copy(project, ".tar.gz", old)])
    with pytest.raises(UploadError) as refused:
        upload(project, "pypi", CREDENTIALS)
    assert "released on" in refused.value.what
    assert "20 days ago" in refused.value.what
    assert "sample_pkg-0.1.0-py3-none-any.whl" in refused.value.what
    assert "older than 14 days" in refused.value.why
    assert "0.1.0.post1" in refused.value.fix
    assert stand_in.uploads == []


def test_the_14_day_rule_holds_only_for_pypi_and_testpypi_and_only_past_14_days(
    stand_in: StandIn, project: Project
) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=20)
    stand_in.projects["sample-pkg"] = Page([hosted_copy(project, ".tar.gz", old)])
    private = Index("private", f"{stand_in.url}/upload/", f"{stand_in.url}/simple/")
    upload(project, private, CREDENTIALS)
    assert len(stand_in.uploads) == 1  # the wheel; the sdist was there

    stand_in.uploads.clear()
    recent = datetime.now(timezone.utc) - timedelta(days=13)
    stand_in.projects["sample-pkg"] = Page([hosted_copy(project, ".tar.gz", recent)])
    upload(project, "pypi", CREDENTIALS)
    assert len(stand_in.uploads) == 1


# -- uv.lock --------------------------------------------------------------------------------

LOCK = """\
version = 1
requires-python = ">=3.10"

[[package]]
name = "other"
version = "0.1.0"
source = {{ registry = "https://index.invalid/simple" }}

[[package]]
name = "sample-pkg"
version = "{version}"
source = {{ editable = "." }}
dependencies = [
    {{ name = "other" }},
]
"""


def test_version_edits_move_the_projects_own_entry_in_a_tracked_uv_lock(
    make_project: Callable[..., Path],
) -> None:
    root = make_project()
    (root / "uv.lock").write_text(LOCK.format(version="0.1.0"))
    project = Project.load(root)
    assert root / "uv.lock" not in [e.path for e in version_edits(project, "0.2.0")]

    git(root, "add", "uv.lock")
    git(root, "commit", "-q", "-m", "chore: lock")
    edits = {e.path: e.after.decode() for e in version_edits(project, "0.2.0")}
    assert edits[root / "uv.lock"] == LOCK.format(version="0.2.0")


def test_release_commits_the_uv_lock_with_the_new_version(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workspace = make_project()
    member = workspace / "packages" / "member"
    shutil.copytree(workspace, member, ignore=shutil.ignore_patterns(".git"))
    text = (member / "pyproject.toml").read_text().replace('"sample-pkg"', '"member-pkg"', 1)
    (member / "pyproject.toml").write_text(text)
    (workspace / "uv.lock").write_text(
        LOCK.format(version="0.1.0").replace('"sample-pkg"', '"member-pkg"')
    )
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "chore: workspace")
    release(Project.load(member), "0.2.0", index_check=False)
    changed = git(workspace, "show", "--name-only", "--format=", "HEAD").split()
    assert "uv.lock" in changed
    lock = (workspace / "uv.lock").read_text()
    assert 'name = "member-pkg"\nversion = "0.2.0"' in lock
    assert 'name = "other"\nversion = "0.1.0"' in lock
    assert git(workspace, "status", "--porcelain") == ""
