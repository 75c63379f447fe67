"""upload() against real local indexes: pypiserver in-process, devpi-server as a subprocess,
and a loopback stand-in for the 5xx answers no local index gives."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from conftest import git, write_project
from releasekit._build import build
from releasekit._distributions import find_distributions
from releasekit._polling import Backoff, poll
from releasekit._project import Project
from releasekit._report import Reporter, get_reporter, set_reporter
from releasekit._upload import _Sender, upload
from releasekit._verify import verify
from releasekit.credentials import mint_token, resolve_credentials, token_credentials
from releasekit.errors import (
    CheckFailed,
    CredentialError,
    IndexUnavailable,
    ReleasekitError,
    UploadError,
)
from releasekit.indexes import Index, IndexClient, RetryPolicy, resolve_index
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow
FAST = RetryPolicy(attempts=3, backoff=Backoff(first=0.05, factor=2.0, cap=0.2), total_seconds=10)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample project built once (version 0.1.0); tests copy it."""
    root = write_project(tmp_path_factory.mktemp("built") / "sample-pkg")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: first")
    build(Project.load(root))
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "sample-pkg"
    shutil.copytree(built, root)
    return Project.load(root)


@pytest.fixture(autouse=True)
def _plain_reporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    set_reporter(Reporter(plain=True))
    yield
    set_reporter(None)


@pytest.fixture
def testpypi(
    local_index: Callable[[str, str], LocalIndex], monkeypatch: pytest.MonkeyPatch
) -> LocalIndex:
    token = mint_token("testpypi")
    server = local_index("testpypi", token)
    for key, value in server.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TEST_PYPI_API_TOKEN", token)
    return server


def listed(index: Index, name: str = "sample-pkg") -> dict[str, str | None]:
    with IndexClient(index) as client:
        return {f.filename: f.sha256 for f in client.project_files(name)}


def test_upload_then_again(
    project: Project, testpypi: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    first = upload(project, "testpypi")
    assert [r.status for r in first] == ["uploaded", "uploaded"]
    assert listed(testpypi.index) == {r.distribution.filename: r.distribution.sha256 for r in first}
    again = upload(project, "testpypi")
    assert [r.status for r in again] == ["already there", "already there"]
    out = capsys.readouterr().out
    assert "already there" in out
    assert first[0].distribution.sha256 in out
    assert testpypi.token[5:45] not in out


def test_race_already_there_after_refusal(project: Project, testpypi: LocalIndex) -> None:
    """The index holds the file by the time it is sent: pypiserver's 400/409 is success."""
    upload(project, "testpypi")
    index = resolve_index("testpypi")
    sender = _Sender(index, resolve_credentials(index), FAST, 30)
    with IndexClient(index) as client:
        statuses = [sender.send(d, client, project) for d in find_distributions(project.dist_dir)]
    sender.close()
    assert statuses == ["already there", "already there"]


def test_different_content_same_filename(project: Project, testpypi: LocalIndex) -> None:
    first = {r.distribution.filename: r.distribution.sha256 for r in upload(project, "testpypi")}
    (project.root / "README.md").write_text("# Sample\n\nChanged after upload.\n")
    rebuilt = {d.filename: d.sha256 for d in build(project)}
    assert rebuilt.keys() == first.keys()
    assert rebuilt != first
    with pytest.raises(UploadError) as caught:
        upload(project, "testpypi")
    text = str(caught.value)
    assert "sha256" in text
    assert "Bump the version" in text
    assert "The build is not reproducible from what was uploaded" in text
    for name, digest in rebuilt.items():
        if digest != first[name]:
            assert digest in text
            assert first[name] in text
    assert listed(testpypi.index) == first


def test_nothing_uploaded_that_check_rejects(project: Project, testpypi: LocalIndex) -> None:
    (project.root / "src" / "sample_pkg" / "__init__.py").write_text('__version__ = "9.9"\n')
    with pytest.raises(CheckFailed, match=r"9\.9"):
        upload(project, "testpypi")
    assert listed(testpypi.index) == {}


def test_wrong_secret_is_explained(project: Project, testpypi: LocalIndex) -> None:
    index = resolve_index("testpypi")
    other = token_credentials(mint_token("testpypi"), index, "TEST_PYPI_API_TOKEN")
    with pytest.raises(UploadError) as caught:
        upload(project, index, other)
    text = str(caught.value)
    assert "HTTP 403" in text
    assert "TEST_PYPI_API_TOKEN" in text
    assert "Fix:" in text
    assert listed(testpypi.index) == {}


def test_explicit_credentials_are_checked_offline(project: Project) -> None:
    closed = Index("testpypi", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    scoped = token_credentials(mint_token("testpypi", projects=["other"]), closed, "T")
    with pytest.raises(CredentialError, match="other"):
        upload(project, closed, scoped)


class _StubIndex:
    """A loopback upload endpoint that answers each POST with :meth:`answer` and lists no
    project (404), for answers no real local index gives."""

    def __init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(404, None, b"")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self._reply(*stub.answer(self.headers["Authorization"] or ""))

            def _reply(self, status: int, reason: str | None, body: bytes) -> None:
                self.send_response(status, reason)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.index = Index("testpypi", url, url + "simple/")

    def answer(self, authorization: str) -> tuple[int, str | None, bytes]:
        """Status, reason phrase and body for one upload."""
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Flaky(_StubIndex):
    """Answers 503 to the first ``failures`` uploads, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts = 0
        super().__init__()

    def answer(self, authorization: str) -> tuple[int, str | None, bytes]:
        self.posts += 1
        if self.posts > self.failures:
            return 200, None, b""
        return 503, "Service Unavailable", b""


def test_transient_failures_are_retried(project: Project) -> None:
    flaky = _Flaky(failures=1)
    try:
        creds = token_credentials(mint_token("testpypi"), flaky.index, "T")
        results = upload(project, flaky.index, creds, retry=FAST)
        assert [r.status for r in results] == ["uploaded", "uploaded"]
        assert flaky.posts == 3
        flaky.failures, flaky.posts = 99, 0
        (project.root / "README.md").write_text("# Sample\n\nOther.\n")
        with pytest.raises(IndexUnavailable) as caught:
            upload(project, flaky.index, creds, retry=FAST)
        assert "after 3 tries" in str(caught.value)
        assert "testpypi" in str(caught.value)
        assert flaky.posts == 3
    finally:
        flaky.close()


class _Echo(_StubIndex):
    """Refuses uploads with a body echoing the Authorization header, as some proxies and
    index servers do (no real local index does)."""

    def answer(self, authorization: str) -> tuple[int, str | None, bytes]:
        body = (
            f"Bad request headers: Authorization: {authorization}; credentials {authorization[6:]}"
        )
        return 403, "Forbidden", body.encode()


def test_an_index_echoing_the_authorization_header_is_shown_redacted(project: Project) -> None:
    echo = _Echo()
    token = mint_token("testpypi")
    basic = base64.b64encode(f"__token__:{token}".encode()).decode()
    buffer = io.StringIO()
    set_reporter(Reporter(Console(file=buffer, width=400), plain=True))
    try:
        creds = token_credentials(token, echo.index, "TEST_PYPI_API_TOKEN")
        with pytest.raises(UploadError) as caught:
            upload(project, echo.index, creds, retry=FAST)
        get_reporter().error(caught.value)
    finally:
        echo.close()
    output = buffer.getvalue()
    assert "HTTP 403" in output and "Authorization: Basic ****; credentials ****" in output
    for secret in (token, basic):
        for start in range(len(secret) - 19):
            assert secret[start : start + 20] not in output


# --- devpi-server: PEP 691 JSON, 200 on identical re-upload, 409 on different content ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A devpi-server on 127.0.0.1 with user ``ci`` and a non-volatile index ``ci/dev``."""
    bindir = Path(sys.executable).parent
    serverdir = tmp_path_factory.mktemp("devpi") / "server"
    subprocess.run(
        [bindir / "devpi-init", "--serverdir", serverdir, "--no-root-pypi", "--root-passwd", "r"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = serverdir.parent / "log.txt"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                bindir / "devpi-server",
                "--serverdir",
                serverdir,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"

    def ready() -> bool | None:
        if process.poll() is not None:
            return False
        try:
            return httpx.get(url + "+api", timeout=2).status_code == 200 or None
        except httpx.TransportError:
            return None

    try:
        assert poll(ready, timeout=60, backoff=Backoff(0.1, 1.5, 1.0)), log.read_text()
        assert httpx.put(url + "ci", json={"password": "ci-secret"}).status_code == 201
        made = httpx.put(
            url + "ci/dev",
            json={"type": "stage", "bases": [], "volatile": False},
            auth=("ci", "ci-secret"),
        )
        assert made.status_code == 200, made.text
        yield url + "ci/dev/"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_devpi(project: Project, devpi: str, monkeypatch: pytest.MonkeyPatch) -> None:
    table = {
        "devpi": {
            "upload-url": devpi,
            "simple-url": devpi + "+simple/",
            "token-env": "DEVPI_PASSWORD",
            "username": "ci",
        }
    }
    project = Project.load(project.root, indexes=table)
    monkeypatch.setenv("DEVPI_PASSWORD", "ci-secret")
    index = project.index("devpi")
    assert [r.status for r in upload(project, "devpi")] == ["uploaded", "uploaded"]
    with IndexClient(index) as client:
        response = client.get(index.project_url(project.name))
        assert response.headers["content-type"].startswith("application/vnd.pypi.simple.v1+json")
        files = client.project_files(project.name)
    assert {f.sha256 for f in files} == {d.sha256 for d in find_distributions(project.dist_dir)}
    assert all(f.requires_python == ">=3.10" for f in files)
    assert [r.status for r in upload(project, "devpi")] == ["already there", "already there"]
    creds = resolve_credentials(index)
    sender = _Sender(index, creds, FAST, 30)
    with IndexClient(index) as client:
        dists = find_distributions(project.dist_dir)
        assert [sender.send(d, client, project) for d in dists] == ["uploaded", "uploaded"]
        (project.root / "README.md").write_text("# Sample\n\nDifferent.\n")
        with pytest.raises(UploadError, match="sha256"):
            sender.send(build(project)[0], client, project)
    sender.close()
    for path in (project.pyproject, project.root / "src" / "sample_pkg" / "__init__.py"):
        path.write_text(path.read_text().replace("0.1.0", "0.2.0"))
    project = Project.load(project.root, indexes=table)
    build(project)
    wrong = token_credentials("not-the-password", index, "DEVPI_PASSWORD", username="ci")
    with pytest.raises(UploadError) as caught:
        upload(project, index, wrong)
    assert "HTTP 401" in str(caught.value)
    assert "DEVPI_PASSWORD" in str(caught.value)


@pytest.fixture
def hashless(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    """pypiserver with its hash fragments off: plain PEP 503 links, no #sha256."""
    token = mint_token("testpypi")
    with LocalIndex("testpypi", token, hashes=False) as server:
        for key, value in server.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TEST_PYPI_API_TOKEN", token)
        yield server


def test_index_without_hashes_same_file_is_already_there(
    project: Project, hashless: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(listed(hashless.index).values()) == set()  # the index lists no hash at all
    first = upload(project, "testpypi")
    assert listed(hashless.index) == {r.distribution.filename: None for r in first}
    again = upload(project, "testpypi")
    assert [r.status for r in again] == ["already there", "already there"]
    assert "Bump the version" not in capsys.readouterr().out
    index = resolve_index("testpypi")
    sender = _Sender(index, resolve_credentials(index), FAST, 30)
    with IndexClient(index) as client:
        statuses = [sender.send(d, client, project) for d in find_distributions(project.dist_dir)]
    sender.close()
    assert statuses == ["already there", "already there"]


def test_index_without_hashes_different_file_names_both_hashes(
    project: Project, hashless: LocalIndex
) -> None:
    noise = "".join(hashlib.sha256(str(n).encode()).hexdigest() + "\n" for n in range(200))
    (project.root / "README.md").write_text("# Sample\n\n" + noise)  # compresses badly
    build(project)
    first = {r.distribution.filename: r.distribution.sha256 for r in upload(project, "testpypi")}
    (project.root / "README.md").write_text("# Sample\n\nChanged after upload.\n")
    rebuilt = {d.filename: d.sha256 for d in build(project)}
    with pytest.raises(ReleasekitError) as caught:
        upload(project, "testpypi")
    text = str(caught.value)
    assert "Bump the version" in text
    # the rebuilt files are smaller: hashing the index's copy stops past the local size
    assert "is larger than the local file" in text
    (project.root / "README.md").write_text("# Sample\n\n" + noise * 2)  # larger this time
    rebuilt = {d.filename: d.sha256 for d in build(project)}
    with pytest.raises(UploadError) as caught:
        upload(project, "testpypi")
    text = str(caught.value)
    changed = [name for name, digest in rebuilt.items() if digest != first[name]]
    assert changed
    for name in changed:
        assert f"the index has sha256 {first[name]}" in text
        assert rebuilt[name] in text


def test_devpi_upload_and_verify_with_a_username(
    project: Project, devpi: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A devpi user's password (not a token) with the table's username, then verify there."""
    table = {
        "devpi": {
            "upload-url": devpi,
            "simple-url": devpi + "+simple/",
            "token-env": "DEVPI_PASSWORD",
            "username": "ci",
        }
    }
    project = Project.load(project.root, indexes=table)
    monkeypatch.setenv("DEVPI_PASSWORD", "ci-secret")
    statuses = {r.status for r in upload(project, "devpi")}
    assert statuses <= {"uploaded", "already there"}
    report = verify(project, "devpi", timeout=30)
    assert report.version == project.version
    assert report.index.name == "devpi"
