"""Index endpoints and the read side of the simple API, against real pypiserver instances."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from twine.utils import DEFAULT_REPOSITORY, TEST_REPOSITORY

from releasekit._polling import Backoff
from releasekit._settings import IndexSettings
from releasekit.errors import ConfigError, IndexUnavailable
from releasekit.indexes import (
    Index,
    IndexClient,
    RetryPolicy,
    builtin_indexes,
    parse_simple_page,
    resolve_index,
    web_root,
)
from releasekit.indexes.local import LocalIndex

JSON = "application/vnd.pypi.simple.v1+json"


def test_builtin_endpoints_come_from_twine() -> None:
    indexes = builtin_indexes()
    assert indexes["pypi"].upload_url == DEFAULT_REPOSITORY
    assert indexes["testpypi"].upload_url == TEST_REPOSITORY
    prod_host = urlsplit(DEFAULT_REPOSITORY).hostname or ""
    assert indexes["pypi"].host == prod_host.removeprefix("upload.")
    assert indexes["testpypi"].simple_url == web_root(TEST_REPOSITORY) + "simple/"
    assert indexes["pypi"].token_env == "PYPI_API_TOKEN"
    assert indexes["testpypi"].token_env == "TEST_PYPI_API_TOKEN"
    assert indexes["pypi"].is_public


def test_env_overrides_and_configured_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASEKIT_TESTPYPI_UPLOAD_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("RELEASEKIT_TESTPYPI_SIMPLE_URL", "http://127.0.0.1:1/simple")
    index = resolve_index("testpypi")
    assert (index.upload_url, index.simple_url) == (
        "http://127.0.0.1:1/",
        "http://127.0.0.1:1/simple/",
    )
    assert not index.is_public and index.token_env == "TEST_PYPI_API_TOKEN"
    private = resolve_index(
        "corp",
        {
            "corp": IndexSettings(
                upload_url="http://127.0.0.1:2/",
                simple_url="http://127.0.0.1:2/s/",
                token_env="CORP_TOKEN",
            )
        },
    )
    assert (private.token_env, private.env_prefix) == ("CORP_TOKEN", "RELEASEKIT_CORP_")
    with pytest.raises(ConfigError, match="Unknown index 'nope'"):
        resolve_index("nope")
    with pytest.raises(ConfigError, match="needs both"):
        resolve_index("half", {"half": IndexSettings(upload_url="http://127.0.0.1:3/")})


def test_parse_pep691_json() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "pkg",
            "files": [
                {
                    "filename": "pkg-1.0.tar.gz",
                    "url": "../../files/pkg-1.0.tar.gz",
                    "hashes": {"sha256": "ab"},
                    "yanked": False,
                },
                {
                    "filename": "pkg-0.9.tar.gz",
                    "url": "pkg-0.9.tar.gz",
                    "hashes": {},
                    "yanked": "broken",
                    "requires-python": ">=3.10",
                },
            ],
        }
    )
    files = parse_simple_page(body, JSON, "http://127.0.0.1/simple/pkg/")
    assert [f.filename for f in files] == ["pkg-1.0.tar.gz", "pkg-0.9.tar.gz"]
    assert files[0].url == "http://127.0.0.1/files/pkg-1.0.tar.gz"
    assert (files[0].sha256, files[0].is_yanked) == ("ab", False)
    assert (files[1].sha256, files[1].yanked, files[1].requires_python) == (
        None,
        "broken",
        ">=3.10",
    )
    assert str(files[1].version) == "0.9"


def test_parse_pep503_html() -> None:
    body = (
        "<html><body>"
        '<a href="/packages/pkg-1.0-py3-none-any.whl#sha256=ABCD">pkg-1.0-py3-none-any.whl</a>'
        '<a href="pkg-0.9.tar.gz#md5=00" data-yanked="" data-requires-python="&gt;=3.8">pkg-0.9.tar.gz</a>'
        '<a href="x.tar.gz" data-yanked="security">x-0.1.tar.gz</a>'
        "</body></html>"
    )
    files = parse_simple_page(body, "text/html", "http://127.0.0.1/simple/pkg/")
    assert files[0].url == "http://127.0.0.1/packages/pkg-1.0-py3-none-any.whl"
    assert (files[0].sha256, files[0].is_yanked) == ("abcd", False)
    assert (files[1].sha256, files[1].yanked, files[1].requires_python) == (None, True, ">=3.8")
    assert files[2].yanked == "security"


def test_client_reads_a_real_pypiserver(
    local_index: Callable[[str, str], LocalIndex], tmp_path: Path
) -> None:
    index = local_index("testpypi", "secret-0123456789")
    content = b"not really an sdist"
    (index.root / "packages" / "sample_pkg-0.1.0.tar.gz").write_bytes(content)
    (index.root / "packages" / "sample_pkg-0.2.0.tar.gz").write_bytes(b"x")
    with IndexClient(index.index) as client:
        files = client.project_files("Sample.Pkg")
        assert client.project_files("absent-project") == []
        versions = client.versions("sample-pkg")
    assert sorted(f.filename for f in files) == [
        "sample_pkg-0.1.0.tar.gz",
        "sample_pkg-0.2.0.tar.gz",
    ]
    first = next(f for f in files if f.filename == "sample_pkg-0.1.0.tar.gz")
    assert first.sha256 == hashlib.sha256(content).hexdigest()
    assert first.url.startswith(index.url)
    assert sorted(str(v) for v in versions) == ["0.1.0", "0.2.0"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_index_fails_after_bounded_retries() -> None:
    port = _closed_port()
    index = Index("testpypi", f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/simple/")
    policy = RetryPolicy(attempts=3, backoff=Backoff(first=0.01, cap=0.02), total_seconds=10)
    with IndexClient(index, retry=policy) as client, pytest.raises(IndexUnavailable) as caught:
        client.project_files("pkg")
    message = str(caught.value)
    assert "after 3 tries" in message and f"127.0.0.1:{port}" in message
    assert "connection refused" in message


def test_retries_then_succeeds_on_transient_5xx() -> None:
    answers = iter([503, 502, 200])
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        seen.append(status)
        return httpx.Response(status, headers={"content-type": JSON}, json={"files": []})

    index = Index("x", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    policy = RetryPolicy(attempts=4, backoff=Backoff(first=0.001, cap=0.002))
    with IndexClient(index, retry=policy, transport=httpx.MockTransport(handler)) as client:
        assert client.project_files("pkg") == []
    assert seen == [503, 502, 200]


def test_client_error_status_is_explained() -> None:
    index = Index("x", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
    transport = httpx.MockTransport(lambda request: httpx.Response(403))
    with (
        IndexClient(index, transport=transport) as client,
        pytest.raises(IndexUnavailable, match="HTTP 403"),
    ):
        client.project_files("pkg")
