"""Trusted publishing against a loopback stand-in for the index's OIDC endpoints and the CI's
identity service (no real one exists locally)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from releasekit._redaction import redact
from releasekit.credentials import (
    MissingCredentials,
    describe_sources,
    mint_token,
    resolve_credentials,
)
from releasekit.errors import CredentialError
from releasekit.indexes import Index

CLAIMS = {
    "aud": "testpypi",
    "repository": "acme/sample-pkg",
    "repository_owner": "acme",
    "job_workflow_ref": "acme/sample-pkg/.github/workflows/publish.yml@refs/heads/main",
    "environment": "testpypi",
    "ref": "refs/heads/main",
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@dataclass
class Standin:
    """What the stand-in answers, and what it was asked."""

    audience_status: int = 200
    audience: str = "testpypi"
    mint_errors: list[dict[str, str]] | None = None
    mint_failures: int = 0
    token: str = field(default_factory=lambda: mint_token("testpypi", trusted_publisher="pub-1"))
    jwt: str = f"{_b64({'alg': 'none'})}.{_b64(CLAIMS)}.c2lnbmF0dXJlLWJ5dGVz"
    seen: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def standin() -> Iterator[Standin]:
    state = Standin()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            state.seen.append(self.path)
            if self.path == "/_/oidc/audience":
                if state.audience_status != 200:
                    self._send(403, {"message": "Trusted publishing functionality not enabled"})
                else:
                    self._send(200, {"audience": state.audience})
            elif self.path.startswith("/github-oidc"):
                assert self.headers["Authorization"] == "bearer request-token"
                self._send(200, {"value": state.jwt})
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            state.seen.append(self.path)
            length = int(self.headers["Content-Length"])
            sent = json.loads(self.rfile.read(length))
            assert sent == {"token": state.jwt}
            if state.mint_failures:
                state.mint_failures -= 1
                self._send(503, {"message": "Service Unavailable"})
            elif state.mint_errors:
                self._send(422, {"message": "Token request failed", "errors": state.mint_errors})
            else:
                self._send(200, {"success": True, "token": state.token, "expires": 2**31})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def in_actions(monkeypatch: pytest.MonkeyPatch, standin: Standin) -> None:
    for name in ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", standin.url + "github-oidc?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")


def index_at(standin: Standin) -> Index:
    return Index(
        "testpypi", standin.url + "legacy/", standin.url + "simple/", "TEST_PYPI_API_TOKEN"
    )


@pytest.mark.usefixtures("in_actions")
def test_oidc_token_is_exchanged_for_an_upload_token(standin: Standin) -> None:
    creds = resolve_credentials(index_at(standin), "sample-pkg")
    assert creds.source == "trusted publishing"
    assert creds.password == standin.token
    assert creds.token is not None
    assert creds.token.trusted_publisher == "pub-1"
    assert standin.seen[0] == "/_/oidc/audience"
    assert standin.seen[-1] == "/_/oidc/mint-token"
    assert "audience=testpypi" in standin.seen[1]
    assert standin.token not in redact(creds.describe())
    assert standin.jwt not in redact(standin.jwt)


@pytest.mark.usefixtures("in_actions")
def test_refusal_shows_claims_beside_error_codes(standin: Standin) -> None:
    standin.mint_errors = [
        {"code": "invalid-publisher", "description": "valid token, but no corresponding publisher"}
    ]
    with pytest.raises(CredentialError) as caught:
        resolve_credentials(index_at(standin), "sample-pkg")
    text = redact(str(caught.value))
    assert "invalid-publisher" in text
    assert "no corresponding publisher" in text
    # the exact fields to register, read from the identity token's claims
    for wanted in (
        "owner 'acme'",
        "repository 'sample-pkg'",
        "workflow 'publish.yml'",
        "environment 'testpypi'",
    ):
        assert wanted in caught.value.fix, caught.value.fix
        assert wanted in caught.value.what
    assert standin.jwt not in str(caught.value)


@pytest.mark.usefixtures("in_actions")
def test_index_without_trusted_publishing(standin: Standin) -> None:
    standin.audience_status = 403
    with pytest.raises(CredentialError, match="not enabled"):
        resolve_credentials(index_at(standin))


@pytest.mark.usefixtures("in_actions")
def test_missing_id_token_permission_is_explained(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    with pytest.raises(CredentialError, match="id-token: write"):
        resolve_credentials(index_at(standin))
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL")
    with pytest.raises(MissingCredentials, match="id-token: write"):
        describe_sources(index_at(standin))


@pytest.mark.usefixtures("in_actions")
def test_doctor_describes_trusted_publishing_without_requests(standin: Standin) -> None:
    found = describe_sources(index_at(standin))
    assert isinstance(found, str)
    assert "trusted publishing" in found
    assert standin.seen == []


# --- the audience is bound to the index ---------------------------------------------------


@pytest.mark.usefixtures("in_actions")
def test_another_audience_is_refused_before_any_identity_token(standin: Standin) -> None:
    standin.audience = "pypi"  # a TestPyPI upload must never mint with a production audience
    with pytest.raises(CredentialError, match="refused before any identity token") as caught:
        resolve_credentials(index_at(standin), "sample-pkg")
    assert "'pypi'" in caught.value.what and "'testpypi'" in caught.value.what
    assert standin.seen == ["/_/oidc/audience"]  # no identity token asked for, nothing minted


@pytest.mark.usefixtures("in_actions")
def test_testpypi_elsewhere_never_gets_trusted_publishing(standin: Standin) -> None:
    elsewhere = Index("testpypi", "https://index.example.invalid/legacy/", standin.url + "simple/")
    with pytest.raises(CredentialError, match="not testpypi") as caught:
        resolve_credentials(elsewhere, "sample-pkg")
    assert "index.example.invalid" in caught.value.what
    assert standin.seen == []  # refused offline: nothing was asked of anyone


@pytest.mark.usefixtures("in_actions")
def test_mint_endpoint_is_the_upload_hosts_not_the_simple_urls(standin: Standin) -> None:
    index = Index("testpypi", standin.url + "legacy/", "http://127.0.0.1:9/simple/")
    creds = resolve_credentials(index, "sample-pkg")
    assert creds.password == standin.token
    assert standin.seen[-1] == "/_/oidc/mint-token"


@pytest.mark.usefixtures("in_actions")
def test_custom_index_needs_an_explicit_audience(standin: Standin) -> None:
    corp = Index("corp", standin.url + "legacy/", standin.url + "simple/", "CORP_TOKEN")
    with pytest.raises(MissingCredentials):
        resolve_credentials(corp)
    assert standin.seen == []
    standin.audience = "corp.example"
    standin.token = mint_token("corp", trusted_publisher="pub-2")
    standin.jwt = f"{_b64({'alg': 'none'})}.{_b64({**CLAIMS, 'aud': 'corp.example'})}.c2ln"
    configured = Index(
        "corp",
        corp.upload_url,
        corp.simple_url,
        "CORP_TOKEN",
        trusted_publishing_audience="corp.example",
    )
    creds = resolve_credentials(configured)
    assert creds.password == standin.token
    assert "audience=corp.example" in standin.seen[1]


def test_pypi_tables_cannot_change_the_audience() -> None:
    from releasekit._settings import IndexSettings
    from releasekit.errors import ConfigError
    from releasekit.indexes import resolve_index

    with pytest.raises(ConfigError, match="audience is 'testpypi'"):
        resolve_index("testpypi", {"testpypi": IndexSettings(trusted_publishing_audience="pypi")})
    assert resolve_index("pypi").oidc_audience == "pypi"
    assert resolve_index("testpypi").oidc_audience == "testpypi"
    corp = {"corp": IndexSettings("https://c.invalid/u/", "https://c.invalid/s/")}
    assert resolve_index("corp", corp).oidc_audience is None


# --- retries, and every refusal explained ---------------------------------------------------


@pytest.mark.usefixtures("in_actions")
def test_transient_mint_failures_are_retried(standin: Standin) -> None:
    from releasekit._polling import Backoff
    from releasekit.credentials import exchange_identity
    from releasekit.indexes import RetryPolicy

    standin.mint_failures = 2
    fast = RetryPolicy(attempts=4, backoff=Backoff(first=0.01, cap=0.02), total_seconds=10)
    assert exchange_identity(index_at(standin), retry=fast) == standin.token
    assert standin.seen.count("/_/oidc/mint-token") == 3
    # a fresh identity token for each attempt
    assert sum(path.startswith("/github-oidc") for path in standin.seen) == 3


MINT_ERRORS = {
    "invalid-payload": "missing or malformed",
    "not-enabled": "switched off",
    "invalid-token": "could not verify the identity token",
    "invalid-pending-publisher": "project exists already",
    "invalid-reuse-token": "used to mint an upload token already",
    "invalid-publisher": "No trusted publisher registered",
}


@pytest.mark.usefixtures("in_actions")
@pytest.mark.parametrize(("code", "why"), MINT_ERRORS.items())
def test_each_mint_error_code_is_explained(standin: Standin, code: str, why: str) -> None:
    standin.mint_errors = [{"code": code, "description": "as the index says"}]
    with pytest.raises(CredentialError) as caught:
        resolve_credentials(index_at(standin), "sample-pkg")
    error = caught.value
    assert f"{code}: as the index says" in error.what
    assert why in error.why
    # the job's identity, as the fields of a publisher, is always shown
    assert (
        "GitHub identity: owner 'acme', repository 'sample-pkg', workflow 'publish.yml'"
        in error.what
    )
    assert error.fix


# --- GitLab CI -----------------------------------------------------------------------------

GITLAB_CLAIMS = {
    "aud": "testpypi",
    "iss": "https://gitlab.corp.invalid",
    "project_path": "acme/tools/sample-pkg",
    "ci_config_ref_uri": "gitlab.corp.invalid/acme/tools/sample-pkg//ci/publish.yml@refs/heads/main",
    "environment": "testpypi",
}


@pytest.fixture
def in_gitlab(monkeypatch: pytest.MonkeyPatch, standin: Standin) -> None:
    for name in ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "GITHUB_ACTIONS",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("GITLAB_CI", "true")
    standin.jwt = f"{_b64({'alg': 'none'})}.{_b64(GITLAB_CLAIMS)}.c2lnbmF0dXJl"


@pytest.mark.usefixtures("in_gitlab")
def test_gitlab_job_without_id_tokens_is_explained(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESTPYPI_ID_TOKEN", raising=False)
    with pytest.raises(CredentialError, match="TESTPYPI_ID_TOKEN is not set") as caught:
        resolve_credentials(index_at(standin), "sample-pkg")
    assert "id_tokens" in caught.value.fix and "aud: testpypi" in caught.value.fix
    with pytest.raises(MissingCredentials, match="TESTPYPI_ID_TOKEN"):
        describe_sources(index_at(standin))


@pytest.mark.usefixtures("in_gitlab")
def test_gitlab_identity_is_exchanged_and_explained(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTPYPI_ID_TOKEN", standin.jwt)
    creds = resolve_credentials(index_at(standin), "sample-pkg")
    assert creds.password == standin.token and creds.trusted_publishing
    standin.mint_errors = [{"code": "invalid-publisher", "description": "no publisher"}]
    with pytest.raises(CredentialError) as caught:
        resolve_credentials(index_at(standin), "sample-pkg")
    for wanted in (
        "namespace 'acme/tools'",
        "project 'sample-pkg'",
        "top-level pipeline file path 'ci/publish.yml'",
        "environment 'testpypi'",
        "issuer 'https://gitlab.corp.invalid'",  # self-managed: the instance is the issuer
    ):
        assert wanted in caught.value.fix, caught.value.fix


# --- doctor, in CI ---------------------------------------------------------------------------


@pytest.mark.usefixtures("in_actions")
def test_doctor_shows_the_publisher_and_says_to_revoke_a_leftover_token(
    standin: Standin, monkeypatch: pytest.MonkeyPatch, make_project: Callable[..., Path]
) -> None:
    from releasekit._doctor import doctor
    from releasekit._project import Project
    from releasekit._report import captured

    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/sample-pkg")
    monkeypatch.setenv("GITHUB_REPOSITORY_OWNER", "acme")
    monkeypatch.setenv(
        "GITHUB_WORKFLOW_REF", "acme/sample-pkg/.github/workflows/publish.yml@refs/heads/main"
    )
    monkeypatch.setenv("PYPI_API_TOKEN", mint_token("pypi", projects=["sample-pkg"]))
    project = Project.load(make_project())
    with captured() as out:
        doctor(project)
    text = out.getvalue()
    assert "publish.yml" in text and "sample-pkg" in text and "acme" in text
    assert "revoke that token on pypi and delete the PYPI_API_TOKEN secret" in text
    assert "TEST_PYPI_API_TOKEN secret" not in text  # not set: trusted publishing for testpypi
    assert standin.seen == []  # doctor is offline


def test_trusted_publishing_audience_is_validated() -> None:
    from releasekit._settings import Settings
    from releasekit.errors import ConfigError

    table = {"indexes": {"corp": {"trusted-publishing-audience": "corp.example"}}}
    settings = Settings.from_table(table, "pyproject.toml")
    assert settings.indexes["corp"].trusted_publishing_audience == "corp.example"
    for bad in ("two words", "", 3):
        table = {"indexes": {"corp": {"trusted-publishing-audience": bad}}}
        with pytest.raises(ConfigError, match="trusted-publishing-audience"):
            Settings.from_table(table, "pyproject.toml")
