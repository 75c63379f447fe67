"""Index endpoints: PyPI and TestPyPI from twine's constants, configured indexes, overrides."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import canonicalize_name

from releasekit import __version__
from releasekit._redaction import register_credentials
from releasekit._settings import IndexSettings
from releasekit.errors import ConfigError

PYPI = "pypi"
TESTPYPI = "testpypi"
_TOKEN_ENV = {PYPI: "PYPI_API_TOKEN", TESTPYPI: "TEST_PYPI_API_TOKEN"}
USER_AGENT = f"releasekit/{__version__}"

if TYPE_CHECKING:
    import httpx

_http_log = logging.getLogger("releasekit.http")


def _log_response(response: httpx.Response) -> None:
    request = response.request
    _http_log.debug("%s %s %s", request.method, request.url, response.status_code)


def http_event_hooks() -> dict[str, list[Callable[..., Any]]]:
    """httpx event hooks for every client releasekit makes: each request's method, URL and
    status go to the ``releasekit.http`` logger (the verbose trail; never headers or bodies)."""
    return {"response": [_log_response]}


@functools.cache
def public_upload_urls() -> dict[str, str]:
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


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (this machine only)."""
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Index:
    """Where an index takes uploads and lists files, and where its credentials come from.

    The URLs never hold a user or password: those given in a configured URL are kept apart
    in ``upload_auth`` and ``simple_auth`` (user, password), never shown.
    ``allow_insecure_http`` lets credentials go over plain http to a host other than this
    machine.
    ``trusted_publishing_audience`` is the OIDC audience configured for an index other than
    PyPI and TestPyPI (whose audiences are fixed by the instance; see :attr:`oidc_audience`).
    """

    name: str
    upload_url: str
    simple_url: str
    token_env: str | None = None
    username: str = "__token__"
    trusted_publishing_audience: str | None = None
    allow_insecure_http: bool = False
    upload_auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    simple_auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def env_prefix(self) -> str:
        """Prefix of this index's environment variables: ``RELEASEKIT_<NAME>_``."""
        return "RELEASEKIT_" + self.name.upper().replace("-", "_") + "_"

    @property
    def is_public(self) -> bool:
        """True for PyPI and TestPyPI at their own endpoints (not overridden)."""
        public = public_upload_urls()
        return public.get(self.name) == self.upload_url

    @property
    def web_url(self) -> str:
        """The index's web root (scheme and host)."""
        parts = urlsplit(self.simple_url)
        return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))

    @property
    def oidc_audience(self) -> str | None:
        """The audience of this index's trusted-publishing identity tokens (None: it has none).

        PyPI and TestPyPI's audiences are fixed by the instance: each one's ``/_/oidc/audience``
        answers its own name, ``pypi`` or ``testpypi`` (warehouse's ``OIDC_AUDIENCE``), so an
        index called ``pypi`` or ``testpypi`` has that audience whatever its URLs; another index
        has one only when its table sets ``trusted-publishing-audience``.
        """
        if self.name in _TOKEN_ENV:
            return self.name
        return self.trusted_publishing_audience

    @property
    def oidc_root(self) -> str:
        """Where the index's trusted-publishing endpoints live: the web root of the upload URL,
        the host the minted token will be sent to (never the simple URL's host)."""
        return web_root(self.upload_url)

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
        for name, url in public_upload_urls().items()
    }


def resolve_index(name: str, configured: Mapping[str, IndexSettings] | None = None) -> Index:
    """The index called ``name``: built in or configured, then environment overrides applied.

    ``configured`` holds the ``[tool.releasekit.indexes]`` tables by name.
    """
    configured = configured or {}
    builtin = builtin_indexes()
    table = configured.get(name)
    base = builtin.get(name)
    if base is None and table is None:
        known = ", ".join(sorted({*builtin, *configured}))
        raise ConfigError(
            f"Unknown index {name!r}.",
            fix=f"Use one of: {known}; or add [tool.releasekit.indexes.{name}].",
        )
    table = table or IndexSettings()
    default = base or Index(name=name, upload_url="", simple_url="")
    index = Index(
        name=name,
        upload_url=default.upload_url if table.upload_url is None else table.upload_url,
        simple_url=default.simple_url if table.simple_url is None else table.simple_url,
        token_env=default.token_env if table.token_env is None else table.token_env,
        username=default.username if table.username is None else table.username,
        trusted_publishing_audience=table.trusted_publishing_audience,
    )
    if base is not None and table.trusted_publishing_audience not in (None, name):
        raise ConfigError(
            f"[tool.releasekit.indexes.{name}] trusted-publishing-audience is "
            f"{table.trusted_publishing_audience!r}, but {name}'s audience is {name!r}.",
            why=f"The instance fixes the audience of {name}'s trusted publishing; another "
            "audience would mint tokens meant for another index.",
            fix="Remove trusted-publishing-audience from this table.",
        )
    upload = os.environ.get(index.env_prefix + "UPLOAD_URL") or index.upload_url
    simple = os.environ.get(index.env_prefix + "SIMPLE_URL") or index.simple_url
    if not upload or not simple:
        raise ConfigError(
            f"Index {name!r} needs both an upload URL and a simple URL.",
            fix=f"Set upload-url and simple-url in [tool.releasekit.indexes.{name}], or "
            f"{index.env_prefix}UPLOAD_URL and {index.env_prefix}SIMPLE_URL.",
        )
    for what, url, variable in (("upload", upload, "UPLOAD_URL"), ("simple", simple, "SIMPLE_URL")):
        problem = url_problem(url)
        if problem:
            raise ConfigError(
                f"The {what} URL of index {name!r} is not a valid URL: {problem}.",
                fix=f"Correct {index.env_prefix}{variable} or {what}-url in "
                f"[tool.releasekit.indexes.{name}]: http:// or https://, a host, an optional "
                "port, a path.",
            )
    if not simple.endswith("/"):
        simple += "/"
    upload, upload_auth = split_userinfo(upload)
    simple, simple_auth = split_userinfo(simple)
    return dataclasses.replace(
        index,
        upload_url=upload,
        simple_url=simple,
        allow_insecure_http=table.allow_insecure_http,
        upload_auth=upload_auth,
        simple_auth=simple_auth,
    )


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its ``user:password@`` part, and that (user, password) decoded, or
    None. The password is registered for redaction (also as a Basic credential)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    register_credentials(user, password)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), (
        user,
        password,
    )


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an index URL (None: nothing); never repeats the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc).lower()
    if parts.scheme not in ("http", "https"):
        scheme = f"{parts.scheme}://" if parts.scheme else "missing"
        return f"the scheme is {scheme}, not http:// or https://"
    if not parts.hostname:
        return "it has no host"
    if port == 0:
        return "port 0"
    return None
