"""The V2 binary macaroon format of PyPI API tokens (pymacaroons' layout), decoded by hand
so that a cut-short or run-together token is still located exactly."""

from __future__ import annotations

import base64
import binascii
import re

B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Malformed(ValueError):
    """The token's bytes are not a macaroon; the message says what is wrong."""


def b64url_decode(text: str) -> bytes:
    if not text:
        raise Malformed("nothing follows `pypi-`")
    if not B64URL.fullmatch(text):
        raise Malformed("it has characters that are not base64url (letters, digits, - and _)")
    if len(text) % 4 == 1:
        raise Malformed("it is truncated (its length cannot be base64)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the checks above catch what this does
        raise Malformed("it is not valid base64url") from exc


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise Malformed("it is truncated (a field runs past the end)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise Malformed("a field length is impossibly large")


def _fields(data: bytes, pos: int) -> tuple[list[tuple[int, bytes]], int]:
    """One section of a V2 binary macaroon: fields up to the end marker."""
    found: list[tuple[int, bytes]] = []
    while True:
        kind, pos = _uvarint(data, pos)
        if kind == 0:
            return found, pos
        length, pos = _uvarint(data, pos)
        if pos + length > len(data):
            raise Malformed("it is truncated (a field runs past the end)")
        found.append((kind, data[pos : pos + length]))
        pos += length


def parse_macaroon(data: bytes) -> tuple[str, list[bytes], int]:
    """(location, first-party caveats, end) of the V2 binary macaroon (pymacaroons' format)
    that ``data`` begins with; ``end`` is where its signature ends."""
    if not data or data[0] != 2:
        raise Malformed("it is not a version 2 macaroon")
    header, pos = _fields(data, 1)
    kinds = [kind for kind, _ in header]
    if kinds not in ([1, 2], [2]):
        raise Malformed("its header lacks an identifier")
    location = header[0][1].decode("utf-8", "replace") if kinds == [1, 2] else ""
    caveats = []
    while True:
        section, pos = _fields(data, pos)
        if not section:
            break
        caveats += [value for kind, value in section if kind == 2]
    if data[pos : pos + 2] != b"\x06\x20" or pos + 34 > len(data):  # no end marker follows
        raise Malformed("its signature is missing or truncated")
    return location, caveats, pos + 34


def header_location(data: bytes) -> str | None:
    """The location field of a V2 macaroon's header, read from its first bytes alone."""
    if not data or data[0] != 2:
        return None
    try:
        kind, pos = _uvarint(data, 1)
        length, pos = _uvarint(data, pos)
    except Malformed:
        return None
    if kind != 1 or pos + length > len(data):
        return None
    try:
        return data[pos : pos + length].decode("ascii")
    except UnicodeDecodeError:
        return None
