"""The cache of shared build environments on disk: where it is, its generations, its cleanup.

The environments made for one set of build requirements live in ``<cache_root>/<key>``, one
folder per generation, ``<key>/1``, ``<key>/2`` ...: each is made whole in a temporary folder
``<cache_root>/.<key>-<random>`` and renamed into place under the next number, and is then
never changed, replaced or removed while a build may be using it. When the newest is a day
old (:data:`MAX_AGE`) a new one is made beside it: builds from then on use the new one, while
those that started with the old one (a build server may have its python running) finish with
it. :func:`clean` runs when a generation has been made, and removes what no build can be
using any more (errors are ignored: a folder in use on Windows stays until next time).
"""

from __future__ import annotations

import contextlib
import csv
import email.parser
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from packaging.utils import canonicalize_name

#: Seconds an environment is used for new builds before a new generation is made.
MAX_AGE = 24 * 3600.0
#: Seconds after which a damaged generation, or a temporary folder still being made, is
#: no one's (a maker that slow is dead).
ABANDONED = 3600.0
MARKER = "releasekit-build-env.json"
_KEY = re.compile(r"[0-9a-f]{24}")
_TEMPORARY = re.compile(r"\.[0-9a-f]{24}-[0-9a-z-]+")
_GENERATION = re.compile(r"[0-9]+")


class Marker(NamedTuple):
    """What a complete environment records about itself when it is made."""

    requires: tuple[str, ...]
    installed: dict[str, str]
    created: float


def cache_root() -> Path:
    """Where shared environments live: ``RELEASEKIT_BUILD_ENVS``, else the user's cache."""
    configured = os.environ.get("RELEASEKIT_BUILD_ENVS", "").strip()
    if configured:
        return Path(configured)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "releasekit" / "build-envs"


def python_of(folder: Path) -> Path:
    """The interpreter of the environment at ``folder``."""
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def installed(folder: Path) -> dict[str, str] | None:
    """``{name: version}`` of the distributions installed in the environment at ``folder``;
    None when a file that one of them installed (its ``RECORD`` lists them) is missing."""
    found: dict[str, str] = {}
    patterns = ("Lib/site-packages/*.dist-info", "lib/python*/site-packages/*.dist-info")
    for pattern in patterns:
        for info in folder.glob(pattern):
            try:
                metadata = info.joinpath("METADATA").read_bytes()
                record = info.joinpath("RECORD").read_text(encoding="utf-8")
            except OSError:
                return None
            for row in csv.reader(record.splitlines()):
                path = row[0] if row else ""
                if path and not path.startswith("..") and not (info.parent / path).exists():
                    return None
            fields = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
            found[canonicalize_name(str(fields["Name"]))] = str(fields["Version"])
    return found


def write_marker(folder: Path, key: str, requires: Sequence[str]) -> None:
    """Record that the environment at ``folder`` is complete, with what it has installed."""
    marker = {
        "key": key,
        "requires": sorted(requires),
        "installed": installed(folder) or {},
        "created": time.time(),
    }
    (folder / MARKER).write_text(json.dumps(marker), encoding="utf-8")


def read_marker(folder: Path, key: str, max_age: float = math.inf) -> Marker | None:
    """The marker of the environment at ``folder`` when it is complete, intact (its
    interpreter and every installed file there) and younger than ``max_age`` seconds."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        marker = Marker(
            tuple(str(line) for line in data.get("requires", [])),
            {str(k): str(v) for k, v in dict(data["installed"]).items()},
            float(data["created"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if data.get("key") != key or not time.time() - marker.created < max_age:
        return None
    if not python_of(folder).is_file() or installed(folder) != marker.installed:
        return None
    return marker


def generations(keydir: Path) -> list[Path]:
    """The generations in ``keydir``, the newest first."""
    try:
        names = [entry.name for entry in os.scandir(keydir) if _GENERATION.fullmatch(entry.name)]
    except OSError:
        return []
    return [keydir / name for name in sorted(names, key=int, reverse=True)]


def next_generation(keydir: Path) -> Path:
    """Where the next generation in ``keydir`` goes."""
    found = generations(keydir)
    return keydir / str(int(found[0].name) + 1 if found else 1)


def _made_at(folder: Path) -> float | None:
    """When ``folder`` was made: its marker says, else its modification time."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return float(json.loads((folder / MARKER).read_text(encoding="utf-8"))["created"])
    try:
        return folder.stat().st_mtime
    except OSError:
        return None


def _older(folder: Path, seconds: float, now: float) -> bool:
    made = _made_at(folder)
    return made is not None and now - made > seconds


def clean(root: Path, key: str, keep: Path) -> None:
    """Remove from the cache ``root`` what no build can be using, ``keep`` and the newest
    generation of ``key`` aside: its other generations made more than ``2 * MAX_AGE`` ago
    (no build lasts a day: one that started with them has finished) or damaged and made
    more than :data:`ABANDONED` ago; temporary folders of any key untouched for that long;
    and environments of the previous layout (``<key>`` itself the environment) older than
    ``2 * MAX_AGE`` (an older releasekit uses one for a day). Errors are ignored."""
    now = time.time()
    stale: list[Path] = []
    with contextlib.suppress(OSError):
        for folder in generations(root / key)[1:]:
            if folder != keep and (
                _older(folder, 2 * MAX_AGE, now)
                or (_older(folder, ABANDONED, now) and read_marker(folder, key) is None)
            ):
                stale.append(folder)
        for entry in os.scandir(root):
            folder = Path(entry.path)
            if not entry.is_dir(follow_symlinks=False):
                continue
            temporary = _TEMPORARY.fullmatch(entry.name) is not None
            previous = _KEY.fullmatch(entry.name) is not None and (folder / MARKER).is_file()
            if (temporary and _older(folder, ABANDONED, now)) or (
                previous and _older(folder, 2 * MAX_AGE, now)
            ):
                stale.append(folder)
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
