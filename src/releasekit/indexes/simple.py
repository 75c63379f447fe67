"""The read side of an index: the simple API (PEP 691 JSON / PEP 503 HTML) and its client."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
from packaging.version import Version

from releasekit._distributions import parse_filename
from releasekit.errors import DistributionError, IndexUnavailable
from releasekit.indexes.endpoints import USER_AGENT, Index, http_event_hooks
from releasekit.indexes.network import client_options
from releasekit.indexes.retry import RetryPolicy, describe_http_failure

_log = logging.getLogger(__name__)

_JSON = "application/vnd.pypi.simple.v1+json"
_INTEGRITY = "application/vnd.pypi.integrity.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True)
class IndexFile:
    """One file an index lists for a project."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool | str = False
    requires_python: str | None = None
    #: PEP 700: the file's size in bytes and when it was uploaded (None when not offered).
    size: int | None = None
    upload_time: datetime | None = None
    #: PEP 740: the URL of the file's provenance (None when the index offers none for it).
    provenance: str | None = None

    @property
    def version(self) -> Version | None:
        """The version in the filename (None if the name is not a distribution's)."""
        parsed = parse_filename(self.filename)
        return parsed[1] if parsed else None

    @property
    def is_yanked(self) -> bool:
        """True when the index marks this file yanked."""
        return self.yanked is not False


#: PEP 792 statuses under which an index must refuse new files.
NO_UPLOADS = ("archived", "quarantined")


@dataclass(frozen=True)
class ProjectPage:
    """A project's page on the simple API: its files, and what the index says of the project.

    ``versions`` (PEP 700) also names releases that have no file left; ``status`` and
    ``status_reason`` are the PEP 792 project status (``"active"`` when not given);
    ``api_version`` is the page's ``api-version`` (``(1, 0)`` when not given).
    """

    files: tuple[IndexFile, ...] = ()
    versions: tuple[str, ...] = ()
    status: str = "active"
    status_reason: str | None = None
    api_version: tuple[int, ...] = (1, 0)
    found: bool = True
    by_version: dict[Version, list[IndexFile]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[Version, list[IndexFile]] = {}
        for item in self.files:
            if item.version is not None:
                grouped.setdefault(item.version, []).append(item)
        object.__setattr__(self, "by_version", grouped)

    @property
    def offers_provenance(self) -> bool:
        """True when the page can carry PEP 740 provenance (API version 1.3 or later)."""
        return self.api_version >= (1, 3) or any(f.provenance for f in self.files)

    def first_upload(self, version: Version) -> datetime | None:
        """When ``version`` was released: the earliest upload time of its files (PEP 700)."""
        times = [f.upload_time for f in self.by_version.get(version, []) if f.upload_time]
        return min(times) if times else None


def _api_version(text: object) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (1, 0)


def _upload_time(text: object) -> datetime | None:
    """A PEP 700 ``upload-time`` (ISO 8601, UTC, ``Z``) as an aware datetime; None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _status(data: dict[str, object]) -> tuple[str, str | None]:
    """PEP 792 status and reason: in ``meta`` (the spec), or a top-level ``project-status``."""
    meta = data.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    status, reason = meta.get("project-status"), meta.get("project-status-reason")
    top = data.get("project-status")
    if isinstance(top, dict):
        status, reason = top.get("status", status), top.get("reason", reason)
    elif isinstance(top, str):
        status = top
    return (
        str(status).lower() if status else "active",
        str(reason) if reason else None,
    )


class _LinkParser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.files: list[IndexFile] = []
        self.meta: dict[str, str] = {}
        self._attrs: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs, self._text = dict(attrs), []
        elif tag == "meta":
            found = dict(attrs)
            name, content = found.get("name"), found.get("content")
            if name and name.startswith("pypi:") and content is not None:
                self.meta[name] = content

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
                provenance=urljoin(self.base, attrs["data-provenance"] or "")
                if attrs.get("data-provenance")
                else None,
            )
        )


def parse_project_page(body: str, content_type: str, base_url: str) -> ProjectPage:
    """A project's simple page, in PEP 691 JSON (with the PEP 700, 740 and 792 fields where
    the index gives them) or PEP 503 HTML (with its ``pypi:`` meta tags)."""
    if content_type.split(";")[0].strip() == _JSON:
        data = json.loads(body)
        status, reason = _status(data)
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        files = tuple(
            IndexFile(
                filename=item["filename"],
                url=urljoin(base_url, item["url"]),
                sha256=(item.get("hashes") or {}).get("sha256"),
                yanked=item.get("yanked", False),
                requires_python=item.get("requires-python"),
                size=item["size"] if isinstance(item.get("size"), int) else None,
                upload_time=_upload_time(item.get("upload-time")),
                provenance=urljoin(base_url, item["provenance"])
                if isinstance(item.get("provenance"), str)
                else None,
            )
            for item in data.get("files", [])
        )
        return ProjectPage(
            files=files,
            versions=tuple(str(v) for v in data.get("versions") or ()),
            status=status,
            status_reason=reason,
            api_version=_api_version(meta.get("api-version", "1.0")),
        )
    parser = _LinkParser(base_url)
    parser.feed(body)
    return ProjectPage(
        files=tuple(parser.files),
        status=parser.meta.get("pypi:project-status", "active").lower(),
        status_reason=parser.meta.get("pypi:project-status-reason") or None,
        api_version=_api_version(parser.meta.get("pypi:repository-version", "1.0")),
    )


def parse_simple_page(body: str, content_type: str, base_url: str) -> list[IndexFile]:
    """The files on a project's simple page, in PEP 691 JSON or PEP 503 HTML."""
    return list(parse_project_page(body, content_type, base_url).files)


class _OriginAuth(httpx.Auth):
    """Basic authentication sent only to the index's own origin (scheme, host and port), never
    to a file host or a redirect target elsewhere."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self._origin = _origin(httpx.URL(url))
        self._header = httpx.BasicAuth(username, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self._origin:
            yield from self._header.auth_flow(request)
        else:
            yield request


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class IndexClient:
    """Reads an index's simple API with retries. Use as a context manager, or call ``close()``.

    ``credentials`` (username, password) are the read credentials of a private index (default:
    a user and password given in its simple URL); they go to the index's own origin only.
    """

    def __init__(
        self,
        index: Index,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.index = index
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        auth = credentials or index.simple_auth
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            headers={"Accept": _ACCEPT, "Cache-Control": "no-cache", "User-Agent": USER_AGENT},
            transport=transport,
            auth=_OriginAuth(index.simple_url, *auth) if auth else None,
            **client_options(credentials=auth is not None, shared=transport is None),
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
        return list(self.project_page(name).files)

    def project_page(self, name: str) -> ProjectPage:
        """Project ``name``'s page (``found`` is False when the index does not know it)."""
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
            return ProjectPage(found=False)
        return parse_project_page(
            response.text, response.headers.get("content-type", ""), str(response.url)
        )

    def versions(self, name: str) -> dict[Version, list[IndexFile]]:
        """Files of project ``name`` grouped by version."""
        return self.project_page(name).by_version

    def provenance_json(self, item: IndexFile) -> str | None:
        """The text of ``item``'s PEP 740 provenance object, None when it has none (404)."""
        if item.provenance is None:
            return None

        def fetch(budget: float) -> httpx.Response:
            response = self._http.get(
                item.provenance or "",
                headers={"Accept": _INTEGRITY},
                timeout=min(self.timeout, budget),
            )
            if response.status_code != 404:
                response.raise_for_status()
            return response

        response = self.retry.run(fetch, f"read the provenance of {item.filename}", self.index)
        return None if response.status_code == 404 else response.text
