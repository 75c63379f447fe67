"""yank against a static simple index on 127.0.0.1 whose pages the tests write.

No real server can show yank state (pypiserver and devpi cannot yank; PyPI has no yank
API), so this is the one place a hand-made server stands in: it serves PEP 691 JSON or
PEP 503 HTML pages from a temporary directory, and counts the requests it answers.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from conftest import run_nox
from releasekit._project import Project
from releasekit._yank import WaitPolicy, YankRequest, mark_changelog, yank
from releasekit.errors import ActionNeeded, UsageError, YankError

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
CHANGELOG = """\
# Changelog

## [Unreleased]

## [0.3.0] - 2026-03-01
### Fixed
- 0.2.0 crashed on import.

## [0.2.0] - 2026-02-01

## [0.1.0] - 2026-01-01 [YANKED]
"""


class StaticIndex:
    """A static simple index: ``publish(releases)`` rewrites the project's page."""

    def __init__(self, root: Path, page_format: str, project: str = "sample-pkg") -> None:
        self.root = root
        self.page_format = page_format
        self.project = project
        self.page_requests = 0
        self.changed = threading.Condition()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def environ(self) -> dict[str, str]:
        return {
            "RELEASEKIT_PYPI_UPLOAD_URL": self.url,
            "RELEASEKIT_PYPI_SIMPLE_URL": self.url + "simple/",
        }

    def publish(self, releases: dict[str, bool | str]) -> None:
        """Write the page listing a wheel per version; a value is its yanked state or reason."""
        files = []
        for version, yanked in releases.items():
            filename = f"{self.project.replace('-', '_')}-{version}-py3-none-any.whl"
            digest = hashlib.sha256(filename.encode()).hexdigest()
            files.append((filename, digest, yanked))
        if self.page_format == "json":
            body = json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "name": self.project,
                    "files": [
                        {
                            "filename": name,
                            "url": f"../../files/{name}",
                            "hashes": {"sha256": digest},
                            "yanked": yanked,
                        }
                        for name, digest, yanked in files
                    ],
                }
            )
        else:
            links = []
            for name, digest, yanked in files:
                mark = ""
                if yanked is not False:
                    mark = (
                        " data-yanked"
                        if yanked is True
                        else f' data-yanked="{html.escape(yanked)}"'
                    )
                links.append(f'<a href="../../files/{name}#sha256={digest}"{mark}>{name}</a><br>')
            body = "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        page = self.root / "simple" / self.project / f"index.{self.page_format}"
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp = page.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, page)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        page = None
        if path == f"/simple/{self.project}/":
            page = self.root / "simple" / self.project / f"index.{self.page_format}"
        if page is None or not page.is_file():
            request.send_error(404)
            return
        accept = request.headers.get("Accept", "")
        if self.page_format == "json" and JSON_TYPE not in accept:
            request.send_error(406)
            return
        body = page.read_bytes()
        request.send_response(200)
        request.send_header(
            "Content-Type", JSON_TYPE if self.page_format == "json" else "text/html"
        )
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
        with self.changed:
            self.page_requests += 1
            self.changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 60) -> None:
        """Block until the project page has been served ``count`` times."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.page_requests >= count, timeout), (
                f"only {self.page_requests} page requests seen"
            )


@pytest.fixture(params=["json", "html"])
def static_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StaticIndex]:
    """A running static index serving PEP 691 JSON or PEP 503 HTML pages."""
    index = StaticIndex(tmp_path / "static", request.param)
    index.thread.start()
    yield index
    index.server.shutdown()
    index.server.server_close()


@pytest.fixture
def released(project_dir: Path, static_index: StaticIndex) -> Path:
    """The sample project with a changelog; on the index 0.1.0 (yanked), 0.2.0 and 0.3.0."""
    (project_dir / "CHANGELOG.md").write_text(CHANGELOG)
    static_index.publish({"0.1.0": "Broken metadata", "0.2.0": False, "0.3.0": False})
    return project_dir


@pytest.fixture
def index_env(static_index: StaticIndex, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """RELEASEKIT_PYPI_* pointing at the static index, in this process and for nox."""
    for key, value in static_index.environ().items():
        monkeypatch.setenv(key, value)
    return static_index.environ()


def test_already_yanked_is_a_no_op_on_the_index(released: Path, index_env: dict[str, str]) -> None:
    result = run_nox(released, "-s", "yank", "--", "0.1.0", "--reason", "Broken", env=index_env)
    assert result.returncode == 0, result.stdout
    assert "sample-pkg 0.1.0 is already yanked on pypi: nothing to do." in result.stdout
    assert (released / "CHANGELOG.md").read_text() == CHANGELOG
    assert "Marked" not in result.stdout


def test_already_yanked_still_marks_an_unmarked_changelog(
    released: Path, index_env: dict[str, str]
) -> None:
    (released / "CHANGELOG.md").write_text(CHANGELOG.replace(" [YANKED]", ""))
    result = run_nox(released, "-s", "yank", "--", "0.1.0", "--reason", "Broken", env=index_env)
    assert result.returncode == 0, result.stdout
    assert (released / "CHANGELOG.md").read_text() == CHANGELOG
    assert "review and commit it" in result.stdout


def test_missing_version_is_named(released: Path, index_env: dict[str, str]) -> None:
    result = run_nox(released, "-s", "yank", "--", "9.9.9", "--reason", "Broken", env=index_env)
    assert result.returncode != 0
    assert "sample-pkg 9.9.9 is not on pypi" in result.stdout
    assert "0.1.0, 0.2.0, 0.3.0" in result.stdout
    assert "Traceback" not in result.stdout


def test_yank_without_reason_is_refused_before_any_request(
    released: Path, index_env: dict[str, str], static_index: StaticIndex
) -> None:
    result = run_nox(released, "-s", "yank", "--", "0.2.0", env=index_env)
    assert result.returncode != 0
    assert "Refusing to yank sample-pkg 0.2.0 without a reason" in result.stdout
    assert static_index.page_requests == 0


def test_ci_mode_prints_the_steps_and_fails(
    released: Path, index_env: dict[str, str], static_index: StaticIndex
) -> None:
    reason = "Crashes on import; use 0.3.0"
    result = run_nox(released, "-s", "yank", "--", "0.2.0", "--reason", reason, env=index_env)
    assert result.returncode != 0
    page = f"{static_index.url}manage/project/sample-pkg/release/0.2.0/"
    assert page in result.stdout
    assert f"paste this reason: {reason}" in result.stdout
    assert "action needed" in result.stdout.lower()
    assert "--no-wait" in result.stdout
    assert "Tip:" not in result.stdout  # the reason names the replacement already
    assert (released / "CHANGELOG.md").read_text() == CHANGELOG


def test_no_wait_prints_the_steps_and_succeeds(
    released: Path, index_env: dict[str, str], static_index: StaticIndex
) -> None:
    args = ("0.2.0", "--reason", "Crashes on import", "--no-wait")
    result = run_nox(released, "-s", "yank", "--", *args, env=index_env)
    assert result.returncode == 0, result.stdout
    assert f"{static_index.url}manage/project/sample-pkg/release/0.2.0/" in result.stdout
    assert "Use 0.3.0 instead" in result.stdout  # suggested, since the reason names none
    assert "pip install sample-pkg` will pick 0.3.0" in result.stdout


def run_in_thread(action: Callable[[], Any]) -> Any:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(action)
    pool.shutdown(wait=False)
    return future


def test_waits_until_the_index_reports_yanked_then_marks_the_changelog(
    released: Path, index_env: dict[str, str], static_index: StaticIndex
) -> None:
    project = Project.load(released)
    opened: list[str] = []
    pending = run_in_thread(
        lambda: yank(
            project,
            YankRequest("0.2.0", "Crashes on import"),
            WaitPolicy(interactive=True, open_page=opened.append),
        )
    )
    static_index.wait_for_requests(2)  # the existence check, then the first poll
    assert not pending.done()
    static_index.publish({"0.1.0": "Broken metadata", "0.2.0": "Crashes on import", "0.3.0": False})
    result = pending.result(timeout=60)
    assert result.state == "confirmed"
    assert opened == [f"{static_index.url}manage/project/sample-pkg/release/0.2.0/"]
    assert result.changelog == released / "CHANGELOG.md"
    assert "## [0.2.0] - 2026-02-01 [YANKED]\n" in result.changelog.read_text()

    seen = static_index.page_requests
    pending = run_in_thread(
        lambda: yank(
            project,
            YankRequest("0.2.0", undo=True),
            WaitPolicy(interactive=True, open_page=opened.append),
        )
    )
    static_index.wait_for_requests(seen + 2)
    static_index.publish({"0.1.0": "Broken metadata", "0.2.0": False, "0.3.0": False})
    assert pending.result(timeout=60).state == "confirmed"
    assert (released / "CHANGELOG.md").read_text() == CHANGELOG


def test_gives_up_at_the_deadline(released: Path, index_env: dict[str, str]) -> None:
    project = Project.load(released)
    with pytest.raises(YankError, match=r"did not report sample-pkg 0\.2\.0 yanked within 0 s"):
        yank(
            project,
            YankRequest("0.2.0", "Bad"),
            WaitPolicy(interactive=True, open_page=lambda _url: None, timeout=0),
        )


def test_last_installable_release_needs_force(
    released: Path, index_env: dict[str, str], static_index: StaticIndex
) -> None:
    static_index.publish({"0.1.0": True, "0.2.0": "Bad", "0.3.0": False})
    project = Project.load(released)
    with pytest.raises(YankError, match="would leave no installable release"):
        yank(project, YankRequest("0.3.0", "Bad"), WaitPolicy(interactive=False))
    forced = YankRequest("0.3.0", "Bad", force=True)
    result = yank(project, forced, WaitPolicy(wait=False, interactive=False))
    assert result.state == "pending"
    with pytest.raises(ActionNeeded):
        yank(project, forced, WaitPolicy(interactive=False))


def test_reason_required_only_to_yank(released: Path, index_env: dict[str, str]) -> None:
    project = Project.load(released)
    with pytest.raises(UsageError):
        yank(project, YankRequest("0.2.0", "  "))
    assert yank(project, YankRequest("0.2.0", undo=True)).state == "already"


@pytest.mark.parametrize(
    ("heading", "marked"),
    [
        ("## [0.2.0] - 2026-02-01", "## [0.2.0] - 2026-02-01 [YANKED]"),
        ("## 0.2.0 (2026-02-01)", "## 0.2.0 (2026-02-01) [YANKED]"),
        ("## v0.2.0 (2026-02-01)", "## v0.2.0 (2026-02-01) [YANKED]"),
    ],
)
def test_mark_changelog_styles(heading: str, marked: str) -> None:
    text = f"# Changelog\n\n## 0.2.1 (2026-02-02)\n\n{heading}\n\n- fix\n\n## 0.2.0rc1\n"
    done = mark_changelog(text, Version("0.2.0"), yanked=True)
    assert done == text.replace(heading, marked)
    assert mark_changelog(done, Version("0.2.0"), yanked=True) == done
    assert mark_changelog(done, Version("0.2.0"), yanked=False) == text
    assert mark_changelog(text, Version("9.9.9"), yanked=True) is None


def test_yank_marks_the_changelog_release_writes(released: Path, index_env: dict[str, str]) -> None:
    (released / "CHANGELOG.md").unlink()
    history = released / "HISTORY.rst"
    history.write_text(
        "History\n=======\n\n0.2.0\n-----\n\n0.1.0 (2026-01-01)\n------------------\n"
    )
    result = yank(Project.load(released), YankRequest("0.1.0", "Broken metadata"))
    assert result.state == "already"
    assert result.changelog == history
    assert history.read_text().endswith(
        "0.1.0 (2026-01-01) [YANKED]\n---------------------------\n"
    )
    assert not (released / "CHANGELOG.md").exists()


def test_yank_marks_the_changelog_file_setting(released: Path, index_env: dict[str, str]) -> None:
    chosen = released / "docs" / "news.rst"
    chosen.parent.mkdir()
    chosen.write_text("News\n====\n\n0.1.0\n-----\n")
    project = Project.load(released, changelog_file="docs/news.rst")
    result = yank(project, YankRequest("0.1.0", "Broken metadata"))
    assert result.changelog == chosen
    assert "0.1.0 [YANKED]" in chosen.read_text()
    assert (released / "CHANGELOG.md").read_text() == CHANGELOG  # found, but not chosen
