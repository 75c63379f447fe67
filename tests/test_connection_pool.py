"""Index clients borrow the process's one connection pool (issue 14: one pool for all
packages): against a real index that keeps connections alive, the next package's client
reuses the connection, while requests a proxy should carry still go through it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pypiserver
import pytest
import waitress

from releasekit.indexes import Index, IndexClient


@pytest.fixture
def keep_alive_index(tmp_path: Path) -> Iterator[Index]:
    """pypiserver's own app served by waitress, a WSGI server that keeps connections alive
    (releasekit's LocalIndex uses wsgiref, which closes each one)."""
    app = pypiserver.app(
        roots=[str(tmp_path)], authenticate=[], password_file=".", disable_fallback=True
    )
    server = waitress.create_server(app, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/"
    try:
        yield Index("keepalive", url, url + "simple/")
    finally:
        server.close()


def _local_port(index: Index) -> int:
    """The local port of the connection a fresh client's read went over."""
    with IndexClient(index) as client:
        response = client.get(index.simple_url)
        assert response.status_code == 200
        return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_clients_of_one_process_reuse_one_connection(
    keep_alive_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    first = _local_port(keep_alive_index)
    assert [_local_port(keep_alive_index) for _ in range(3)] == [first] * 3


def test_with_all_proxy_set_nothing_bypasses_the_proxy(
    keep_alive_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALL_PROXY is httpx's least specific pattern, as the shared pool's is: the pool steps
    aside rather than take the proxy's place."""
    from releasekit.indexes.network import client_options

    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert "all://" not in client_options()["mounts"]
