"""The network as this machine has it: its certificate authorities and its proxies.

Like pip and uv: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (and nothing else then);
otherwise the system trust store (the ``truststore`` package: the operating system's own
verifier on Windows and macOS, its CA bundle elsewhere) together with certifi's bundle.
Proxies come from ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (httpx's
``trust_env``); requests that go directly share the process's one connection pool, so the
packages of a monorepo and the phases of a release reuse their connections to an index. A
proxy sees only the ``CONNECT host:port`` of an https request, never its headers; a
plain-http request carrying credentials (a loopback index, or one allowed
``allow-insecure-http``) goes directly, never through a proxy that would read them.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import httpx


def tls_context() -> ssl.SSLContext:
    """The certificate authorities to trust, as pip and uv choose them (see the module); made
    once per process and CA setting, since loading them is the costliest part of opening a
    client (a CA file rewritten in place is read again)."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    changed = os.stat(cafile).st_mtime_ns if cafile and os.path.isfile(cafile) else None
    return _tls_context(cafile, capath, changed)


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None, capath: str | None, changed: int | None) -> ssl.SSLContext:
    """The context for one CA setting (the arguments are the cache key)."""
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    try:
        import truststore
    except ImportError:  # pragma: no cover - a dependency; kept optional for vendoring
        return ssl.create_default_context(cafile=certifi.where())
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=certifi.where())
    return context


class _SharedPool(httpx.BaseTransport):
    """The process's one pool of connections to the indexes, lent to every client: a client
    closing leaves it open for the next package's client (no new TCP and TLS handshake per
    package and phase). Credentials go per request, never with a connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._transport = httpx.HTTPTransport(verify=context)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)

    def close(self) -> None:
        """Kept open: idle connections close after a few seconds, and with the process."""


@functools.lru_cache(maxsize=8)
def _shared_pool(context: ssl.SSLContext, pid: int) -> _SharedPool:
    """One pool per CA setting and process (a forked child never uses its parent's sockets)."""
    return _SharedPool(context)


def client_options(*, credentials: bool = False, shared: bool = True) -> dict[str, Any]:
    """Keyword arguments for an ``httpx.Client``: this machine's CAs and proxies, and (with
    ``shared``) the process's connection pool for requests that go directly; with
    ``credentials``, plain-http requests bypass every proxy."""
    context = tls_context()
    mounts: dict[str, httpx.BaseTransport | None] = {}
    if shared and not getproxies().get("all"):  # a scheme's proxy is more specific: it wins
        mounts["all://"] = _shared_pool(context, os.getpid())
    if credentials:
        mounts["http://"] = None
    return {"verify": context, "trust_env": True, "mounts": mounts}


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (none when NO_PROXY exempts its host)."""
    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass(parts.netloc):
        return None
    return proxy
