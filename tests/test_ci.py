"""CI detection: the provider, the tag being built, the run number, OIDC."""

from __future__ import annotations

import pytest

from releasekit.ci import detect
from releasekit.errors import VersionError

CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_REF_TYPE",
    "GITHUB_REF_NAME",
    "GITHUB_RUN_NUMBER",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "GITLAB_CI",
    "CI_COMMIT_TAG",
    "BUILDKITE",
    "CIRCLECI",
)


@pytest.fixture(autouse=True)
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_outside_ci() -> None:
    found = detect()
    assert found.name == "none"
    assert not found.is_ci
    assert found.tag is None
    assert found.run_number() is None
    assert not found.issues_oidc
    assert found.oidc_permitted


def test_github_actions_tag_build(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "v1.2.0",
        "GITHUB_RUN_NUMBER": "42",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/token",
    }.items():
        monkeypatch.setenv(name, value)
    found = detect()
    assert (found.name, found.is_ci, found.tag) == ("github", True, "v1.2.0")
    assert found.run_number() == 42
    assert found.issues_oidc and found.oidc_permitted


def test_github_actions_branch_build_without_id_token_permission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF_TYPE", "branch")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    found = detect()
    assert found.name == "github"
    assert found.tag is None
    assert found.issues_oidc
    assert not found.oidc_permitted


def test_gitlab_ci_tag_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_TAG", "v2.0.0")
    found = detect()
    assert (found.name, found.is_ci, found.tag) == ("gitlab", True, "v2.0.0")
    assert found.issues_oidc and found.oidc_permitted


def test_another_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    found = detect()
    assert (found.name, found.is_ci, found.issues_oidc) == ("other", True, False)


def test_a_run_number_that_is_not_a_number() -> None:
    found = detect({"GITHUB_RUN_NUMBER": " run-7 "})
    with pytest.raises(VersionError, match="'run-7'"):
        found.run_number()
