"""Distribution files: names parsed with packaging, hashes, the dist dir."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from packaging.version import Version

from releasekit._distributions import (
    Distribution,
    find_distributions,
    parse_filename,
    single_version,
)
from releasekit.errors import DistributionError


def test_parse_filename() -> None:
    assert parse_filename("Sample_Pkg-1.0-py3-none-any.whl") == (
        "sample-pkg",
        Version("1.0"),
        "wheel",
    )
    assert parse_filename("sample_pkg-1.0.tar.gz") == ("sample-pkg", Version("1.0"), "sdist")
    assert parse_filename("notes.txt") is None
    assert parse_filename("bad-name.whl") is None


def test_from_path_hashes(tmp_path: Path) -> None:
    path = tmp_path / "pkg-1.0.tar.gz"
    path.write_bytes(b"content")
    dist = Distribution.from_path(path)
    assert dist.sha256 == hashlib.sha256(b"content").hexdigest()
    assert (dist.size, dist.kind, dist.filename) == (7, "sdist", "pkg-1.0.tar.gz")
    with pytest.raises(DistributionError, match="not a distribution filename"):
        Distribution.from_path(tmp_path.joinpath("x.txt"))


def test_find_filters_by_project_and_refuses_empty(tmp_path: Path) -> None:
    with pytest.raises(DistributionError, match="does not exist"):
        find_distributions(tmp_path / "dist")
    (tmp_path / "pkg-1.0.tar.gz").write_bytes(b"a")
    (tmp_path / "other-2.0.tar.gz").write_bytes(b"b")
    (tmp_path / ".gitignore").write_text("*")
    assert [d.filename for d in find_distributions(tmp_path, "PKG")] == ["pkg-1.0.tar.gz"]
    with pytest.raises(DistributionError, match="No distribution files of third"):
        find_distributions(tmp_path, "third")


def test_single_version(tmp_path: Path) -> None:
    (tmp_path / "pkg-1.0.tar.gz").write_bytes(b"a")
    (tmp_path / "pkg-1.1.tar.gz").write_bytes(b"b")
    dists = find_distributions(tmp_path)
    assert single_version(dists[:1]) == Version("1.0")
    with pytest.raises(DistributionError, match=r"mixes versions: 1\.0, 1\.1"):
        single_version(dists)
