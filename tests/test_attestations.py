"""Attestations and trusted publishing on upload, end to end: a stand-in OIDC issuer (GitHub's
token service), a real pypiserver standing in for TestPyPI with PyPI's trusted-publishing
endpoints and its checks of the ``attestations`` field (pypi-attestations' own models), in
GitHub-shaped and GitLab-shaped environments. Signing uses a local test key: never Sigstore."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from provenance_index import Issuer, jwt, serve_issuer
from releasekit._distributions import find_distributions
from releasekit._project import Project
from releasekit._report import Reporter, captured, set_reporter
from releasekit._upload import upload
from releasekit.credentials import mint_token, resolve_credentials, token_credentials
from releasekit.credentials.signing import LocalTestSigner, SigstoreSigner
from releasekit.errors import AttestationError, CredentialError, UploadError
from releasekit.indexes import IndexClient
from releasekit.indexes.local import LocalIndex, attestations_problem

pytestmark = pytest.mark.slow

GITHUB_CLAIMS = {
    "iss": "https://issuer.invalid",
    "repository": "acme/sample-pkg",
    "repository_owner": "acme",
    "job_workflow_ref": "acme/sample-pkg/.github/workflows/publish.yml@refs/tags/v0.1.0",
    "environment": "testpypi",
    "ref": "refs/tags/v0.1.0",
    "sub": "repo:acme/sample-pkg:environment:testpypi",
}
GITLAB_CLAIMS = {
    "iss": "https://gitlab.corp.invalid",
    "project_path": "acme/sample-pkg",
    "ci_config_ref_uri": "gitlab.corp.invalid/acme/sample-pkg//.gitlab-ci.yml@refs/tags/v0.1.0",
    "environment": "testpypi",
    "sub": "project_path:acme/sample-pkg:ref_type:tag:ref:v0.1.0",
}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with serve_issuer(GITHUB_CLAIMS) as state:
        yield state


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "PYPI_API_TOKEN",
        "TEST_PYPI_API_TOKEN",
        "TWINE_USERNAME",
        "TWINE_PASSWORD",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "TESTPYPI_ID_TOKEN",
        "SIGSTORE_ID_TOKEN",
        "BUILDKITE",
        "CIRCLECI",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    set_reporter(Reporter(plain=True))
    yield
    set_reporter(None)


def stand_in(monkeypatch: pytest.MonkeyPatch, audience: str = "testpypi") -> LocalIndex:
    """TestPyPI standing in: PyPI's rules, its trusted-publishing endpoints for ``audience``."""
    token = mint_token("testpypi", trusted_publisher="publisher-1")
    server = LocalIndex("testpypi", token, pypi_rules=True, oidc_audience=audience).start()
    for key, value in server.environ().items():
        monkeypatch.setenv(key, value)
    return server


@pytest.fixture
def testpypi(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIndex]:
    server = stand_in(monkeypatch)
    yield server
    server.stop()


@pytest.fixture
def in_github(monkeypatch: pytest.MonkeyPatch, issuer: Issuer) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", issuer.url)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")


@pytest.fixture
def in_gitlab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("TESTPYPI_ID_TOKEN", jwt({**GITLAB_CLAIMS, "aud": "testpypi"}))
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", jwt({**GITLAB_CLAIMS, "aud": "sigstore"}))


def listed(server: LocalIndex) -> dict[str, str | None]:
    with IndexClient(server.index) as client:
        return {f.filename: f.sha256 for f in client.project_files("sample-pkg")}


def with_attestations(project: Project, mode: str) -> Project:
    settings = dataclasses.replace(project.settings, attestations=mode)  # type: ignore[arg-type]
    return dataclasses.replace(project, settings=settings)


def subjects(attestations: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for item in attestations:
        statement = json.loads(base64.b64decode(item["envelope"]["statement"]))
        [subject] = statement["subject"]
        found.append((subject["name"], subject["digest"]["sha256"]))
    return found


# --- the whole path, in a GitHub-shaped and a GitLab-shaped job -----------------------------


@pytest.mark.usefixtures("in_github")
def test_github_job_mints_signs_and_sends_attestations(
    project: Project, testpypi: LocalIndex, issuer: Issuer
) -> None:
    with captured() as out:
        results = upload(project, "testpypi", signer=LocalTestSigner())
    assert [r.status for r in results] == ["uploaded", "uploaded"]
    assert issuer.audiences == ["testpypi"]  # the instance's own audience, never production's
    assert [claims["repository"] for claims in testpypi.minted] == ["acme/sample-pkg"]
    for result in results:
        dist = result.distribution
        assert subjects(testpypi.attestations[dist.filename]) == [(dist.filename, dist.sha256)]
    text = out.getvalue()
    assert "trusted publishing" in text
    assert "Signed 2 attestation(s) with a local test key (not Sigstore)" in text


@pytest.mark.usefixtures("in_gitlab")
def test_gitlab_job_mints_signs_and_sends_attestations(
    project: Project, testpypi: LocalIndex
) -> None:
    results = upload(project, "testpypi", signer=LocalTestSigner())
    assert [r.status for r in results] == ["uploaded", "uploaded"]
    assert [claims["project_path"] for claims in testpypi.minted] == ["acme/sample-pkg"]
    assert set(testpypi.attestations) == {r.distribution.filename for r in results}


@pytest.mark.usefixtures("in_gitlab")
def test_sigstore_identity_has_its_own_audience() -> None:
    signer = SigstoreSigner.from_ci()
    assert signer is not None
    claims = json.loads(base64.urlsafe_b64decode(signer._identity.split(".")[1] + "=="))
    assert claims["aud"] == "sigstore"


@pytest.mark.usefixtures("in_github")
def test_testpypi_never_mints_with_a_production_audience(
    project: Project, monkeypatch: pytest.MonkeyPatch, issuer: Issuer
) -> None:
    server = stand_in(monkeypatch, audience="pypi")  # a server claiming production's audience
    try:
        with pytest.raises(CredentialError, match="refused before any identity token"):
            upload(project, "testpypi", signer=LocalTestSigner())
        assert issuer.audiences == []
        assert server.minted == []
        assert listed(server) == {}
    finally:
        server.stop()


# --- attestations: files beside the dists, always/auto/never, failures ---------------------


@pytest.mark.usefixtures("in_github")
def test_attestation_files_beside_the_dists_are_sent_as_they_are(
    project: Project, testpypi: LocalIndex
) -> None:
    dists = find_distributions(project.dist_dir)
    made = LocalTestSigner().sign([d.path for d in dists])
    for dist, attestation in zip(dists, made, strict=True):
        Path(f"{dist.path}.publish.attestation").write_text(json.dumps(attestation))

    class Refuses:
        kind = "a signer that must not be used"

        def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
            raise AssertionError("files that have attestations are not signed again")

    upload(project, "testpypi", signer=Refuses())
    for dist, attestation in zip(dists, made, strict=True):
        assert testpypi.attestations[dist.filename] == [attestation]


@pytest.mark.usefixtures("in_github")
def test_an_attestation_for_another_file_is_refused_before_anything_is_sent(
    project: Project, testpypi: LocalIndex
) -> None:
    sdist, wheel = sorted(find_distributions(project.dist_dir), key=lambda d: d.kind)
    [for_sdist] = LocalTestSigner().sign([sdist.path])
    Path(f"{wheel.path}.publish.attestation").write_text(json.dumps(for_sdist))
    with pytest.raises(AttestationError) as caught:
        upload(project, "testpypi", signer=LocalTestSigner())
    assert f"attests {sdist.filename}, not {wheel.filename}" in caught.value.what
    assert "Nothing was uploaded" in caught.value.what
    assert listed(testpypi) == {}
    assert testpypi.minted == [] or listed(testpypi) == {}


def test_always_without_an_identity_is_explained_before_any_file(
    project: Project, testpypi: LocalIndex
) -> None:
    creds = token_credentials(testpypi.token, testpypi.index, "TEST_PYPI_API_TOKEN", "sample-pkg")
    with pytest.raises(AttestationError, match='attestations = "always"') as caught:
        upload(with_attestations(project, "always"), testpypi.index, creds)
    assert "not a trusted-publishing identity" in caught.value.what
    assert "id-token: write" in caught.value.fix
    assert listed(testpypi) == {}


def test_auto_without_an_identity_uploads_without_and_says_so_once(
    project: Project, testpypi: LocalIndex
) -> None:
    creds = token_credentials(testpypi.token, testpypi.index, "TEST_PYPI_API_TOKEN", "sample-pkg")
    with captured() as out:
        results = upload(project, testpypi.index, creds)
    assert [r.status for r in results] == ["uploaded", "uploaded"]
    assert out.getvalue().count("Uploading without attestations") == 1
    assert testpypi.attestations == {}


@pytest.mark.usefixtures("in_github")
def test_signing_failure_sends_nothing(project: Project, testpypi: LocalIndex) -> None:
    class Outage:
        kind = "Sigstore"

        def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
            raise AttestationError("Signing attestations with Sigstore failed: 503.")

    with pytest.raises(AttestationError, match="503"):
        upload(project, "testpypi", signer=Outage())
    assert listed(testpypi) == {}


@pytest.mark.usefixtures("in_github")
def test_stand_in_refuses_a_forged_attestation_with_pypis_words(
    project: Project, testpypi: LocalIndex
) -> None:
    honest = LocalTestSigner()

    class Forger:
        kind = "a forger"

        def sign(self, files: Sequence[Path]) -> list[dict[str, Any]]:
            made = honest.sign(files)
            other = LocalTestSigner().sign(files)  # another key's signature, honest's certificate
            for item, stolen in zip(made, other, strict=True):
                item["envelope"]["signature"] = stolen["envelope"]["signature"]
            return made

    with pytest.raises(UploadError) as caught:
        upload(project, "testpypi", signer=Forger())
    assert "Invalid attestations supplied during upload" in str(caught.value)


def test_stand_in_parses_the_field_with_pypi_attestations_models(tmp_path: Path) -> None:
    path = tmp_path / "sample_pkg-0.1.0.tar.gz"
    path.write_bytes(b"content")
    [good] = LocalTestSigner().sign([path])
    field = json.dumps([good]).encode()
    assert attestations_problem(field, path.name, b"content") is None
    assert "Error while decoding the included attestation" in str(
        attestations_problem(b'[{"version": 2}]', path.name, b"content")
    )
    assert "does not match distribution digest" in str(
        attestations_problem(field, path.name, b"other content")
    )
    assert "Only a single attestation per file" in str(
        attestations_problem(json.dumps([good, good]).encode(), path.name, b"content")
    )


@pytest.mark.usefixtures("in_github")
def test_identical_reupload_keeps_its_provenance(project: Project, testpypi: LocalIndex) -> None:
    upload(project, "testpypi", signer=LocalTestSigner())
    with captured() as out:
        again = upload(project, "testpypi", signer=LocalTestSigner())
    assert [r.status for r in again] == ["already there", "already there"]
    assert out.getvalue().count("It keeps the provenance it had") == 2


# --- a fresh token after 10 of its 15 minutes -------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.usefixtures("in_github")
@pytest.mark.parametrize(("age", "mints"), [(599.0, 1), (601.0, 2)])
def test_a_minted_token_is_renewed_past_ten_minutes(
    project: Project, testpypi: LocalIndex, age: float, mints: int
) -> None:
    clock = Clock(1000.0)
    creds = dataclasses.replace(resolve_credentials(testpypi.index, "sample-pkg"), minted_at=1000.0)
    clock.now += age  # the upload starts this long after the token was minted
    with captured() as out:
        results = upload(with_attestations(project, "never"), testpypi.index, creds, clock=clock)
    assert [r.status for r in results] == ["uploaded", "uploaded"]
    assert len(testpypi.minted) == mints  # the second file went with the fresh token
    assert ("Minted a fresh upload token" in out.getvalue()) == (mints == 2)
