"""A stand-in index serving what no local index server implements: the PEP 691 JSON simple
API with PEP 700 fields (versions, size, upload-time), PEP 740 provenance (the integrity API)
and PEP 792 project status; plus a download-statistics endpoint and an upload endpoint that
records what was sent. Hand-made because pypiserver and devpi offer none of these.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from releasekit._distributions import parse_filename

DATA = Path(__file__).parent / "data" / "provenance"
GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"
GOOGLE_SDIST = "gcb_attestation_test-0.0.0.tar.gz"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"


def provenance_of(filename: str) -> str:
    """The real provenance object shipped for ``filename`` (the GitLab one is wrapped here:
    its asset is a bare attestation, so it is put in a bundle naming its GitLab publisher)."""
    if filename == GITLAB_SDIST:
        attestation = json.loads((DATA / f"{filename}.publish.attestation").read_text())
        publisher = {
            "kind": "GitLab",
            "repository": "facutuesca/gitlab-oidc-project",
            "workflow_filepath": ".gitlab-ci.yml",
        }
        bundle = {"publisher": publisher, "attestations": [attestation]}
        return json.dumps({"version": 1, "attestation_bundles": [bundle]})
    return (DATA / f"{filename}.provenance").read_text()


@dataclass
class Hosted:
    """One file on the stand-in: its bytes, its provenance (None: none) and upload time."""

    filename: str
    content: bytes
    provenance: str | None = None
    uploaded: datetime = field(default_factory=lambda: datetime(2026, 1, 2, tzinfo=timezone.utc))
    yanked: bool | str = False

    @classmethod
    def real(cls, filename: str, **kwargs: Any) -> Hosted:
        """A shipped dist with its real provenance."""
        return cls(filename, (DATA / filename).read_bytes(), provenance_of(filename), **kwargs)


@dataclass
class Project:
    """A project page: its files and PEP 792 status."""

    files: list[Hosted] = field(default_factory=list)
    status: str | None = None
    reason: str | None = None


class StandIn:
    """The server's state; ``api_version`` below 1.3 hides provenance (an older index)."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.api_version = "1.4"
        self.stats: dict[str, Any] | None = None
        self.uploads: list[str] = []
        self.url = ""

    def simple(self, name: str) -> dict[str, Any] | None:
        project = self.projects.get(name)
        if project is None:
            return None
        meta: dict[str, Any] = {"api-version": self.api_version}
        if project.status:
            meta["project-status"] = project.status
        if project.reason:
            meta["project-status-reason"] = project.reason
        files = []
        for hosted in project.files:
            parsed = parse_filename(hosted.filename)
            version = str(parsed[1]) if parsed else "0"
            entry: dict[str, Any] = {
                "filename": hosted.filename,
                "url": f"{self.url}/files/{hosted.filename}",
                "hashes": {"sha256": hashlib.sha256(hosted.content).hexdigest()},
                "size": len(hosted.content),
                "upload-time": hosted.uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "yanked": hosted.yanked,
            }
            if hosted.provenance is not None and self.api_version >= "1.3":
                entry["provenance"] = (
                    f"{self.url}/integrity/{name}/{version}/{hosted.filename}/provenance"
                )
            files.append(entry)
        versions = sorted({str(p[1]) for f in project.files if (p := parse_filename(f.filename))})
        return {"meta": meta, "name": name, "versions": versions, "files": files}

    def hosted(self, filename: str) -> Hosted | None:
        for project in self.projects.values():
            for hosted in project.files:
                if hosted.filename == filename:
                    return hosted
        return None


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if match := re.fullmatch(r"/simple/([^/]+)/", path):
                page = state.simple(match[1])
                if page is None:
                    self._send(404, b"not found")
                else:
                    body = json.dumps(page).encode()
                    self._send(200, body, "application/vnd.pypi.simple.v1+json")
            elif match := re.fullmatch(r"/files/([^/]+)", path):
                hosted = state.hosted(match[1])
                self._send(200, hosted.content) if hosted else self._send(404, b"not found")
            elif match := re.fullmatch(r"/integrity/[^/]+/[^/]+/([^/]+)/provenance", path):
                hosted = state.hosted(match[1])
                if hosted is None or hosted.provenance is None:
                    self._send(404, b"no provenance")
                else:
                    body = hosted.provenance.encode()
                    self._send(200, body, "application/vnd.pypi.integrity.v1+json")
            elif re.fullmatch(r"/stats/[^/]+", path) and state.stats is not None:
                self._send(200, json.dumps(state.stats).encode(), "application/json")
            else:
                self._send(404, b"not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.uploads.append(body.decode("latin-1"))
            self._send(200, b"OK")

    return Handler


@contextmanager
def serve() -> Iterator[StandIn]:
    """Run the stand-in on 127.0.0.1 (an unused port) for the block."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def environ(state: StandIn, index: str = "PYPI") -> dict[str, str]:
    """The variables that point releasekit's index ``index`` at the stand-in."""
    return {
        f"RELEASEKIT_{index}_SIMPLE_URL": f"{state.url}/simple/",
        f"RELEASEKIT_{index}_UPLOAD_URL": f"{state.url}/upload/",
    }
