"""Shared build environments: made once per requirement set and reused, made again when
damaged or old as a new generation beside the old one (which stays usable), the cache
cleaned of what no build can be using, builds identical to uv's isolated ones, and safe with
concurrent builders."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from releasekit._build import build, build_command, build_environ
from releasekit._buildcache import ABANDONED, MAX_AGE, clean, read_marker
from releasekit._buildenv import SharedEnv, cache_root, shared_env
from releasekit._process import find_uv, run
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
    """The complete environments in the cache: ``<key>/<generation>`` -> when it was made."""
    found = {}
    for path in sorted(envs.glob("*/*")):
        try:
            found[path.relative_to(envs).as_posix()] = json.loads((path / MARKER).read_text())[
                "created"
            ]
        except (OSError, ValueError):
            continue  # not made, or its marker damaged
    return found


def age(folder: Path, seconds: float) -> None:
    """Make ``folder`` look made ``seconds`` ago: its marker's ``created`` and its mtime."""
    when = time.time() - seconds
    marker = folder / MARKER
    if marker.is_file():
        try:
            data = json.loads(marker.read_text())
        except ValueError:
            pass  # a damaged marker: the folder's mtime tells
        else:
            marker.write_text(json.dumps({**data, "created": when}))
    os.utime(folder, (when, when))


def hatchling_env(cwd: Path) -> SharedEnv:
    """The shared environment with hatchling, made when there is none young and intact."""
    uv = find_uv()
    assert uv
    return shared_env(["hatchling"], uv, cwd, dict(os.environ))


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
    (name,) = before
    assert [p.name for p in envs.iterdir()] == [name.split("/")[0]]  # no partial folders left


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
    newest = max(folder.parent.iterdir(), key=lambda path: int(path.name))
    assert int(newest.name) > int(folder.name)  # a new generation of the same key
    assert made(envs)[newest.relative_to(envs).as_posix()] > created
    assert folder.is_dir()  # damaged just now: left to whoever may be using it


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


USER = """\
import sys
print("ready", flush=True)
sys.stdin.readline()  # the environment is renewed meanwhile
import hatchling.build  # a backend module imported during a build
print("OK", hatchling.build.__file__)
"""


def test_a_day_old_environment_gets_a_new_generation_and_the_old_one_stays_usable(
    envs: Path, tmp_path: Path
) -> None:
    old = hatchling_env(tmp_path)
    user = subprocess.Popen(  # a build (server) started with the old generation
        [str(old.python), "-c", USER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert user.stdout is not None
        assert user.stdout.readline().strip() == "ready"
        age(old.folder, MAX_AGE + 60)
        new = hatchling_env(tmp_path)
        assert new.folder.parent == old.folder.parent
        assert int(new.folder.name) == int(old.folder.name) + 1
        assert read_marker(old.folder, old.folder.parent.name) is not None  # untouched
        output, _ = user.communicate("go\n", timeout=120)
    finally:
        if user.poll() is None:
            user.kill()
            user.communicate()
    assert user.returncode == 0, output
    assert output.startswith("OK ") and Path(output.split()[1]).is_relative_to(old.folder)
    assert hatchling_env(tmp_path) == new  # later builds use the new one
    assert len(made(envs)) == 2


def test_generations_older_than_two_days_are_removed_when_one_is_made_but_never_the_newest(
    envs: Path, tmp_path: Path
) -> None:
    first = hatchling_env(tmp_path)
    age(first.folder, MAX_AGE + 60)
    second = hatchling_env(tmp_path)
    assert first.folder.is_dir()  # a day old: a build may have started with it just now
    age(first.folder, 2 * MAX_AGE + 60)
    age(second.folder, MAX_AGE + 60)
    third = hatchling_env(tmp_path)
    assert not first.folder.exists()
    assert second.folder.is_dir() and third.folder.is_dir()
    key = third.folder.parent.name
    for env in (second, third):
        age(env.folder, 3 * MAX_AGE)
    clean(envs, key, keep=second.folder)  # the one about to be used and the newest stay
    assert second.folder.is_dir() and third.folder.is_dir()
    clean(envs, key, keep=third.folder)
    assert not second.folder.exists() and third.folder.is_dir()


def test_folders_no_build_can_be_using_are_removed_and_the_others_left(
    envs: Path, tmp_path: Path
) -> None:
    first = hatchling_env(tmp_path)
    key = first.folder.parent.name
    (first.folder / MARKER).write_text("{")  # damaged ...
    age(first.folder, ABANDONED + 60)  # ... and made over an hour ago
    previous = {"a" * 24: 2 * MAX_AGE + 60, "b" * 24: 2 * ABANDONED}  # the former layout
    for name, seconds in previous.items():
        (envs / name).mkdir()
        (envs / name / MARKER).write_text(json.dumps({"key": name, "created": 0}))
        age(envs / name, seconds)
    leftovers = {  # folders being made, by makers dead or at work
        f".{key}-0123456789ab": ABANDONED + 60,
        f".{key}-stale-0123456789ab": ABANDONED + 60,
        f".{'c' * 24}-0123456789ab": ABANDONED + 60,
        f".{key}-ba9876543210": ABANDONED - 60,
        ".not-ours": 3 * MAX_AGE,
    }
    for name, seconds in leftovers.items():
        (envs / name / "lib").mkdir(parents=True)
        age(envs / name, seconds)
    second = hatchling_env(tmp_path)
    assert int(second.folder.name) == int(first.folder.name) + 1
    assert sorted(p.name for p in envs.iterdir()) == sorted(
        [key, "b" * 24, f".{key}-ba9876543210", ".not-ours"]
    )
    assert [p.name for p in second.folder.parent.iterdir()] == [second.folder.name]
