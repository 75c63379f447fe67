"""Package indexes: their endpoints, and the read side of the simple API (PEP 691 / PEP 503)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from packaging.utils import canonicalize_name
from packaging.version import Version

from releasekit import __version__
from releasekit.distributions import parse_filename
from releasekit.errors import ConfigError, IndexUnavailable
from releasekit.polling import Backoff, Deadline

T = TypeVar("T")

PYPI = "pypi"
TESTPYPI = "testpypi"
_TOKEN_ENV = {PYPI: "PYPI_API_TOKEN", TESTPYPI: "TEST_PYPI_API_TOKEN"}
_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
USER_AGENT = f"releasekit/{__version__}"


@functools.cache
def _public_upload_urls() -> dict[str, str]:
    """twine's ``DEFAULT_REPOSITORY`` and ``TEST_REPOSITORY``, read from ``twine.utils``.

    The two constants are read from the module's source rather than by importing it:
    importing ``twine.utils`` loads requests and urllib3 (0.2 s) for two strings.
    """
    spec = importlib.util.find_spec("twine.utils")
    constants: dict[str, str] = {}
    if spec is not None and spec.origin is not None:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                constants[node.targets[0].id] = node.value.value
    if "DEFAULT_REPOSITORY" not in constants or "TEST_REPOSITORY" not in constants:
        from twine.utils import DEFAULT_REPOSITORY, TEST_REPOSITORY  # pragma: no cover

        constants = {"DEFAULT_REPOSITORY": DEFAULT_REPOSITORY, "TEST_REPOSITORY": TEST_REPOSITORY}
    return {PYPI: constants["DEFAULT_REPOSITORY"], TESTPYPI: constants["TEST_REPOSITORY"]}


def web_root(upload_url: str) -> str:
    """A public index's web root from its upload endpoint (drops an ``upload.`` host prefix)."""
    parts = urlsplit(upload_url)
    host = parts.netloc.removeprefix("upload.")
    return urlunsplit((parts.scheme, host, "/", "", ""))


@dataclass(frozen=True)
class Index:
    """Where an index takes uploads and lists files, and where its credentials come from."""

    name: str
    upload_url: str
    simple_url: str
    token_env: str | None = None
    username: str = "__token__"

    @property
    def env_prefix(self) -> str:
        """Prefix of this index's environment variables: ``RELEASEKIT_<NAME>_``."""
        return "RELEASEKIT_" + self.name.upper().replace("-", "_") + "_"

    @property
    def is_public(self) -> bool:
        """True for PyPI and TestPyPI at their own endpoints (not overridden)."""
        public = _public_upload_urls()
        return public.get(self.name) == self.upload_url

    @property
    def web_url(self) -> str:
        """The index's web root (scheme and host)."""
        parts = urlsplit(self.simple_url)
        return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))

    @property
    def host(self) -> str:
        """The host name of the index's web root."""
        return urlsplit(self.simple_url).hostname or ""

    def project_url(self, name: str) -> str:
        """The simple-API page of project ``name``."""
        return urljoin(self.simple_url, canonicalize_name(name) + "/")

    @property
    def display(self) -> str:
        """How messages name this index: its name and its simple URL."""
        return f"{self.name} ({self.simple_url})"


def builtin_indexes() -> dict[str, Index]:
    """PyPI and TestPyPI, with endpoints from twine's constants."""
    return {
        name: Index(
            name=name,
            upload_url=url,
            simple_url=urljoin(web_root(url), "simple/"),
            token_env=_TOKEN_ENV[name],
        )
        for name, url in _public_upload_urls().items()
    }


def resolve_index(name: str, configured: dict[str, Any] | None = None) -> Index:
    """The index called ``name``: built in or configured, then environment overrides applied.

    ``configured`` is the ``indexes`` table of ``[tool.releasekit]``.
    """
    configured = configured or {}
    builtin = builtin_indexes()
    table = configured.get(name, {})
    base = builtin.get(name)
    if base is None and not table:
        known = ", ".join(sorted({*builtin, *configured}))
        raise ConfigError(
            f"Unknown index {name!r}.",
            fix=f"Use one of: {known}; or add [tool.releasekit.indexes.{name}].",
        )
    index = Index(
        name=name,
        upload_url=table.get("upload-url", base.upload_url if base else ""),
        simple_url=table.get("simple-url", base.simple_url if base else ""),
        token_env=table.get("token-env", base.token_env if base else None),
        username=table.get("username", "__token__"),
    )
    upload = os.environ.get(index.env_prefix + "UPLOAD_URL") or index.upload_url
    simple = os.environ.get(index.env_prefix + "SIMPLE_URL") or index.simple_url
    if not upload or not simple:
        raise ConfigError(
            f"Index {name!r} needs both an upload URL and a simple URL.",
            fix=f"Set upload-url and simple-url in [tool.releasekit.indexes.{name}], or "
            f"{index.env_prefix}UPLOAD_URL and {index.env_prefix}SIMPLE_URL.",
        )
    if not simple.endswith("/"):
        simple += "/"
    return Index(index.name, upload, simple, index.token_env, index.username)


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


def is_transient(exc: Exception) -> bool:
    """True for failures worth retrying: connection trouble, timeouts, 5xx and 429 answers."""
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status == 429
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.5, factor=2.0, cap=8.0))
    total_seconds: float = 60.0

    def run(self, action: Callable[[], T], what: str, index: Index) -> T:
        """Run ``action``, retrying transient failures (then :class:`IndexUnavailable`)."""
        deadline = Deadline(self.total_seconds)
        delays = self.backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return action()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt >= self.attempts or deadline.expired:
                    raise IndexUnavailable(
                        f"Could not {what} at {index.display} after {attempt} "
                        f"tr{'ies' if attempt > 1 else 'y'} over {deadline.elapsed:.1f} s: "
                        f"{describe_http_failure(exc)}.",
                        why="The index is down, unreachable from here, or overloaded.",
                        fix="Check the URL and your network, then run the same session again; "
                        "it resumes where it stopped.",
                    ) from exc
                deadline.wait(next(delays))


def describe_http_failure(exc: Exception) -> str:
    """A short plain description of an HTTP failure."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            headers={"Accept": _ACCEPT, "Cache-Control": "no-cache", "User-Agent": USER_AGENT},
            transport=transport,
            trust_env=False,
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

        def fetch() -> httpx.Response:
            response = self._http.get(url)
            if response.status_code != 404:
                response.raise_for_status()
            return response

        return self.retry.run(fetch, f"read {url}", self.index)

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
