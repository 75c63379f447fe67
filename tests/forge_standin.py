"""A stand-in for the few GitHub and GitLab REST endpoints that publish_release uses.

No real forge can run here, so this small server on 127.0.0.1 keeps releases and their files
in memory, answers as the forges do (status codes, JSON shapes, their 403 wording), and
records every request so tests can count them.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class ForgeState:
    """What the stand-in holds: releases by tag, their files, and every request seen."""

    token: str
    write: bool = True
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # tag or package -> files
    links: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: object = None) -> None:
        data = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        state.requests.append((self.command, url.path))
        body = self._body()
        if url.path.startswith("/api/v4/"):
            given = self.headers.get("JOB-TOKEN") or self.headers.get("PRIVATE-TOKEN")
            if given != state.token:
                return self._send(401, {"message": "401 Unauthorized"})
            return self._gitlab(url.path.removeprefix("/api/v4"), parse_qs(url.query), body)
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            return self._send(401, {"message": "Bad credentials"})
        return self._github(url.path, parse_qs(url.query), body)

    do_GET = do_POST = do_PUT = do_PATCH = _handle

    def _forbidden(self, gitlab: bool) -> bool:
        if self.command != "GET" and not self.server.state.write:
            if gitlab:
                self._send(403, {"message": "403 Forbidden"})
            else:
                self._send(403, {"message": "Resource not accessible by integration"})
            return True
        return False

    # --- GitHub ------------------------------------------------------------------------

    def _github_release(self, release: dict[str, Any]) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self.server.server_port}"
        return {
            **release,
            "html_url": f"{base}/releases/{release['tag_name']}",
            "upload_url": f"{base}/uploads/releases/{release['id']}/assets{{?name,label}}",
        }

    def _github(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        state = self.server.state
        if self._forbidden(gitlab=False):
            return None
        by_id = {str(r["id"]): r for r in state.releases.values()}
        if found := re.fullmatch(r"/repos/[^/]+/[^/]+/releases/tags/(.+)", path):
            release = state.releases.get(unquote(found[1]))
            if release is None:
                return self._send(404, {"message": "Not Found"})
            return self._send(200, self._github_release(release))
        if re.fullmatch(r"/repos/[^/]+/[^/]+/releases", path) and self.command == "POST":
            data = json.loads(body)
            release = {
                "id": len(state.releases) + 1,
                "tag_name": data["tag_name"],
                "name": data.get("name"),
                "body": data.get("body"),
                "prerelease": bool(data.get("prerelease")),
            }
            state.releases[data["tag_name"]] = release
            state.files[data["tag_name"]] = {}
            return self._send(201, self._github_release(release))
        if found := re.fullmatch(r"/repos/[^/]+/[^/]+/releases/(\d+)", path):
            release = by_id[found[1]]
            release.update({k: v for k, v in json.loads(body).items() if k in release})
            return self._send(200, self._github_release(release))
        if found := re.fullmatch(r"/repos/[^/]+/[^/]+/releases/(\d+)/assets", path):
            files = state.files[by_id[found[1]]["tag_name"]]
            page, size = int(query.get("page", ["1"])[0]), int(query.get("per_page", ["30"])[0])
            listed = [{"name": n, "size": len(c)} for n, c in sorted(files.items())]
            return self._send(200, listed[(page - 1) * size : page * size])
        if found := re.fullmatch(r"/uploads/releases/(\d+)/assets", path):
            files = state.files[by_id[found[1]]["tag_name"]]
            name = query["name"][0]
            if name in files:
                return self._send(
                    422, {"message": "Validation Failed", "errors": ["already_exists"]}
                )
            files[name] = body
            return self._send(201, {"name": name, "size": len(body)})
        return self._send(404, {"message": "Not Found"})

    # --- GitLab ------------------------------------------------------------------------

    def _gitlab(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        state = self.server.state
        if self._forbidden(gitlab=True):
            return None
        if found := re.fullmatch(r"/projects/\d+/releases/([^/]+)/assets/links", path):
            tag = unquote(found[1])
            if self.command == "POST":
                link = json.loads(body)
                state.links.setdefault(tag, []).append(link)
                return self._send(201, link)
            return self._send(200, state.links.get(tag, []))
        if found := re.fullmatch(r"/projects/\d+/releases/([^/]+)", path):
            tag = unquote(found[1])
            if tag not in state.releases:
                return self._send(404, {"message": "404 Not Found"})
            if self.command == "PUT":
                state.releases[tag].update(json.loads(body))
            return self._send(200, state.releases[tag])
        if re.fullmatch(r"/projects/\d+/releases", path) and self.command == "POST":
            data = json.loads(body)
            release = {"tag_name": data["tag_name"], **data, "_links": {"self": "/r"}}
            state.releases[data["tag_name"]] = release
            return self._send(201, release)
        if re.fullmatch(r"/projects/\d+/packages", path):
            key = f"{query['package_name'][0]}/{query['package_version'][0]}"
            if key not in state.files:
                return self._send(200, [])
            name, version = key.split("/")
            return self._send(200, [{"id": 7, "name": name, "version": version}])
        if re.fullmatch(r"/projects/\d+/packages/7/package_files", path):
            (files,) = [f for k, f in state.files.items() if "/" in k]
            return self._send(200, [{"file_name": n, "size": len(c)} for n, c in files.items()])
        if found := re.fullmatch(r"/projects/\d+/packages/generic/([^/]+)/([^/]+)/([^/]+)", path):
            key = f"{found[1]}/{found[2]}"
            state.files.setdefault(key, {})[unquote(found[3])] = body
            return self._send(201, {"message": "201 Created"})
        return self._send(404, {"message": "404 Not Found"})


class _Server(ThreadingHTTPServer):
    state: ForgeState


class ForgeStandIn:
    """The stand-in forge, running on 127.0.0.1 while used as a context manager."""

    def __init__(self, token: str) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = ForgeState(token)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def state(self) -> ForgeState:
        return self.server.state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> ForgeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
