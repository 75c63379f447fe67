"""Bad input across the product, table-driven: configuration keys and types, versions, dist
dirs, tokens, and the arguments of every session. Each case runs nox as a user does and
must end in exactly one explained error (what, why or fix) and a non-zero exit, never a
traceback."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import run_nox
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


def _token(**kwargs: object) -> dict[str, str]:
    return {"TEST_PYPI_API_TOKEN": mint_token("testpypi", **kwargs)}  # type: ignore[arg-type]


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
    env = {**NO_KEYRING, **_closed_port_env(), **case.env}
    result = run_nox(root, "-s", case.session, "--", *case.args, env=env)
    output = result.stdout
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert output.count("error:") == 1, output
    assert "Why:" in output or "Fix:" in output, output
    for needle in case.needles:
        assert needle in output, output
