"""Shared build environments: made once per requirement set and reused, made again when
damaged, builds identical to uv's isolated ones, and safe with concurrent builders."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from releasekit._build import build, build_command, build_environ
from releasekit._buildenv import cache_root
from releasekit._process import run
from releasekit._project import Project
from releasekit._report import Reporter, set_reporter
from releasekit._workspace import for_each

pytestmark = pytest.mark.slow

MARKER = "releasekit-build-env.json"


@pytest.fixture
def envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache of shared environments for this test."""
    folder = tmp_path / "envs"
    monkeypatch.setenv("RELEASEKIT_BUILD_ENVS", str(folder))
    assert cache_root() == folder
    return folder


def made(envs: Path) -> dict[str, float]:
    """The complete environments in the cache: folder name -> when it was made."""
    return {
        path.name: json.loads((path / MARKER).read_text())["created"]
        for path in sorted(envs.iterdir())
        if (path / MARKER).is_file()
    }


def contents(path: Path) -> dict[str, bytes]:
    """Every member of a wheel or an sdist, by name, with its bytes."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    with tarfile.open(path) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


def test_one_environment_is_made_and_reused_for_packages_that_share_requirements(
    make_project: Callable[..., Path], envs: Path
) -> None:
    first = Project.load(make_project("first-pkg"))
    second = Project.load(make_project("second-pkg"))
    build(first)
    before = made(envs)
    assert len(before) == 1
    build(second)
    build(first)
    assert made(envs) == before
    assert sorted(p.name for p in envs.iterdir()) == sorted(before)  # no partial folders left


@pytest.mark.parametrize("damage", ["interpreter", "distribution", "marker"])
def test_a_damaged_environment_is_detected_and_made_again(
    make_project: Callable[..., Path], envs: Path, damage: str
) -> None:
    project = Project.load(make_project())
    build(project)
    ((name, created),) = made(envs).items()
    folder = envs / name
    if damage == "interpreter":
        python = folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        python.unlink()
    elif damage == "distribution":
        (module,) = folder.glob("**/site-packages/hatchling/build.py")
        module.unlink()
    else:  # a folder left half made
        (folder / MARKER).write_text("{")
    dists = build(project)
    assert sorted(d.kind for d in dists) == ["sdist", "wheel"]
    ((again, remade),) = made(envs).items()
    assert again == name and remade > created


@pytest.mark.parametrize("backend", ["hatchling", "setuptools"])
def test_a_shared_build_has_the_content_of_an_isolated_uv_build(
    make_project: Callable[..., Path], envs: Path, tmp_path: Path, backend: str
) -> None:
    project = Project.load(make_project(backend=backend))
    shared = {d.filename: d.path for d in build(project)}
    assert made(envs)
    isolated = tmp_path / "isolated"
    result = run(
        build_command(project.root, isolated), cwd=project.root, env=build_environ(project)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(shared) == sorted(p.name for p in isolated.glob("sample_pkg-*"))
    for name, path in shared.items():
        ours, theirs = contents(path), contents(isolated / name)
        assert sorted(ours) == sorted(theirs), name
        assert ours == theirs, name


HATCH_HOOK = """\
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class NeedsMore(BuildHookInterface):
    def initialize(self, version, build_data):
        import tomli_w  # only there when the dynamic requirement was installed
"""

IN_TREE_BACKEND = """\
from hatchling.build import *  # noqa: F403
from hatchling.build import build_wheel as _build_wheel


def get_requires_for_build_wheel(config_settings=None):
    return ["tomli-w"]


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import tomli_w  # only there when the dynamic requirement was installed

    return _build_wheel(wheel_directory, config_settings, metadata_directory)
"""


@pytest.mark.parametrize("shape", ["hatch build hook", "in-tree backend"])
def test_dynamic_build_requirements_get_an_environment_that_has_them(
    make_project: Callable[..., Path], envs: Path, shape: str
) -> None:
    root = make_project()
    pyproject = root / "pyproject.toml"
    if shape == "hatch build hook":  # sdist and wheel built in one process
        (root / "hatch_build.py").write_text(HATCH_HOOK)
        pyproject.write_text(
            pyproject.read_text()
            + '\n[tool.hatch.build.targets.wheel.hooks.custom]\ndependencies = ["tomli-w"]\n'
        )
    else:  # each in its own process, the backend from the tree (and then from the sdist)
        (root / "_backend").mkdir()
        (root / "_backend" / "needs_more.py").write_text(IN_TREE_BACKEND)
        pyproject.write_text(
            pyproject.read_text().replace(
                'build-backend = "hatchling.build"',
                'build-backend = "needs_more"\nbackend-path = ["_backend"]',
            )
        )
    dists = build(Project.load(root))
    assert sorted(d.kind for d in dists) == ["sdist", "wheel"]
    requirements = sorted(
        json.loads((envs / name / MARKER).read_text())["requires"] for name in made(envs)
    )
    assert requirements == [["hatchling"], ["hatchling", "tomli-w"]]


def test_concurrent_builders_make_one_environment(
    make_project: Callable[..., Path], envs: Path
) -> None:
    # threads of one process (a monorepo) ...
    projects = [Project.load(make_project(f"pkg-{n}")) for n in range(3)]
    set_reporter(Reporter(Console(file=io.StringIO()), plain=True))
    try:
        for_each(projects, build, jobs=3)
    finally:
        set_reporter(None)
    assert len(made(envs)) == 1
    # ... and two processes, with an empty cache
    for path in envs.iterdir():
        shutil.rmtree(path)
    script = (
        "import sys; from pathlib import Path; from releasekit._build import build; "
        "from releasekit._project import Project; build(Project.load(Path(sys.argv[1])))"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(project.root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for project in projects[:2]
    ]
    for child in children:
        output, _ = child.communicate()
        assert child.returncode == 0, output
    assert len(made(envs)) == 1
    assert len(list(envs.iterdir())) == 1  # the loser's folder is gone


def test_without_an_environment_the_build_is_isolated_and_says_so_once(
    make_project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RELEASEKIT_BUILD_ENVS", str(blocked / "envs"))
    script = (
        "import sys; from pathlib import Path; from releasekit._build import build; "
        "from releasekit._project import Project\n"
        "for root in sys.argv[1:]: build(Project.load(Path(root)))"
    )
    roots = [str(make_project(f"pkg-{n}")) for n in range(2)]
    result = subprocess.run(
        [sys.executable, "-c", script, *roots], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count("No shared build environment") == 1, output
    assert all(any(Path(root, "dist").iterdir()) for root in roots)
