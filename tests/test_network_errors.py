"""Network failures named by their real cause, and not retried when no retry can help:
an untrusted TLS certificate, https to a plain HTTP port, a malformed URL, an unknown host."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from releasekit._polling import Backoff
from releasekit.errors import ConfigError, IndexUnavailable
from releasekit.indexes import Index, IndexClient, RetryPolicy, resolve_index, tls_context
from releasekit.indexes.local import LocalIndex

POLICY = RetryPolicy(attempts=4, backoff=Backoff(first=0.01, cap=0.02), total_seconds=20)
PAGE = b'<html><body><a href="/files/sample_pkg-0.1.0.tar.gz">sample_pkg-0.1.0.tar.gz</a>'


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class TLSServer(ThreadingHTTPServer):
    """A static PEP 503 page over TLS, with a certificate from a CA nobody trusts yet;
    ``connections`` counts TCP connections (each try of the client makes one)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Page)
        self.context = context
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        self.connections += 1
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[TLSServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = TLSServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _index(url: str) -> Index:
    return Index("testpypi", url, url + "simple/")


def test_untrusted_certificate_is_named_with_the_fix_and_not_retried(
    tls_server: TLSServer, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    index = _index(f"https://127.0.0.1:{tls_server.server_address[1]}/")
    with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable) as caught:
        client.project_files("sample-pkg")
    message = str(caught.value)
    assert "TLS certificate verification failed" in message
    assert "SSL_CERT_FILE" in message
    assert "connection refused" not in message and "tries" not in message
    assert tls_server.connections == 1
    # the fix named works: the index's CA in SSL_CERT_FILE
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with IndexClient(index, retry=POLICY) as client:
        files = client.project_files("sample-pkg")
    assert [f.filename for f in files] == ["sample_pkg-0.1.0.tar.gz"]


def test_one_tls_context_per_ca_setting_and_a_rewritten_ca_file_is_read_again(
    tls_server: TLSServer, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))  # another CA: the server is not trusted
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert tls_context() is tls_context()  # made once, shared by every client
    index = _index(f"https://127.0.0.1:{tls_server.server_address[1]}/")
    with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable):
        client.project_files("sample-pkg")
    first = tls_context()
    ca.cert_pem.write_to_path(str(bundle))  # the same path, now the server's CA
    os.utime(bundle, ns=(0, os.stat(bundle).st_mtime_ns + 1_000_000_000))
    assert tls_context() is not first
    with IndexClient(index, retry=POLICY) as client:
        assert [f.filename for f in client.project_files("sample-pkg")]


def test_https_to_a_plain_http_port_is_named_and_not_retried() -> None:
    with LocalIndex("testpypi", "unused") as server:
        index = _index(server.url.replace("http://", "https://"))
        with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable) as c:
            client.project_files("sample-pkg")
    message = str(c.value)
    assert "does not speak TLS" in message
    assert "connection refused" not in message and "tries" not in message


@pytest.mark.parametrize("url", ["htp://127.0.0.1:8080/", "127.0.0.1:8080/"])
def test_malformed_url_is_named_and_not_retried(url: str) -> None:
    with IndexClient(_index(url), retry=POLICY) as client, pytest.raises(IndexUnavailable) as c:
        client.project_files("sample-pkg")
    message = str(c.value)
    assert "invalid URL" in message
    assert "connection refused" not in message and "tries" not in message


def test_unknown_host_is_named() -> None:
    index = _index("http://releasekit-no-such-host.invalid/")
    with IndexClient(index, retry=POLICY) as client, pytest.raises(IndexUnavailable) as caught:
        client.project_files("sample-pkg")
    message = str(caught.value)
    assert "DNS lookup of releasekit-no-such-host.invalid failed" in message
    assert "connection refused" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("htp://127.0.0.1:8080/simple/", "the scheme is htp://"),
        ("127.0.0.1:8080/simple/", "the scheme is missing"),
        ("http://[::1/simple/", "invalid ipv6 url"),
        ("http://127.0.0.1:99999/simple/", "port out of range"),
        ("http:///simple/", "it has no host"),
    ],
)
def test_malformed_url_is_refused_when_the_index_is_resolved(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASEKIT_TESTPYPI_SIMPLE_URL", url)
    with pytest.raises(ConfigError) as caught:
        resolve_index("testpypi")
    message = str(caught.value)
    assert f"The simple URL of index 'testpypi' is not a valid URL: {problem}" in message
    assert "RELEASEKIT_TESTPYPI_SIMPLE_URL" in message
