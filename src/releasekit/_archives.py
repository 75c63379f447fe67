"""Bounded inspection of distribution archives, before anything in them is trusted.

Sizes and compression ratios come from the ZIP central directory and from tar headers before
a member is decompressed; the few members read (metadata, RECORD, entry points) are read with
a hard cap. The structure checks are PyPI's (warehouse's forklift and its ZIP validator):
an archive refused here would be refused there.
"""

from __future__ import annotations

import configparser
import csv
import re
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20
#: PyPI refuses contents over this size whose compression ratio is over RATIO_LIMIT.
RATIO_MIN_SIZE = 64 * MIB
RATIO_LIMIT = 50
#: The most read from one metadata member (METADATA, PKG-INFO, RECORD, entry_points.txt).
MEMBER_CAP = 8 * MIB
#: The largest tar extended header (pax, GNU long name) accepted.
TAR_HEADER_CAP = MIB
#: The most entries an archive may list (each costs memory before anything else is checked).
MAX_ENTRIES = 100_000

_STORED_OR_DEFLATED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 93: "zstandard"}
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_ENTRY_POINT_NAME = re.compile(r"[\w.-]+")
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, tarfile.TarError)


@dataclass
class Archive:
    """What inspecting one file found.

    ``problems`` are refusals (sentences without the filename); ``safe`` is False when the
    file must not be handed to any other reader (a bomb, an unknown compression method, an
    unreadable archive). ``names`` are the member paths relative to ``prefix`` (the sdist's
    top directory; for a wheel, the archive root). ``metadata`` is METADATA or PKG-INFO.
    """

    problems: list[str] = field(default_factory=list)
    safe: bool = True
    names: frozenset[str] = frozenset()
    metadata: bytes | None = None
    dist_info: str = ""


def refuse(archive: Archive, problem: str) -> Archive:
    archive.problems.append(problem)
    archive.safe = False
    return archive


def ratio_bound(compressed: int) -> int:
    """The largest uncompressed size PyPI accepts for a file of ``compressed`` bytes."""
    return max(RATIO_MIN_SIZE, RATIO_LIMIT * compressed)


def bomb_problem(total: int, compressed: int) -> str:
    return (
        f"its contents expand to {total:,} bytes from {compressed:,} (ratio over "
        f"{RATIO_LIMIT} above {RATIO_MIN_SIZE // MIB} MiB): PyPI refuses it as a "
        "decompression bomb; leave large compressible data out of the package"
    )


def path_problem(name: str) -> str | None:
    """Why a member path is unsafe (absolute, ``..``, backslash, unprintable), or None."""
    if _UNPRINTABLE.search(name):
        return f"member {name!r} has an unprintable character in its name"
    if "\\" in name:
        return f"member {name!r} has a backslash in its path"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return f"member {name!r} has an absolute path"
    if ".." in name.split("/"):
        return f"member {name!r} has a '..' component"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"member {name!r} has a name that is not UTF-8"
    return None


def top_directory(names: frozenset[str]) -> str | None:
    """The one top-level directory of an sdist's member ``names``, or None."""
    tops = {name.split("/")[0] for name in names}
    return tops.pop() if len(tops) == 1 and any("/" in name for name in names) else None


def inspect(path: Path) -> Archive:
    """Inspect a wheel (``.whl``) or an sdist (``.tar.gz``, ``.zip``) within hard bounds."""
    if path.name.endswith(".tar.gz"):
        from releasekit._tarballs import inspect_tar  # it builds on this module

        return inspect_tar(path)
    return _inspect_zip(path, wheel=path.name.endswith(".whl"))


# --- ZIP ----------------------------------------------------------------------------------


def _end_of_central_directory(handle: zipfile.ZipFile, size: int) -> tuple[int, int] | str:
    """``(central directory offset, where it must end)`` from the end records, or a problem."""
    fp = handle.fp
    assert fp is not None  # noqa: S101 (an open archive has its file)
    tail_start = max(0, size - (22 + 0xFFFF))
    fp.seek(tail_start)
    tail = fp.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return "its end of central directory record is missing"
    (_, _, _, entries, cd_size, cd_offset, comment) = struct.unpack(
        "<HHHHLLH", tail[at + 4 : at + 22]
    )
    eocd = tail_start + at
    if eocd + 22 + comment != size:
        return "it has trailing data after the end of the archive (PyPI refuses it)"
    end = eocd
    if 0xFFFF in (entries,) or 0xFFFFFFFF in (cd_size, cd_offset):
        locator = tail[at - 20 : at] if at >= 20 else b""
        if not locator.startswith(b"PK\x06\x07"):
            return "its ZIP64 end of central directory locator is missing"
        (end,) = struct.unpack("<Q", locator[8:16])
        fp.seek(end)
        record = fp.read(56)
        if not record.startswith(b"PK\x06\x06") or len(record) < 56:
            return "its ZIP64 end of central directory record is malformed"
        cd_size, cd_offset = struct.unpack("<QQ", record[40:56])
    if cd_offset + cd_size != end:
        return "its central directory is not where its end record says"
    return cd_offset, end


def _local_sizes(header: bytes, extra: bytes) -> tuple[int, int]:
    """(compressed, uncompressed) sizes of a local header, ZIP64 extra included."""
    compressed, uncompressed = struct.unpack("<LL", header[18:26])
    while len(extra) >= 4:
        kind, length = struct.unpack("<HH", extra[:4])
        if kind == 1:
            values = list(struct.unpack(f"<{min(length, 16) // 8}Q", extra[4 : 4 + length][:16]))
            if uncompressed == 0xFFFFFFFF and values:
                uncompressed = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
        extra = extra[4 + length :]
    return compressed, uncompressed


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def _local_headers(handle: zipfile.ZipFile, cd_offset: int) -> str | None:
    """Every local header agreeing with its central directory entry, back to back from the
    start of the file to the central directory: nothing hidden, nothing overlapping."""
    fp = handle.fp
    assert fp is not None  # noqa: S101 (an open archive has its file)
    position = 0
    for info in sorted(handle.infolist(), key=lambda i: i.header_offset):
        if info.header_offset != position:
            return "its local file headers do not match its central directory"
        fp.seek(position)
        header = fp.read(30)
        if len(header) != 30 or not header.startswith(b"PK\x03\x04"):
            return f"the local header of {info.filename!r} is missing"
        flags = struct.unpack("<H", header[6:8])[0]
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        name = fp.read(name_length)
        extra = fp.read(extra_length)
        if flags & 0x08:
            return f"{info.filename!r} uses a data descriptor (PyPI refuses them)"
        if name != _raw_name(info):
            return f"the local header of {info.filename!r} names another file"
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            return f"member {info.filename!r} has a name that is not UTF-8"
        if _local_sizes(header, extra) != (info.compress_size, info.file_size):
            return f"the local header of {info.filename!r} disagrees about its size"
        position += 30 + name_length + extra_length + info.compress_size
    if position != cd_offset:
        return "it has data between its entries and its central directory"
    return None


def read_capped(handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str:
    """A member's bytes, or a problem when it is over :data:`MEMBER_CAP` or unreadable."""
    if info.file_size > MEMBER_CAP:
        return f"{info.filename} is {info.file_size:,} bytes, over the {MEMBER_CAP // MIB} MiB read"
    try:
        with handle.open(info) as member:
            data = member.read(MEMBER_CAP + 1)
    except (*READ_ERRORS, NotImplementedError) as exc:
        return f"{info.filename} cannot be read ({exc})"
    if len(data) > MEMBER_CAP:
        return f"{info.filename} is over the {MEMBER_CAP // MIB} MiB read"
    return data


def _inspect_zip(path: Path, *, wheel: bool) -> Archive:
    archive = Archive()
    size = path.stat().st_size
    try:
        handle = zipfile.ZipFile(path)
    except (*READ_ERRORS, struct.error) as exc:
        return refuse(archive, f"unreadable (not a ZIP archive: {exc}); rebuild it")
    with handle:
        infos = handle.infolist()
        if len(infos) > MAX_ENTRIES:
            return refuse(archive, f"it lists {len(infos):,} entries, over {MAX_ENTRIES:,}")
        total = sum(info.file_size for info in infos)
        if total > ratio_bound(size):
            return refuse(archive, bomb_problem(total, size))
        methods = sorted(
            {
                _METHODS.get(info.compress_type, f"number {info.compress_type}")
                for info in infos
                if info.compress_type not in _STORED_OR_DEFLATED
            }
        )
        if methods:
            return refuse(
                archive,
                f"it uses the compression method {', '.join(methods)}; PyPI accepts only "
                "stored and deflated members: rebuild it with a standard build backend",
            )
        names = [info.filename for info in infos]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            archive.problems.append(f"duplicate entries {', '.join(map(repr, duplicates))}")
        archive.problems += [p for name in names if (p := path_problem(name))]
        archive.problems += [f"{i.filename!r} has a comment" for i in infos if i.comment]
        found = _end_of_central_directory(handle, size)
        structure = found if isinstance(found, str) else _local_headers(handle, found[0])
        if structure:
            archive.problems.append(f"ZIP archive not accepted: {structure}")
        if archive.problems:
            archive.safe = False
            return archive
        archive.names = frozenset(name for name in names if not name.endswith("/"))
        if wheel:
            _wheel_members(handle, path.name, archive)
        else:
            _zip_sdist_members(handle, archive)
    return archive


def _wheel_members(handle: zipfile.ZipFile, filename: str, archive: Archive) -> None:
    """METADATA, WHEEL and RECORD of a wheel, and its entry points, read within the cap."""
    name, version = filename.split("-", 2)[:2]
    archive.dist_info = f"{name}-{version}.dist-info"
    found = {
        n.split("/")[0] for n in archive.names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)
    }
    if archive.dist_info + "/METADATA" not in archive.names and len(found) == 1:
        (other,) = found
        archive.problems.append(
            f"its metadata is in {other}/, not in {archive.dist_info}/ as its filename says"
        )
        archive.dist_info = other
    members = {}
    missing = []
    for member in ("METADATA", "WHEEL", "RECORD", "entry_points.txt"):
        full = f"{archive.dist_info}/{member}"
        if full not in archive.names:
            missing.append(full)
            continue
        data = read_capped(handle, handle.getinfo(full))
        if isinstance(data, str):
            archive.problems.append(data)
            archive.safe = False
        else:
            members[member] = data
    missing = [m for m in missing if not m.endswith("entry_points.txt")]
    if missing:
        archive.problems.append(f"{' and '.join(missing)} missing; rebuild it")
    archive.metadata = members.get("METADATA")
    if "RECORD" in members:
        try:
            list(csv.reader(members["RECORD"].decode("utf-8").splitlines()))
        except (UnicodeDecodeError, csv.Error) as exc:
            archive.problems.append(f"its RECORD cannot be read ({exc}); rebuild it")
    if "entry_points.txt" in members:
        archive.problems += entry_point_problems(members["entry_points.txt"])


def _zip_sdist_members(handle: zipfile.ZipFile, archive: Archive) -> None:
    top = top_directory(archive.names)
    if top is None:
        archive.problems.append("it has more than one top-level directory")
        return
    info = handle.NameToInfo.get(f"{top}/PKG-INFO")
    if info is None:
        archive.problems.append(f"{top}/PKG-INFO is missing")
        return
    data = read_capped(handle, info)
    if isinstance(data, str):
        archive.problems.append(data)
    else:
        archive.metadata = data
    archive.names = frozenset(n.removeprefix(f"{top}/") for n in archive.names)


def entry_point_problems(data: bytes) -> list[str]:
    """Why entry_points.txt would be refused (PyPI parses it as INI, ``=`` only, and wants
    script names of letters, digits, ``_``, ``.`` and ``-``)."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(data.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as exc:
        reason = str(exc).splitlines()[0]
        return [f"its entry_points.txt does not parse ({reason}); fix the entry points"]
    return [
        f"entry point name {name!r} in [{section}] is not valid (letters, digits, _ . - only)"
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for name in parser[section]
        if not _ENTRY_POINT_NAME.fullmatch(name)
    ]
