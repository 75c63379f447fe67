"""Bad input across the product, table-driven: configuration keys and types, versions, dist
dirs, tokens, and the arguments of every session. Each case runs nox as a user does and
must end in exactly one explained error (what, why or fix) and a non-zero exit, never a
traceback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pypitoken import Token

from conftest import git, run_nox
from releasekit.credentials import mint_token

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def _closed_port_env() -> dict[str, str]:
    """Both stand-in indexes on a port nothing listens on: nothing may reach the network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    env = {}
    for name in ("PYPI", "TESTPYPI"):
        env[f"RELEASEKIT_{name}_UPLOAD_URL"] = url
        env[f"RELEASEKIT_{name}_SIMPLE_URL"] = url + "simple/"
    return env


@dataclass(frozen=True)
class Case:
    """One bad input: the session and its arguments, what to add to [tool.releasekit] or
    change in pyproject.toml, the environment, and what the message must name."""

    session: str
    args: tuple[str, ...] = ()
    releasekit: str = ""
    tables: str = ""
    replace: tuple[str, str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    needles: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)


def _token(**kwargs: object) -> dict[str, str]:
    return {"TEST_PYPI_API_TOKEN": mint_token("testpypi", **kwargs)}  # type: ignore[arg-type]


def _caveated(caveat: object) -> dict[str, str]:
    """A TestPyPI token with one more caveat (JSON, written as given)."""
    token = Token.load(mint_token("testpypi"))
    token._macaroon.add_first_party_caveat(json.dumps(caveat))
    return {"TEST_PYPI_API_TOKEN": token.dump()}


VERSION_FILE = "src/sample_pkg/__init__.py"
RELEASE_OFFLINE = ("0.2.0", "--dry-run", "--no-index-check")


CASES = {
    # configuration keys and types
    "unknown-key": Case("build", releasekit="dist_dir = 'out'", needles=("dist_dir", "dist-dir")),
    "list-as-string": Case(
        "doctor", releasekit="smoke = 'pytest'", needles=("smoke", "a list of strings")
    ),
    "int-as-bool": Case(
        "check_dist", releasekit="max-file-size-mb = true", needles=("an integer",)
    ),
    "zero-size-limit": Case(
        "check_dist", releasekit="max-file-size-mb = 0", needles=("positive integer",)
    ),
    "index-not-table": Case(
        "upload_testpypi", releasekit="indexes = { testpypi = 1 }", needles=("must be a table",)
    ),
    "index-unknown-key": Case(
        "doctor",
        tables="[tool.releasekit.indexes.private]\nurl = 'x'",
        needles=("Unknown key in [tool.releasekit.indexes.private]", "upload-url"),
    ),
    "index-value-not-string": Case(
        "doctor", tables="[tool.releasekit.indexes.private]\nusername = 1\n", needles=("a string",)
    ),
    "index-without-urls": Case(
        "doctor",
        tables="[tool.releasekit.indexes.private]\nusername = 'me'\n",
        needles=("private", "upload URL and a simple URL"),
    ),
    "version-file-spec": Case(
        "doctor", replace=(':__version__"]', '"]'), needles=("path:VARIABLE",)
    ),
    "version-file-missing": Case(
        "doctor",
        replace=("src/sample_pkg/__init__.py:", "src/nowhere.py:"),
        needles=("nowhere.py",),
    ),
    "packages-missing-dir": Case(
        "build", releasekit="packages = ['libs/absent']", needles=("No pyproject.toml", "absent")
    ),
    "package-not-in-repo": Case(
        "build", args=("--package", "other"), needles=("--package other", "sample-pkg")
    ),
    "tag-format-empty-field": Case(
        "doctor", releasekit="tag-format = 'v{version}{}'", needles=("empty field {}",)
    ),
    "tag-format-conversion": Case(
        "doctor", releasekit="tag-format = '{version!x}'", needles=("conversion or format spec",)
    ),
    "tag-format-unclosed": Case(
        "doctor", releasekit="tag-format = '{version'", needles=("not a valid format",)
    ),
    "tag-format-single-brace": Case(
        "doctor", releasekit="tag-format = 'v{version}}'", needles=("not a valid format",)
    ),
    "tag-format-nested-spec": Case(
        "doctor",
        releasekit="tag-format = '{version:>{name}}'",
        needles=("conversion or format spec",),
    ),
    "commitizen-bad-regex": Case(
        "build",
        args=("--version", "0.2.0"),
        tables=f"[tool.commitizen]\nversion_files = ['{VERSION_FILE}:(unclosed']\n",
        needles=("'(unclosed' is not a valid regular expression",),
    ),
    # files releasekit reads and writes
    "version-file-not-utf8": Case(
        "build",
        args=("--version", "0.2.0"),
        files={VERSION_FILE: b'__version__ = "0.1.0"\n# caf\xe9\n'},
        needles=("is not UTF-8 text (byte 0xe9 on line 2)",),
    ),
    "changelog-not-utf8": Case(
        "release",
        args=RELEASE_OFFLINE,
        files={"CHANGELOG.md": b"# Changelog\n\nCaf\xe9\n"},
        needles=("CHANGELOG.md is not UTF-8 text",),
    ),
    "version-file-outside-repository": Case(
        "release",
        args=RELEASE_OFFLINE,
        replace=(':__version__"]', ':__version__", "../outside.py:__version__"]'),
        files={"../outside.py": b'__version__ = "0.1.0"\n'},
        needles=("outside.py is outside the repository",),
    ),
    # versions
    "invalid-version": Case(
        "build",
        replace=('version = "0.1.0"', 'version = "banana"'),
        needles=("'banana' is not a valid PEP 440 version",),
    ),
    "version-files-disagree": Case(
        "doctor", replace=('version = "0.1.0"', 'version = "0.2.0"'), needles=("0.1.0", "0.2.0")
    ),
    # dist dirs
    "no-dist-dir": Case("check_dist", needles=("does not exist", "nox -s build")),
    "upload-from-absent-dir": Case(
        "upload_testpypi",
        args=("--dist-dir", "nowhere"),
        env=_token(),
        needles=("nowhere",),
    ),
    "verify-without-dist": Case("verify_testpypi", needles=("does not exist",)),
    "verify-from-absent-dir": Case(
        "verify_testpypi",
        args=("--dist-dir", "nowhere"),
        needles=("The dist dir nowhere does not exist",),
    ),
    "dist-dir-is-a-file": Case(
        "check_dist", releasekit="dist-dir = 'README.md'", needles=("is a file, not a directory",)
    ),
    "directory-named-like-a-wheel": Case(
        "check_dist",
        files={"dist/sample_pkg-0.1.0-py3-none-any.whl/METADATA": b""},
        needles=("named like a distribution file but is not a file",),
    ),
    # tokens
    "no-token": Case("upload_testpypi", needles=("TEST_PYPI_API_TOKEN is not set",)),
    "not-a-token": Case(
        "upload_testpypi",
        env={"TEST_PYPI_API_TOKEN": "hunter2-not-a-token"},
        needles=("TEST_PYPI_API_TOKEN",),
    ),
    "production-token-for-testpypi": Case(
        "upload_testpypi",
        env={"TEST_PYPI_API_TOKEN": mint_token("pypi")},
        needles=("TestPyPI", "PyPI"),
    ),
    "test-token-for-pypi": Case(
        "upload_pypi", env={"PYPI_API_TOKEN": mint_token("testpypi")}, needles=("PyPI",)
    ),
    "expired-token": Case(
        "upload_testpypi", env=_token(expires_at=int(time.time()) - 3600), needles=("expired",)
    ),
    "token-for-another-project": Case(
        "upload_testpypi", env=_token(projects=["someone-else"]), needles=("someone-else",)
    ),
    "caveat-expiry-words": Case(
        "upload_testpypi", env=_caveated([0, "soon", "now"]), needles=("malformed restriction",)
    ),
    "caveat-legacy-expiry-not-a-number": Case(
        "upload_testpypi",
        env=_caveated({"exp": "x", "nbf": 1}),
        needles=("malformed restriction",),
    ),
    "caveat-expired-before-the-calendar": Case(
        "upload_testpypi",
        env=_caveated([0, -1e30, 0]),
        needles=("has expired (expiry: before 0001-01-01",),
    ),
    # arguments of every session
    "build-unknown-argument": Case("build", args=("--bogus",), needles=("--bogus",)),
    "check-extra-argument": Case("check_dist", args=("extra",), needles=("extra",)),
    "upload-dist-dir-without-value": Case(
        "upload_pypi", args=("--dist-dir",), needles=("--dist-dir",)
    ),
    "verify-negative-timeout": Case(
        "verify_testpypi", args=("--timeout", "-1"), needles=("--timeout",)
    ),
    "verify-timeout-not-a-number": Case(
        "verify_pypi", args=("--timeout", "soon"), needles=("soon",)
    ),
    "init-ci-without-repository": Case("init_ci", needles=("--repository",)),
    "doctor-unknown-argument": Case("doctor", args=("--fix",), needles=("--fix",)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_explained(make_project: Callable[..., Path], case: Case) -> None:
    root = make_project()
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    if case.replace is not None:
        assert case.replace[0] in text
        text = text.replace(*case.replace)
    if case.releasekit:
        text = text.replace("[tool.releasekit]\n", f"[tool.releasekit]\n{case.releasekit}\n")
    pyproject.write_text(text + case.tables)
    for name, content in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "chore: the bad input")
    env = {**NO_KEYRING, **_closed_port_env(), **case.env}
    result = run_nox(root, "-s", case.session, "--", *case.args, env=env)
    output = result.stdout
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert output.count("error:") == 1, output
    assert "Why:" in output or "Fix:" in output, output
    for needle in case.needles:
        assert needle in output, output
