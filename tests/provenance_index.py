"""A stand-in index serving what no local index server implements: the PEP 691 JSON simple
API with PEP 700 fields (versions, size, upload-time), PEP 740 provenance (the integrity API)
and PEP 792 project status; plus a download-statistics endpoint and an upload endpoint that
records what was sent. Hand-made because pypiserver and devpi offer none of these.

With ``audience`` set it is PyPI with trusted publishing: it mints upload tokens for identity
tokens of that audience, takes uploads only with a minted token, checks their ``attestations``
field with pypi-attestations' models (as :class:`LocalIndex` does) and serves each file's
provenance as PyPI builds it: the attestations, under the trusted publisher that minted the
token. Also here: a stand-in for GitHub's OIDC token service (:func:`serve_issuer`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import releasekit.credentials
from releasekit._distributions import parse_filename
from releasekit.credentials.trusted import publisher_from_claims
from releasekit.indexes.local import _form, attestations_problem

DATA = Path(__file__).parent / "data" / "provenance"
GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"
GOOGLE_SDIST = "gcb_attestation_test-0.0.0.tar.gz"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"


def provenance_of(filename: str) -> str:
    """The real provenance object shipped for ``filename`` (the GitLab one is wrapped here:
    its asset is a bare attestation, so it is put in a bundle naming its GitLab publisher)."""
    if filename == GITLAB_SDIST:
        attestation = json.loads((DATA / f"{filename}.publish.attestation").read_text())
        publisher = {
            "kind": "GitLab",
            "repository": "facutuesca/gitlab-oidc-project",
            "workflow_filepath": ".gitlab-ci.yml",
        }
        bundle = {"publisher": publisher, "attestations": [attestation]}
        return json.dumps({"version": 1, "attestation_bundles": [bundle]})
    return (DATA / f"{filename}.provenance").read_text()


@dataclass
class Hosted:
    """One file on the stand-in: its bytes, its provenance (None: none) and upload time."""

    filename: str
    content: bytes
    provenance: str | None = None
    uploaded: datetime = field(default_factory=lambda: datetime(2026, 1, 2, tzinfo=timezone.utc))
    yanked: bool | str = False

    @classmethod
    def real(cls, filename: str, **kwargs: Any) -> Hosted:
        """A shipped dist with its real provenance."""
        return cls(filename, (DATA / filename).read_bytes(), provenance_of(filename), **kwargs)


@dataclass
class Project:
    """A project page: its files and PEP 792 status."""

    files: list[Hosted] = field(default_factory=list)
    status: str | None = None
    reason: str | None = None


class StandIn:
    """The server's state; ``api_version`` below 1.3 hides provenance (an older index)."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.api_version = "1.4"
        self.stats: dict[str, Any] | None = None
        self.uploads: list[str] = []
        self.url = ""
        #: The trusted-publishing audience (None: no trusted publishing, uploads only recorded).
        self.audience: str | None = None
        #: Each minted upload token, with the claims of the identity token it was minted for.
        self.minted: dict[str, dict[str, Any]] = {}

    def simple(self, name: str) -> dict[str, Any] | None:
        project = self.projects.get(name)
        if project is None:
            return None
        meta: dict[str, Any] = {"api-version": self.api_version}
        if project.status:
            meta["project-status"] = project.status
        if project.reason:
            meta["project-status-reason"] = project.reason
        files = []
        for hosted in project.files:
            parsed = parse_filename(hosted.filename)
            version = str(parsed[1]) if parsed else "0"
            entry: dict[str, Any] = {
                "filename": hosted.filename,
                "url": f"{self.url}/files/{hosted.filename}",
                "hashes": {"sha256": hashlib.sha256(hosted.content).hexdigest()},
                "size": len(hosted.content),
                "upload-time": hosted.uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": hosted.yanked,
            }
            if hosted.provenance is not None and self.api_version >= "1.3":
                entry["provenance"] = (
                    f"{self.url}/integrity/{name}/{version}/{hosted.filename}/provenance"
                )
            files.append(entry)
        versions = sorted({str(p[1]) for f in project.files if (p := parse_filename(f.filename))})
        return {"meta": meta, "name": name, "versions": versions, "files": files}

    def mint(self, jwt: object) -> tuple[int, dict[str, Any]]:
        """PyPI's ``/_/oidc/mint-token`` answer for the identity token ``jwt``."""
        try:
            claims = json.loads(base64.urlsafe_b64decode(_padded(str(jwt).split(".")[1])))
        except (ValueError, IndexError):
            claims = None
        if not isinstance(claims, dict) or claims.get("aud") != self.audience:
            error = {"code": "invalid-token", "description": "malformed or invalid token"}
            return 422, {"message": "Token request failed", "errors": [error]}
        token = releasekit.credentials.mint_token("pypi", trusted_publisher="publisher-1")
        self.minted[token] = claims
        return 200, {"success": True, "token": token, "expires": 2**31}

    def take(self, authorization: str, body: bytes, content_type: str) -> tuple[int, str]:
        """PyPI's answer to an upload: only with a minted token; ``attestations`` checked with
        pypi-attestations' models; the file hosted with provenance naming its publisher."""
        user, _, password = _basic(authorization).partition(":")
        claims = self.minted.get(password) if user == "__token__" else None
        if claims is None:
            return 403, "Invalid or non-existent authentication information."
        fields = _form(body, content_type)
        filename, content = fields.get("content", (None, b""))
        if not filename:
            return 400, "Upload payload does not have a file."
        name = Path(filename).name
        existing = self.hosted(name)
        if existing is not None:
            same = existing.content == content
            return (200, "OK") if same else (400, "File already exists.")
        attested = fields.get("attestations")
        problem = attested and attestations_problem(attested[1], name, content)
        if problem:
            return 400, problem
        provenance = None
        if attested:
            bundle = {"publisher": publisher(claims), "attestations": json.loads(attested[1])}
            provenance = json.dumps({"version": 1, "attestation_bundles": [bundle]})
        project = fields["name"][1].decode().lower().replace("_", "-")
        hosted = Hosted(name, content, provenance, uploaded=datetime.now(timezone.utc))
        self.projects.setdefault(project, Project()).files.append(hosted)
        return 200, "OK"

    def hosted(self, filename: str) -> Hosted | None:
        for project in self.projects.values():
            for hosted in project.files:
                if hosted.filename == filename:
                    return hosted
        return None


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_/oidc/audience" and state.audience is not None:
                self._send(200, json.dumps({"audience": state.audience}).encode())
            elif match := re.fullmatch(r"/simple/([^/]+)/", path):
                page = state.simple(match[1])
                if page is None:
                    self._send(404, b"not found")
                else:
                    body = json.dumps(page).encode()
                    self._send(200, body, "application/vnd.pypi.simple.v1+json")
            elif match := re.fullmatch(r"/files/([^/]+)", path):
                hosted = state.hosted(match[1])
                self._send(200, hosted.content) if hosted else self._send(404, b"not found")
            elif match := re.fullmatch(r"/integrity/[^/]+/[^/]+/([^/]+)/provenance", path):
                hosted = state.hosted(match[1])
                if hosted is None or hosted.provenance is None:
                    self._send(404, b"no provenance")
                else:
                    body = hosted.provenance.encode()
                    self._send(200, body, "application/vnd.pypi.integrity.v1+json")
            elif re.fullmatch(r"/stats/[^/]+", path) and state.stats is not None:
                self._send(200, json.dumps(state.stats).encode(), "application/json")
            else:
                self._send(404, b"not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if state.audience is None:
                state.uploads.append(body.decode("latin-1"))
                self._send(200, b"OK")
            elif self.path == "/_/oidc/mint-token":
                status, answer = state.mint(json.loads(body).get("token"))
                self._send(status, json.dumps(answer).encode(), "application/json")
            else:
                state.uploads.append(body.decode("latin-1"))
                status, text = state.take(
                    self.headers.get("Authorization", ""),
                    body,
                    self.headers.get("Content-Type", ""),
                )
                self._send(status, text.encode())

    return Handler


@contextmanager
def serve() -> Iterator[StandIn]:
    """Run the stand-in on 127.0.0.1 (an unused port) for the block."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def environ(state: StandIn, index: str = "PYPI") -> dict[str, str]:
    """The variables that point releasekit's index ``index`` at the stand-in."""
    return {
        f"RELEASEKIT_{index}_SIMPLE_URL": f"{state.url}/simple/",
        f"RELEASEKIT_{index}_UPLOAD_URL": f"{state.url}/upload/",
    }


def publisher(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The trusted publisher PyPI records for an identity token's ``claims`` (as provenance
    names it), from the fields releasekit explains for registration."""
    found = publisher_from_claims(dict(claims))
    fields = dict(found.fields)
    if found.kind == "GitHub":
        return {
            "kind": "GitHub",
            "repository": f"{fields['owner']}/{fields['repository']}",
            "workflow": fields["workflow"],
            "environment": fields["environment"] or None,
        }
    return {
        "kind": "GitLab",
        "repository": f"{fields['namespace']}/{fields['project']}",
        "workflow_filepath": fields["top-level pipeline file path"],
        "environment": fields["environment"] or None,
    }


def _padded(part: str) -> bytes:
    return (part + "=" * (-len(part) % 4)).encode()


def _basic(authorization: str) -> str:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(value).decode()
    except ValueError:
        return ""


def jwt(claims: Mapping[str, Any]) -> str:
    """An identity token with ``claims`` (unsigned: stand-ins do not check signatures)."""

    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Issuer:
    """GitHub's OIDC token service, standing in: a token with ``claims`` for any audience
    asked, to a request with the job's request token (``bearer <request_token>``)."""

    claims: dict[str, Any]
    request_token: str = "request-token"
    url: str = ""
    audiences: list[str] = field(default_factory=list)


@contextmanager
def serve_issuer(
    claims: Mapping[str, Any],
    request_token: str = "request-token",  # noqa: S107 (what the fixture's job sends)
) -> Iterator[Issuer]:
    """Run the OIDC token service on 127.0.0.1 for the block; ``url`` is what GitHub puts in
    ACTIONS_ID_TOKEN_REQUEST_URL, ``request_token`` what it puts in ..._REQUEST_TOKEN."""
    state = Issuer(dict(claims), request_token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.headers["Authorization"] == f"bearer {state.request_token}"
            audience = parse_qs(urlsplit(self.path).query)["audience"][0]
            state.audiences.append(audience)
            body = json.dumps({"value": jwt({**state.claims, "aud": audience})}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/token?api-version=2.0"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
