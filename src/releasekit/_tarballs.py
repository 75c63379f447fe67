"""Bounded inspection of sdist tarballs: sizes from the headers before any member is read,
then paths, links and member kinds (see :mod:`releasekit._archives`)."""

from __future__ import annotations

import gzip
import posixpath
import struct
import tarfile
from pathlib import Path

from releasekit._archives import (
    MEMBER_CAP,
    MIB,
    READ_ERRORS,
    TAR_HEADER_CAP,
    Archive,
    bomb_problem,
    path_problem,
    ratio_bound,
    refuse,
    top_directory,
)

# --- tar ----------------------------------------------------------------------------------


def _tar_size(header: bytes) -> int:
    field_ = header[124:136]
    if field_[0] & 0x80:  # base-256
        return int.from_bytes(field_[1:], "big")
    text = field_.split(b"\0", 1)[0].strip() or b"0"
    return int(text, 8)


def _walk_tar_headers(path: Path) -> str | None:
    """Read only the headers of a .tar.gz, skipping member data as a stream: a problem when
    the declared contents pass PyPI's ratio bound or an extended header is oversized."""
    limit = ratio_bound(path.stat().st_size)
    position = 0
    with gzip.open(path, "rb") as stream:
        while True:
            header = stream.read(512)
            if len(header) < 512:
                return "it ends inside a tar header"
            if header == b"\0" * 512:
                return None
            try:
                size = _tar_size(header)
            except ValueError:
                return "it has a malformed tar header"
            kind = header[156:157]
            if kind in (b"x", b"g", b"L", b"K") and size > TAR_HEADER_CAP:
                return f"it has an extended tar header of {size:,} bytes"
            padded = -(-size // 512) * 512
            position += 512 + padded
            if position > limit:
                return bomb_problem(position, path.stat().st_size)
            while padded:
                chunk = stream.read(min(padded, MIB))
                if not chunk:
                    return "it ends inside a member"
                padded -= len(chunk)


def _link_problem(member: tarfile.TarInfo, top: str) -> str | None:
    target = member.linkname
    if member.issym():
        if target.startswith("/") or "\\" in target:
            return f"link {member.name!r} points outside the archive ({target})"
        target = posixpath.join(posixpath.dirname(member.name), target)
    resolved = posixpath.normpath(target)
    if resolved.startswith("../") or resolved == ".." or resolved.split("/")[0] != top:
        return f"link {member.name!r} points outside the archive ({member.linkname})"
    return None


def _member_problem(member: tarfile.TarInfo, top: str) -> str | None:
    if member.issparse():
        return f"tar archive not accepted: {member.name!r} is a sparse member"
    if problem := path_problem(member.name):
        return problem
    return _link_problem(member, top) if member.issym() or member.islnk() else None


def inspect_tar(path: Path) -> Archive:
    """Inspect an sdist ``.tar.gz`` within hard bounds."""
    archive = Archive()
    try:
        problem = _walk_tar_headers(path)
    except (*READ_ERRORS, gzip.BadGzipFile) as exc:
        problem = f"not a gzip-compressed tar ({exc})"
    if problem:
        return refuse(archive, f"unreadable ({problem}); rebuild it")
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            names = frozenset(m.name.rstrip("/") for m in members)
            top = top_directory(frozenset(m.name for m in members if m.name != "."))
            archive.problems += [p for m in members if (p := _member_problem(m, top or ""))]
            if top is None:
                archive.problems.append("it has more than one top-level directory")
            elif f"{top}/PKG-INFO" not in names:
                archive.problems.append(f"{top}/PKG-INFO is missing")
            else:
                info = tar.getmember(f"{top}/PKG-INFO")
                extracted = tar.extractfile(info) if info.size <= MEMBER_CAP else None
                if extracted is None:
                    archive.problems.append(
                        f"{top}/PKG-INFO is not a file of at most {MEMBER_CAP // MIB} MiB"
                    )
                else:
                    archive.metadata = extracted.read(MEMBER_CAP)
            prefix = f"{top}/"
            archive.names = frozenset(n.removeprefix(prefix) for n in names)
    except (*READ_ERRORS, gzip.BadGzipFile) as exc:
        return refuse(archive, f"unreadable ({exc}); rebuild it")
    archive.safe = not archive.problems
    return archive


def clamp_times(path: Path, epoch: int) -> bool:
    """Make a freshly built sdist reproducible: member times and the gzip header's time no
    later than ``epoch`` (``SOURCE_DATE_EPOCH``), members and their order unchanged.

    Backends that honour ``SOURCE_DATE_EPOCH`` already write such files and are left as they
    are; setuptools (distutils' ``make_tarball``) does not. True when the file was rewritten.
    """
    with path.open("rb") as handle:
        header = handle.read(10)
    gzip_time = struct.unpack("<I", header[4:8])[0] if len(header) == 10 else epoch + 1
    with tarfile.open(path, "r:gz") as source:
        members = source.getmembers()
        if gzip_time <= epoch and all(member.mtime <= epoch for member in members):
            return False
        partial = path.with_name(path.name + ".partial")
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch) as compressed,
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as target,
        ):
            for member in members:
                member.mtime = min(int(member.mtime), epoch)
                member.pax_headers = {
                    key: value
                    for key, value in member.pax_headers.items()
                    if key not in ("mtime", "atime", "ctime")
                }
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    partial.replace(path)
    return True
