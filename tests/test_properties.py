"""Generated input through the loaders: tag formats, versions, token caveats and every
``[tool.releasekit]`` key. Each must end in success or a ReleasekitError, never in any
other exception (which a session shows as an internal error)."""

from __future__ import annotations

import contextlib
import functools
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypitoken import Token

from conftest import write_project
from releasekit._distributions import check_dist_dir
from releasekit._project import Project
from releasekit._settings import KEYS, Settings
from releasekit._stamp import canonical_version
from releasekit.credentials import check_token, mint_token, read_token
from releasekit.credentials.tokens import token_at
from releasekit.errors import ReleasekitError
from releasekit.indexes import Index, builtin_indexes

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text as TOML and UTF-8 can hold it (no lone surrogates).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
FORMAT_PIECES = st.sampled_from(
    ["{version}", "{name}", "{", "}", "{}", "{0}", "!r", "!x", ":", ">", "{version", "v", "-"]
)
VERSIONS = st.one_of(
    TEXT,
    st.from_regex(r"\A(\d!)?\d{1,3}(\.\d{1,3}){0,3}((a|b|rc)\d)?(\.post\d)?(\.dev\d)?\Z"),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([1e30, -1e30, 2**64, "soon", "now"])
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
#: Caveats shaped like the known ones (a tag 0-4 first, or the legacy objects), and any JSON.
CAVEATS = st.one_of(
    JSON,
    st.tuples(st.integers(0, 5), JSON, JSON).map(list),
    st.tuples(st.integers(0, 5), st.lists(JSON, max_size=3)).map(list),
    st.fixed_dictionaries({"exp": JSON, "nbf": JSON}),
    st.fixed_dictionaries({"version": st.just(1), "permissions": JSON}),
    st.fixed_dictionaries({"project_ids": JSON}),
)
TOML_VALUES = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.dates()
    | TEXT
    | st.lists(FORMAT_PIECES | TEXT, max_size=4).map("".join)
    | st.sampled_from(["auto", "github:o/r", "CHANGELOG.md", "src/sample_pkg/__init__.py:x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
TABLES = st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=4)


def _accepts_or_explains(action: Callable[[], object]) -> None:
    """Run ``action``: success and a ReleasekitError pass, any other exception fails."""
    with contextlib.suppress(ReleasekitError):
        action()


@SETTINGS
@given(fmt=st.lists(FORMAT_PIECES | TEXT, max_size=5).map("".join), version=VERSIONS)
def test_tag_formats_and_versions(fmt: str, version: str) -> None:
    def load() -> None:
        settings = Settings.from_table({"tag-format": fmt}, "generated")
        project = Project(Path("."), "sample-pkg", "0.1.0", settings)
        tag = project.tag(str(canonical_version(version)))
        assert project.version_of_tag(tag) is not None

    _accepts_or_explains(load)


def _indexes() -> list[Index]:
    custom = Index("private", "http://127.0.0.1:1/legacy/", "http://127.0.0.1:1/simple/")
    return [*builtin_indexes().values(), custom]


@SETTINGS
@given(
    instance=st.sampled_from(["pypi", "testpypi", "private"]),
    caveats=st.lists(CAVEATS, max_size=3),
    project=st.sampled_from(["sample-pkg", "other"]),
)
def test_token_caveats(instance: str, caveats: list[Any], project: str) -> None:
    token = Token.load(mint_token(instance))
    for caveat in caveats:
        token._macaroon.add_first_party_caveat(json.dumps(caveat))
    secret = token.dump()

    def read() -> None:
        info = read_token(secret, "GENERATED_TOKEN")
        assert info.describe()
        found = token_at(secret + "tail")
        assert found is not None and found[1] == len(secret)
        for index in _indexes():
            _accepts_or_explains(
                functools.partial(check_token, info, index, "GENERATED_TOKEN", project)
            )

    _accepts_or_explains(read)


@SETTINGS
@given(text=st.text(string.printable, max_size=200) | st.just("pypi-") | st.just("pypi-AgEI"))
def test_token_text(text: str) -> None:
    _accepts_or_explains(lambda: read_token(text))
    _accepts_or_explains(lambda: token_at(text))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("generated") / "sample-pkg")


@SETTINGS
@given(table=TABLES)
def test_config_values(sample: Path, table: dict[str, Any]) -> None:
    _accepts_or_explains(lambda: Settings.from_table(table, "generated"))
    document = tomlkit.parse((sample / "pyproject.toml").read_text())
    document["tool"]["releasekit"] = table  # type: ignore[index]
    (sample / "pyproject.toml").write_text(tomlkit.dumps(document))

    def load() -> None:
        project = Project.load(sample)
        assert project.tag(project.version)
        for version_file in project.version_files:
            _accepts_or_explains(version_file.read)
        for name in project.settings.indexes:
            project.index(name)
        check_dist_dir(project.dist_dir)

    _accepts_or_explains(load)
