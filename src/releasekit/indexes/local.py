"""Throwaway pypiserver indexes on 127.0.0.1, for ``rehearse`` and for the tests.

Each runs in-process on a random port, in a thread, with one user ``__token__`` whose
password is the given token: the way PyPI itself authenticates uploads. Uploads PyPI would
refuse are refused the same way (HTTP 400 with PyPI's wording), so a rehearsal that passes
means PyPI would take the files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx

from releasekit._distributions import parse_filename
from releasekit.indexes import Index

_import_lock = threading.Lock()


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep request logs off the terminal."""


def _pypiserver_app(root: Path, password_file: Path, *, hashes: bool, private: bool) -> Any:
    import pypiserver

    with _import_lock:  # pypiserver builds each app by re-importing a module
        return pypiserver.app(
            roots=[str(root)],
            password_file=str(password_file),
            authenticate=["update", "download", "list"] if private else ["update"],
            disable_fallback=True,
            hash_algo="sha256" if hashes else None,
        )


def _form(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name to (filename, value)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if boundary is None:
        return fields
    for part in body.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (filename and filename.group(1), value.removesuffix(b"\r\n"))
    return fields


def attestations_problem(field: bytes, filename: str, content: bytes) -> str | None:
    """What PyPI would say about the ``attestations`` field sent with ``filename`` (None: it
    takes them). Parsed with pypi-attestations' own models, as PyPI does; each attestation
    must convert to a Sigstore bundle, name this file and its sha256, and carry a signature
    that verifies against its own certificate (Sigstore's trust root is not consulted)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from pydantic import TypeAdapter, ValidationError
    from pypi_attestations import Attestation, ConversionError

    from releasekit.credentials.signing import pae

    prefix = "Invalid attestations supplied during upload: "
    try:
        attestations = TypeAdapter(list[Attestation]).validate_json(field)
    except ValidationError as exc:
        return f"{prefix}Error while decoding the included attestation: {exc}"
    kinds = [a.statement.get("predicateType") for a in attestations]
    if len(set(kinds)) != len(kinds):
        return f"{prefix}Only a single attestation per file is supported."
    unverified = f"{prefix}Could not verify the uploaded artifact using the included attestation: "
    sha256 = hashlib.sha256(content).hexdigest()
    for attestation in attestations:
        try:
            attestation.to_bundle()
        except ConversionError as exc:
            return f"{unverified}{exc}"
        subjects = attestation.statement.get("subject") or [{}]
        if len(subjects) != 1 or subjects[0].get("name") != filename:
            return f"{unverified}Verification failed: subject does not match distribution name"
        if (subjects[0].get("digest") or {}).get("sha256") != sha256:
            return f"{unverified}Verification failed: subject does not match distribution digest"
        material = attestation.verification_material
        key = x509.load_der_x509_certificate(material.certificate).public_key()
        try:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise InvalidSignature
            key.verify(
                attestation.envelope.signature,
                pae(attestation.envelope.statement),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return f"{unverified}Verification failed: the signature does not match the statement"
    return None


class _PyPIRules:
    """WSGI middleware: an authenticated upload PyPI would refuse gets PyPI's 400 before
    pypiserver sees it (others go on to pypiserver, which answers 401 or 403 as PyPI does).
    Attestations accepted with a file are kept in ``attestations`` (filename to JSON list);
    ``received`` lists the files pypiserver stored, in the order it stored them."""

    def __init__(self, app: Any, packages: Path, username: str, token: str) -> None:
        self.app = app
        self.packages = packages
        self.attestations: dict[str, list[Any]] = {}
        self.received: list[str] = []
        self.authorization = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        authorized = hmac.compare_digest(
            environ.get("HTTP_AUTHORIZATION", "").encode(), self.authorization.encode()
        )
        upload = environ.get("REQUEST_METHOD") == "POST" and "multipart" in content_type
        if not (upload and authorized):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        fields = _form(body, content_type)
        filename, content = fields.get("content", (None, b""))
        if fields.get(":action", (None, b""))[1] == b"file_upload" and filename:
            name = Path(filename).name
            attested = fields.get("attestations")
            refusal = self._refusal(name, content) or (
                attested and attestations_problem(attested[1], name, content)
            )
            if refusal:
                status = "400 " + refusal.encode("latin-1", "replace").decode("latin-1")
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                return [refusal.encode()]
            if attested and not (self.packages / name).exists():
                self.attestations[name] = json.loads(attested[1])
            answer = self.app(environ, start_response)
            if (self.packages / name).is_file() and name not in self.received:
                self.received.append(name)
            return answer
        return self.app(environ, start_response)

    def _refusal(self, filename: str, content: bytes) -> str | None:
        from releasekit.indexes.pypi_rules import pypi_problems

        parsed = parse_filename(filename)
        if (
            parsed
            and parsed[2] == "sdist"
            and any(
                (other := parse_filename(path.name))
                and other[:3] == parsed
                and path.name != filename
                for path in self.packages.iterdir()
            )
        ):
            return "Only one sdist may be uploaded per release."
        with tempfile.TemporaryDirectory(prefix="releasekit-upload-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(content)
            problems = pypi_problems(path).problems
        if not problems:
            return None
        reasons = "; ".join(p.removeprefix(f"{filename}: ") for p in problems)
        return f"Invalid distribution file. {reasons}".replace("\n", " ")


class _TrustedPublishing:
    """WSGI middleware: PyPI's trusted-publishing endpoints, minting the index's own token for
    any identity token made for ``audience`` (signatures are not checked: a stand-in). The
    claims of each identity token exchanged are kept in ``minted``."""

    def __init__(self, app: Any, audience: str, token: str) -> None:
        self.app = app
        self.audience = audience
        self.token = token
        self.minted: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/_/oidc/audience":
            return _json_answer(start_response, "200 OK", {"audience": self.audience})
        if path != "/_/oidc/mint-token" or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            jwt = json.loads(body)["token"]
            payload = jwt.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, KeyError, TypeError, IndexError):
            return _mint_refused(start_response, "invalid-payload", "malformed request")
        if not isinstance(claims, dict) or claims.get("aud") != self.audience:
            return _mint_refused(start_response, "invalid-token", "malformed or invalid token")
        self.minted.append(claims)
        answer = {"success": True, "token": self.token, "expires": 2**31}
        return _json_answer(start_response, "200 OK", answer)


def _json_answer(start_response: Callable[..., Any], status: str, body: object) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def _mint_refused(start_response: Callable[..., Any], code: str, text: str) -> list[bytes]:
    body = {"message": "Token request failed", "errors": [{"code": code, "description": text}]}
    return _json_answer(start_response, "422 Unprocessable Entity", body)


class LocalIndex:
    """A pypiserver instance on 127.0.0.1 standing in for index ``name``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Packages live in
    ``root`` (a temporary directory, removed on stop, unless given). With ``pypi_rules``,
    authenticated uploads PyPI would refuse are refused with PyPI's 400 (``rehearse`` sets it).
    With ``hashes=False`` its pages are plain PEP 503 links with no ``#sha256=`` fragment.
    Its one user is ``username`` with the password ``token``; with ``private``, reading
    (pages and files) needs them too, as on a private company index. With ``oidc_audience``,
    it offers trusted publishing for that audience (``/_/oidc/...``).
    """

    def __init__(
        self,
        name: str,
        token: str,
        root: Path | None = None,
        *,
        pypi_rules: bool = False,
        hashes: bool = True,
        username: str = "__token__",
        private: bool = False,
        oidc_audience: str | None = None,
    ) -> None:
        self.name = name
        self.token = token
        self.username = username
        self.private = private
        self.pypi_rules = pypi_rules
        self.hashes = hashes
        self.oidc_audience = oidc_audience
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix=f"releasekit-{name}-")) if root is None else root
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._rules: _PyPIRules | None = None
        self._oidc: _TrustedPublishing | None = None

    @property
    def attestations(self) -> dict[str, list[Any]]:
        """The attestations taken with each file (with ``pypi_rules``; else none)."""
        return dict(self._rules.attestations) if self._rules is not None else {}

    @property
    def received(self) -> list[str]:
        """The files this server stored, in the order it stored them (with ``pypi_rules``)."""
        return list(self._rules.received) if self._rules is not None else []

    @property
    def minted(self) -> list[dict[str, Any]]:
        """The claims of each identity token exchanged for an upload token (``oidc_audience``)."""
        return list(self._oidc.minted) if self._oidc is not None else []

    @property
    def url(self) -> str:
        """The server's base URL (also its upload endpoint)."""
        if self._server is None:
            raise RuntimeError("LocalIndex is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def upload_url(self) -> str:
        """Where uploads go."""
        return self.url

    @property
    def simple_url(self) -> str:
        """The simple API root."""
        return self.url + "simple/"

    @property
    def index(self) -> Index:
        """This server as an :class:`Index` named like the index it stands in for."""
        return Index(self.name, self.upload_url, self.simple_url)

    def environ(self) -> dict[str, str]:
        """The ``RELEASEKIT_<NAME>_*`` variables that point releasekit at this server."""
        prefix = self.index.env_prefix
        return {prefix + "UPLOAD_URL": self.upload_url, prefix + "SIMPLE_URL": self.simple_url}

    def start(self) -> LocalIndex:
        """Start serving; returns self once the server answers its health check."""
        from passlib.apache import HtpasswdFile

        packages = self.root / "packages"
        packages.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "htpasswd"
        htpasswd = HtpasswdFile(str(password_file), new=True)
        htpasswd.set_password(self.username, self.token)
        htpasswd.save()
        app = _pypiserver_app(packages, password_file, hashes=self.hashes, private=self.private)
        if self.pypi_rules:
            app = self._rules = _PyPIRules(app, packages, self.username, self.token)
        if self.oidc_audience is not None:
            app = self._oidc = _TrustedPublishing(app, self.oidc_audience, self.token)
        self._server = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"localindex-{self.name}",
            daemon=True,
        )
        self._thread.start()
        httpx.get(self.url + "health", timeout=5).raise_for_status()  # open even when private
        return self

    def stop(self) -> None:
        """Stop serving and remove the package directory if it was temporary."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def remove(self, name: str, version: str) -> None:
        """Delete every file of ``name`` ``version`` (what an index admin would do)."""
        response = httpx.post(
            self.url,
            data={":action": "remove_pkg", "name": name, "version": version},
            auth=(self.username, self.token),
            timeout=10,
        )
        response.raise_for_status()

    def __enter__(self) -> LocalIndex:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
