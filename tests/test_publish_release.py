"""publish_release: the GitHub or GitLab release of a tag, against a stand-in forge API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_nox
from forge_standin import ForgeStandIn
from releasekit._project import Project
from releasekit._publish_release import publish_release
from releasekit.credentials import scrubbed_environ
from releasekit.errors import ForgeError, MissingCredentials

TOKEN = "ghs_standInToken0123456789abcdef"
TAG = "sample-pkg-v0.1.0"
CHANGELOG = """\
# Changelog

## [Unreleased]

## [0.1.0] - 2026-01-02

### Added

- **cli**: a --flag option

## [0.0.9] - 2025-12-01

- older
"""


@pytest.fixture
def forge() -> Iterator[ForgeStandIn]:
    with ForgeStandIn(TOKEN) as server:
        yield server


@pytest.fixture
def released(project: Project) -> Project:
    """The built sample project with a changelog and an attestation beside its wheel."""
    (project.root / "CHANGELOG.md").write_text(CHANGELOG)
    wheel = next(project.dist_dir.glob("*.whl"))
    Path(f"{wheel}.publish.attestation").write_text('{"version": 1}')
    return project


def github_env(forge: ForgeStandIn, token: str = TOKEN) -> dict[str, str]:
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": TAG,
        "GITHUB_API_URL": forge.url,
        "GITHUB_REPOSITORY": "acme/sample",
        "GITHUB_TOKEN": token,
    }


def gitlab_env(forge: ForgeStandIn, **extra: str) -> dict[str, str]:
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_TAG": TAG,
        "CI_API_V4_URL": f"{forge.url}/api/v4",
        "CI_PROJECT_ID": "42",
        **extra,
    }


def expected_files(project: Project) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in project.dist_dir.iterdir()}


def test_github_release_created_then_updated_without_duplicates(
    released: Project, forge: ForgeStandIn
) -> None:
    first = publish_release(released, environ=github_env(forge))
    assert first.state == "created"
    assert len(first.attached) == 3 and not first.skipped  # sdist, wheel, attestation
    release = forge.state.releases[TAG]
    assert release["name"] == "sample-pkg 0.1.0"
    assert release["body"] == "### Added\n\n- **cli**: a --flag option\n"
    assert release["prerelease"] is False
    assert forge.state.files[TAG] == expected_files(released)

    again = publish_release(released, environ=github_env(forge))
    assert again.state == "unchanged"
    assert sorted(again.skipped) == sorted(first.attached) and not again.attached
    assert len(forge.state.releases) == 1

    (released.root / "CHANGELOG.md").write_text(CHANGELOG.replace("a --flag", "the --flag"))
    uploads = sum(1 for _, path in forge.state.requests if path.startswith("/uploads/"))
    updated = publish_release(released, environ=github_env(forge))
    assert updated.state == "updated" and not updated.attached
    assert "the --flag" in forge.state.releases[TAG]["body"]
    assert uploads == 3 == sum(1 for _, p in forge.state.requests if p.startswith("/uploads/"))


def test_github_token_without_permission_is_one_explained_error(
    released: Project, forge: ForgeStandIn
) -> None:
    forge.state.write = False
    with pytest.raises(ForgeError) as raised:
        publish_release(released, environ=github_env(forge))
    text = str(raised.value)
    assert "Could not create the release of sample-pkg-v0.1.0: GitHub answered 403" in text
    assert "Resource not accessible by integration" in text
    assert "permissions: contents: write" in text
    assert TOKEN not in text
    assert not forge.state.releases


def test_github_bad_token_is_explained(released: Project, forge: ForgeStandIn) -> None:
    with pytest.raises(ForgeError, match="GitHub answered 401") as raised:
        publish_release(released, environ=github_env(forge, token="ghs_revoked0123456789"))
    assert "GITHUB_TOKEN" in str(raised.value)


def test_a_file_of_another_size_already_attached_is_refused(
    released: Project, forge: ForgeStandIn
) -> None:
    publish_release(released, environ=github_env(forge))
    sdist = next(released.dist_dir.glob("*.tar.gz"))
    forge.state.files[TAG][sdist.name] = b"something else"
    with pytest.raises(ForgeError, match=f"already has a file {sdist.name} of another size"):
        publish_release(released, environ=github_env(forge))


def test_gitlab_release_with_the_job_token(released: Project, forge: ForgeStandIn) -> None:
    environ = gitlab_env(forge, CI_JOB_TOKEN=TOKEN)
    first = publish_release(released, environ=environ)
    assert first.state == "created" and len(first.attached) == 3
    assert forge.state.releases[TAG]["description"].startswith("### Added")
    assert forge.state.files["sample-pkg/0.1.0"] == expected_files(released)
    links = forge.state.links[TAG]
    assert sorted(link["name"] for link in links) == sorted(expected_files(released))
    assert all(link["link_type"] == "package" for link in links)
    assert all("/packages/generic/sample-pkg/0.1.0/" in link["url"] for link in links)

    again = publish_release(released, environ=environ)
    assert again.state == "unchanged" and len(again.skipped) == 3 and not again.attached
    assert len(forge.state.links[TAG]) == 3
    assert sum(1 for method, _ in forge.state.requests if method == "PUT") == 3


def test_gitlab_forbidden_is_explained(released: Project, forge: ForgeStandIn) -> None:
    forge.state.write = False
    with pytest.raises(ForgeError) as raised:
        publish_release(released, environ=gitlab_env(forge, GITLAB_TOKEN=TOKEN))
    text = str(raised.value)
    assert "GitLab answered 403" in text and "Developer role" in text
    assert "GITLAB_TOKEN" in text


def test_outside_ci_and_without_a_tag(released: Project, forge: ForgeStandIn) -> None:
    with pytest.raises(ForgeError, match="GitHub Actions or GitLab CI job"):
        publish_release(released, environ={"GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": TAG})
    no_tag = {k: v for k, v in github_env(forge).items() if not k.startswith("GITHUB_REF")}
    with pytest.raises(ForgeError, match="needs a tag"):
        publish_release(released, environ=no_tag)
    no_token = {k: v for k, v in github_env(forge).items() if k != "GITHUB_TOKEN"}
    with pytest.raises(MissingCredentials, match=r"github\.token"):
        publish_release(released, environ=no_token)
    assert not forge.state.requests


def test_forge_tokens_never_reach_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.setenv(name, TOKEN)
    assert TOKEN not in scrubbed_environ().values()


def test_the_session_in_a_github_job(released: Project, forge: ForgeStandIn) -> None:
    result = run_nox(released.root, "-s", "publish_release", env=github_env(forge))
    assert result.returncode == 0, result.stdout
    assert f"GitHub release {TAG} created: 3 file(s) attached, 0 already there." in result.stdout
    assert TOKEN not in result.stdout
    assert len(forge.state.files[TAG]) == 3
