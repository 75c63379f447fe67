"""Trusted publishing against a loopback stand-in for the index's OIDC endpoints and the CI's
identity service (no real one exists locally)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    mint_errors: list[dict[str, str]] | None = None
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
                    self._send(200, {"audience": "testpypi"})
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
            if state.mint_errors:
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
    for claim in (
        "acme/sample-pkg",
        "publish.yml@refs/heads/main",
        "'testpypi'",
        "refs/heads/main",
    ):
        assert claim in text
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
