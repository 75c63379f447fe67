"""CI detection: the provider, the tag being built, the run number, OIDC."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import releasekit.ci
from releasekit.ci import detect, gitlab_id_token_variable, publisher_claims
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
    "GOOGLE_SERVICE_ACCOUNT_NAME",
)


@pytest.fixture(autouse=True)
def no_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(releasekit.ci, "_GCP_PRODUCT_FILE", tmp_path / "no-product-name")


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


@pytest.mark.parametrize(
    ("environ", "identity"),
    [
        ({"BUILDKITE": "true", "CI": "true"}, "buildkite"),
        ({"CIRCLECI": "true"}, "circleci"),
        ({"GOOGLE_SERVICE_ACCOUNT_NAME": "publisher@acme.iam"}, "google"),
        ({"GITLAB_CI": "true"}, "gitlab"),
        ({"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": "u"}, "github"),
    ],
)
def test_identity_providers_the_id_library_supports(
    environ: dict[str, str], identity: str, tmp_path: Path
) -> None:
    found = detect(environ, gcp_product_file=tmp_path / "none")
    assert found.identity == identity
    assert found.issues_oidc


def test_a_google_cloud_machine_is_an_identity_provider(tmp_path: Path) -> None:
    product = tmp_path / "product_name"
    product.write_text("Google Compute Engine\n")
    found = detect({}, gcp_product_file=product)
    if sys.platform.startswith("linux"):
        assert (found.identity, found.issues_oidc) == ("google", True)
    else:
        assert found.identity is None
    product.write_text("VirtualBox\n")
    assert detect({}, gcp_product_file=product).identity is None


def test_gitlab_id_token_variables_are_the_ones_id_reads() -> None:
    import id as oidc

    assert gitlab_id_token_variable("pypi") == "PYPI_ID_TOKEN"
    assert gitlab_id_token_variable("testpypi") == "TESTPYPI_ID_TOKEN"
    assert gitlab_id_token_variable("sigstore") == "SIGSTORE_ID_TOKEN"
    assert gitlab_id_token_variable("http://test.audience") == "HTTP___TEST_AUDIENCE_ID_TOKEN"
    assert gitlab_id_token_variable("1corp") == "_CORP_ID_TOKEN"
    token = "e30.eyJhdWQiOiAiMWNvcnAifQ.c2ln"  # {"aud": "1corp"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITLAB_CI", "true")
        patch.setenv(gitlab_id_token_variable("1corp"), token)
        assert oidc.detect_credential("1corp") == token


def test_publisher_claims_from_the_jobs_variables() -> None:
    github = publisher_claims(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/sample-pkg",
            "GITHUB_REPOSITORY_OWNER": "acme",
            "GITHUB_WORKFLOW_REF": "acme/sample-pkg/.github/workflows/publish.yml@refs/heads/main",
            "GITHUB_REF": "refs/heads/main",
        }
    )
    assert dict(github)["owner"] == "acme"
    assert dict(github)["repository"] == "sample-pkg"
    assert dict(github)["workflow"] == "publish.yml"
    gitlab = dict(
        publisher_claims(
            {
                "GITLAB_CI": "true",
                "CI_SERVER_URL": "https://gitlab.corp.invalid",
                "CI_PROJECT_NAMESPACE": "acme/tools",
                "CI_PROJECT_NAME": "sample-pkg",
                "CI_ENVIRONMENT_NAME": "pypi",
            }
        )
    )
    assert gitlab["namespace"] == "acme/tools"
    assert gitlab["CI file path"] == ".gitlab-ci.yml"
    assert gitlab["environment"] == "pypi"
    assert gitlab["issuer"] == "https://gitlab.corp.invalid"
    assert publisher_claims({}) == []
