"""The verbose trail (``-- --verbose``, ``RELEASEKIT_VERBOSE=1``) and the one child-process
runner: requests, commands and decisions are shown only when asked, redacted, and no child
process receives a credential."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from conftest import run_nox
from releasekit import nox as releasekit_nox
from releasekit._git import Repository
from releasekit._polling import Backoff
from releasekit._process import run
from releasekit._report import captured, show_trail
from releasekit.credentials import SECRET_ENV_VARS, mint_token
from releasekit.errors import IndexUnavailable
from releasekit.indexes import Index, RetryPolicy
from releasekit.indexes.local import LocalIndex

SOURCE = Path(__file__).resolve().parents[1] / "src" / "releasekit"

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
REQUEST_LINE = re.compile(r"^\[http\] (GET|POST) http://127\.0\.0\.1:\d+/\S* \d{3}$", re.M)
COMMAND_LINE = re.compile(r"^\[process\] \$ .+ \(in .+\)$", re.M)


def forms_of(token: str) -> list[str]:
    """The token, its Basic-auth header value, and its own base64 (both alphabets)."""
    basic = base64.b64encode(f"__token__:{token}".encode()).decode()
    own = base64.b64encode(token.encode()).decode()
    return [token, basic, own, base64.urlsafe_b64encode(token.encode()).decode()]


def assert_no_form(output: str, token: str) -> None:
    for form in forms_of(token):
        pieces = {form[i : i + 24] for i in range(len(form) - 23)}
        assert not [p for p in pieces if p in output], "a form of the token is in the output"


@pytest.fixture
def testpypi(local_index: Callable[[str, str], LocalIndex]) -> tuple[LocalIndex, str]:
    token = mint_token("testpypi")
    return local_index("testpypi", token), token


@pytest.mark.slow
def test_verbose_shows_requests_commands_and_decisions_never_the_token(
    project_dir: Path, testpypi: tuple[LocalIndex, str]
) -> None:
    index, token = testpypi
    env = {**index.environ(), **NO_KEYRING, "TEST_PYPI_API_TOKEN": token}
    build = run_nox(project_dir, "-s", "build", "--", "--verbose", env=env)
    assert build.returncode == 0, build.stdout
    assert re.search(r"^\[process\] \$ .*\bbuild\b.*\(in .+\)$", build.stdout, re.M), build.stdout

    upload = run_nox(project_dir, "-s", "upload_testpypi", "--", "--verbose", env=env)
    assert upload.returncode == 0, upload.stdout
    requests = REQUEST_LINE.findall(upload.stdout)
    assert "GET" in requests and "POST" in requests, upload.stdout
    assert re.search(r"^\[http\] POST http://127\.0\.0\.1:\d+/ 200$", upload.stdout, re.M)

    again = run_nox(project_dir, "-s", "upload_testpypi", env={**env, "RELEASEKIT_VERBOSE": "1"})
    assert again.returncode == 0, again.stdout
    assert re.search(r"^\[upload\] skip \S+\.whl: testpypi lists it", again.stdout, re.M)
    for output in (build.stdout, upload.stdout, again.stdout):
        assert_no_form(output, token)


@pytest.mark.slow
def test_without_verbose_no_trail_appears(
    project_dir: Path, testpypi: tuple[LocalIndex, str]
) -> None:
    index, token = testpypi
    env = {**index.environ(), **NO_KEYRING, "TEST_PYPI_API_TOKEN": token}
    outputs = [
        run_nox(project_dir, "-s", "build", env=env).stdout,
        run_nox(project_dir, "-s", "upload_testpypi", env=env).stdout,
        run_nox(
            project_dir, "-s", "upload_testpypi", env={**env, "RELEASEKIT_VERBOSE": "0"}
        ).stdout,
    ]
    assert "Uploaded sample_pkg-0.1.0.tar.gz" in outputs[1]
    assert "is already there (same sha256); skipped." in outputs[2]
    for output in outputs:
        assert not REQUEST_LINE.search(output), output
        assert not COMMAND_LINE.search(output), output
        assert not re.search(r"^\[\w", output, re.M), output


def test_every_session_takes_verbose() -> None:
    for name, body in releasekit_nox.SESSIONS.items():
        session = SimpleNamespace(name=name, posargs=["--help"])
        with captured() as buffer, pytest.raises(releasekit_nox._HelpShown):
            body(session, {})  # type: ignore[arg-type]
        assert "--verbose" in buffer.getvalue(), name


@pytest.fixture
def trail() -> Iterator[Callable[[bool], None]]:
    """``show_trail`` for this test only: the ``releasekit`` logger is put back after it."""
    logger = logging.getLogger("releasekit")
    saved = (logger.level, logger.propagate, logger.handlers[:])
    yield show_trail
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


def test_trail_is_rendered_only_when_verbose_and_redacted(
    trail: Callable[[bool], None],
) -> None:
    log = logging.getLogger("releasekit._upload")
    secret = "pypi-" + secrets.token_hex(24)
    trail(False)
    with captured() as quiet:
        log.debug("skip %s", secret)
    trail(True)
    with captured() as loud:
        log.debug("skip %s", secret)
        logging.getLogger("releasekit.http").debug("GET http://u:hunter22@h/ 200")
    assert quiet.getvalue() == ""
    assert loud.getvalue().splitlines() == [
        "[upload] skip pypi-****",
        "[http] GET http://u:****@h/ 200",
    ], "a trail line is missing or not redacted"


def test_a_retry_is_a_decision_in_the_trail(trail: Callable[[bool], None]) -> None:
    index = Index("x", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    policy = RetryPolicy(attempts=2, backoff=Backoff(first=0.01, cap=0.01), total_seconds=10)

    def refused(_budget: float) -> None:
        raise httpx.ConnectError("refused")

    trail(True)
    with captured() as buffer, pytest.raises(IndexUnavailable):
        policy.run(refused, "read the page", index)
    assert re.fullmatch(
        r"\[indexes\.retry\] read the page at x \(\S+\) failed \(connection failed or host "
        r"unreachable \(refused\)\); try 2 of 2 in 0\.01 s\n",
        buffer.getvalue(),
    ), buffer.getvalue()


def test_only_the_runner_starts_processes_and_only_the_wrapper_runs_git() -> None:
    starts = re.compile(
        r"\bsubprocess\.(run|Popen|call|check_call|check_output)\(|\bos\.(system|popen|exec|spawn)"
    )
    git = re.compile(r"""\[\s*["']git["']""")  # git as a command: ["git", ...]
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "_process.py" and starts.search(text):
            found.append(f"{path.name} starts a process")
        if path.name != "_git.py" and git.search(text):
            found.append(f"{path.name} runs git")
    assert not found


DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def test_children_get_no_credential(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    planted = {name: f"pypi-secret-{name.lower()}-0123456789abcdef" for name in SECRET_ENV_VARS}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELEASEKIT_TRAIL_CANARY", "kept")
    child = run([sys.executable, "-c", DUMP], cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout)
    assert seen.get("RELEASEKIT_TRAIL_CANARY") == "kept"
    assert {"PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_PASSWORD"} <= set(planted)
    assert not set(planted) & set(seen)
    assert not [value for value in planted.values() if value in child.stdout]


def test_git_runs_through_the_runner_without_credentials(
    monkeypatch: pytest.MonkeyPatch, make_project: Callable[..., Path]
) -> None:
    root = make_project()
    monkeypatch.setenv("PYPI_API_TOKEN", "pypi-secret-for-git-0123456789abcdef")
    repository = Repository(root)
    alias = f"alias.dump=!{Path(sys.executable).as_posix()} -c '{DUMP}'"
    seen = json.loads(repository.run("-c", alias, "dump"))
    assert "PYPI_API_TOKEN" not in seen
    assert seen.get("GIT_PREFIX") == ""  # it really ran as a git alias
