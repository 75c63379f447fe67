"""status: what the indexes hold of a project, from a stand-in index with PEP 700/740/792."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import run_nox, write_project
from provenance_index import DATA, GITHUB_SDIST, Hosted, StandIn, environ, serve
from provenance_index import Project as Page
from releasekit._project import Project
from releasekit._report import captured
from releasekit._status import status
from releasekit.errors import IndexUnavailable

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with serve() as state:
        for index in ("PYPI", "TESTPYPI"):
            for key, value in environ(state, index).items():
                monkeypatch.setenv(key, value)
        monkeypatch.delenv("RELEASEKIT_STATS_URL", raising=False)
        old = (DATA / GITHUB_SDIST).read_bytes()[:200]
        state.projects["pypi-attestations"] = Page(
            [
                Hosted.real(GITHUB_SDIST, uploaded=datetime(2026, 2, 20, tzinfo=timezone.utc)),
                Hosted(
                    "pypi_attestations-0.0.18.tar.gz",
                    old,
                    uploaded=datetime(2026, 1, 5, tzinfo=timezone.utc),
                    yanked="broken",
                ),
                Hosted(
                    "pypi_attestations-0.0.18-py3-none-any.whl",
                    old[:50],
                    uploaded=datetime(2026, 1, 4, tzinfo=timezone.utc),
                    yanked="broken",
                ),
                Hosted(
                    "pypi_attestations-0.0.20rc1.tar.gz",
                    old[:60],
                    uploaded=datetime(2026, 2, 25, tzinfo=timezone.utc),
                ),
            ]
        )
        state.stats = {
            "downloads": {
                "2020-01-01": {"0.0.19": 1000},
                datetime.now(timezone.utc).date().isoformat(): {"0.0.19": 7, "0.0.18": 2},
            }
        }
        yield state


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "pypi-attestations"\nversion = "0.0.19"\n'
    )
    return Project.load(root)


def test_status_as_json_has_every_release(
    stand_in: StandIn, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASEKIT_STATS_URL", f"{stand_in.url}/stats/{{name}}")
    with captured() as out:
        status(project, ["pypi"], as_json=True, now=NOW)
    document = json.loads(out.getvalue())
    (pypi,) = document["indexes"]
    assert pypi["latest"] == "0.0.19"
    assert pypi["project_status"] == "active"
    assert pypi["days_since_last_release"] == 4
    releases = {r["version"]: r for r in pypi["releases"]}
    assert list(releases) == ["0.0.20rc1", "0.0.19", "0.0.18"]
    assert releases["0.0.19"]["provenance"] == (
        "GitHub trailofbits/pypi-attestations, workflow release.yml (verified)"
    )
    assert releases["0.0.18"] == {
        "version": "0.0.18",
        "uploaded": "2026-01-04T00:00:00+00:00",
        "yanked": True,
        "files": 2,
        "provenance": "none",
        "downloads": 2,
    }
    assert releases["0.0.19"]["downloads"] == 7  # the 1000 are older than 30 days
    assert releases["0.0.20rc1"]["downloads"] is None
    assert "last 30 days" in pypi["downloads_note"]


def test_status_tables_and_the_downloads_notes(
    stand_in: StandIn, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured() as out:
        status(project, ["pypi", "testpypi"], now=NOW)
    text = out.getvalue()
    assert "pypi: pypi-attestations is active; latest 0.0.19, last release 4 days ago." in text
    assert "testpypi: pypi-attestations is active" in text
    assert "0.0.18     2026-01-04T00:00:00+00:00  yanked  2  none" in text
    assert "downloads not shown: set RELEASEKIT_STATS_URL" in text
    assert text.count("downloads not shown") == 1  # only PyPI has download statistics

    monkeypatch.setenv("RELEASEKIT_STATS_URL", f"http://127.0.0.1:{closed_port()}/{{name}}")
    with captured() as out:
        status(project, ["pypi"], now=NOW)
    assert "downloads skipped: the statistics service at" in out.getvalue()


def test_archived_project_and_unknown_project(stand_in: StandIn, project: Project) -> None:
    stand_in.projects["pypi-attestations"].status = "archived"
    stand_in.projects["pypi-attestations"].reason = "superseded"
    with captured() as out:
        status(project, ["pypi"], now=NOW)
    assert "is archived (superseded)" in out.getvalue()
    del stand_in.projects["pypi-attestations"]
    with captured() as out:
        (found,) = status(project, ["pypi"], now=NOW)
    assert found.releases == ()
    assert "pypi-attestations is not on this index" in out.getvalue()


def test_an_unreachable_index_is_explained_and_the_others_still_shown(
    stand_in: StandIn, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "RELEASEKIT_TESTPYPI_SIMPLE_URL", f"http://127.0.0.1:{closed_port()}/simple/"
    )
    with captured() as out, pytest.raises(IndexUnavailable) as failed:
        status(project, ["pypi", "testpypi"], as_json=True, now=NOW)
    document = json.loads(out.getvalue())
    assert [i["error"] is None for i in document["indexes"]] == [True, False]
    assert failed.value.what.startswith("testpypi: ")
    assert "-- --index NAME" in failed.value.fix


@pytest.mark.slow
def test_status_session_prints_json(stand_in: StandIn, tmp_path: Path) -> None:
    root = write_project(tmp_path / "pypi-attestations", "pypi-attestations", "0.0.19")
    done = run_nox(root, "-s", "status", "--", "--index", "pypi", "--json", env=environ(stand_in))
    assert done.returncode == 0, done.stdout + done.stderr
    start = done.stdout.index("{")
    document = json.loads(done.stdout[start : done.stdout.rindex("}") + 1])
    assert [i["index"] for i in document["indexes"]] == ["pypi"]
    assert document["indexes"][0]["latest"] == "0.0.19"
