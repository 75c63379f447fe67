"""Reproducible builds: builds get SOURCE_DATE_EPOCH from the last commit, so a rebuild of
an unchanged commit (files touched, as in a fresh checkout) gives the same bytes."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from conftest import git
from releasekit._build import build, build_environ
from releasekit._project import Project

pytestmark = pytest.mark.slow

BACKENDS = {
    "hatchling": (
        'requires = ["hatchling"]\nbuild-backend = "hatchling.build"',
        '[tool.hatch.build.targets.wheel]\npackages = ["src/repro_pkg"]\n',
    ),
    "setuptools": ('requires = ["setuptools>=70"]\nbuild-backend = "setuptools.build_meta"', ""),
    "flit-core": (
        'requires = ["flit_core>=3.9"]\nbuild-backend = "flit_core.buildapi"',
        '[tool.flit.module]\nname = "repro_pkg"\n',
    ),
    "poetry-core": (
        'requires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"',
        '[tool.poetry]\npackages = [{ include = "repro_pkg", from = "src" }]\n',
    ),
}


class SdistDiffers(AssertionError):
    """The sdists of two builds differ (the wheels agree)."""


def make(root: Path, backend: str) -> Path:
    requires, table = BACKENDS[backend]
    (root / "src" / "repro_pkg").mkdir(parents=True)
    (root / "src" / "repro_pkg" / "__init__.py").write_text('__version__ = "1.0.0"\n')
    (root / "README.md").write_text("# repro\n")
    (root / "pyproject.toml").write_text(
        f'[build-system]\n{requires}\n\n[project]\nname = "repro-pkg"\nversion = "1.0.0"\n'
        f'description = "d"\nreadme = "README.md"\nrequires-python = ">=3.10"\n\n{table}'
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: first")
    return root


def touch_everything(root: Path, when: float) -> None:
    """Give every file of the work tree a new mtime, as a fresh checkout would."""
    for path in root.rglob("*"):
        if ".git" not in path.relative_to(root).parts:
            os.utime(path, (when, when))


@pytest.mark.parametrize(
    "backend",
    [
        "hatchling",
        "flit-core",
        "poetry-core",
        "setuptools",
    ],
)
def test_rebuild_of_an_unchanged_commit_is_byte_identical(tmp_path: Path, backend: str) -> None:
    root = make(tmp_path / backend, backend)
    builds, sdists = [], []
    for attempt in (1, 2):
        dists = build(Project.load(root))
        builds.append({d.filename: d.sha256 for d in dists})
        sdists.append(next(d.path.read_bytes() for d in dists if d.kind == "sdist"))
        shutil.rmtree(root / "dist")
        touch_everything(root, time.time() + 3600 * attempt)
    first, second = builds
    assert sorted(first) == sorted(second) and len(first) == 2
    wheels = {name for name in first if name.endswith(".whl")}
    assert {n: first[n] for n in wheels} == {n: second[n] for n in wheels}
    if first != second:
        raise SdistDiffers(f"{backend}: {first} != {second}\n{members_differing(*sdists)}")


def members_differing(first: bytes, second: bytes) -> str:
    """What differs between two sdists, member by member (for the failure message)."""

    def described(data: bytes) -> dict[str, tuple[object, ...]]:
        found: dict[str, tuple[object, ...]] = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                content = archive.extractfile(member) if member.isfile() else None
                digest = hashlib.sha256(content.read()).hexdigest()[:12] if content else ""
                fields = (member.size, member.mtime, member.mode, member.uname, member.gname)
                found[member.name] = (*fields, sorted(member.pax_headers.items()), digest)
        return found

    header = f"gzip headers: {first[:10].hex()} / {second[:10].hex()}"
    one, two = described(first), described(second)
    lines = [
        f"{name}: {one.get(name)} / {two.get(name)}"
        for name in sorted(set(one) | set(two))
        if one.get(name) != two.get(name)
    ]
    return "\n".join([header, *lines])


def test_source_date_epoch_is_the_last_commit_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make(tmp_path / "p", "hatchling")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    stamp = git(root, "log", "-1", "--format=%ct").strip()
    assert build_environ(Project.load(root))["SOURCE_DATE_EPOCH"] == stamp
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "315532800")
    assert build_environ(Project.load(root))["SOURCE_DATE_EPOCH"] == "315532800"
