"""Projects whose name or version is not static in [project]: each shape of project as people
have it (hatch-vcs, setuptools-scm with setup.cfg, setup.cfg `attr:`, setup.py only,
[tool.poetry], pdm-backend with the version from git, flit's `__version__`), made in a
temporary git repository and run through doctor, build, check_dist, a stamped build, an upload
to and a verify on a local index, and a release, with the real build backends."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import NOXFILE, git, run_nox
from releasekit import _backend
from releasekit._backend import require_settable, version_override_env, version_source
from releasekit._project import Project, VersionSource
from releasekit._settings import Settings
from releasekit._stamp import build_version, dev_version
from releasekit.credentials import mint_token
from releasekit.errors import BuildError, ConfigError
from releasekit.indexes.local import LocalIndex

PACKAGE = '"""A sample package."""\n\n__version__ = "{version}"\n'
PLAIN_PACKAGE = '"""A sample package."""\n'
SETUP_CFG_PACKAGES = """\
[options]
package_dir =
    =src
packages = find:

[options.packages.find]
where = src
"""


@dataclass(frozen=True)
class Shape:
    """A kind of project: its files (``{module}``, ``{name}`` and ``{version}`` filled in),
    where its version lives, and the file a release edits (None: the tag is the version)."""

    files: dict[str, str]
    kind: str
    version_file: str | None


SHAPES = {
    "hatch-vcs": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["hatchling", "hatch-vcs"]
                build-backend = "hatchling.build"

                [project]
                name = "{name}"
                dynamic = ["version"]
                description = "A sample package."
                readme = "README.md"

                [tool.hatch.version]
                source = "vcs"

                [tool.hatch.build.targets.wheel]
                packages = ["src/{module}"]
                """,
            "src/{module}/__init__.py": PLAIN_PACKAGE,
        },
        "git",
        None,
    ),
    "setuptools-scm-setup-cfg": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["setuptools>=70", "setuptools-scm>=8"]
                build-backend = "setuptools.build_meta"

                [tool.setuptools_scm]
                """,
            "setup.cfg": """\
                [metadata]
                name = {name}
                description = A sample package.
                long_description = file: README.md
                long_description_content_type = text/markdown

                """
            + SETUP_CFG_PACKAGES,
            "src/{module}/__init__.py": PLAIN_PACKAGE,
        },
        "git",
        None,
    ),
    "setup-cfg-attr": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["setuptools>=70"]
                build-backend = "setuptools.build_meta"
                """,
            "setup.cfg": """\
                [metadata]
                name = {name}
                version = attr: {module}.__version__
                description = A sample package.
                long_description = file: README.md
                long_description_content_type = text/markdown

                """
            + SETUP_CFG_PACKAGES,
            "src/{module}/__init__.py": PACKAGE,
        },
        "file",
        "src/{module}/__init__.py",
    ),
    "setup-py-only": Shape(
        {
            "setup.py": """\
                from setuptools import find_packages, setup

                setup(
                    name="{name}",
                    version="{version}",
                    description="A sample package.",
                    long_description=open("README.md").read(),
                    long_description_content_type="text/markdown",
                    package_dir={{"": "src"}},
                    packages=find_packages("src"),
                )
                """,
            "src/{module}/__init__.py": PLAIN_PACKAGE,
        },
        "file",
        "setup.py",
    ),
    "poetry": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["poetry-core>=1.0.0"]
                build-backend = "poetry.core.masonry.api"

                [tool.poetry]
                name = "{name}"
                version = "{version}"
                description = "A sample package."
                authors = ["Test <test@example.invalid>"]
                readme = "README.md"
                packages = [{{ include = "{module}", from = "src" }}]
                """,
            "src/{module}/__init__.py": PLAIN_PACKAGE,
        },
        "poetry",
        "pyproject.toml",
    ),
    "pdm-scm": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["pdm-backend"]
                build-backend = "pdm.backend"

                [project]
                name = "{name}"
                dynamic = ["version"]
                description = "A sample package."
                readme = "README.md"

                [tool.pdm.version]
                source = "scm"
                """,
            "src/{module}/__init__.py": PLAIN_PACKAGE,
        },
        "git",
        None,
    ),
    "flit": Shape(
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["flit_core>=3.9"]
                build-backend = "flit_core.buildapi"

                [project]
                name = "{name}"
                dynamic = ["version", "description"]
                readme = "README.md"

                [tool.flit.module]
                name = "{module}"
                """,
            "src/{module}/__init__.py": PACKAGE,
        },
        "file",
        "src/{module}/__init__.py",
    ),
}


def make_shape(root: Path, shape: str, name: str = "sample-shape", version: str = "0.1.0") -> Path:
    """Write a project of ``shape`` in a new git repository, committed and tagged as released
    (``{name}-v{version}``); returns its root."""
    module = name.replace("-", "_")
    root.mkdir(parents=True)
    for path, content in SHAPES[shape].files.items():
        target = root / path.format(module=module)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(content).format(name=name, module=module, version=version)
        target.write_text(text, encoding="utf-8")
    (root / "README.md").write_text("# Sample\n\nA sample package.\n")
    (root / "noxfile.py").write_text(NOXFILE)
    (root / ".gitignore").write_text("dist/\n.nox/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: first version")
    git(root, "tag", f"{name}-v{version}")
    return root


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the work tree but .git, .nox and dist."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {".git", ".nox", "dist"} & set(path.relative_to(root).parts)
    }


def built(root: Path) -> list[str]:
    return sorted(path.name for path in (root / "dist").iterdir())


# --- where the version comes from, read from the configuration (no backend) ----------------


def source_of(tmp_path: Path, shape: str) -> VersionSource:
    root = tmp_path / shape
    module = "sample_shape"
    root.mkdir()
    for path, content in SHAPES[shape].files.items():
        target = root / path.format(module=module)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(content).format(name="sample-shape", module=module, version="0.1.0")
        target.write_text(text, encoding="utf-8")
    from releasekit._project import read_pyproject

    return version_source(root, read_pyproject(root / "pyproject.toml"), "0.1.0", "sample-shape")


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_version_source_of_each_shape(tmp_path: Path, shape: str) -> None:
    source = source_of(tmp_path, shape)
    assert source.kind == SHAPES[shape].kind
    expected = SHAPES[shape].version_file
    if source.kind == "file":
        assert expected is not None
        assert source.file is not None
        assert source.file.split(":")[0] == expected.format(module="sample_shape")


def test_the_backend_override_variables_of_versions_from_git(tmp_path: Path) -> None:
    settings = Settings()
    scm = VersionSource("git", "hatchling.build", "git tags", override="setuptools-scm")
    project = Project(tmp_path, "My.Pkg_name", "1.2.3", settings, True, scm)
    assert version_override_env(project) == {
        "SETUPTOOLS_SCM_PRETEND_VERSION": "1.2.3",
        "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MY_PKG_NAME": "1.2.3",
    }
    pdm = VersionSource("git", "pdm.backend", "git tags", override="pdm-backend")
    assert version_override_env(Project(tmp_path, "p", "2.0", settings, True, pdm)) == {
        "PDM_BUILD_SCM_VERSION": "2.0"
    }
    static = Project(tmp_path, "p", "2.0", settings)
    assert version_override_env(static) == {}


def test_a_version_releasekit_cannot_set_is_refused_before_building(tmp_path: Path) -> None:
    settings = Settings()
    versioningit = VersionSource("git", "setuptools.build_meta", "git tags, via versioningit")
    project = Project(tmp_path, "p", "1.0", settings, True, versioningit)
    require_settable(project, build=False)  # a release only tags it
    with pytest.raises(ConfigError, match="cannot set the version") as raised:
        build_version(project, "1.2.3", dev=False)
    assert "version-files" in raised.value.fix
    unknown = VersionSource("backend", "mybackend", "computed by the build backend mybackend")
    with pytest.raises(ConfigError, match="cannot set the version"):
        require_settable(Project(tmp_path, "p", "1.0", settings, True, unknown), build=False)


# --- each shape, end to end, with its real build backend ------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_builds_checks_stamps_publishes_and_releases(
    tmp_path: Path, shape: str, local_index: Callable[[str, str], LocalIndex]
) -> None:
    name = f"sample-{shape}"
    root = make_shape(tmp_path / shape, shape, name)
    expected = SHAPES[shape]

    doctor = run_nox(root, "-s", "doctor")
    assert f"{name} 0.1.0 at" in doctor.stdout, doctor.stdout
    assert f"version source: {expected.kind}," in doctor.stdout, doctor.stdout
    assert "Traceback" not in doctor.stdout

    checked = run_nox(root, "-s", "build", "check_dist")
    assert checked.returncode == 0, checked.stdout
    assert all("-0.1.0" in name for name in built(root)), built(root)

    before = tree(root)
    stamped = run_nox(root, "-s", "build", "--", "--version", "1.2.3")
    assert stamped.returncode == 0, stamped.stdout
    assert [name.split("-")[1].removesuffix(".tar.gz") for name in built(root)] == ["1.2.3"] * 2
    assert tree(root) == before
    assert git(root, "status", "--porcelain") == ""
    checked = run_nox(root, "-s", "check_dist")
    assert checked.returncode == 0, checked.stdout
    assert "1.2.3 pass" in checked.stdout

    token = mint_token("testpypi")
    env = {**local_index("testpypi", token).environ(), "TEST_PYPI_API_TOKEN": token}
    published = run_nox(root, "-s", "upload_testpypi", "verify_testpypi", env=env)
    assert published.returncode == 0, published.stdout
    assert f"Verified {name} 1.2.3" in published.stdout, published.stdout

    released = run_nox(root, "-s", "release", "--", "1.2.3", "--no-index-check")
    assert released.returncode == 0, released.stdout
    assert git(root, "tag", "--points-at", "HEAD").split() == [f"{name}-v1.2.3"]
    changed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    module = name.replace("-", "_")
    edited = [expected.version_file.format(module=module)] if expected.version_file else []
    assert changed == sorted(["CHANGELOG.md", *edited])
    assert Project.load(root).version == "1.2.3"  # what the backend now says
    assert git(root, "status", "--porcelain") == ""


# --- the cache, and what goes wrong --------------------------------------------------------


@pytest.mark.slow
def test_a_second_read_comes_from_the_cache_until_something_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_shape(tmp_path / "cached", "hatch-vcs", "sample-cached")
    calls: list[Path] = []
    real = _backend.backend_metadata

    def counted(path: Path, *args: object) -> tuple[str, str]:
        calls.append(path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_backend, "backend_metadata", counted)
    assert Project.load(root).version == "0.1.0"
    assert len(calls) == 1
    assert Project.load(root).version == "0.1.0"
    assert len(calls) == 1  # no backend call: from the cache
    cache = Path(git(root, "rev-parse", "--absolute-git-dir").strip()) / "releasekit"
    assert len(list(cache.glob("metadata-*.json"))) == 1
    assert git(root, "status", "--porcelain") == ""  # the cache is not in the tree

    (root / "more.txt").write_text("more\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: more")
    project = Project.load(root)
    assert len(calls) == 2  # a new commit: asked again
    assert project.version.startswith("0.1.1.dev1+g")
    assert dev_version(project) == "0.1.1.dev1"  # from the last tag, never a local version
    git(root, "tag", "sample-cached-v0.2.0")
    assert Project.load(root).version == "0.2.0"
    assert len(calls) == 3  # a new tag: asked again
    assert len(list(cache.glob("metadata-*.json"))) == 1  # older entries replaced


@pytest.mark.slow
def test_a_failing_backend_hook_is_one_explained_error(tmp_path: Path) -> None:
    root = make_shape(tmp_path / "broken", "setup-py-only", "sample-broken")
    setup = root / "setup.py"
    setup.write_text(
        setup.read_text().replace("setup(", "raise SystemExit('no such option')\nsetup(")
    )
    git(root, "commit", "-q", "-am", "fix: break")
    before = tree(root)
    result = run_nox(root, "-s", "doctor")
    assert result.returncode != 0
    assert "could not report the name and version" in result.stdout, result.stdout
    assert "no such option" in result.stdout  # the backend's own words
    assert "Fix:" in result.stdout
    assert "internal error" not in result.stdout
    assert tree(root) == before
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.slow
def test_a_version_from_git_outside_git_is_explained(tmp_path: Path) -> None:
    root = make_shape(tmp_path / "nogit", "setuptools-scm-setup-cfg", "sample-nogit")
    import shutil

    shutil.rmtree(root / ".git")
    with pytest.raises(BuildError) as raised:
        Project.load(root)
    assert "comes from git" in raised.value.why
    assert sorted(p.name for p in root.iterdir() if p.name.endswith(".egg-info")) == []


@pytest.mark.slow
def test_a_version_from_git_with_no_tag_builds_a_dev_release_not_a_local_one(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    root = tmp_path / "untagged"
    make_shape(root, "hatch-vcs", "sample-untagged")
    git(root, "tag", "--delete", "sample-untagged-v0.1.0")
    doctor = run_nox(root, "-s", "doctor")
    assert "is a local version, which indexes refuse" in doctor.stdout, doctor.stdout
    result = run_nox(root, "-s", "build", "--", "--dev")
    assert result.returncode == 0, result.stdout
    versions = {name.split("-")[1].removesuffix(".tar.gz") for name in built(root)}
    assert versions == {"0.1.1.dev1"}, versions
    assert git(root, "status", "--porcelain") == ""


VERSIONINGIT = """\
[build-system]
requires = ["setuptools>=70", "versioningit>=3"]
build-backend = "setuptools.build_meta"

[project]
name = "sample-vit"
dynamic = ["version"]
description = "A sample package."

[tool.versioningit.tag2version]
regex = "-v(?P<version>[0-9].*)$"
"""


@pytest.mark.slow
def test_versioningit_is_read_but_a_stamped_build_is_refused(tmp_path: Path) -> None:
    root = make_shape(tmp_path / "vit", "pdm-scm", "sample-vit")  # then made a versioningit one
    (root / "pyproject.toml").write_text(VERSIONINGIT)
    git(root, "commit", "-q", "-am", "build: versioningit")
    git(root, "tag", "sample-vit-v0.2.0")
    doctor = run_nox(root, "-s", "doctor")
    assert "sample-vit 0.2.0 at" in doctor.stdout, doctor.stdout
    assert "version source: git, git tags, via versioningit" in doctor.stdout
    before = tree(root)
    result = run_nox(root, "-s", "build", "--", "--version", "1.2.3")
    assert result.returncode != 0
    assert "cannot set the version of sample-vit" in result.stdout, result.stdout
    assert "internal error" not in result.stdout
    assert tree(root) == before


def test_a_setup_py_that_reads_its_module_version_is_a_file_source(tmp_path: Path) -> None:
    """six's shape: ``import six`` in setup.py, then ``version=six.__version__``."""
    (tmp_path / "sample_six.py").write_text('__version__ = "1.16.0"\n')
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nimport sample_six\n\n"
        'setup(name="sample-six", version=sample_six.__version__, py_modules=["sample_six"])\n'
    )
    source = version_source(tmp_path, {}, "1.16.0", "sample-six")
    assert (source.kind, source.file) == ("file", "sample_six.py:__version__")
