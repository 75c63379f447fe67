"""Shared test fixtures: real sample projects in real git repositories, real local indexes,
and nox run as a user runs it."""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from filelock import FileLock

import noxfork
import releasekit.credentials
from provenance_index import StandIn, environ, serve
from releasekit._build import build
from releasekit._project import Project
from releasekit._report import Reporter, set_reporter
from releasekit.indexes.local import LocalIndex

BACKENDS = {
    "hatchling": (
        'requires = ["hatchling"]\nbuild-backend = "hatchling.build"',
        '[tool.hatch.build.targets.wheel]\npackages = ["src/{module}"]\n',
    ),
    "setuptools": (
        'requires = ["setuptools>=70"]\nbuild-backend = "setuptools.build_meta"',
        "",
    ),
    "flit-core": (
        'requires = ["flit_core>=3.9"]\nbuild-backend = "flit_core.buildapi"',
        '[tool.flit.module]\nname = "{module}"\n',
    ),
    "poetry-core": (
        'requires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"',
        '[tool.poetry]\npackages = [{{ include = "{module}", from = "src" }}]\n',
    ),
    "pdm-backend": ('requires = ["pdm-backend"]\nbuild-backend = "pdm.backend"', ""),
}

NOXFILE = "import releasekit.nox\n\nreleasekit.nox.register_sessions()\n"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; returns stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def write_project(
    root: Path,
    name: str = "sample-pkg",
    version: str = "0.1.0",
    *,
    backend: str = "hatchling",
    readme: str = "# Sample\n\nA sample package.\n",
    readme_name: str = "README.md",
    releasekit: str = "",
    dependencies: tuple[str, ...] = (),
) -> Path:
    """Write a src-layout project with a console script and a version file; return its root."""
    module = name.replace("-", "_").lower()
    requires, backend_table = BACKENDS[backend]
    root.mkdir(parents=True, exist_ok=True)
    (root / "src" / module).mkdir(parents=True, exist_ok=True)
    (root / "src" / module / "__init__.py").write_text(
        f'"""A sample package."""\n\n__version__ = "{version}"\n\n\n'
        "def main() -> None:\n    print(__version__)\n"
    )
    (root / readme_name).write_text(readme)
    content_type = "text/markdown" if readme_name.endswith(".md") else "text/x-rst"
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            {{requires}}

            [project]
            name = "{name}"
            version = "{version}"
            description = "A sample package."
            readme = {{{{ file = "{readme_name}", content-type = "{content_type}" }}}}
            requires-python = ">=3.10"
            dependencies = [{deps}]

            [project.scripts]
            {name} = "{module}:main"

            {{backend_table}}
            [tool.releasekit]
            version-files = ["src/{module}/__init__.py:__version__"]
            {{releasekit}}
            """
        ).format(
            requires=requires,
            backend_table=backend_table.format(module=module),
            releasekit=releasekit,
        )
    )
    (root / "noxfile.py").write_text(NOXFILE)
    (root / ".gitignore").write_text("dist/\n.nox/\n")
    return root


def commit_monorepo(root: Path, packages: Sequence[str], message: str = "feat: packages") -> Path:
    """Make ``root`` a committed monorepo: its ``[tool.releasekit] packages`` lists
    ``packages`` (directories under it, their projects written already), with the sessions'
    noxfile and a .gitignore for the dist dirs; everything committed with ``message``."""
    listing = ", ".join(f'"{directory}"' for directory in packages)
    (root / "pyproject.toml").write_text(f"[tool.releasekit]\npackages = [{listing}]\n")
    (root / "noxfile.py").write_text(NOXFILE)
    (root / ".gitignore").write_text("dist/\n.nox/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """A factory for sample projects committed in a fresh git repository."""

    def make(name: str = "sample-pkg", version: str = "0.1.0", **kwargs: object) -> Path:
        root = write_project(tmp_path / name, name, version, **kwargs)  # type: ignore[arg-type]
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "feat: first version")
        return root

    return make


@pytest.fixture
def project_dir(make_project: Callable[..., Path]) -> Path:
    """One sample hatchling project in a git repository."""
    return make_project()


_NOX_SERVER = noxfork.NoxServer()


def run_nox(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run nox in ``cwd`` as a user would (CI=true, no stdin); stdout and stderr combined.

    On Linux the process is forked from a server that has nox and releasekit imported
    (tests/noxfork.py): a new process all the same, without the second of start-up."""
    full_env = {**os.environ, "NOX_SCRIPT_MODE": "none", "CI": "true", **(env or {})}
    for name in ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD"):
        if env is None or name not in env:
            full_env.pop(name, None)
    command = [sys.executable, "-m", "nox", *args]
    if noxfork.supported() and _NOX_SERVER.accepts(full_env):
        fd, name = tempfile.mkstemp(prefix="nox-output-")
        os.close(fd)
        output = Path(name)
        try:
            code = _NOX_SERVER.run(cwd, args, full_env, output, timeout)
            text = output.read_bytes().decode()
        finally:
            output.unlink()
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as text=True reads it
        return subprocess.CompletedProcess(command, code, text)
    return subprocess.run(
        command,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow end-to-end tests first, so that no long test starts last and keeps
    one worker busy while the other idles (a module stays in one piece, so its module-scoped
    fixtures are made once per worker)."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


def pytest_sessionfinish() -> None:
    """Stop this process's nox fork server, if it started one."""
    _NOX_SERVER.close()


@pytest.fixture
def local_index() -> Iterator[Callable[[str, str], LocalIndex]]:
    """A factory for running pypiserver instances: ``local_index(name, token)``."""
    started: list[LocalIndex] = []

    def start(name: str, token: str) -> LocalIndex:
        index = LocalIndex(name, token).start()
        started.append(index)
        return index

    yield start
    for index in started:
        index.stop()


# --- no token in any output: every minted token and every nox output is recorded ----------

_MINTED: list[str] = []
_OUTPUTS: list[str] = []
_mint_token = releasekit.credentials.mint_token
_run_nox = run_nox


@functools.wraps(_mint_token)
def _recording_mint_token(*args: Any, **kwargs: Any) -> str:
    token = _mint_token(*args, **kwargs)
    _MINTED.append(token)
    return token


@functools.wraps(_run_nox)
def run_nox(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = _run_nox(*args, **kwargs)
    _OUTPUTS.append(result.stdout)
    return result


releasekit.credentials.mint_token = _recording_mint_token  # test modules import it later


def leaked_secrets(outputs: Sequence[str], secrets: Sequence[str], piece: int = 40) -> list[str]:
    """The secrets of which the whole or any ``piece``-character part is in ``outputs``."""
    pieces: dict[str, str] = {}
    for secret in secrets:
        for start in range(max(1, len(secret) - piece + 1)):
            pieces[secret[start : start + piece]] = secret
    leaked = {}
    for output in outputs:
        for start in range(max(0, len(output) - piece + 1)):
            found = pieces.get(output[start : start + piece])
            if found is not None:
                leaked[found] = found
    return list(leaked)


@pytest.fixture(scope="session", autouse=True)
def no_token_in_any_output() -> Iterator[None]:
    """After the last test (of each xdist worker), fail if any nox output of the session
    holds a token minted during it, or any 40-character piece of one."""
    yield
    leaked = leaked_secrets(_OUTPUTS, _MINTED)
    assert not leaked, (
        f"{len(leaked)} of the {len(_MINTED)} tokens minted in this session appeared in "
        f"the output of nox ({len(_OUTPUTS)} runs checked)"
    )


def twine_upload(index: LocalIndex, paths: Iterable[Path]) -> None:
    """Test setup: put files on a local index with twine's own API (not releasekit's)."""
    import twine.commands.upload
    import twine.settings

    settings = twine.settings.Settings(
        username="__token__",
        password=index.token,
        repository_url=index.upload_url,
        non_interactive=True,
        disable_progress_bar=True,
    )
    twine.commands.upload.upload(settings, [str(path) for path in paths])


Stream = TypeVar("Stream", bound=io.StringIO)


@contextmanager
def reporting_to(stream: Stream) -> Iterator[Stream]:
    """Inside this block, the reporter writes plain lines into ``stream``."""
    from rich.console import Console

    set_reporter(Reporter(Console(file=stream, color_system=None, width=400), plain=True))
    try:
        yield stream
    finally:
        set_reporter(None)


@pytest.fixture
def terminal() -> Iterator[io.StringIO]:
    """Everything the reporter writes during the test, as plain lines."""
    with reporting_to(io.StringIO()) as stream:
        yield stream


def _run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str) -> Path:
    """A directory ``name`` shared by every xdist worker of this test run."""
    if worker_id == "master":  # not distributed: this process is the whole run
        return tmp_path_factory.mktemp(name)
    return tmp_path_factory.getbasetemp().parent / name  # each worker's dir is one level below


@pytest.fixture(scope="session", autouse=True)
def build_envs(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Path]:
    """Shared build environments live in the test run's temp dir, not the user's cache, and
    are shared by every worker (made once per requirement set per run)."""
    folder = _run_dir(tmp_path_factory, worker_id, "build-envs")
    before = os.environ.get("RELEASEKIT_BUILD_ENVS")
    os.environ["RELEASEKIT_BUILD_ENVS"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("RELEASEKIT_BUILD_ENVS", None)
    else:
        os.environ["RELEASEKIT_BUILD_ENVS"] = before


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str, build_envs: Path) -> Project:
    """One sample project, built once per test run and shared by every xdist worker (a
    module may define its own); read-only: tests change a copy (``project``)."""
    shared = _run_dir(tmp_path_factory, worker_id, "built")
    root = shared / "sample-pkg"
    with FileLock(f"{shared}.lock"):
        if not (shared / "done").exists():
            shutil.rmtree(shared, ignore_errors=True)
            build(Project.load(write_project(root)))
            (shared / "done").touch()
    return Project.load(root)


@pytest.fixture
def project(built: Project, tmp_path: Path) -> Project:
    """A private copy of the built sample project, free to damage."""
    root = tmp_path / "copy"
    shutil.copytree(built.root, root)
    return Project.load(root)


@pytest.fixture(autouse=True)
def forget_held_secrets() -> Iterator[None]:
    """Each test starts with no secret held in memory (releasekit moves the credentials it
    reads out of os.environ and keeps them for later sessions of the same process)."""
    releasekit.credentials.forget_secrets()
    yield
    releasekit.credentials.forget_secrets()


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """A stand-in index serving PEP 691/700/740/792 (tests/provenance_index.py), named by the
    RELEASEKIT_PYPI_* and RELEASEKIT_TESTPYPI_* variables."""
    with serve() as state:
        for key, value in environ(state).items():
            monkeypatch.setenv(key, value)
        yield state
