"""Provenance (PEP 740) read back and verified offline: real attestation bundles from the
pypi-attestations sdist, served by a stand-in index; verify and audit against it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import git
from provenance_index import (
    DATA,
    GITHUB_SDIST,
    GITLAB_SDIST,
    GOOGLE_SDIST,
    Hosted,
    StandIn,
    provenance_of,
)
from provenance_index import Project as Page
from releasekit._audit import audit
from releasekit._distributions import Distribution, find_distributions
from releasekit._project import Project
from releasekit._report import captured
from releasekit._verify import check_publishers, verify
from releasekit.credentials.signing import LocalTestSigner
from releasekit.errors import UnexplainedReleases, VerifyError
from releasekit.indexes import parse_project_page
from releasekit.indexes.provenance import LocalTrust, check_provenance, trusting

TRAIL_OF_BITS = "github:trailofbits/pypi-attestations"
SHA = {name: hashlib.sha256((DATA / name).read_bytes()).hexdigest() for name in [GITHUB_SDIST]}


def write(root: Path, name: str, version: str, expect: str | None) -> Project:
    """A project named like a shipped dist, with that dist in its dist dir, in git."""
    root.mkdir(parents=True)
    setting = f'expect-publisher = "{expect}"\n' if expect else ""
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n[tool.releasekit]\n{setting}'
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "feat: first")
    return Project.load(root)


def with_dist(project: Project, filename: str) -> Project:
    project.dist_dir.mkdir(exist_ok=True)
    shutil.copy(DATA / filename, project.dist_dir / filename)
    return project


# -- the page and the provenance objects ------------------------------------------------------


def test_json_page_reads_pep700_pep740_and_pep792_fields() -> None:
    body = json.dumps(
        {
            "meta": {
                "api-version": "1.4",
                "project-status": "archived",
                "project-status-reason": "moved to new-pkg",
            },
            "name": "pkg",
            "versions": ["1.0", "2.0"],
            "files": [
                {
                    "filename": "pkg-1.0.tar.gz",
                    "url": "../../files/pkg-1.0.tar.gz",
                    "hashes": {"sha256": "ab" * 32},
                    "size": 1234,
                    "upload-time": "2026-03-01T10:00:00.123456Z",
                    "provenance": "/integrity/pkg/1.0/pkg-1.0.tar.gz/provenance",
                },
                {
                    "filename": "pkg-1.0-py3-none-any.whl",
                    "url": "/files/pkg-1.0-py3-none-any.whl",
                    "hashes": {},
                    "upload-time": "2026-02-27T09:00:00Z",
                },
            ],
        }
    )
    page = parse_project_page(body, "application/vnd.pypi.simple.v1+json", "http://h/simple/pkg/")
    assert (page.status, page.status_reason) == ("archived", "moved to new-pkg")
    assert page.versions == ("1.0", "2.0")
    assert page.offers_provenance
    sdist, wheel = page.files
    assert sdist.size == 1234
    assert sdist.provenance == "http://h/integrity/pkg/1.0/pkg-1.0.tar.gz/provenance"
    assert wheel.provenance is None
    (version,) = page.by_version
    first = page.first_upload(version)
    assert first is not None
    assert first.isoformat() == "2026-02-27T09:00:00+00:00"


def test_html_page_reads_status_meta_tags_and_data_provenance() -> None:
    body = (
        '<html><head><meta name="pypi:repository-version" content="1.4">'
        '<meta name="pypi:project-status" content="quarantined">'
        '<meta name="pypi:project-status-reason" content="malware"></head><body>'
        '<a href="/files/pkg-1.0.tar.gz#sha256=' + "cd" * 32 + '" '
        'data-provenance="/integrity/pkg/1.0/pkg-1.0.tar.gz/provenance">pkg-1.0.tar.gz</a>'
        "</body></html>"
    )
    page = parse_project_page(body, "text/html", "http://h/simple/pkg/")
    assert (page.status, page.status_reason) == ("quarantined", "malware")
    assert page.api_version == (1, 4)
    assert page.files[0].provenance == "http://h/integrity/pkg/1.0/pkg-1.0.tar.gz/provenance"


def test_a_page_without_markers_is_active_and_offers_no_provenance() -> None:
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": []})
    page = parse_project_page(body, "application/vnd.pypi.simple.v1+json", "http://h/simple/x/")
    assert page.status == "active"
    assert not page.offers_provenance


def test_real_github_provenance_verifies_offline() -> None:
    found = check_provenance(GITHUB_SDIST, SHA[GITHUB_SDIST], provenance_of(GITHUB_SDIST))
    assert found.verified, found.problem
    assert found.describe() == (
        "GitHub trailofbits/pypi-attestations, workflow release.yml (verified)"
    )
    assert found.expectation_problem(TRAIL_OF_BITS) is None
    assert found.expectation_problem("github:TrailOfBits/PYPI-attestations") is None
    assert "published by GitHub trailofbits" in str(
        found.expectation_problem("github:someone/else")
    )
    assert found.expectation_problem("gitlab:trailofbits/pypi-attestations") is not None


def test_real_gitlab_attestation_verifies_offline() -> None:
    sha = hashlib.sha256((DATA / GITLAB_SDIST).read_bytes()).hexdigest()
    found = check_provenance(GITLAB_SDIST, sha, provenance_of(GITLAB_SDIST))
    assert found.verified, found.problem
    assert found.expectation_problem("gitlab:facutuesca/gitlab-oidc-project") is None
    assert "workflow .gitlab-ci.yml" in found.describe()


def test_a_provenance_that_names_another_publisher_than_its_signer_fails() -> None:
    forged = json.loads(provenance_of(GITHUB_SDIST))
    forged["attestation_bundles"][0]["publisher"]["repository"] = "attacker/pypi-attestations"
    found = check_provenance(GITHUB_SDIST, SHA[GITHUB_SDIST], json.dumps(forged))
    assert not found.verified
    assert "NOT verified" in found.describe()
    assert "does not verify" in str(found.expectation_problem("github:attacker/pypi-attestations"))


def test_an_attestation_for_other_bytes_fails() -> None:
    found = check_provenance(GITHUB_SDIST, "0" * 64, provenance_of(GITHUB_SDIST))
    assert not found.verified
    assert "digest" in str(found.problem)


def test_missing_and_malformed_provenance_are_explained() -> None:
    assert check_provenance(GITHUB_SDIST, None, None).expectation_problem(TRAIL_OF_BITS) == (
        "it has no provenance"
    )
    bad = check_provenance(GITHUB_SDIST, SHA[GITHUB_SDIST], '{"version": 1}')
    assert "not a PEP 740 object" in str(bad.problem)


# -- the local trust of rehearsals and tests -----------------------------------------------

LOCAL_CLAIMS = {
    "iss": "https://token.actions.githubusercontent.com",
    "repository": "acme/pkg",
    "job_workflow_ref": "acme/pkg/.github/workflows/publish.yml@refs/tags/v1",
    "workflow_ref": "acme/pkg/.github/workflows/publish.yml@refs/tags/v1",
    "ref": "refs/tags/v1",
    "sha": "a" * 40,
}


def locally_signed(tmp_path: Path, signer: LocalTestSigner, repository: str) -> tuple[str, str]:
    """A file's sha256 and a provenance object naming ``repository``, signed by ``signer``."""
    path = tmp_path / "pkg-1.tar.gz"
    path.write_bytes(b"pkg 1")
    publisher = {"kind": "GitHub", "repository": repository, "workflow": "publish.yml"}
    bundle = {"publisher": publisher, "attestations": signer.sign([path])}
    provenance = json.dumps({"version": 1, "attestation_bundles": [bundle]})
    return hashlib.sha256(b"pkg 1").hexdigest(), provenance


def test_local_trust_checks_key_signature_subject_and_the_certificates_publisher(
    tmp_path: Path,
) -> None:
    signer = LocalTestSigner(claims=LOCAL_CLAIMS)
    sha, provenance = locally_signed(tmp_path, signer, "acme/pkg")
    trust = LocalTrust(signer.certificate)
    found = check_provenance("pkg-1.tar.gz", sha, provenance, trust)
    assert found.describe() == (
        "GitHub acme/pkg, workflow publish.yml (verified with a local test key, not Sigstore)"
    )
    # the index names another publisher than the certificate (Fulcio extensions) says
    _, claimed = locally_signed(tmp_path, signer, "acme/other")
    other = check_provenance("pkg-1.tar.gz", sha, claimed, trust)
    assert not other.verified
    assert "https://github.com/acme/pkg, expected https://github.com/acme/other" in str(
        other.problem
    )
    # another key, other bytes, a changed statement
    assert "not one of the trusted" in str(
        check_provenance("pkg-1.tar.gz", sha, provenance, LocalTrust()).problem
    )
    assert "subject" in str(check_provenance("pkg-1.tar.gz", "0" * 64, provenance, trust).problem)
    forged = json.loads(provenance)
    envelope = forged["attestation_bundles"][0]["attestations"][0]["envelope"]
    envelope["signature"] = envelope["signature"][:-8] + "AAAAAAA="
    assert not check_provenance("pkg-1.tar.gz", sha, json.dumps(forged), trust).verified


def test_production_verification_trusts_no_local_key_outside_a_trusting_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = LocalTestSigner(claims=LOCAL_CLAIMS)
    sha, provenance = locally_signed(tmp_path, signer, "acme/pkg")
    monkeypatch.setenv("RELEASEKIT_TRUST", signer.certificate.hex())  # no such switch exists
    found = check_provenance("pkg-1.tar.gz", sha, provenance)
    assert not found.verified  # Sigstore's trust root: a self-signed certificate is refused
    with trusting(LocalTrust(signer.certificate)):
        assert check_provenance("pkg-1.tar.gz", sha, provenance).verified
    assert not check_provenance("pkg-1.tar.gz", sha, provenance).verified


# -- verify --------------------------------------------------------------------------------


def test_verify_shows_and_checks_the_publisher(stand_in: StandIn, tmp_path: Path) -> None:
    stand_in.projects["pypi-attestations"] = Page([Hosted.real(GITHUB_SDIST)])
    project = with_dist(
        write(tmp_path / "p", "pypi-attestations", "0.0.19", TRAIL_OF_BITS), GITHUB_SDIST
    )
    with captured() as out:
        found = check_publishers(
            project,
            "0.0.19",
            [Distribution.from_path(project.dist_dir / GITHUB_SDIST)],
            project.index("pypi"),
        )
    assert [f.verified for f in found] == [True]
    assert "GitHub trailofbits/pypi-attestations, workflow release.yml (verified)" in out.getvalue()
    assert f"published by {TRAIL_OF_BITS}" in out.getvalue()


@pytest.mark.parametrize(
    ("hosted", "expect", "reason"),
    [
        (
            lambda: Hosted(GITHUB_SDIST, (DATA / GITHUB_SDIST).read_bytes()),
            TRAIL_OF_BITS,
            "has no provenance",
        ),
        (
            lambda: Hosted.real(GITHUB_SDIST),
            "github:someone/else",
            "published by GitHub trailofbits",
        ),
        (
            lambda: Hosted.real(GITHUB_SDIST),
            "gitlab:trailofbits/pypi-attestations",
            "published by GitHub",
        ),
    ],
)
def test_verify_fails_before_installing_when_the_publisher_is_not_the_expected_one(
    stand_in: StandIn, tmp_path: Path, hosted: object, expect: str, reason: str
) -> None:
    stand_in.projects["pypi-attestations"] = Page([hosted()])  # type: ignore[operator]
    project = with_dist(write(tmp_path / "p", "pypi-attestations", "0.0.19", expect), GITHUB_SDIST)
    with pytest.raises(VerifyError, match=reason) as caught:
        verify(project, "pypi", timeout=5)
    assert f"not published by {expect}" in caught.value.what
    assert "init_ci" in caught.value.fix


def test_an_index_without_provenance_is_a_warning_not_a_failure(
    stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.api_version = "1.1"
    stand_in.projects["pypi-attestations"] = Page([Hosted.real(GITHUB_SDIST)])
    project = with_dist(
        write(tmp_path / "p", "pypi-attestations", "0.0.19", TRAIL_OF_BITS), GITHUB_SDIST
    )
    with captured() as out:
        found = check_publishers(
            project,
            "0.0.19",
            find_distributions(project.dist_dir, project.name),
            project.index("pypi"),
        )
    assert found == []
    assert "offers no provenance" in out.getvalue()
    assert "was not checked" in out.getvalue()


# -- audit ---------------------------------------------------------------------------------


def test_audit_flags_files_without_the_expected_publisher(
    stand_in: StandIn, tmp_path: Path
) -> None:
    sdist = (DATA / GITHUB_SDIST).read_bytes()
    stand_in.projects["pypi-attestations"] = Page(
        [
            Hosted.real(GITHUB_SDIST),
            Hosted("pypi_attestations-0.0.18.tar.gz", sdist[:100]),  # no provenance
        ]
    )
    project = write(tmp_path / "p", "pypi-attestations", "0.0.19", TRAIL_OF_BITS)
    for version in ("0.0.18", "0.0.19"):
        git(project.root, "tag", f"pypi-attestations-v{version}")
    with captured() as out, pytest.raises(UnexplainedReleases) as caught:
        audit(project, "pypi")
    assert "1 file of pypi-attestations" in caught.value.what
    assert "versions 0.0.18" in caught.value.what
    assert "possibly unauthorised" not in caught.value.what
    assert "pypi_attestations-0.0.18.tar.gz" in out.getvalue()
    assert "it has no provenance" in out.getvalue()

    stand_in.projects["pypi-attestations"].files.pop()
    with captured() as out:
        result = audit(project, "pypi")
    assert result.unattested == {}
    assert f"published by {TRAIL_OF_BITS}" in out.getvalue()


def test_audit_reports_another_identity_and_untagged_versions_together(
    stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.projects["gcb-attestation-test"] = Page([Hosted.real(GOOGLE_SDIST)])
    project = write(tmp_path / "g", "gcb-attestation-test", "0.0.0", "github:owner/repo")
    with pytest.raises(UnexplainedReleases) as caught:
        audit(project, "pypi")
    assert "possibly unauthorised: 0.0.0" in caught.value.what
    assert "Also: 1 file of gcb-attestation-test" in caught.value.what

    git(project.root, "tag", "gcb-attestation-test-v0.0.0")
    with captured() as out, pytest.raises(UnexplainedReleases) as caught:
        audit(project, "pypi")
    assert "possibly unauthorised" not in caught.value.what
    assert (
        "published by Google 919436158236-compute@developer.gserviceaccount.com" in out.getvalue()
    )


def test_audit_without_expect_publisher_reads_no_provenance(
    stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.projects["gcb-attestation-test"] = Page([Hosted.real(GOOGLE_SDIST)])
    project = write(tmp_path / "g", "gcb-attestation-test", "0.0.0", None)
    git(project.root, "tag", "gcb-attestation-test-v0.0.0")
    result = audit(project, "pypi")
    assert result.unattested == {}
