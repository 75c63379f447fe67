"""The read side of an index: the simple API (PEP 691 JSON / PEP 503 HTML) and its client."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import ssl
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
from packaging.version import Version

from releasekit._distributions import parse_filename
from releasekit.errors import DistributionError, IndexUnavailable
from releasekit.indexes.endpoints import USER_AGENT, Index, http_event_hooks
from releasekit.indexes.retry import RetryPolicy, describe_http_failure

_log = logging.getLogger(__name__)

_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True)
class IndexFile:
    """One file an index lists for a project."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool | str = False
    requires_python: str | None = None

    @property
    def version(self) -> Version | None:
        """The version in the filename (None if the name is not a distribution's)."""
        parsed = parse_filename(self.filename)
        return parsed[1] if parsed else None

    @property
    def is_yanked(self) -> bool:
        """True when the index marks this file yanked."""
        return self.yanked is not False


class _LinkParser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.files: list[IndexFile] = []
        self._attrs: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._attrs is None:
            return
        attrs, self._attrs = self._attrs, None
        href = attrs.get("href") or ""
        url, _, fragment = href.partition("#")
        algo, _, digest = fragment.partition("=")
        filename = "".join(self._text).strip() or url.rsplit("/", 1)[-1]
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        self.files.append(
            IndexFile(
                filename=filename,
                url=urljoin(self.base, url),
                sha256=digest.lower() if algo == "sha256" and digest else None,
                yanked=yanked,
                requires_python=attrs.get("data-requires-python"),
            )
        )


def parse_simple_page(body: str, content_type: str, base_url: str) -> list[IndexFile]:
    """The files on a project's simple page, in PEP 691 JSON or PEP 503 HTML."""
    if content_type.split(";")[0].strip() == _JSON:
        data = json.loads(body)
        return [
            IndexFile(
                filename=item["filename"],
                url=urljoin(base_url, item["url"]),
                sha256=(item.get("hashes") or {}).get("sha256"),
                yanked=item.get("yanked", False),
                requires_python=item.get("requires-python"),
            )
            for item in data.get("files", [])
        ]
    parser = _LinkParser(base_url)
    parser.feed(body)
    return parser.files


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context httpx would make (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured),
    made once per process and CA setting: loading the CA bundle is the costliest part of
    opening a client, and a monorepo opens several clients per package."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    changed = os.stat(cafile).st_mtime_ns if cafile and os.path.isfile(cafile) else None
    return _tls_context(cafile, capath, changed)


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None, capath: str | None, changed: int | None) -> ssl.SSLContext:
    """httpx's own context for this CA setting (the arguments are the cache key)."""
    return httpx.create_ssl_context(trust_env=True)


class IndexClient:
    """Reads an index's simple API with retries. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        index: Index,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.index = index
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            headers={"Accept": _ACCEPT, "Cache-Control": "no-cache", "User-Agent": USER_AGENT},
            transport=transport,
            trust_env=True,
            verify=tls_context(),
            event_hooks=http_event_hooks(),
        )

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, url: str) -> httpx.Response:
        """GET ``url`` with retries; raises on any status >= 400 other than 404."""

        def fetch(budget: float) -> httpx.Response:
            response = self._http.get(url, timeout=min(self.timeout, budget))
            if response.status_code != 404:
                response.raise_for_status()
            return response

        return self.retry.run(fetch, f"read {url}", self.index)

    def listed_sha256(self, item: IndexFile, max_bytes: int) -> str | None:
        """The sha256 of a listed file: the index's own, or when the page gives no hash
        (plain PEP 503), the file's, downloaded and hashed as a stream. None when the file
        is gone (404). A file over ``max_bytes`` (the local file's size) is not read further:
        :class:`DistributionError`, it cannot be the local file.
        """
        if item.sha256 is not None:
            return item.sha256.lower()
        _log.debug(
            "%s lists %s without a sha256: downloading it to hash", self.index.name, item.filename
        )

        def download(budget: float) -> str | None:
            digest, size = hashlib.sha256(), 0
            with self._http.stream("GET", item.url, timeout=min(self.timeout, budget)) as answer:
                if answer.status_code == 404:
                    return None
                answer.raise_for_status()
                for chunk in answer.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise DistributionError(
                            f"{item.filename} on {self.index.display} is larger than the local "
                            f"file ({max_bytes:,} B), so it is not the local file.",
                            why="The index holds another file under this name; an index never "
                            "lets a filename be reused with other content.",
                            fix="Bump the version, build and upload again.",
                        )
                    digest.update(chunk)
            return digest.hexdigest()

        return self.retry.run(download, f"download {item.filename} to hash it", self.index)

    def project_files(self, name: str) -> list[IndexFile]:
        """Every file the index lists for project ``name`` ([] when the project is unknown)."""
        url = self.index.project_url(name)
        try:
            response = self.get(url)
        except httpx.HTTPStatusError as exc:
            raise IndexUnavailable(
                f"{self.index.display} answered {describe_http_failure(exc)} for {url}.",
                why="The simple URL may be wrong, or the index needs credentials to read.",
                fix=f"Check the simple URL ({self.index.env_prefix}SIMPLE_URL or "
                "[tool.releasekit.indexes]).",
            ) from exc
        if response.status_code == 404:
            return []
        return parse_simple_page(
            response.text, response.headers.get("content-type", ""), str(response.url)
        )

    def versions(self, name: str) -> dict[Version, list[IndexFile]]:
        """Files of project ``name`` grouped by version."""
        grouped: dict[Version, list[IndexFile]] = {}
        for item in self.project_files(name):
            if item.version is not None:
                grouped.setdefault(item.version, []).append(item)
        return grouped
