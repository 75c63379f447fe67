"""Built distribution files: what each one is, and the dist dir that holds them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from releasekit.errors import DistributionError, ReleasekitError

Kind = Literal["sdist", "wheel"]
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_filename(filename: str) -> tuple[str, Version, Kind] | None:
    """``(normalised name, version, kind)`` of a distribution filename, or None if it is not one."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return canonicalize_name(name), version, "wheel"
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return canonicalize_name(name), version, "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


@dataclass(frozen=True)
class Distribution:
    """One built file: its path, project name (normalised), version, kind, size and sha256."""

    path: Path
    name: str
    version: Version
    kind: Kind
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        """The file's name, as an index lists it."""
        return self.path.name

    @classmethod
    def from_path(cls, path: str | Path) -> Distribution:
        """Describe the file at ``path`` (hashing it)."""
        path = Path(path)
        parsed = parse_filename(path.name)
        if parsed is None:
            raise DistributionError(
                f"{path.name} is not a distribution filename.",
                why="Wheels are name-version-tags.whl and sdists name-version.tar.gz (PEP 625).",
                fix="Remove the file from the dist dir, or rebuild with `nox -s build`.",
            )
        name, version, kind = parsed
        return cls(path, name, version, kind, path.stat().st_size, sha256_of(path))


def check_dist_dir(dist_dir: Path) -> None:
    """Refuse a dist dir that is a file, or that holds a directory named like a dist file."""
    if dist_dir.exists() and not dist_dir.is_dir():
        raise DistributionError(
            f"The dist dir {dist_dir} is a file, not a directory.",
            why="dist-dir names where built files go; a file of that name is in the way.",
            fix=f"Move or remove {dist_dir}, or set another `dist-dir` in [tool.releasekit].",
        )
    if dist_dir.is_dir():
        for path in sorted(dist_dir.iterdir()):
            if parse_filename(path.name) and not path.is_file():
                raise DistributionError(
                    f"{path} is named like a distribution file but is not a file.",
                    why="A directory (or another non-file) of that name was put in the dist dir.",
                    fix=f"Remove or rename {path}, then build again.",
                )


def find_distributions(dist_dir: Path, name: str | None = None) -> list[Distribution]:
    """Every distribution file in ``dist_dir`` (of project ``name`` only, when given), sorted.

    Raises :class:`DistributionError` when the directory is missing, is a file, holds a
    directory named like a distribution file, or holds no distribution file.
    """
    check_dist_dir(dist_dir)
    if not dist_dir.is_dir():
        raise DistributionError(
            f"The dist dir {dist_dir} does not exist.",
            fix="Build first: `nox -s build`.",
        )
    wanted = canonicalize_name(name) if name else None
    found = []
    for path in sorted(dist_dir.iterdir()):
        parsed = parse_filename(path.name)
        if parsed is None or (wanted and parsed[0] != wanted):
            continue
        found.append(Distribution.from_path(path))
    if not found:
        what = f" of {name}" if name else ""
        raise DistributionError(
            f"No distribution files{what} in {dist_dir}.",
            fix="Build first: `nox -s build`.",
        )
    return found


def single_version(dists: list[Distribution]) -> Version:
    """The one version all ``dists`` share; refuses a dist dir that mixes versions."""
    versions = sorted({d.version for d in dists})
    if len(versions) != 1:
        listing = ", ".join(str(v) for v in versions)
        raise DistributionError(
            f"The dist dir mixes versions: {listing}.",
            why="Stale files from an earlier build were left beside the new ones.",
            fix="Rebuild with `nox -s build` (it removes this project's stale files first).",
        )
    return versions[0]


def applicable_requirements(
    lines: Iterable[str], invalid: Callable[[str, InvalidRequirement], ReleasekitError]
) -> list[Requirement]:
    """The requirements among ``lines`` that apply to this interpreter (markers evaluated,
    those of extras dropped); an unparsable line raises what ``invalid`` makes of it."""
    wanted = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise invalid(line, exc) from exc
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            wanted.append(requirement)
    return wanted
