"""verify and the verify_* sessions, against real local indexes standing in for TestPyPI and
PyPI, with real sample projects built, uploaded and installed."""

from __future__ import annotations

import io
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from packaging.version import Version

from conftest import reporting_to, run_nox, twine_upload
from releasekit._build import build
from releasekit._distributions import Distribution
from releasekit._installers import installable_here, installer_environ, stale_answer
from releasekit._project import Project
from releasekit._venv import runtime_requirements
from releasekit._verify import verify
from releasekit.errors import DistributionError, IndexUnavailable, VerifyError
from releasekit.indexes import Index
from releasekit.indexes.local import LocalIndex

TEST_TOKEN = "pypi-test-stand-in-token"
PROD_TOKEN = "pypi-production-stand-in-token"
SMOKE_PRINTS_VERSION = 'smoke = ["sample-pkg"]'


class Watched(io.StringIO):
    """A terminal stand-in that signals when a given text has been written to it."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.needle in self.getvalue():
            self.seen.set()
        return written


@pytest.fixture
def terminal() -> Iterator[Watched]:
    """Everything the reporter writes, in plain mode; ``.seen`` fires on ``Waiting up to``."""
    with reporting_to(Watched("Waiting up to")) as stream:
        yield stream


@pytest.fixture
def indexes(local_index: Callable[[str, str], LocalIndex]) -> tuple[LocalIndex, LocalIndex]:
    """Stand-ins for TestPyPI and PyPI."""
    return local_index("testpypi", TEST_TOKEN), local_index("pypi", PROD_TOKEN)


def upload(index: LocalIndex, dists: Sequence[Distribution]) -> None:
    """Test setup: put files on a local index with twine's own API."""
    twine_upload(index, (d.path for d in dists))


def built(make_project: Callable[..., Path], *args: str, **kwargs: object) -> Project:
    project = Project.load(make_project(*args, **kwargs))
    build(project)
    return project


def dists(project: Project) -> list[Distribution]:
    """The files the last build of ``project`` left in its dist dir."""
    return [Distribution.from_path(path) for path in sorted(project.dist_dir.iterdir())]


@pytest.mark.slow
def test_verify_testpypi_session_shows_smoke_output_and_timings(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex]
) -> None:
    test, prod = indexes
    project = built(make_project, version="0.2.0", releasekit=SMOKE_PRINTS_VERSION)
    upload(test, dists(project))
    result = run_nox(
        project.root, "-s", "verify_testpypi", env={**test.environ(), **prod.environ()}
    )
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    smoke = lines.index("$ sample-pkg  (exit 0)")
    assert lines[smoke + 1].strip() == "0.2.0"
    for phase in ("visible on testpypi", "install (uv)", "smoke (1 command)", "total"):
        assert any(line.strip().startswith(phase) for line in lines), phase
    assert "imports (sample_pkg)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_dependencies_come_only_from_production(
    make_project: Callable[..., Path],
    indexes: tuple[LocalIndex, LocalIndex],
    terminal: Watched,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
) -> None:
    test, prod = indexes
    # The dependency exists in both places; only the production one may be installed.
    upload(prod, build(Project.load(make_project("dep-pkg", "0.3.0"))))
    upload(test, build(Project.load(make_project("dep-pkg", "0.4.0"))))
    project = built(make_project, dependencies=("dep-pkg", "nowhere-pkg; python_version < '3'"))
    upload(test, dists(project))
    if installer == "pip":  # for verify: the builds above are the same with either
        monkeypatch.setenv("RELEASEKIT_NO_UV", "1")
    project = Project.load(project.root, smoke=["dep-pkg"])
    report = verify(project, test.index, dependency_index=prod.index, timeout=30)
    assert report.installer == installer
    assert report.dependencies == ("dep-pkg",)
    assert report.smoke[0].output.strip() == "0.3.0"
    assert "0.3.0" in terminal.getvalue()


@pytest.mark.slow
def test_dependency_only_on_the_test_index_is_never_installed(
    make_project: Callable[..., Path],
    indexes: tuple[LocalIndex, LocalIndex],
    terminal: Watched,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test, prod = indexes
    upload(test, build(Project.load(make_project("squatted-pkg", "1.0.0"))))
    project = built(make_project, dependencies=("squatted-pkg",))
    upload(test, dists(project))
    # Ambient configuration pointing at the test index must not widen the sources either.
    for variable in ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX"):
        monkeypatch.setenv(variable, test.simple_url)
    monkeypatch.setenv("PIP_FIND_LINKS", str(test.root / "packages"))
    with pytest.raises(VerifyError) as caught:
        verify(project, test.index, dependency_index=prod.index, timeout=30)
    message = str(caught.value)
    assert "Installing the dependencies of sample-pkg==0.1.0 (squatted-pkg)" in message
    assert prod.simple_url in message
    assert "never from the index under test" in message
    assert "squatted-pkg" in terminal.getvalue()  # the installer's own explanation


@pytest.mark.slow
def test_verify_pypi_times_out_naming_the_version(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex]
) -> None:
    test, prod = indexes
    project = built(make_project, version="0.7.0")
    upload(test, dists(project))  # on the test index only
    env = {**test.environ(), **prod.environ()}
    result = run_nox(project.root, "-s", "verify_pypi", "--", "--timeout", "3", env=env, timeout=60)
    assert result.returncode != 0
    assert f"sample-pkg 0.7.0 is not on pypi ({prod.simple_url})" in result.stdout
    assert "sample_pkg-0.7.0-py3-none-any.whl" in result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.slow
def test_rebuilt_files_fail_naming_both_sha256(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex]
) -> None:
    test, prod = indexes
    project = built(make_project)
    uploaded = dists(project)
    upload(test, uploaded)
    module = project.root / "src" / "sample_pkg" / "__init__.py"
    module.write_text(module.read_text() + "\nCHANGED = True\n")
    rebuilt = {d.filename: d.sha256 for d in build(project)}
    with pytest.raises(VerifyError) as caught:
        verify(project, test.index, dependency_index=prod.index, timeout=30)
    message = str(caught.value)
    first = next(d for d in uploaded if d.filename in message)
    assert rebuilt[first.filename] != first.sha256
    assert f"the index has sha256 {first.sha256}" in message
    assert f"the local file has sha256 {rebuilt[first.filename]}" in message


@pytest.mark.slow
def test_failing_smoke_command_shows_output_and_exit_code(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex], terminal: Watched
) -> None:
    test, prod = indexes
    smoke = "python -c \"import sys; print('smoke says no'); sys.exit(3)\""
    project = built(make_project)
    upload(test, dists(project))
    project = Project.load(project.root, smoke=["sample-pkg", smoke])
    with pytest.raises(VerifyError) as caught:
        verify(project, test.index, dependency_index=prod.index, timeout=30)
    assert caught.value.what == f"Smoke command `{smoke}` exited 3."
    shown = terminal.getvalue()
    assert f"$ {smoke}  (exit 3)\n    smoke says no" in shown
    assert "$ sample-pkg  (exit 0)\n    0.1.0" in shown


@pytest.mark.slow
def test_a_package_that_fails_to_import_fails_verify_with_its_traceback(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex], terminal: Watched
) -> None:
    test, prod = indexes
    root = make_project()
    init = root / "src" / "sample_pkg" / "__init__.py"
    init.write_text(init.read_text() + "\nimport sample_pkg_missing_helper\n")
    project = built(lambda: root)
    upload(test, dists(project))
    with pytest.raises(VerifyError) as caught:
        verify(project, test.index, dependency_index=prod.index, timeout=30)
    assert caught.value.what == "Importing sample_pkg from sample-pkg failed (exit 1)."
    assert "No module named 'sample_pkg_missing_helper'" in terminal.getvalue()


def test_the_probe_reads_version_and_scripts_of_what_is_installed(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex], terminal: Watched
) -> None:
    test, prod = indexes
    project = built(make_project, version="0.3.0")
    upload(test, dists(project))
    report = verify(project, test.index, dependency_index=prod.index, timeout=30)
    assert report.modules == ("sample_pkg",)
    assert "sample-pkg 0.3.0 imports (sample_pkg); scripts: sample-pkg." in terminal.getvalue()


@pytest.mark.slow
def test_files_appearing_while_polling(
    make_project: Callable[..., Path], indexes: tuple[LocalIndex, LocalIndex], terminal: Watched
) -> None:
    test, prod = indexes
    project = built(make_project)
    files = dists(project)
    problems: list[BaseException] = []

    def upload_once_polling() -> None:
        try:
            if not terminal.seen.wait(timeout=120):
                raise AssertionError("verify never reported that it was waiting")
            upload(test, files)
        except BaseException as exc:
            problems.append(exc)

    uploader = threading.Thread(target=upload_once_polling)
    uploader.start()
    try:
        report = verify(project, test.index, dependency_index=prod.index, timeout=120)
    finally:
        terminal.seen.set()
        uploader.join()
    assert not problems, problems
    shown = terminal.getvalue()
    assert "not listed yet: sample_pkg-0.1.0-py3-none-any.whl, sample_pkg-0.1.0.tar.gz" in shown
    assert shown.index("Waiting up to") < shown.index("2 files listed on testpypi")
    assert report.modules == ("sample_pkg",)


def test_no_dist_files_fail_before_any_network_call(make_project: Callable[..., Path]) -> None:
    project = Project.load(make_project())
    nowhere = Index("testpypi", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    with pytest.raises(DistributionError, match="does not exist"):
        verify(project, nowhere, dependency_index=nowhere, timeout=0)


def test_unreachable_index_fails_after_bounded_retries(
    make_project: Callable[..., Path], terminal: Watched
) -> None:
    project = Project.load(make_project())
    build(project)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = Index("testpypi", f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/simple/")
    with pytest.raises(IndexUnavailable) as caught:
        verify(project, nowhere, dependency_index=nowhere, timeout=1)
    assert re.search(r"after [2-9] tries over [\d.]+ s: connection refused", caught.value.what)
    assert "listed on" not in terminal.getvalue()


def test_runtime_requirements_evaluate_markers_and_drop_extras() -> None:
    requires = [
        "plain>=1",
        "withextra[fast]==2; python_version >= '3.8'",
        "old; python_version < '3'",
        "optional; extra == 'docs'",
    ]
    assert runtime_requirements(requires) == ["plain>=1", "withextra[fast]==2"]
    with pytest.raises(VerifyError, match="invalid requirement"):
        runtime_requirements(["not a requirement!"])


def test_installer_environ_drops_sources_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "PIP_EXTRA_INDEX_URL": "file:///elsewhere",
        "PIP_FIND_LINKS": "/elsewhere",
        "UV_INDEX_URL": "http://elsewhere/",
        "UV_CACHE_DIR": "/cache",
        "PYTHONPATH": "/elsewhere",
        "TEST_PYPI_API_TOKEN": "pypi-secret",
    }.items():
        monkeypatch.setenv(variable, value)
    env = installer_environ(Path("/venv"))
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert env["UV_CACHE_DIR"] == "/cache"
    assert env["VIRTUAL_ENV"] == "/venv"
    assert env["PATH"].startswith("/venv/bin")
    for gone in (
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "UV_INDEX_URL",
        "PYTHONPATH",
        "TEST_PYPI_API_TOKEN",
    ):
        assert gone not in env


def test_stale_answers_are_told_from_other_failures() -> None:
    pip = "Looking in indexes: http://127.0.0.1:9/simple/\nERROR: No matching distribution found for x==1"
    assert stale_answer(pip) == "No matching distribution found for x==1"
    uv = "error: Failed to download `x==1`\n  cause: Hash mismatch for `x==1`\n\n  Expected: ..."
    assert stale_answer(uv) == "Hash mismatch for `x==1`"
    requires_python = (
        "ERROR: Ignored the following versions that require a different python version: 1 "
        "Requires-Python >=3.99\n" + pip
    )
    assert stale_answer(requires_python) is None
    assert stale_answer("error: x==1 has no wheels with a matching platform tag") is None
    assert stale_answer("HTTP status client error (403 Forbidden) for url") is None


def test_a_release_with_nothing_installable_here_is_not_waited_for() -> None:
    def dist(filename: str) -> Distribution:
        kind = "wheel" if filename.endswith(".whl") else "sdist"
        return Distribution(Path(filename), "x", Version("1"), kind, 1, "0" * 64)

    assert installable_here([dist("x-1-py3-none-any.whl")])
    assert installable_here([dist("x-1-py2-none-win32.whl"), dist("x-1.tar.gz")])
    assert not installable_here([dist("x-1-cp27-cp27m-win32.whl")])
