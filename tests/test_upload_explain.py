"""Every index refusal in SPEC's Errors list becomes what happened, why, and the fix.

PyPI's wordings (from the reference) cannot come from a local server, so they are fed to
``explain_refusal`` directly; pypiserver's and devpi's are also exercised for real in
test_upload.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from releasekit._distributions import Distribution
from releasekit.credentials import Credentials
from releasekit.indexes import Index
from releasekit.indexes.refusals import explain_refusal

INDEX = Index("testpypi", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
DIST = Distribution(
    Path("sample_pkg-0.1.0.tar.gz"), "sample-pkg", Version("0.1.0"), "sdist", 1, "0"
)
CREDS = Credentials("__token__", "secret-value", "TEST_PYPI_API_TOKEN")


@pytest.mark.parametrize(
    ("status", "text", "why", "fix"),
    [
        (
            403,
            "Invalid or non-existent authentication information. See https://x/help",
            "revoked",
            "new token",
        ),
        (403, "Username/Password authentication is no longer supported.", "__token__", "token"),
        (
            403,
            "Invalid API Token: project-scoped token is not valid for project: 'sample-pkg'",
            "scoped",
            "scoped to sample-pkg",
        ),
        (403, "Invalid API Token: token is expired", "expired", "new token"),
        (
            403,
            "The user 'me' isn't allowed to upload to project 'sample-pkg'.",
            "belongs to someone else",
            "rename",
        ),
        (403, "User 'me' does not have a verified primary e-mail address.", "e-mail", "two-factor"),
        (429, "Too many new projects created", "new projects", "Wait"),
        (400, "File too large. Limit for project 'sample-pkg' is 100 MB.", "limit", "data files"),
        (
            400,
            "Project size too large. Limit for project 'sample-pkg' total size is 10 GB.",
            "limit",
            "higher limit",
        ),
        (
            400,
            "The digest supplied does not match a digest calculated from the uploaded file.",
            "damaged",
            "Rebuild",
        ),
        (
            400,
            "File already exists ('sample_pkg-0.1.0.tar.gz', with blake2_256 hash 'ab').",
            "could not be confirmed",
            "Bump the version",
        ),
        (
            400,
            "This filename has already been used, use a different version. "
            "This filename was previously used by a file that has since been deleted.",
            "deleted",
            "Bump the version",
        ),
        (
            400,
            "Uploading new files to releases older than 14 days is not allowed.",
            "old",
            "new version",
        ),
        (400, "Only one sdist may be uploaded per release.", "only one", "single sdist"),
        (
            409,
            "Package 'sample_pkg-0.1.0.tar.gz' already exists!",
            "could not be confirmed",
            "Bump",
        ),
        (401, "Unauthorized", "did not get", "TEST_PYPI_API_TOKEN"),
        (403, "Forbidden", "refused these credentials", "TEST_PYPI_API_TOKEN"),
        (400, "Bad filename: sample_pkg.tar.gz", "name or metadata", "check_dist"),
        (308, "Permanent Redirect", "redirects", "RELEASEKIT_TESTPYPI_UPLOAD_URL"),
    ],
)
def test_refusals_are_explained(status: int, text: str, why: str, fix: str) -> None:
    error = explain_refusal(status, text, INDEX, DIST, CREDS.source)
    assert error.what.startswith("testpypi")
    assert f"HTTP {status}" in error.what
    assert DIST.filename in error.what
    assert why in error.why
    assert fix in error.fix
    assert "secret-value" not in str(error)
