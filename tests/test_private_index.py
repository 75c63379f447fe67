"""Any index: a private pypiserver with a username and password, through the `upload` and
`verify` sessions (`--index NAME`), reads authenticated too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_nox
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow

PASSWORD = "corp-s3cret-password-0123456789"


@pytest.fixture
def corp() -> Iterator[LocalIndex]:
    """A private index: user alice, reading needs the password too."""
    with LocalIndex("corp", PASSWORD, username="alice", private=True) as index:
        yield index


@pytest.fixture
def production() -> Iterator[LocalIndex]:
    """An empty, open stand-in for the production index (where dependencies would come from)."""
    with LocalIndex("pypi", "unused") as index:
        yield index


def corp_project(make_project: Callable[..., Path], corp: LocalIndex) -> Path:
    return make_project(
        "corp-sample-xq",
        releasekit=(
            "[tool.releasekit.indexes.corp]\n"
            f'upload-url = "{corp.upload_url}"\n'
            f'simple-url = "{corp.simple_url}"\n'
            'username = "alice"\n'
            'token-env = "CORP_PASSWORD"\n'
        ),
    )


def test_upload_and_verify_on_a_private_index(
    make_project: Callable[..., Path], corp: LocalIndex, production: LocalIndex
) -> None:
    root = corp_project(make_project, corp)
    env = {"CORP_PASSWORD": PASSWORD, **production.environ()}
    built = run_nox(root, "-s", "build")
    assert built.returncode == 0, built.stdout
    uploaded = run_nox(root, "-s", "upload", "--", "--index", "corp", env=env)
    assert uploaded.returncode == 0, uploaded.stdout
    assert "username 'alice'" in uploaded.stdout
    assert sorted(p.name for p in (corp.root / "packages").iterdir()) == sorted(
        p.name for p in (root / "dist").iterdir()
    )
    verified = run_nox(root, "-s", "verify", "--", "--index", "corp", "--timeout", "30", env=env)
    assert verified.returncode == 0, verified.stdout
    assert "Verified corp-sample-xq 0.1.0 on corp" in verified.stdout
    with_pip = run_nox(
        root, "-s", "verify", "--", "--index", "corp", env={**env, "RELEASEKIT_NO_UV": "1"}
    )
    assert with_pip.returncode == 0, with_pip.stdout
    # The maintenance sessions read the private index with its credentials too.
    audited = run_nox(root, "-s", "audit", "--", "--index", "corp", env=env)
    assert audited.returncode != 0, audited.stdout  # 0.1.0 is on the index but not tagged
    assert "has no release tag" in audited.stdout and "needs credentials" not in audited.stdout
    shown = run_nox(root, "-s", "status", "--", "--index", "corp", "--json", env=env)
    assert shown.returncode == 0, shown.stdout
    assert '"0.1.0"' in shown.stdout
    outputs = (uploaded.stdout, verified.stdout, with_pip.stdout, audited.stdout, shown.stdout)
    for output in outputs:
        assert PASSWORD not in output


def test_verify_without_read_credentials_is_explained(
    make_project: Callable[..., Path], corp: LocalIndex
) -> None:
    root = corp_project(make_project, corp)
    assert run_nox(root, "-s", "build").returncode == 0
    result = run_nox(root, "-s", "verify", "--", "--index", "corp", "--timeout", "5")
    assert result.returncode != 0
    assert "401" in result.stdout
    assert "needs credentials to read" in result.stdout
    assert "Traceback" not in result.stdout


def test_upload_needs_the_index_argument(project_dir: Path) -> None:
    result = run_nox(project_dir, "-s", "upload")
    assert result.returncode != 0
    assert "--index" in result.stdout
    unknown = run_nox(project_dir, "-s", "verify", "--", "--index", "nowhere")
    assert unknown.returncode != 0
    assert "Unknown index 'nowhere'" in unknown.stdout
