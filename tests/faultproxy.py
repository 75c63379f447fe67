"""A TCP proxy on 127.0.0.1 in front of a real index server, that misbehaves on demand.

Modes, applied to the next ``times`` requests whose method is in ``methods`` and whose head
holds every one of ``match`` (case-insensitive), after ``skip`` such requests passed (other
requests, and all requests once the faults are used up, pass through):

* ``pass``: forward both ways untouched;
* ``reset``: forward the request head and ``after`` bytes of its body, then reset the
  connection; with ``after=None`` the whole request reaches the server and the connection
  is reset instead of answering (the index stored the file, the client never heard);
* ``503``: answer ``503 Service Unavailable`` without asking the server;
* ``stall``: accept the request and never answer (client timeouts fire);
* ``answer``: answer with the raw HTTP ``response`` without asking the server: a stale copy
  a cache in front of an index would serve (:meth:`fetch` takes one from the server);

and :meth:`down` / :meth:`up` close and reopen the listening port (connection refused
in between). ``served`` counts the faults served so far, ``seen`` the requests that matched.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
from types import TracebackType

_RESPONSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 19\r\nConnection: close\r\n\r\nService Unavailable"
)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to ``upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = 0
        self.mode = "pass"
        self.times = 0
        self.after: int | None = 0
        self.methods: frozenset[str] = frozenset({"POST"})
        self.match: tuple[bytes, ...] = ()
        self.skip = 0
        self.response = b""
        self.served = 0
        self.seen = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}/"

    def set(
        self,
        mode: str,
        times: int = 1,
        *,
        after: int | None = 0,
        methods: tuple[str, ...] = ("POST",),
        match: tuple[str, ...] = (),
        skip: int = 0,
        response: bytes = b"",
    ) -> None:
        """Misbehave as ``mode`` on the next ``times`` requests of ``methods`` that hold
        every one of ``match``, once ``skip`` of them have passed."""
        with self._lock:
            self.mode, self.times, self.after = mode, times, after
            self.methods = frozenset(methods)
            self.match = tuple(part.lower().encode() for part in match)
            self.skip, self.response, self.seen = skip, response, 0

    def fetch(self, path: str) -> bytes:
        """The server's whole raw answer to ``GET path`` now (status line, headers, body)."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=10)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        headers = "".join(
            f"{key}: {value}\r\n"
            for key, value in answer.getheaders()
            if key.lower() not in ("connection", "content-length", "transfer-encoding")
        )
        head = f"HTTP/1.1 {answer.status} {answer.reason}\r\n{headers}"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        return head.encode("latin-1") + body

    def start(self) -> FaultProxy:
        """Start listening (on a fresh port the first time, on the same port after down)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    up = start

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def stop(self) -> None:
        """Stop listening and drop every open connection (stalled ones too)."""
        self.down()
        self._closed.set()
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down() or stop()
            with self._lock:
                self._open.append(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _fault_for(self, head: bytes) -> str:
        method = head.split(b" ", 1)[0].decode("latin-1")
        lowered = head.lower()
        with self._lock:
            if method not in self.methods or not all(part in lowered for part in self.match):
                return "pass"
            self.seen += 1
            if self.mode == "pass" or self.times <= 0 or self.seen <= self.skip:
                return "pass"
            self.times -= 1
            self.served += 1
            return self.mode

    def _handle(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    client.close()
                    return
                head += chunk
            fault = self._fault_for(head)
            if fault in ("503", "answer"):
                client.sendall(_RESPONSE_503 if fault == "503" else self.response)
                client.close()
                return
            if fault == "stall":
                self._closed.wait()  # hold the connection open, answer nothing
                client.close()
                return
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._open.append(upstream)
            if fault == "reset":
                self._reset_mid_request(client, upstream, head)
                return
            upstream.sendall(head)
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            self._pipe(client, upstream)
        except OSError:
            client.close()

    def _reset_mid_request(
        self, client: socket.socket, upstream: socket.socket, head: bytes
    ) -> None:
        headers, _, body = head.partition(b"\r\n\r\n")
        length = 0
        for line in headers.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        limit = length if self.after is None else min(self.after, length)
        while len(body) < limit:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        upstream.sendall(headers + b"\r\n\r\n" + body[:limit])
        if self.after is None:
            upstream.recv(65536)  # the server's answer, which the client never gets
        _reset(upstream)
        _reset(client)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
