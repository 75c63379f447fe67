"""The session-wide scan for tokens in nox output (conftest.py) can find a leak."""

from __future__ import annotations

from conftest import _MINTED, leaked_secrets
from releasekit.credentials import mint_token


def test_minted_tokens_are_recorded() -> None:
    token = mint_token("testpypi")
    assert _MINTED[-1] == token


def test_a_leak_is_found_whole_or_in_part() -> None:
    token = mint_token("pypi")
    other = mint_token("testpypi")
    assert leaked_secrets(["nothing here"], [token]) == []
    assert leaked_secrets([f"password: {token}\n"], [token, other]) == [token]
    assert leaked_secrets([f"...{token[50:90]}..."], [token]) == [token]
    assert leaked_secrets([f"...{token[50:89]}..."], [token]) == []
