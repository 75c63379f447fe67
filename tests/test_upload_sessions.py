"""upload_testpypi, upload_pypi and doctor as a user runs them, against two local stand-ins
(``testpypi`` and ``pypi``) with synthetic tokens of the right instances."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import run_nox
from releasekit.credentials import mint_token, public_locations
from releasekit.indexes import Index, IndexClient
from releasekit.indexes.local import LocalIndex

pytestmark = pytest.mark.slow
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def assert_no_secret(output: str, *secrets: str) -> None:
    """Neither a secret nor any 40-character piece of one is in ``output``."""
    for secret in secrets:
        for start in range(len(secret) - 39):
            assert secret[start : start + 40] not in output, "a secret leaked into the output"


def files_on(index: Index) -> dict[str, str | None]:
    with IndexClient(index) as client:
        return {f.filename: f.sha256 for f in client.project_files("sample-pkg")}


def closed_port_env(name: str) -> dict[str, str]:
    """Endpoints of index ``name`` on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prefix = f"RELEASEKIT_{name.upper()}_"
    url = f"http://127.0.0.1:{port}/"
    return {prefix + "UPLOAD_URL": url, prefix + "SIMPLE_URL": url + "simple/"}


@pytest.fixture
def built(project_dir: Path) -> Path:
    result = run_nox(project_dir, "-s", "build", env=NO_KEYRING)
    assert result.returncode == 0, result.stdout
    return project_dir


def test_upload_testpypi_then_pypi(
    built: Path, local_index: Callable[[str, str], LocalIndex]
) -> None:
    test_token, prod_token = mint_token("testpypi"), mint_token("pypi")
    test, prod = local_index("testpypi", test_token), local_index("pypi", prod_token)
    env = {
        **test.environ(),
        **prod.environ(),
        **NO_KEYRING,
        "TEST_PYPI_API_TOKEN": test_token,
        "PYPI_API_TOKEN": prod_token,
    }
    outputs = []

    first = run_nox(built, "-s", "upload_testpypi", env=env)
    outputs.append(first.stdout)
    assert first.returncode == 0, first.stdout
    local = {p.name for p in (built / "dist").iterdir()}
    assert set(files_on(test.index)) == local
    assert files_on(prod.index) == {}
    assert first.stdout.count("uploaded") >= 2

    again = run_nox(built, "-s", "upload_testpypi", env=env)
    outputs.append(again.stdout)
    assert again.returncode == 0, again.stdout
    for name in local:
        assert f"{name} is already there" in again.stdout

    to_prod = run_nox(built, "-s", "upload_pypi", env=env)
    outputs.append(to_prod.stdout)
    assert to_prod.returncode == 0, to_prod.stdout
    assert files_on(prod.index) == files_on(test.index)

    doctor = run_nox(built, "-s", "doctor", env=env)
    outputs.append(doctor.stdout)
    assert doctor.returncode == 0, doctor.stdout
    assert "TEST_PYPI_API_TOKEN" in doctor.stdout
    assert "PYPI_API_TOKEN" in doctor.stdout.replace("TEST_PYPI_API_TOKEN", "")
    assert public_locations()["pypi"] in doctor.stdout
    assert public_locations()["testpypi"] in doctor.stdout
    assert "account-wide" in doctor.stdout
    assert "is account-wide; after the first upload, replace it" in doctor.stdout
    assert_no_secret("\n".join(outputs), test_token, prod_token)


def test_production_token_for_testpypi_is_refused_before_any_request(built: Path) -> None:
    prod_token = mint_token("pypi")
    env = {**closed_port_env("testpypi"), **NO_KEYRING, "TEST_PYPI_API_TOKEN": prod_token}
    result = run_nox(built, "-s", "upload_testpypi", env=env)
    assert result.returncode != 0
    assert "TEST_PYPI_API_TOKEN" in result.stdout
    assert public_locations()["pypi"] in result.stdout
    assert public_locations()["testpypi"] in result.stdout
    assert "tries" not in result.stdout  # no request was attempted
    assert "Traceback" not in result.stdout
    assert_no_secret(result.stdout, prod_token)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "TEST_PYPI_API_TOKEN is not set"),
        ("my-password-not-a-token", "not a PyPI API token"),
    ],
)
def test_missing_or_malformed_token(built: Path, value: str | None, expected: str) -> None:
    env = {**closed_port_env("testpypi"), **NO_KEYRING}
    if value is not None:
        env["TEST_PYPI_API_TOKEN"] = value
    result = run_nox(built, "-s", "upload_testpypi", env=env)
    assert result.returncode != 0
    assert expected in result.stdout
    assert "TEST_PYPI_API_TOKEN" in result.stdout
    assert "Traceback" not in result.stdout
    if value is not None:
        assert value not in result.stdout


def test_rebuilt_files_are_a_hard_error(
    built: Path, local_index: Callable[[str, str], LocalIndex]
) -> None:
    token = mint_token("testpypi")
    test = local_index("testpypi", token)
    env = {**test.environ(), **NO_KEYRING, "TEST_PYPI_API_TOKEN": token}
    assert run_nox(built, "-s", "upload_testpypi", env=env).returncode == 0
    (built / "README.md").write_text("# Sample\n\nRebuilt with other content.\n")
    assert run_nox(built, "-s", "build", env=env).returncode == 0
    result = run_nox(built, "-s", "upload_testpypi", env=env)
    assert result.returncode != 0
    assert "sha256" in result.stdout
    assert "Bump the version" in result.stdout
    assert_no_secret(result.stdout, token)


def test_index_down_fails_with_a_clear_message(built: Path) -> None:
    token = mint_token("testpypi")
    env = {**closed_port_env("testpypi"), **NO_KEYRING, "TEST_PYPI_API_TOKEN": token}
    result = run_nox(built, "-s", "upload_testpypi", env=env, timeout=120)
    assert result.returncode != 0
    assert "testpypi" in result.stdout
    assert "after 4 tries" in result.stdout
    assert "connection refused" in result.stdout
    assert "Traceback" not in result.stdout
    assert_no_secret(result.stdout, token)


def test_doctor_refuses_a_wrong_instance(built: Path) -> None:
    token = mint_token("testpypi")
    env = {**NO_KEYRING, "PYPI_API_TOKEN": token}
    result = run_nox(built, "-s", "doctor", env=env)
    assert result.returncode != 0
    assert "PYPI_API_TOKEN" in result.stdout
    assert "TEST_PYPI_API_TOKEN is not set" in result.stdout
    assert_no_secret(result.stdout, token)
