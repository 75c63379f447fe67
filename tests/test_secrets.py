"""scan_secrets: real tokens (minted in PyPI's format) planted in real git repositories."""

from __future__ import annotations

import base64
import codecs
import gzip
import io
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from random import Random
from urllib.parse import urlsplit

import pytest
import yaml
from pypitoken import Token
from rich.console import Console
from twine.utils import DEFAULT_REPOSITORY, TEST_REPOSITORY

from conftest import git, run_nox
from releasekit._project import read_pyproject
from releasekit._report import Reporter, set_reporter
from releasekit._scan import scan_secrets
from releasekit.credentials.search import MAX_CANDIDATES, MAX_GZIP_MEMBER, Finding
from releasekit.indexes import web_root

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "releasekit-scan-secrets"


def mint(test_instance: bool = False, caveat: object = None) -> str:
    """A token in PyPI's real format, scoped to one project (never valid anywhere), with
    ``caveat`` (as JSON) added when given."""
    upload = TEST_REPOSITORY if test_instance else DEFAULT_REPOSITORY
    domain = urlsplit(web_root(upload)).hostname
    assert domain
    token = Token.create(domain=domain, identifier=str(uuid.uuid4()), key=uuid.uuid4().hex)
    token.restrict(project_names=["sample-pkg"])
    if caveat is not None:
        token._macaroon.add_first_party_caveat(json.dumps(caveat))
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
    assert "split over several string literals" in result.stdout
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


# --- the forms a token takes in real files (issue 12, item 6) ------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def scan_file(directory: Path, name: str, data: bytes) -> list[Finding]:
    """Scan one file written in ``directory``; no finding may show any form of a token."""
    path = directory / name
    path.write_bytes(data)
    findings = scan_secrets([path])
    for finding in findings:
        for token in _MINTED_HERE:
            for form in (token, b64(token), b64(f"__token__:{token}")):
                assert_not_leaked(finding.describe(), form)
    return findings


_MINTED_HERE: list[str] = []


def token_for(test_instance: bool = False) -> str:
    token = mint(test_instance)
    _MINTED_HERE.append(token)
    return token


def where(findings: list[Finding]) -> list[tuple[str, int, str, tuple[str, ...]]]:
    return [(Path(f.path).name, f.line, f.kind, f.forms) for f in findings]


def test_token_split_into_short_string_literals(tmp_path: Path) -> None:
    token = token_for()
    found = scan_file(tmp_path, "a.py", f'TOKEN = "{token[:9]}" "{token[9:]}"\n'.encode())
    assert where(found) == [("a.py", 1, "token", ("literals",))]
    assert found[0].instance.startswith("PyPI")


def test_token_joined_with_plus_over_three_pieces(tmp_path: Path) -> None:
    token = token_for()
    source = f'const t = "{token[:9]}" +\n  "{token[9:70]}" +\n  "{token[70:]}";\n'
    found = scan_file(tmp_path, "a.js", source.encode())
    assert where(found) == [("a.js", 1, "token", ("literals",))]


def test_python_implicit_concatenation_across_lines(tmp_path: Path) -> None:
    token = token_for()
    source = f'TOKEN = (\n    "{token[:5]}"\n    b"{token[5:40]}"\n    \'{token[40:]}\'\n)\n'
    found = scan_file(tmp_path, "conf.py", source.encode())
    assert where(found) == [("conf.py", 2, "token", ("literals",))]
    description = found[0].describe()
    assert "conf.py:2: PyPI API token for PyPI" in description
    assert "split over several string literals" in description


def test_base64_of_a_token_in_a_kubernetes_secret(tmp_path: Path) -> None:
    token = token_for(test_instance=True)
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: publish\ntype: Opaque\n"
        f"data:\n  token: {b64(token)}\n"
    )
    found = scan_file(tmp_path, "secret.yaml", manifest.encode())
    assert where(found) == [("secret.yaml", 7, "token", ("base64",))]
    assert found[0].instance.startswith("TestPyPI")
    assert "base64-encoded" in found[0].describe()


def test_base64_basic_authorization_header(tmp_path: Path) -> None:
    token = token_for()
    log = f"> POST /legacy/ HTTP/1.1\n> Authorization: Basic {b64(f'__token__:{token}')}\n"
    found = scan_file(tmp_path, "curl.log", log.encode())
    assert where(found) == [("curl.log", 2, "token", ("base64",))]


def test_base64_inside_base64_docker_config(tmp_path: Path) -> None:
    token = token_for()
    config = json.dumps({"auths": {"registry": {"auth": b64(f"__token__:{token}")}}})
    wrapped = "\n    ".join(textwrap.wrap(b64(config), 76))
    manifest = f"kind: Secret\ndata:\n  .dockerconfigjson: |\n    {wrapped}\n"
    found = scan_file(tmp_path, "pull.yaml", manifest.encode())
    assert where(found) == [("pull.yaml", 4, "token", ("base64", "base64"))]


def test_json_unicode_escapes(tmp_path: Path) -> None:
    token = token_for()
    escaped = json.dumps({"password": token}).replace("-", "\\u002d")
    assert "pypi-" not in escaped
    found = scan_file(tmp_path, "settings.json", f"{{}}\n{escaped}\n".encode())
    assert where(found) == [("settings.json", 2, "token", ("escape",))]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-16-be-bom"])
def test_utf16_files_with_or_without_byte_order_mark(tmp_path: Path, codec: str) -> None:
    token = token_for()
    text = f"# PowerShell profile\r\n$env:PYPI_API_TOKEN = '{token}'\r\n"
    data = (
        codecs.BOM_UTF16_BE + text.encode("utf-16-be")
        if codec == "utf-16-be-bom"
        else text.encode(codec)
    )
    found = scan_file(tmp_path, "profile.ps1", data)
    assert where(found) == [("profile.ps1", 2, "token", ("utf-16",))]


def test_gzip_file(tmp_path: Path) -> None:
    token = token_for()
    data = gzip.compress(f"start\nenv:\nPYPI_API_TOKEN={token}\n".encode())
    found = scan_file(tmp_path, "build.log.gz", data)
    assert where(found) == [("build.log.gz", 3, "token", ("gzip",))]
    assert "in gzip-compressed data" in found[0].describe()


def test_gzip_member_inside_a_file(tmp_path: Path) -> None:
    token = token_for()
    member = gzip.compress(f"PYPI_API_TOKEN={token}\n".encode())
    data = b"#!/bin/sh\n# self-extracting\nexit 0\n__DATA__\n" + member + b"\ntrailer\n"
    found = scan_file(tmp_path, "installer.sh", data)
    assert where(found) == [("installer.sh", 5, "token", ("gzip",))]


def test_shell_line_continuation(tmp_path: Path) -> None:
    token = token_for()
    script = f"#!/bin/sh\nexport TWINE_PASSWORD={token[:9]}\\\n{token[9:80]}\\\n{token[80:]}\n"
    found = scan_file(tmp_path, "publish.sh", script.encode())
    assert where(found) == [("publish.sh", 2, "token", ("continuation",))]


def test_a_token_with_unreadable_caveat_values_is_still_found(tmp_path: Path) -> None:
    secret = mint(caveat=[0, "soon", "now"])
    _MINTED_HERE.append(secret)
    found = scan_file(tmp_path, "odd.env", f"T={secret}\n".encode())
    assert where(found) == [("odd.env", 1, "token", ())]


def test_history_finds_encoded_forms_only_history_holds(project_dir: Path) -> None:
    token = token_for()
    (project_dir / "secret.yaml").write_text(f"data:\n  token: {b64(token)}\n")
    (project_dir / "trace.log.gz").write_bytes(gzip.compress(f"pw={token}\n".encode()))
    git(project_dir, "add", "secret.yaml", "trace.log.gz")
    git(project_dir, "commit", "-q", "-m", "chore: deploy files")
    leaked_in = git(project_dir, "rev-parse", "HEAD").strip()
    git(project_dir, "rm", "-q", "secret.yaml", "trace.log.gz")
    git(project_dir, "commit", "-q", "-m", "fix: no secrets")

    assert scan_secrets([project_dir]) == []
    history = sorted(where(scan_secrets([project_dir], history=True)))
    assert history == [
        ("secret.yaml", 2, "token", ("base64",)),
        ("trace.log.gz", 1, "token", ("gzip",)),
    ]
    result = scan(project_dir, "--history")
    assert result.returncode == 1
    assert f"secret.yaml:2 (commit {leaked_in[:12]})" in result.stdout
    for form in (token, b64(token)):
        assert_not_leaked(result.stdout + result.stderr, form)


def test_encoded_forms_fail_the_command_without_showing_them(project_dir: Path) -> None:
    token = token_for()
    basic = b64(f"__token__:{token}")
    (project_dir / "notes.txt").write_text(f"Authorization: Basic {basic}\n")
    result = scan(project_dir)
    assert result.returncode == 1
    assert "notes.txt:1: PyPI API token for PyPI" in result.stdout
    for form in (token, basic, b64(token)):
        assert_not_leaked(result.stdout + result.stderr, form)


def test_look_alikes_are_not_reported(tmp_path: Path) -> None:
    random = Random(12)  # noqa: S311 - reproducible noise, not secrets
    noise = [base64.b64encode(random.randbytes(size)).decode() for size in (110, 140, 160, 200)]
    garbage = [
        "pypi-" + base64.urlsafe_b64encode(random.randbytes(size)).decode().rstrip("=")
        for size in (110, 140)
    ]
    look_alikes = [
        *noise,
        *garbage,
        b64(garbage[0]),
        b64(f"__token__:{garbage[1]}"),
        f'"{garbage[0][:9]}" "{garbage[0][9:]}"',
        garbage[1].replace("-", "\\u002d"),
    ]
    text = "\n".join(f"value_{n} = {value}" for n, value in enumerate(look_alikes)) + "\n"
    (tmp_path / "fixtures.txt").write_text(text)
    (tmp_path / "fixtures.txt.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "fixtures.utf16").write_bytes(text.encode("utf-16"))
    assert scan_secrets([tmp_path]) == []


def test_a_gzip_bomb_is_cut_off_and_said_so(tmp_path: Path) -> None:
    reporter = Reporter(Console(file=io.StringIO(), width=300), plain=True)
    set_reporter(reporter)
    try:
        bomb = gzip.compress(bytes(MAX_GZIP_MEMBER * 4), compresslevel=9)
        assert len(bomb) < MAX_GZIP_MEMBER // 50
        findings = scan_file(tmp_path, "bomb.gz", bomb)
    finally:
        set_reporter(None)
    assert findings == []
    output = reporter.console.file.getvalue()  # type: ignore[attr-defined]
    assert "bomb.gz: stopped at gzip data that expands past 32 MiB" in output


def test_candidates_are_capped(tmp_path: Path) -> None:
    reporter = Reporter(Console(file=io.StringIO(), width=300), plain=True)
    set_reporter(reporter)
    try:
        many = "".join(f"pypi-{n:020d}\n" for n in range(MAX_CANDIDATES + 5))
        token = token_for()
        findings = scan_file(tmp_path, "many.txt", (many + token).encode())
    finally:
        set_reporter(None)
    assert findings == []
    output = reporter.console.file.getvalue()  # type: ignore[attr-defined]
    assert f"many.txt: stopped at more than {MAX_CANDIDATES} candidates" in output
