"""One stamping run at a time per checkout (build --version, release), with real processes,
and every build checked to carry the version it was meant to."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import git, run_nox
from releasekit._build import build
from releasekit._project import Project
from releasekit.errors import BuildError

pytestmark = pytest.mark.slow

HOLD = """
import sys
from releasekit._project import Project
from releasekit._stamp import stamped

with stamped(Project.load(sys.argv[1]), "7.0.0"):
    print("stamped", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def stamped_elsewhere(root: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``root`` stamped with 7.0.0 until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "stamped"
        yield holder
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0


def test_stamping_run_waits_for_another_then_explains(project_dir: Path) -> None:
    with stamped_elsewhere(project_dir) as holder:
        result = run_nox(
            project_dir,
            "-s",
            "build",
            "--",
            "--version",
            "7.0.1",
            env={"RELEASEKIT_LOCK_TIMEOUT": "1"},
        )
        assert result.returncode != 0, result.stdout
        assert "Another releasekit run is stamping this checkout" in result.stdout
        assert f"process {holder.pid}: stamping sample-pkg 7.0.0" in result.stdout
        assert "RELEASEKIT_LOCK_TIMEOUT" in result.stdout
        assert "Traceback" not in result.stdout
        assert not (project_dir / "dist").exists()
        release = run_nox(
            project_dir, "-s", "release", "--", "8.0.0", env={"RELEASEKIT_LOCK_TIMEOUT": "1"}
        )
        assert release.returncode != 0, release.stdout
        assert "Another releasekit run is stamping this checkout" in release.stdout
    assert git(project_dir, "status", "--porcelain") == ""
    assert not git(project_dir, "tag", "--list")


def test_concurrent_builds_with_versions_each_build_their_own(project_dir: Path) -> None:
    runs = {
        version: subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", "build", "--", "--version", version],
            cwd=project_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true"},
        )
        for version in ("1.0.1", "1.0.2")
    }
    outputs = {version: run.communicate(timeout=300)[0] for version, run in runs.items()}
    for version, output in outputs.items():
        assert runs[version].returncode == 0, output
        other = "1.0.2" if version == "1.0.1" else "1.0.1"
        assert f"sample_pkg-{version}.tar.gz" in output
        assert f"sample_pkg-{other}" not in output
    assert git(project_dir, "status", "--porcelain") == ""
    assert Project.load(project_dir).version == "0.1.0"
    versions = {
        p.name.split("-")[1].removesuffix(".tar.gz") for p in (project_dir / "dist").iterdir()
    }
    assert len(versions) == 1 and versions <= {"1.0.1", "1.0.2"}


def test_build_refuses_files_of_another_version(project_dir: Path) -> None:
    """The files changed under the build (here: the project says 9.9.9, the files 0.1.0)."""
    moved = dataclasses.replace(Project.load(project_dir), version="9.9.9")
    with pytest.raises(BuildError, match="produced files of another version") as caught:
        build(moved)
    assert "sample_pkg-0.1.0.tar.gz" in str(caught.value)
    assert not (project_dir / "dist").exists()
