"""What is worth retrying against an index, and how long; what a failure was, in words."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from releasekit._polling import Backoff, Deadline
from releasekit.errors import IndexUnavailable
from releasekit.indexes.endpoints import Index
from releasekit.indexes.network import proxy_for

T = TypeVar("T")
_log = logging.getLogger(__name__)

_DOWN = "The index is down, unreachable from here, or overloaded."
_RERUN = (
    "Check the URL and your network, then run the same session again; it resumes where it stopped."
)
#: OpenSSL's reasons when the other end answered a TLS hello with something else (plain HTTP).
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
}


@dataclass(frozen=True)
class Failure:
    """A failed request, in words: its cause, whether trying again can help, why, the fix."""

    cause: str
    transient: bool
    why: str = _DOWN
    fix: str = _RERUN


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host(exc: Exception) -> str:
    try:
        return str(exc.request.url.host) if isinstance(exc, httpx.RequestError) else ""
    except RuntimeError:  # an exception raised before it had a request
        return ""


def _tls_failure(error: ssl.SSLError, host: str) -> Failure:
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or error.reason or str(error)
        return Failure(
            f"TLS certificate verification failed ({detail})",
            transient=False,
            why=f"The certificate {host or 'the index'} presented is not signed by a certificate "
            "authority this machine trusts (a self-signed or in-house CA), is for another host "
            "name, or has expired. Trying again cannot help.",
            fix="If the index uses its own certificate authority, set SSL_CERT_FILE to a PEM "
            "file with that CA's certificate (pip and uv read the same variable); otherwise "
            "correct the host name in the URL.",
        )
    if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Failure(f"the connection closed during the TLS handshake ({error})", True)
    if error.reason in _NOT_TLS:
        return Failure(
            f"TLS handshake failed: the server does not speak TLS on that port ({error.reason})",
            transient=False,
            why="The URL says https://, and the server at that port answers in plain HTTP "
            "(or another protocol). Trying again cannot help.",
            fix="Use the index's https port, or http:// if the server is plain HTTP on this "
            "machine (127.0.0.1).",
        )
    return Failure(
        f"TLS handshake failed ({error.reason or error})",
        transient=False,
        why="The index and this machine could not agree on a secure connection.",
        fix="Check the URL's scheme and port; an index behind an inspecting proxy needs that "
        "proxy's CA in SSL_CERT_FILE.",
    )


def _connect_failure(exc: httpx.TransportError) -> Failure:
    host = _host(exc)
    for error in _chain(exc):
        if isinstance(error, ssl.SSLError):
            return _tls_failure(error, host)
        if isinstance(error, socket.gaierror):
            temporary = error.errno == getattr(socket, "EAI_AGAIN", None)
            return Failure(
                f"DNS lookup of {host or 'the host'} failed ({error.strerror or error})",
                transient=temporary,
                why="The host name in the URL does not exist, or no DNS server answers from "
                "here." + ("" if temporary else " Trying again cannot help."),
                fix="Check the host name in the URL (a typo?) and this machine's network/DNS.",
            )
        if isinstance(error, ConnectionRefusedError):
            proxy = proxy_for(str(exc.request.url)) if _host(exc) else None
            if proxy:
                return Failure(
                    f"connection refused by the proxy {proxy}",
                    transient=True,
                    why="The proxy named by HTTPS_PROXY / HTTP_PROXY / ALL_PROXY does not "
                    "answer: it is down, or the variable names the wrong host or port.",
                    fix="Check the proxy variables (and NO_PROXY for hosts to reach directly), "
                    "then run the same session again.",
                )
            return Failure(
                "connection refused or host unreachable",
                transient=True,
                why="Nothing listens at that host and port: the index is down, or the port in "
                "the URL is wrong.",
            )
    return Failure(f"connection failed or host unreachable ({exc})", True)


def classify(exc: Exception) -> Failure:
    """What ``exc`` (from a request to an index) was, and whether a retry can help."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return Failure(
            f"HTTP {status} {exc.response.reason_phrase}", status >= 500 or status == 429
        )
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return Failure(
            f"invalid URL ({exc})",
            transient=False,
            why="The index URL is malformed, so no request could be sent.",
            fix="Correct the URL (RELEASEKIT_<INDEX>_UPLOAD_URL / _SIMPLE_URL, or "
            "[tool.releasekit.indexes]): scheme http:// or https://, a host, an optional port.",
        )
    if isinstance(exc, httpx.ProxyError):
        return Failure(
            f"the proxy refused the connection ({exc})",
            transient=False,
            why="HTTPS_PROXY / HTTP_PROXY / ALL_PROXY names a proxy that refused to connect "
            "to the index.",
            fix="Check the proxy variables, or add the index's host to NO_PROXY.",
        )
    if isinstance(exc, httpx.TimeoutException):
        return Failure(
            "timed out",
            transient=True,
            why="The index did not answer in time: it is slow or overloaded, or the network "
            "drops the connection.",
        )
    if isinstance(exc, httpx.ConnectError):
        return _connect_failure(exc)
    if isinstance(exc, httpx.TransportError):
        return Failure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, True)
    return Failure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, False)


def is_transient(exc: Exception) -> bool:
    """True for failures worth retrying: refused connections, timeouts, 5xx and 429 answers.

    Not: certificate and TLS handshake failures, invalid URLs, unknown hosts, proxy refusals.
    """
    return classify(exc).transient


def describe_http_failure(exc: Exception) -> str:
    """A short plain description of an HTTP failure, naming its real cause."""
    return classify(exc).cause


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.5, factor=2.0, cap=8.0))
    total_seconds: float = 60.0

    def run(self, action: Callable[[float], T], what: str, index: Index) -> T:
        """Run ``action(budget)``, retrying transient failures (then :class:`IndexUnavailable`).

        ``budget`` is the seconds left of ``total_seconds`` (at least one): each attempt
        bounds its own timeouts by it, so one stalled request cannot outlast the policy. A failure
        that no retry can cure (TLS, invalid URL, unknown host) is explained at once.
        """
        deadline = Deadline(self.total_seconds)
        delays = self.backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return action(max(deadline.remaining, 1.0))
            except Exception as exc:
                failure = classify(exc)
                if not failure.transient:
                    if isinstance(exc, httpx.HTTPStatusError) or not isinstance(
                        exc, (httpx.RequestError, httpx.InvalidURL)
                    ):
                        raise
                    raise IndexUnavailable(
                        f"Could not {what} at {index.display}: {failure.cause}.",
                        why=failure.why,
                        fix=failure.fix,
                    ) from exc
                if attempt >= self.attempts or deadline.expired:
                    raise IndexUnavailable(
                        f"Could not {what} at {index.display} after {attempt} "
                        f"tr{'ies' if attempt > 1 else 'y'} over {deadline.elapsed:.1f} s: "
                        f"{failure.cause}.",
                        why=failure.why,
                        fix=failure.fix,
                    ) from exc
                delay = next(delays)
                _log.debug(
                    "%s at %s failed (%s); try %d of %d in %.2f s",
                    what,
                    index.display,
                    describe_http_failure(exc),
                    attempt + 1,
                    self.attempts,
                    min(delay, deadline.remaining),
                )
                deadline.wait(delay)
