"""The refusal rules table: tried in order, each rule reachable, index-specific where it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from releasekit._distributions import Distribution
from releasekit.indexes import Index
from releasekit.indexes.refusals import RULES, Rule, explain_refusal

DIST = Distribution(
    Path("sample_pkg-0.1.0.tar.gz"), "sample-pkg", Version("0.1.0"), "sdist", 1, "0"
)
PYPI_STAND_IN = Index("pypi", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")
PRIVATE = Index("corp", "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/")


def _example(rule: Rule) -> tuple[int, str, Index]:
    """An answer made only of what ``rule`` looks for."""
    status = rule.statuses[0] if rule.statuses else 400
    text = rule.words[0] if rule.words else "no words of note"
    index = PYPI_STAND_IN if rule.indexes else PRIVATE
    return status, text, index


@pytest.mark.parametrize("position", range(len(RULES)))
def test_every_rule_is_reachable_in_order(position: int) -> None:
    """No rule is hidden by one before it: its own example picks it (or an equal one)."""
    rule = RULES[position]
    status, text, index = _example(rule)
    first = next(r for r in RULES if r.matches(status, text, index))
    assert first.explanation == rule.explanation


def test_the_first_matching_rule_wins() -> None:
    error = explain_refusal(403, "Token expired; verify your e-mail", PRIVATE, DIST, "VAR")
    assert error.why == "The token has expired."


def test_too_many_requests_depends_on_the_index() -> None:
    on_pypi = explain_refusal(429, "Too Many Requests", PYPI_STAND_IN, DIST, "VAR")
    elsewhere = explain_refusal(429, "Too Many Requests", PRIVATE, DIST, "VAR")
    assert "new projects" in on_pypi.why
    assert "new projects" not in elsewhere.why
    assert "requests" in elsewhere.why


def test_templates_are_filled() -> None:
    error = explain_refusal(307, "Temporary Redirect", PRIVATE, DIST, "CORP_TOKEN")
    assert "RELEASEKIT_CORP_UPLOAD_URL" in error.fix
    assert "[tool.releasekit.indexes.corp]" in error.fix
    assert "{" not in error.why + error.fix


def test_an_unknown_answer_keeps_the_index_words() -> None:
    error = explain_refusal(400, "Something new", PRIVATE, DIST, "VAR")
    assert "HTTP 400 Something new" in error.what
    assert error.why == "The index gave the reason above."
