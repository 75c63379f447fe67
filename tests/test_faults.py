"""Faults between releasekit and a real pypiserver (through tests/faultproxy.py): each ends
in success after retries or in a bounded, explained failure, and running again after any
interruption completes the release with nothing duplicated, lost or left half-done."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_nox
from faultproxy import FaultProxy
from releasekit._build import build
from releasekit._distributions import Distribution
from releasekit._polling import Backoff
from releasekit._project import Project
from releasekit._upload import upload
from releasekit.credentials import mint_token, token_credentials
from releasekit.errors import IndexUnavailable
from releasekit.indexes import Index, IndexClient, RetryPolicy
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow

#: Quick retries and a short timeout, so that failures are reached fast (3 tries).
FAST = RetryPolicy(attempts=3, backoff=Backoff(first=0.05, factor=2.0, cap=0.2), total_seconds=20)
TIMEOUT = 1.0
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


class Stand:
    """A built project, a pypiserver standing in for TestPyPI, and a fault proxy before it."""

    def __init__(self, project: Project, dists: list[Distribution], server: LocalIndex) -> None:
        self.project = project
        self.dists = dists
        self.server = server
        self.proxy = FaultProxy(int(server.url.rsplit(":", 1)[1].strip("/"))).start()
        self.index = Index("testpypi", self.proxy.url, self.proxy.url + "simple/")
        self.credentials = token_credentials(
            server.token, self.index, "TEST_PYPI_API_TOKEN", project.name
        )

    def upload(self) -> list[str]:
        results = upload(self.project, self.index, self.credentials, retry=FAST, timeout=TIMEOUT)
        return [r.status for r in results]

    def assert_complete(self) -> None:
        """The server holds exactly the two local files, with the local sha256, and
        nothing else (no partial file left on its disk)."""
        with IndexClient(self.server.index) as client:
            listed = {f.filename: f.sha256 for f in client.project_files(self.project.name)}
        assert listed == {d.filename: d.sha256 for d in self.dists}
        on_disk = sorted(p.name for p in (self.server.root / "packages").iterdir())
        assert on_disk == sorted(d.filename for d in self.dists)


@pytest.fixture
def stand(
    project_dir: Path, local_index: Callable[[str, str], LocalIndex], terminal: io.StringIO
) -> Iterator[Stand]:
    project = Project.load(project_dir)
    dists = build(project)
    made = Stand(project, dists, local_index("testpypi", mint_token("testpypi")))
    yield made
    made.proxy.stop()


@pytest.mark.parametrize(
    ("mode", "times", "after"),
    [
        pytest.param("reset", 1, 300, id="reset-after-300-body-bytes"),
        pytest.param("reset", 1, None, id="reset-after-the-index-stored-the-file"),
        pytest.param("503", 2, 0, id="two-503s"),
        pytest.param("stall", 1, 0, id="one-stalled-request"),
    ],
)
def test_transient_fault_is_retried(
    stand: Stand, terminal: io.StringIO, mode: str, times: int, after: int | None
) -> None:
    stand.proxy.set(mode, times, after=after)
    statuses = stand.upload()
    assert stand.proxy.served == times
    assert "uploaded" in statuses
    if after is None:  # the retry found the file the index had stored: nothing duplicated
        assert "already there" in statuses
    stand.assert_complete()
    assert "Traceback" not in terminal.getvalue()


@pytest.mark.parametrize(
    ("mode", "after", "symptom"),
    [
        pytest.param("reset", 100, "", id="reset-every-time"),
        pytest.param("503", 0, "HTTP 503 Service Unavailable", id="503-every-time"),
        pytest.param("stall", 0, "timed out", id="stalled-every-time"),
    ],
)
def test_persistent_fault_fails_clearly_then_rerun_completes(
    stand: Stand, terminal: io.StringIO, mode: str, after: int, symptom: str
) -> None:
    stand.proxy.set(mode, 1000, after=after)
    with pytest.raises(IndexUnavailable) as failure:
        stand.upload()
    message = str(failure.value)
    assert stand.index.display in message
    assert f"after {FAST.attempts} tries" in message
    assert symptom in message
    assert "Fix:" in message
    assert "Traceback" not in terminal.getvalue()

    stand.proxy.set("pass")
    statuses = stand.upload()
    assert set(statuses) <= {"uploaded", "already there"}
    stand.assert_complete()


def test_index_down_then_up(stand: Stand) -> None:
    stand.proxy.down()
    with pytest.raises(IndexUnavailable) as failure:
        stand.upload()
    assert stand.index.display in str(failure.value)
    assert "connection refused" in str(failure.value)
    assert f"after {FAST.attempts} tries" in str(failure.value)
    stand.proxy.up()
    assert stand.upload() == ["uploaded", "uploaded"]
    assert stand.upload() == ["already there", "already there"]
    stand.assert_complete()


def test_session_explains_an_index_that_keeps_failing(stand: Stand) -> None:
    """Through nox, as a user sees it: one explained error, no traceback; then a re-run
    after the index recovers uploads only what is missing."""
    root = stand.project.root
    env = {
        **NO_KEYRING,
        "TEST_PYPI_API_TOKEN": stand.server.token,
        "RELEASEKIT_TESTPYPI_UPLOAD_URL": stand.index.upload_url,
        "RELEASEKIT_TESTPYPI_SIMPLE_URL": stand.index.simple_url,
    }
    stand.proxy.set("503", 1000)
    result = run_nox(root, "-s", "upload_testpypi", env=env)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout
    assert result.stdout.count("error:") == 1, result.stdout
    assert f"at {stand.index.display} after {RetryPolicy().attempts} tries" in result.stdout
    assert "HTTP 503" in result.stdout

    stand.proxy.set("reset", 1, after=None)  # the first file is stored, its answer lost
    result = run_nox(root, "-s", "upload_testpypi", env=env)
    assert result.returncode == 0, result.stdout
    assert "already there (same sha256, uploaded meanwhile)" in result.stdout
    stand.assert_complete()


def test_stalled_upload_is_bounded_by_the_retry_budget(stand: Stand) -> None:
    """A POST that never gets an answer waits no longer than the policy's budget (2 s), not
    the 300 s read timeout; the stall is reported as a timeout after one try."""
    stand.proxy.set("stall", 1000)
    budget = RetryPolicy(attempts=3, backoff=FAST.backoff, total_seconds=2)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            upload(stand.project, stand.index, stand.credentials, retry=budget, timeout=300)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        stand.proxy.stop()  # frees the stalled request
        worker.join()
        pytest.fail("the stalled upload outlasted its 2 s budget by a minute")
    assert len(outcome) == 1 and isinstance(outcome[0], IndexUnavailable), outcome
    message = str(outcome[0])
    assert "after 1 try over 2." in message
    assert "timed out" in message
    assert stand.proxy.served == 1
