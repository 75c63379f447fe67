"""Project: reading [project] and [tool.releasekit], version files, monorepo packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_project
from releasekit._project import Project, VersionFile, load_projects, parse_version
from releasekit.errors import ConfigError, VersionError


def test_reads_name_version_and_defaults(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", "Sample_Pkg", "1.2.0")
    project = Project.load(root)
    assert (project.name, project.normalized_name, project.version) == (
        "Sample_Pkg",
        "sample-pkg",
        "1.2.0",
    )
    assert project.dist_dir == root / "dist"
    assert project.tag("1.2.0") == "sample-pkg-v1.2.0"
    assert [v.read() for v in project.version_files] == ["1.2.0"]
    assert project.max_file_size == 100 * 1024 * 1024


def test_overrides_win_and_use_python_names(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    project = Project.load(root, dist_dir="wheelhouse", tag_format="v{version}")
    assert project.dist_dir == root / "wheelhouse"
    assert project.tag("2.0.0") == "v2.0.0"


def test_unknown_key_names_key_and_valid_ones(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", releasekit='dist_dir = "x"')
    with pytest.raises(ConfigError) as caught:
        Project.load(root)
    message = str(caught.value)
    assert "dist_dir" in message and "dist-dir" in message and "tag-format" in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("smoke = 'not a list'", "smoke"),
        ("dist-dir = 3", "dist-dir"),
        ("tag-format = [1]", "tag-format"),
        ("indexes = []", "indexes"),
        ("max-file-size-mb = true", "max-file-size-mb"),
    ],
)
def test_wrong_type_names_key(tmp_path: Path, line: str, key: str) -> None:
    root = write_project(tmp_path / "p", releasekit=line)
    with pytest.raises(ConfigError, match=key):
        Project.load(root)


def test_missing_pyproject(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No pyproject.toml"):
        Project.load(tmp_path)


def test_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Project.load(tmp_path)


def test_missing_name_and_version(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nversion = '1.0'\n")
    with pytest.raises(ConfigError, match="no \\[project\\] name"):
        Project.load(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match="no static \\[project\\] version"):
        Project.load(tmp_path)


def test_dynamic_version_from_version_file(tmp_path: Path) -> None:
    (tmp_path / "pkg.py").write_text("__version__: str = '3.1.4'\n")
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\ndynamic = ['version']\n"
        "[tool.releasekit]\nversion-files = ['pkg.py:__version__']\n"
    )
    assert Project.load(tmp_path).version == "3.1.4"


def test_invalid_version_names_value(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = 'banana'\n")
    with pytest.raises(VersionError, match="'banana'"):
        Project.load(tmp_path)
    with pytest.raises(VersionError, match="not a valid PEP 440"):
        parse_version("1.0-")


def test_version_file_forms(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('x = 1\n__version__ = "1.0.0"  # keep\n')
    (tmp_path / "package.json").write_text('{"name": "x", "version": "2.0.0"}\n')
    py = VersionFile.parse("a.py:__version__", tmp_path)
    js = VersionFile.parse("package.json:version", tmp_path)
    assert (py.read(), js.read()) == ("1.0.0", "2.0.0")
    assert py.replace((tmp_path / "a.py").read_text(), "1.1.0") == (
        'x = 1\n__version__ = "1.1.0"  # keep\n'
    )
    with pytest.raises(ConfigError, match="path:VARIABLE"):
        VersionFile.parse("no-colon", tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        VersionFile.parse("missing.py:v", tmp_path).read()
    with pytest.raises(ConfigError, match="no `other"):
        VersionFile.parse("a.py:other", tmp_path).read()


def test_monorepo_packages_and_selection(tmp_path: Path) -> None:
    write_project(tmp_path / "packages" / "alpha", "alpha", "0.1.0")
    write_project(tmp_path / "packages" / "beta", "beta", "0.2.0")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.releasekit]\npackages = ['packages/alpha', 'packages/beta']\n"
    )
    assert [p.name for p in load_projects(tmp_path)] == ["alpha", "beta"]
    assert [p.version for p in load_projects(tmp_path, "beta")] == ["0.2.0"]
    with pytest.raises(ConfigError, match="gamma"):
        load_projects(tmp_path, "gamma")


def test_package_dir_moves_to_the_package(tmp_path: Path) -> None:
    write_project(tmp_path / "sub", "inner", "0.3.0")
    (tmp_path / "pyproject.toml").write_text("[tool.releasekit]\npackage-dir = 'sub'\n")
    project = Project.load(tmp_path)
    assert (project.name, project.root) == ("inner", (tmp_path / "sub").resolve())


def test_settings_precedence_root_then_package_then_overrides(tmp_path: Path) -> None:
    write_project(tmp_path / "pkgs" / "alpha", "alpha", releasekit='dist-dir = "own"')
    write_project(tmp_path / "pkgs" / "beta", "beta")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.releasekit]\npackages = ['pkgs/alpha', 'pkgs/beta']\n"
        "dist-dir = 'shared'\ntag-format = 'r{version}-{name}'\n"
    )
    alpha, beta = load_projects(tmp_path)
    assert alpha.dist_dir.name == "own"  # the package's own table wins over the root's
    assert beta.dist_dir.name == "shared"  # the root's shared table fills in
    assert beta.tag("1.0") == "r1.0-beta"
    (forced,) = load_projects(tmp_path, "alpha", dist_dir="forced")  # register_sessions wins
    assert forced.dist_dir.name == "forced"
