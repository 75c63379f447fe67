"""Coordinated monorepo releases: packages uploaded in dependency order, and a package verified
together with the sibling versions just uploaded to the index under test; uv workspaces."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import commit_monorepo, run_nox, write_project
from releasekit._build import build
from releasekit._project import load_projects
from releasekit._rehearse import rehearse
from releasekit._workspace import dependency_order, released_siblings, requirements_of
from releasekit.credentials import mint_token
from releasekit.errors import ConfigError
from releasekit.indexes.local import LocalIndex

CORE, APP = "rk-core-xq", "rk-app-xq"


def monorepo(root: Path, *, dynamic_app: bool = False, pin: str = "==0.2.0") -> Path:
    """A monorepo whose app requires the core's new version; the app is listed first."""
    root.mkdir(parents=True)
    write_project(root / "packages" / "core", CORE, "0.2.0")
    app = write_project(
        root / "packages" / "app",
        APP,
        "1.0.0",
        backend="setuptools" if dynamic_app else "hatchling",
        dependencies=(f"{CORE}{pin}",),
    )
    if dynamic_app:  # the dependencies are known only to the backend, and to the built wheel
        pyproject = app / "pyproject.toml"
        text = pyproject.read_text().replace(f'dependencies = ["{CORE}{pin}"]', "")
        text = text.replace("[project]\n", '[project]\ndynamic = ["dependencies"]\n', 1)
        text += '\n[tool.setuptools.dynamic]\ndependencies = { file = ["requirements.txt"] }\n'
        pyproject.write_text(text)
        (app / "requirements.txt").write_text(f"{CORE}{pin}\n")
        (app / "MANIFEST.in").write_text("include requirements.txt\n")
    return commit_monorepo(root, ["packages/app", "packages/core"], "feat: first versions")


@pytest.fixture
def production() -> Iterator[LocalIndex]:
    """An empty stand-in for the production index: the core's new version is not there."""
    with LocalIndex("pypi", "unused") as index:
        yield index


def test_dependency_order_puts_required_siblings_first(tmp_path: Path) -> None:
    projects = load_projects(monorepo(tmp_path / "mono"))
    assert [p.name for p in projects] == [APP, CORE]
    assert [[p.name for p in layer] for layer in dependency_order(projects)] == [[CORE], [APP]]
    assert [p.name for layer in dependency_order(projects[1:]) for p in layer] == [CORE]


def test_a_dependency_cycle_is_explained(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "mono")
    core = root / "packages" / "core" / "pyproject.toml"
    core.write_text(core.read_text().replace("dependencies = []", f'dependencies = ["{APP}"]'))
    with pytest.raises(ConfigError, match="cycle"):
        dependency_order(load_projects(root))


def test_dynamic_dependencies_come_from_the_built_wheel(tmp_path: Path) -> None:
    projects = load_projects(monorepo(tmp_path / "mono", dynamic_app=True))
    app = projects[0]
    assert requirements_of(app) == []  # nothing built yet: nothing known
    for project in projects:
        build(project)
    assert [str(r) for r in requirements_of(app)] == [f"{CORE}==0.2.0"]
    assert [p.name for layer in dependency_order(projects) for p in layer] == [CORE, APP]
    assert [(s.name, s.version) for s in released_siblings(app, projects)] == [(CORE, "0.2.0")]


def test_a_sibling_whose_new_version_is_excluded_comes_from_production(tmp_path: Path) -> None:
    projects = load_projects(monorepo(tmp_path / "mono", pin="<0.2"))
    for project in projects:
        build(project)
    assert released_siblings(projects[0], projects) == []


def test_uv_workspace_members_are_the_packages(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for name in ("one", "two", "skipped"):
        write_project(root / "libs" / name, f"ws-{name}")
    (root / "libs" / "notes").mkdir()  # no pyproject.toml: not a member
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [tool.uv.workspace]
            members = ["libs/*"]
            exclude = ["libs/skipped"]
            """
        )
    )
    assert [p.name for p in load_projects(root)] == ["ws-one", "ws-two"]
    assert [p.name for p in load_projects(root, "ws-two")] == ["ws-two"]
    with_root = root / "pyproject.toml"
    with_root.write_text('[project]\nname = "ws-root"\nversion = "1.0"\n' + with_root.read_text())
    assert [p.name for p in load_projects(root)] == ["ws-root", "ws-one", "ws-two"]


@pytest.mark.slow
def test_rehearse_a_coordinated_release(
    tmp_path: Path, production: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in production.environ().items():
        monkeypatch.setenv(key, value)
    steps = rehearse(load_projects(monorepo(tmp_path / "mono")))
    names = [step.name for step in steps]
    assert names.index(f"{CORE}: upload_testpypi") < names.index(f"{APP}: verify_testpypi")
    assert f"{APP}: verify_pypi" in names


@pytest.mark.slow
def test_upload_and_verify_a_coordinated_release(tmp_path: Path, production: LocalIndex) -> None:
    root = monorepo(tmp_path / "mono")
    token = mint_token("testpypi", projects=[CORE, APP])
    with LocalIndex("testpypi", token) as testpypi:
        env = {"TEST_PYPI_API_TOKEN": token, **testpypi.environ(), **production.environ()}
        built = run_nox(root, "-s", "build", "check_dist")
        assert built.returncode == 0, built.stdout
        uploaded = run_nox(root, "-s", "upload_testpypi", env=env)
        assert uploaded.returncode == 0, uploaded.stdout
        out = uploaded.stdout
        assert out.index(f"Uploaded {CORE.replace('-', '_')}") < out.index(
            f"Uploaded {APP.replace('-', '_')}"
        )
        verified = run_nox(root, "-s", "verify_testpypi", "--", "--timeout", "30", env=env)
        assert verified.returncode == 0, verified.stdout
        assert f"Siblings released with {APP}, installed from testpypi: {CORE} 0.2.0" in (
            verified.stdout
        )
        one = run_nox(root, "-s", "verify", "--", "--index", "testpypi", "--package", APP, env=env)
        assert one.returncode == 0, one.stdout
