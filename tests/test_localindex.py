"""LocalIndex: real, independent pypiserver instances that authenticate like PyPI."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from releasekit.indexes.local import LocalIndex


def test_two_independent_instances_with_token_auth(
    local_index: Callable[[str, str], LocalIndex],
) -> None:
    test = local_index("testpypi", "test-secret-0123456789")
    prod = local_index("pypi", "prod-secret-0123456789")
    assert test.url != prod.url and test.url.startswith("http://127.0.0.1:")
    assert test.environ() == {
        "RELEASEKIT_TESTPYPI_UPLOAD_URL": test.url,
        "RELEASEKIT_TESTPYPI_SIMPLE_URL": test.url + "simple/",
    }
    form = {":action": "file_upload", "name": "pkg", "version": "1.0"}
    files = {"content": ("pkg-1.0.tar.gz", b"data")}
    assert httpx.post(test.url, data=form, files=files).status_code == 401
    wrong = httpx.post(test.url, data=form, files=files, auth=("__token__", prod.token))
    assert wrong.status_code == 403
    right = httpx.post(test.url, data=form, files=files, auth=("__token__", test.token))
    assert right.status_code == 200
    assert httpx.get(test.url + "simple/pkg/").status_code == 200
    assert httpx.get(prod.url + "simple/pkg/").status_code == 404  # no fallback to a real index
    test.remove("pkg", "1.0")
    assert httpx.get(test.url + "simple/pkg/").status_code == 404


def test_stop_removes_temporary_root() -> None:
    index = LocalIndex("pypi", "secret-0123456789").start()
    root = index.root
    assert (root / "packages").is_dir()
    index.stop()
    assert not root.exists()
