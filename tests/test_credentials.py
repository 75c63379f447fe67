"""Tokens read offline (instance, scope, expiry), credential resolution, redaction."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pypitoken import Token

from releasekit._project import Project
from releasekit._redaction import install_log_redaction, redact
from releasekit._settings import IndexSettings
from releasekit.credentials import (
    Credentials,
    MissingCredentials,
    forget_secrets,
    mint_token,
    netrc_for,
    public_locations,
    read_credentials,
    read_token,
    resolve_credentials,
    scrubbed_environ,
    take_secret,
    token_credentials,
)
from releasekit.errors import CredentialError
from releasekit.indexes import Index, resolve_index

TOKEN_VARS = ("PYPI_API_TOKEN", "TEST_PYPI_API_TOKEN", "TWINE_USERNAME", "TWINE_PASSWORD")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*TOKEN_VARS, "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


def local(name: str) -> Index:
    """An index named like a public one but served locally (as LocalIndex does)."""
    return Index(name, "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")


def test_minted_tokens_name_their_instance() -> None:
    prod, test = mint_token("pypi"), mint_token("testpypi")
    assert prod.startswith("pypi-AgEI")
    assert test.startswith("pypi-AgEN")
    assert read_token(prod).location == public_locations()["pypi"]
    assert read_token(test).location == public_locations()["testpypi"]
    assert read_token(prod).account_wide
    assert "PyPI" in read_token(prod).instance
    assert "TestPyPI" in read_token(test).instance


def test_scope_and_expiry_from_current_caveats() -> None:
    soon = int(time.time()) + 3600
    info = read_token(mint_token("pypi", projects=["Sample_Pkg"], expires_at=soon))
    assert info.project_names == frozenset({"sample-pkg"})
    assert info.expires_at == soon
    assert info.allows("sample.pkg") is True
    assert info.allows("other") is False
    assert not info.account_wide
    assert "sample-pkg" in info.describe()
    assert "expires" in info.describe()


def test_legacy_caveats_are_understood() -> None:
    token = Token.create(domain=public_locations()["testpypi"], identifier="id", key="k")
    token.restrict(legacy_project_names=["foo"], legacy_not_before=1, legacy_not_after=2)
    token.restrict(legacy_noop=True)
    info = read_token(token.dump())
    assert info.project_names == frozenset({"foo"})
    assert (info.not_before, info.expires_at) == (1, 2)
    assert info.unknown_caveats == 0


def test_trusted_publisher_caveat_is_understood() -> None:
    info = read_token(mint_token("pypi", trusted_publisher="publisher-1"))
    assert info.trusted_publisher == "publisher-1"
    assert not info.account_wide
    assert info.allows("anything") is None
    assert "trusted publisher" in info.scope


def test_surrounding_whitespace_is_stripped() -> None:
    token = mint_token("testpypi")
    creds = token_credentials(f"  {token}\n", local("testpypi"), "TEST_PYPI_API_TOKEN")
    assert creds.password == token
    assert creds.username == "__token__"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: "hello-world", "does not start with `pypi-`"),
        (lambda t: "pypi-", "nothing follows"),
        (lambda t: t[:-20], "truncated"),
        (lambda t: t[:-1] + "!", "not base64url"),
        (lambda t: t[:-2] + "+/", "not base64url"),
        (lambda t: t[:41], "truncated"),
        (lambda t: "pypi-" + "A" * 40, "not a version 2 macaroon"),
    ],
)
def test_strings_that_are_not_tokens_are_refused(mangle: Callable[[str], str], reason: str) -> None:
    token = mint_token("testpypi")
    with pytest.raises(CredentialError) as caught:
        token_credentials(mangle(token), local("testpypi"), "TEST_PYPI_API_TOKEN")
    text = str(caught.value)
    assert "TEST_PYPI_API_TOKEN" in text
    assert reason in text
    assert token[5:45] not in text


def test_wrong_instance_is_refused_both_ways() -> None:
    for token_for, used_for in (("pypi", "testpypi"), ("testpypi", "pypi")):
        with pytest.raises(CredentialError) as caught:
            token_credentials(mint_token(token_for), local(used_for), "SOME_VAR")
        text = str(caught.value)
        assert public_locations()["pypi"] in text
        assert public_locations()["testpypi"] in text
        assert "TestPyPI" in text
        assert "SOME_VAR" in text


def test_public_instances_expected_even_with_builtin_urls() -> None:
    index = resolve_index("testpypi")
    with pytest.raises(CredentialError, match="made for PyPI"):
        token_credentials(mint_token("pypi"), index, "TEST_PYPI_API_TOKEN")


def test_expired_and_not_yet_valid_tokens_are_refused() -> None:
    past = int(time.time()) - 10
    with pytest.raises(CredentialError, match="expired"):
        token_credentials(mint_token("pypi", expires_at=past), local("pypi"), "PYPI_API_TOKEN")
    future = int(time.time()) + 3600
    late = mint_token("pypi", not_before=future, expires_at=future + 60)
    with pytest.raises(CredentialError, match="not valid before"):
        token_credentials(late, local("pypi"), "PYPI_API_TOKEN")


def test_token_scoped_to_another_project_is_refused() -> None:
    token = mint_token("pypi", projects=["other-project"])
    with pytest.raises(CredentialError) as caught:
        token_credentials(token, local("pypi"), "PYPI_API_TOKEN", "sample-pkg")
    assert "other-project" in str(caught.value)
    assert "sample-pkg" in str(caught.value)
    ok = token_credentials(token, local("pypi"), "PYPI_API_TOKEN", "Other_Project")
    assert ok.token is not None


def test_custom_index_takes_passwords_but_never_public_tokens() -> None:
    private = Index("corp", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/", "CORP_TOKEN")
    creds = token_credentials("s3cret-password", private, "CORP_TOKEN", username="ci")
    assert creds.token is None
    assert creds.username == "ci"
    assert "s3cret-password" not in repr(creds)
    with pytest.raises(CredentialError, match="another server"):
        token_credentials(mint_token("pypi"), private, "CORP_TOKEN")
    own = token_credentials(mint_token("corp", location="corp.example"), private, "CORP_TOKEN")
    assert own.token is not None
    assert own.token.location == "corp.example"


def test_public_instance_refuses_username_and_password() -> None:
    with pytest.raises(CredentialError, match="__token__"):
        token_credentials(mint_token("pypi"), local("pypi"), "TWINE_PASSWORD", username="me")


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    index = resolve_index("testpypi")
    with pytest.raises(MissingCredentials) as caught:
        resolve_credentials(index)
    text = str(caught.value)
    assert "TEST_PYPI_API_TOKEN" in text
    assert "secrets.TEST_PYPI_API_TOKEN" in text
    twine_token = mint_token("testpypi")
    monkeypatch.setenv("TWINE_PASSWORD", twine_token)
    assert resolve_credentials(index).source == "TWINE_PASSWORD"
    monkeypatch.setenv("TEST_PYPI_API_TOKEN", mint_token("testpypi"))
    found = resolve_credentials(index)
    assert isinstance(found, Credentials)
    assert found.source == "TEST_PYPI_API_TOKEN"
    assert found.password != twine_token


def test_configured_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    corp = IndexSettings("http://127.0.0.1:9/", "http://127.0.0.1:9/s/", token_env="CORP_TOKEN")
    index = resolve_index("corp", {"corp": corp})
    with pytest.raises(MissingCredentials, match="CORP_TOKEN"):
        resolve_credentials(index)
    monkeypatch.setenv("CORP_TOKEN", "hunter22")
    assert resolve_credentials(index).source == "CORP_TOKEN"


def test_scrubbed_environ_drops_configured_token_env(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name nothing marks as secret but the configuration (no TOKEN, PASSWORD ... in it).
    monkeypatch.setenv("CORP_UPLOAD_KEY", "x")
    monkeypatch.setenv("TEST_PYPI_API_TOKEN", "y")
    project = Project.load(
        project_dir,
        indexes={"corp": {"upload-url": "u", "simple-url": "s", "token-env": "CORP_UPLOAD_KEY"}},
    )
    env = scrubbed_environ(project)
    assert "CORP_UPLOAD_KEY" not in env
    assert "TEST_PYPI_API_TOKEN" not in env
    assert "PATH" in env
    # Loading the settings registered it: no child gets it, with or without the project, and
    # releasekit took both out of its own environment (held in memory only).
    assert "CORP_UPLOAD_KEY" not in scrubbed_environ()
    assert "CORP_UPLOAD_KEY" not in os.environ
    assert "TEST_PYPI_API_TOKEN" not in os.environ
    assert take_secret("CORP_UPLOAD_KEY") == "x"
    assert take_secret("TEST_PYPI_API_TOKEN") == "y"


def test_log_records_of_child_loggers_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    token = mint_token("pypi")
    install_log_redaction()
    # Explicit levels: a session run earlier in this process may have quieted these loggers.
    with (
        caplog.at_level(logging.DEBUG, logger="urllib3"),
        caplog.at_level(logging.DEBUG, logger="twine"),
    ):
        logging.getLogger("urllib3.connectionpool").debug("auth %s", token)
        logging.getLogger("twine.repository").info(f"password {token}")
    assert caplog.records
    assert token[5:45] not in caplog.text
    assert "pypi-****" in caplog.text


def test_redaction_masks_registered_secrets_and_jwts() -> None:
    token_credentials("a-private-password", local("corp"), "CORP")
    payload = base64.urlsafe_b64encode(json.dumps({"aud": "pypi"}).encode()).decode()
    jwt = f"eyJhbGciOiJub25lIn0.{payload.rstrip('=')}.c2lnbmF0dXJl"
    assert redact(f"x a-private-password {jwt} y") == "x **** **** y"


def test_custom_index_without_token_env_says_how_to_configure_one() -> None:
    with pytest.raises(MissingCredentials) as caught:
        resolve_credentials(local("corp"))
    assert "token-env" in str(caught.value)
    assert "[tool.releasekit.indexes.corp]" in str(caught.value)


# --- private indexes: usernames, passwords, and tokens that only PyPI understands ---------


def corp(username: str | None = None, token_env: str | None = None) -> Index:
    table = IndexSettings(
        "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/", token_env=token_env, username=username
    )
    return resolve_index("corp", {"corp": table})


def test_private_index_username_from_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINE_PASSWORD", "s3cret")
    found = resolve_credentials(corp(username="alice"))
    assert (found.username, found.source, found.token) == ("alice", "TWINE_PASSWORD", None)
    monkeypatch.setenv("TWINE_USERNAME", "bob")
    assert resolve_credentials(corp(username="alice")).username == "bob"
    monkeypatch.setenv("CORP_PASSWORD", "other")
    found = resolve_credentials(corp(username="alice", token_env="CORP_PASSWORD"))
    assert (found.username, found.source) == ("alice", "CORP_PASSWORD")


def test_private_index_password_that_looks_like_a_token_is_a_password() -> None:
    creds = token_credentials("pypi-not-really-a-macaroon", corp("alice"), "CORP", username="alice")
    assert (creds.username, creds.token) == ("alice", None)
    # A real token of a private warehouse instance keeps the configured username.
    own = token_credentials(mint_token("corp", location="corp.example"), corp(), "CORP")
    assert own.token is not None and own.username == "__token__"
    for public in ("pypi", "testpypi"):
        with pytest.raises(CredentialError, match="another server"):
            token_credentials(mint_token(public), corp("alice"), "CORP", username="alice")


def test_public_index_username_message_names_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = IndexSettings(username="alice")
    monkeypatch.setenv("PYPI_API_TOKEN", mint_token("pypi"))
    with pytest.raises(CredentialError) as caught:
        resolve_credentials(resolve_index("pypi", {"pypi": table}))
    text = str(caught.value)
    assert "[tool.releasekit.indexes.pypi]" in text
    assert "TWINE_USERNAME" not in text
    monkeypatch.delenv("PYPI_API_TOKEN", raising=False)
    forget_secrets()  # resolving took PYPI_API_TOKEN into the in-memory store
    monkeypatch.setenv("TWINE_PASSWORD", mint_token("pypi"))
    monkeypatch.setenv("TWINE_USERNAME", "carol")
    with pytest.raises(CredentialError, match="unset TWINE_USERNAME"):
        resolve_credentials(resolve_index("pypi"))


def test_missing_private_credentials_name_the_user_and_the_keyring() -> None:
    with pytest.raises(MissingCredentials) as caught:
        resolve_credentials(corp(username="alice"))
    text = str(caught.value)
    assert "'alice'" in text
    assert "keyring set http://127.0.0.1:9/ alice" in text


def test_read_credentials_only_for_private_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PYPI_API_TOKEN", mint_token("testpypi"))
    assert read_credentials(resolve_index("testpypi")) is None
    assert read_credentials(corp("alice", "CORP_PASSWORD")) is None
    monkeypatch.setenv("CORP_PASSWORD", "s3cret")
    found = read_credentials(corp("alice", "CORP_PASSWORD"))
    assert found is not None and (found.username, found.password) == ("alice", "s3cret")


def test_netrc_for_is_private_and_removed() -> None:
    local = Index("corp", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/simple/")
    with netrc_for(local, ("alice", "s3cret")) as extra:
        path = Path(extra["NETRC"])
        assert path.read_text() == "machine 127.0.0.1\nlogin alice\npassword s3cret\n"
        if os.name == "posix":
            assert path.stat().st_mode & 0o777 == 0o600
            assert path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.parent.exists()
    with pytest.raises(CredentialError, match="netrc"), netrc_for(local, ("a", "two words")):
        pass
