"""Networks as they are: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, SSL_CERT_FILE and the system
trust store; credentials never reach a proxy; a refusing or absent proxy is named.

No proxy server is installed here, so the proxy is a small hand-made one on 127.0.0.1 that
tunnels CONNECT, forwards absolute-URI requests, or refuses; the index is pypiserver
(LocalIndex) or, over TLS, a static page with a trustme certificate.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from releasekit._polling import Backoff
from releasekit.errors import IndexUnavailable
from releasekit.indexes import Index, IndexClient, RetryPolicy
from releasekit.indexes.local import LocalIndex
from releasekit.indexes.network import client_options, tls_context

POLICY = RetryPolicy(attempts=3, backoff=Backoff(first=0.01, cap=0.02), total_seconds=20)
PAGE = b'<html><body><a href="/f/sample_pkg-0.1.0.tar.gz">sample_pkg-0.1.0.tar.gz</a>'
SECRET = "pypi-proxytestsecret0123456789"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class Proxy(ThreadingHTTPServer):
    """A forwarding proxy on 127.0.0.1: tunnels CONNECT, forwards plain-http requests, and
    keeps each request head it saw; ``refuse`` answers CONNECT with 403."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.refuse = refuse
        self.heads: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy

    def _record(self) -> None:
        self.server.heads.append(self.requestline + "\r\n" + str(self.headers))

    def do_CONNECT(self) -> None:
        self._record()
        if self.server.refuse:
            self.send_error(403, "Forbidden by policy")
            return
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        back = threading.Thread(target=_pipe, args=(upstream, self.connection))
        back.start()
        _pipe(self.connection, upstream)
        back.join()
        upstream.close()
        self.close_connection = True

    def _forward(self) -> None:
        self._record()
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection",)}
        answer = httpx.request(
            self.command, self.path, headers=headers, content=body, trust_env=False
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "content-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.content)
        self.close_connection = True

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class TLSPage(ThreadingHTTPServer):
    """A static simple page over TLS (a trustme certificate for 127.0.0.1)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Page)
        self.context = context
        self.authorizations: list[str | None] = []

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True), address

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXY_VARS, "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def tls_page(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[TLSPage]:
    """The TLS page, its CA trusted through SSL_CERT_FILE."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    clean_env.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with serving(TLSPage(context)) as page:
        yield page


def test_https_goes_through_https_proxy_and_credentials_stay_inside_tls(
    tls_page: TLSPage, clean_env: pytest.MonkeyPatch
) -> None:
    with serving(Proxy()) as proxy:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        with IndexClient(Index("corp", tls_page.url, tls_page.url + "simple/")) as client:
            assert client.get(tls_page.url + "simple/sample-pkg/").status_code == 200
        with httpx.Client(**client_options(credentials=True), auth=("__token__", SECRET)) as http:
            assert http.get(tls_page.url + "simple/").status_code == 200
    port = tls_page.server_address[1]
    assert [h.split("\r\n")[0] for h in proxy.heads] == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"] * 2
    assert not any("authorization" in head.lower() for head in proxy.heads)
    assert tls_page.authorizations[0] is None
    assert tls_page.authorizations[1] is not None  # the index, and only it, got them


def test_no_proxy_is_honoured(tls_page: TLSPage, clean_env: pytest.MonkeyPatch) -> None:
    with serving(Proxy()) as proxy:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        clean_env.setenv("NO_PROXY", "127.0.0.1")
        with IndexClient(Index("corp", tls_page.url, tls_page.url + "simple/")) as client:
            assert client.get(tls_page.url + "simple/").status_code == 200
    assert proxy.heads == []


def test_plain_http_reads_go_through_http_proxy_but_credentials_go_direct(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with LocalIndex("testpypi", "local-password") as index, serving(Proxy()) as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        with IndexClient(index.index) as client:
            assert client.versions("sample-pkg") == {}
        assert [h.split(" ")[0] for h in proxy.heads] == ["GET"]
        assert proxy.heads[0].split(" ")[1].startswith(index.url)
        with httpx.Client(**client_options(credentials=True), auth=("__token__", SECRET)) as http:
            assert http.get(index.simple_url).status_code == 200
        assert len(proxy.heads) == 1
    assert not any(SECRET in head or "uthorization" in head for head in proxy.heads)


def test_refusing_proxy_is_named_and_not_retried(
    tls_page: TLSPage, clean_env: pytest.MonkeyPatch
) -> None:
    with serving(Proxy(refuse=True)) as proxy:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        index = Index("corp", tls_page.url, tls_page.url + "simple/")
        with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable) as caught:
            client.get(tls_page.url + "simple/")
    assert len(proxy.heads) == 1
    assert "the proxy refused the connection" in caught.value.what
    assert "NO_PROXY" in (caught.value.fix or "")


def test_absent_proxy_is_named(tls_page: TLSPage, clean_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    index = Index("corp", tls_page.url, tls_page.url + "simple/")
    with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable) as caught:
        client.get(tls_page.url + "simple/")
    assert f"connection refused by the proxy http://127.0.0.1:{port}" in caught.value.what
    assert "HTTPS_PROXY" in (caught.value.why or "")


def test_trust_store_is_the_system_one_unless_ssl_cert_file(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    import truststore

    assert isinstance(tls_context(), truststore.SSLContext)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    clean_env.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = tls_context()
    assert not isinstance(context, truststore.SSLContext)
    assert len(context.get_ca_certs()) == 1
