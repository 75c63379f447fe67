"""audit: versions on a real local index (pypiserver standing in for PyPI) against git tags."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from twine.commands.upload import upload
from twine.settings import Settings

from conftest import git, run_nox, write_project
from releasekit._build import build
from releasekit._distributions import Distribution
from releasekit._project import Project
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow
TOKEN = "local-audit-password"


def wheels_of(root: Path, versions: list[str], store: Path) -> list[Distribution]:
    """Build the sample project at each version (the tree is restored afterwards)."""
    store.mkdir()
    wheels = []
    for version in versions:
        write_project(root, "sample-pkg", version)
        (dist,) = [d for d in build(Project.load(root)) if d.kind == "wheel"]
        wheels.append(Distribution.from_path(Path(shutil.move(dist.path, store / dist.filename))))
    git(root, "checkout", "--", ".")
    return wheels


def test_audit_matches_index_versions_with_tags(
    make_project: Callable[..., Path],
    local_index: Callable[[str, str], LocalIndex],
    tmp_path: Path,
) -> None:
    root = make_project()
    wheels = wheels_of(root, ["0.1.0", "0.2.0", "0.2.1.dev3"], tmp_path / "wheels")
    index = local_index("pypi", TOKEN)
    upload(
        Settings(
            username="__token__",
            password=TOKEN,
            repository_url=index.upload_url,
            non_interactive=True,
            disable_progress_bar=True,
        ),
        [str(w.path) for w in wheels],
    )
    git(root, "tag", "sample-pkg-v0.1.0")
    git(root, "tag", "sample-pkg-v0.2.0")
    git(root, "tag", "sample-pkg-v0.3.0")

    passed = run_nox(root, "-s", "audit", env=index.environ())
    assert passed.returncode == 0, passed.stdout
    assert "0.2.1.dev3" in passed.stdout
    assert "Dev releases" in passed.stdout
    assert "possibly unauthorised" not in passed.stdout
    assert "Tagged but not on pypi" in passed.stdout

    git(root, "tag", "-d", "sample-pkg-v0.2.0")
    failed = run_nox(root, "-s", "audit", env=index.environ())
    assert failed.returncode != 0, failed.stdout
    assert "possibly unauthorised: 0.2.0." in failed.stdout
    assert wheels[1].sha256 in failed.stdout
    assert wheels[0].sha256 not in failed.stdout
    assert "revoke the token" in failed.stdout
    assert "PYPI_API_TOKEN" in failed.stdout
