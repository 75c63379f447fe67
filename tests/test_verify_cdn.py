"""verify behind a stale cache (a content-delivery network in front of the index): a real
pypiserver behind tests/faultproxy.py, which serves the stale copies a cache would (the old
project page, a 404 for a file the page lists, other bytes than the listed ones) for a while.
verify outwaits them within its deadline, and fails explained when they outlast it."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from venv import EnvBuilder

import pytest

from conftest import twine_upload, write_project
from faultproxy import FaultProxy
from releasekit._build import build
from releasekit._distributions import Distribution, find_distributions
from releasekit._process import find_uv, run
from releasekit._project import Project
from releasekit._verify import verify, wait_until_visible
from releasekit.errors import VerifyError
from releasekit.indexes import Index
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow

TOKEN = "pypi-cdn-stand-in-token"
PAGE = "/simple/sample-pkg/"
NEW_WHEEL = "/packages/sample_pkg-0.2.0-py3-none-any.whl"
OLD_WHEEL = "/packages/sample_pkg-0.1.0-py3-none-any.whl"
AGENTS = {"uv": "user-agent: uv/", "pip": "user-agent: pip/"}
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
    b"Connection: close\r\n\r\nNot Found"
)


def cached(response: bytes) -> bytes:
    """``response`` as a cache hands it on: fresh for ten minutes, so an installer keeps it
    in its own cache unless told to ask again."""
    status, _, rest = response.partition(b"\r\n")
    return status + b"\r\nCache-Control: public, max-age=600\r\n" + rest


FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
    b"Connection: close\r\n\r\nForbidden"
)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Project]:
    """sample-pkg 0.1.0 (already on the index) and 0.2.0 (the release verified), built once."""
    root = tmp_path_factory.mktemp("releases")
    old, new = (
        Project.load(write_project(root / version / "sample-pkg", version=version))
        for version in ("0.1.0", "0.2.0")
    )
    build(old)
    build(new)
    return old, new


@dataclass
class Cdn:
    """The index with 0.1.0 and 0.2.0 on it, the proxy in front of it, and the stale copies
    a cache would still hold after 0.2.0 was uploaded."""

    server: LocalIndex
    proxy: FaultProxy
    index: Index
    project: Project
    dists: list[Distribution]
    old_page: bytes
    old_wheel: bytes


def put(server: LocalIndex, project: Project) -> list[Distribution]:
    """Upload the built files of ``project`` straight to ``server`` (test setup)."""
    dists = find_distributions(project.dist_dir, project.name)
    twine_upload(server, (d.path for d in dists))
    return dists


@pytest.fixture
def cdn(releases: tuple[Project, Project]) -> Iterator[Cdn]:
    old, new = releases
    with LocalIndex("testpypi", TOKEN) as server:
        put(server, old)
        with FaultProxy(int(server.url.rsplit(":", 1)[1].strip("/"))) as proxy:
            old_page = proxy.fetch(PAGE)
            dists = put(server, new)
            index = Index("testpypi", proxy.url, proxy.url + "simple/")
            yield Cdn(server, proxy, index, new, dists, old_page, proxy.fetch(OLD_WHEEL))


@pytest.fixture(params=["uv", "pip"])
def installer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pip":
        monkeypatch.setenv("RELEASEKIT_NO_UV", "1")
    return str(request.param)


def test_stale_page_is_outwaited_before_the_install(cdn: Cdn, terminal: io.StringIO) -> None:
    cdn.proxy.set("answer", 3, methods=("GET",), match=(PAGE,), response=cdn.old_page)
    report = verify(cdn.project, cdn.index, dependency_index=cdn.index, timeout=60)
    assert cdn.proxy.served == 3
    assert report.version == "0.2.0"
    assert "Waiting up to 60 s for sample-pkg 0.2.0" in terminal.getvalue()


def test_two_reads_in_a_row_must_list_every_file(cdn: Cdn) -> None:
    assert b"sample_pkg-0.1.0-py3-none-any.whl" in cdn.old_page  # a real earlier answer
    assert b"sample_pkg-0.2.0" not in cdn.old_page
    # fresh, then stale, then fresh twice: only the last two reads agree
    cdn.proxy.set("answer", 1, methods=("GET",), match=(PAGE,), skip=1, response=cdn.old_page)
    wait_until_visible("sample-pkg", "0.2.0", cdn.dists, cdn.index, 30)
    assert (cdn.proxy.served, cdn.proxy.seen) == (1, 4)


def test_files_listed_only_now_and_then_fail_explained(cdn: Cdn) -> None:
    cdn.proxy.set("answer", 10**6, methods=("GET",), match=(PAGE,), skip=1, response=cdn.old_page)
    with pytest.raises(VerifyError) as caught:
        wait_until_visible("sample-pkg", "0.2.0", cdn.dists, cdn.index, 1)
    assert "not listed: sample_pkg-0.2.0-py3-none-any.whl" in caught.value.what
    assert "not in two reads in a row" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "stale"),
    [(PAGE, "old page"), (NEW_WHEEL, "404"), (NEW_WHEEL, "old bytes")],
)
def test_install_served_stale_answers_is_tried_again(
    cdn: Cdn, terminal: io.StringIO, installer: str, path: str, stale: str
) -> None:
    response = cached(
        {"old page": cdn.old_page, "404": NOT_FOUND, "old bytes": cdn.old_wheel}[stale]
    )
    # only the installer's requests are served stale: verify itself saw every file listed
    cdn.proxy.set("answer", 2, methods=("GET",), match=(path, AGENTS[installer]), response=response)
    report = verify(cdn.project, cdn.index, dependency_index=cdn.index, timeout=120)
    assert (report.installer, report.version) == (installer, "0.2.0")
    assert cdn.proxy.served == 2
    shown = terminal.getvalue()
    assert "The installer got a stale answer (" in shown
    assert "imports (sample_pkg); scripts: sample-pkg." in shown


def test_staleness_outlasting_the_deadline_fails_explained(
    cdn: Cdn, terminal: io.StringIO, installer: str
) -> None:
    cdn.proxy.set(
        "answer", 10**6, methods=("GET",), match=(PAGE, AGENTS[installer]), response=cdn.old_page
    )
    with pytest.raises(VerifyError) as caught:
        verify(cdn.project, cdn.index, dependency_index=cdn.index, timeout=3)
    assert cdn.proxy.served >= 1  # the installer asked, and got the stale page, each time
    assert caught.value.what.startswith("Installing sample-pkg==0.2.0 from testpypi")
    message = str(caught.value)
    assert "still got a stale answer" in message
    assert "--timeout SECONDS" in message
    wording = {"uv": "there is no version of sample-pkg==0.2.0", "pip": "No matching distribution"}
    assert wording[installer] in terminal.getvalue()  # the installer's own last answer


def test_other_install_failures_fail_at_once(
    cdn: Cdn, terminal: io.StringIO, installer: str
) -> None:
    agent = AGENTS[installer]
    cdn.proxy.set("answer", 10**6, methods=("GET",), match=(NEW_WHEEL, agent), response=FORBIDDEN)
    with pytest.raises(VerifyError) as caught:
        verify(cdn.project, cdn.index, dependency_index=cdn.index, timeout=120)
    assert "could not serve an installable one" in str(caught.value)
    assert "stale answer" not in terminal.getvalue()
    assert "403" in terminal.getvalue()


def test_a_stale_page_in_uvs_own_cache_is_asked_again_at_once(
    cdn: Cdn, terminal: io.StringIO, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uv's first try answers from its cache (no interpreter query, which refreshing costs);
    when that answer is stale, the same try asks the index again at once."""
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed")
    # An earlier install through the cache left the old page in uv's cache, fresh for 600 s.
    cdn.proxy.set("answer", 1, methods=("GET",), match=(PAGE,), response=cached(cdn.old_page))
    EnvBuilder(with_pip=False).create(tmp_path / "earlier")
    python = tmp_path / "earlier" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = [uv, "pip", "install", "--no-config", "--python", str(python), "--no-deps"]
    earlier = run(
        [*install, "--index-url", cdn.index.simple_url, "sample-pkg==0.1.0"], cwd=tmp_path
    )
    assert earlier.returncode == 0, earlier.stderr
    assert cdn.proxy.served == 1
    with caplog.at_level(logging.DEBUG, logger="releasekit._venv"):
        report = verify(cdn.project, cdn.index, dependency_index=cdn.index, timeout=60)
    assert report.version == "0.2.0"
    assert "uv's first answer was stale: asking the index again at once" in caplog.text
    assert "The installer got a stale answer" not in terminal.getvalue()
