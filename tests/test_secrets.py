"""scan_secrets: real tokens (minted in PyPI's format) planted in real git repositories."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pypitoken import Token
from twine.utils import DEFAULT_REPOSITORY, TEST_REPOSITORY

from conftest import git, run_nox
from releasekit._project import read_pyproject
from releasekit._scan import scan_secrets
from releasekit.indexes import web_root

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "releasekit-scan-secrets"


def mint(test_instance: bool = False) -> str:
    """A token in PyPI's real format, scoped to one project (never valid anywhere)."""
    upload = TEST_REPOSITORY if test_instance else DEFAULT_REPOSITORY
    domain = urlsplit(web_root(upload)).hostname
    assert domain
    token = Token.create(domain=domain, identifier=str(uuid.uuid4()), key=uuid.uuid4().hex)
    token.restrict(project_names=["sample-pkg"])
    return token.dump()


def assert_not_leaked(output: str, token: str) -> None:
    """Neither the token nor any 20-character piece of it appears in ``output``."""
    assert token not in output
    for start in range(len(token) - 19):
        assert token[start : start + 20] not in output, f"piece at {start} leaked"


def scan(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as a pre-commit hook or a user runs it."""
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "CI": "true", "HOME": str(cwd)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def test_clean_tree_passes_despite_token_shaped_names(project_dir: Path) -> None:
    (project_dir / "notes.md").write_text(
        "Mirror with pypi-simple-index-mirror-tool; placeholder pypi-XXXXXXXXXXXXXXXXXXXXXXXX\n"
        "and pypi-AgEIcHlwaS5vcmc alone is only a prefix.\n"
    )
    result = scan(project_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No PyPI tokens found" in result.stdout


@pytest.mark.parametrize(("test_instance", "instance"), [(False, "PyPI"), (True, "TestPyPI")])
def test_planted_token_fails_naming_file_and_instance(
    project_dir: Path, test_instance: bool, instance: str
) -> None:
    token = mint(test_instance)
    (project_dir / "deploy.env").write_text(f"# settings\nPYPI_API_TOKEN={token}\n")
    result = scan(project_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"deploy.env:2: PyPI API token for {instance}" in output
    assert "scope project: sample-pkg" in output
    assert "Revoke" in output
    assert_not_leaked(output, token)


def test_ignored_files_are_left_alone_but_named_files_are_scanned(project_dir: Path) -> None:
    token = mint()
    (project_dir / ".gitignore").write_text("dist/\n.nox/\n.env\n")
    (project_dir / ".env").write_text(f"PYPI_API_TOKEN={token}\n")
    assert scan(project_dir).returncode == 0
    named = scan(project_dir, ".env")
    assert named.returncode == 1
    assert ".env:1" in named.stdout
    assert_not_leaked(named.stdout + named.stderr, token)


def test_a_token_split_over_lines_is_reported(project_dir: Path) -> None:
    token = mint()
    half = len(token) // 2
    (project_dir / "conf.py").write_text(
        f'TOKEN = (\n    "{token[:half]}"\n    "{token[half:]}"\n)\n'
    )
    result = scan(project_dir)
    assert result.returncode == 1
    assert "conf.py:2: PyPI API token for PyPI" in result.stdout
    assert "split over several lines" in result.stdout
    assert_not_leaked(result.stdout + result.stderr, token)


def test_a_fragment_that_does_not_decode_is_a_warning_only(project_dir: Path) -> None:
    token = mint(test_instance=True)
    (project_dir / "test_fixture.py").write_text(f'FAKE = "{token[:60]}"\n')
    result = scan(project_dir)
    assert result.returncode == 0, result.stdout
    assert (
        "test_fixture.py:1: looks like the start of a PyPI API token for TestPyPI" in result.stdout
    )
    assert_not_leaked(result.stdout + result.stderr, token)


def test_plain_directory_outside_git(tmp_path: Path) -> None:
    token = mint(test_instance=True)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pypirc").write_text(f"[testpypi]\npassword = {token}\n")
    findings = scan_secrets([tmp_path])
    assert [(Path(f.path).name, f.line, f.kind) for f in findings] == [("pypirc", 2, "token")]
    assert findings[0].instance.startswith("TestPyPI")


def test_history_finds_a_token_only_history_holds(project_dir: Path) -> None:
    token = mint()
    (project_dir / "publish.sh").write_text(f"#!/bin/sh\ntwine upload -p {token} dist/*\n")
    git(project_dir, "add", "publish.sh")
    git(project_dir, "commit", "-q", "-m", "chore: publish script")
    leaked_in = git(project_dir, "rev-parse", "HEAD").strip()
    (project_dir / "publish.sh").write_text("#!/bin/sh\ntwine upload dist/*\n")
    git(project_dir, "commit", "-q", "-am", "fix: no token in the script")

    assert scan(project_dir).returncode == 0
    result = run_nox(project_dir, "-s", "scan_secrets", "--", "--history")
    assert result.returncode != 0, result.stdout
    assert f"publish.sh:2 (commit {leaked_in[:12]}): PyPI API token for PyPI" in result.stdout
    assert_not_leaked(result.stdout, token)


def test_history_finds_each_token_once(project_dir: Path) -> None:
    token = mint()
    (project_dir / "a.txt").write_text(f"{token}\n")
    git(project_dir, "add", "a.txt")
    git(project_dir, "commit", "-q", "-m", "one")
    (project_dir / "a.txt").write_text(f"{token}\nmore\n")
    git(project_dir, "commit", "-q", "-am", "two")
    history = [f for f in scan_secrets([project_dir], history=True) if f.commit]
    assert len(history) == 1


def test_pre_commit_hook_definition_runs_the_declared_script(project_dir: Path) -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    scripts = read_pyproject(REPO_ROOT / "pyproject.toml")["project"]["scripts"]
    assert scripts[hook["entry"]] == "releasekit._scan:main"
    token = mint()
    (project_dir / "staged.cfg").write_text(f"token={token}\n")
    (project_dir / "other.txt").write_text("nothing here\n")
    result = scan(project_dir, "other.txt", "staged.cfg")
    assert result.returncode == 1
    assert "staged.cfg:1" in result.stdout
    assert_not_leaked(result.stdout + result.stderr, token)
