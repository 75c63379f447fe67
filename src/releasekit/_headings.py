"""Section headings of a changelog in Markdown (``#``) or reStructuredText (adorned titles):
found, with the version each names, and retitled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from packaging.version import InvalidVersion, Version

ChangelogFormat = Literal["md", "rst"]

MD_HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<title>.*?)[ \t]*$")
_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}[ \t]*$")
_HEADING_VERSION = re.compile(r"\[?v?(\d[^\]\s()]*)")


@dataclass(frozen=True)
class Heading:
    """A section heading of a changelog.

    ``level`` counts from 1 (Markdown: the number of ``#``; reStructuredText: the order in
    which adornment styles first appear); ``line`` and ``end`` are the indices of its first
    line and of the line after it; ``title_span`` is where the title stands in the text, and
    ``adornments`` where its over- and underline stand (reStructuredText only).
    """

    level: int
    title: str
    line: int
    end: int
    title_span: tuple[int, int]
    adornments: tuple[tuple[int, int], ...] = ()

    @property
    def version(self) -> Version | None:
        """The version the title names first (``[1.2.0] - date``, ``v1.2.0``), if any."""
        found = _HEADING_VERSION.search(self.title)
        if found is None:
            return None
        try:
            return Version(found.group(1))
        except InvalidVersion:
            return None


def headings(text: str, form: ChangelogFormat = "md") -> list[Heading]:
    """Every section heading of the changelog ``text``, in order."""
    lines = text.splitlines(keepends=True)
    starts = list(accumulate((len(line) for line in lines), initial=0))
    found = []
    for level, line, column, title, adorned in (
        _md_headings(lines) if form == "md" else _rst_headings(lines)
    ):
        begin = starts[line] + column
        found.append(
            Heading(
                level,
                title,
                min((line, *adorned)),
                max((line, *adorned)) + 1,
                (begin, begin + len(title)),
                tuple((starts[i], starts[i] + len(lines[i].rstrip())) for i in adorned),
            )
        )
    return found


#: A heading as parsed: level, line index, title column, title, adornment line indices.
_Parsed = tuple[int, int, int, str, tuple[int, ...]]


def _md_headings(lines: list[str]) -> Iterator[_Parsed]:
    for index, line in enumerate(lines):
        match = MD_HEADING.match(line.rstrip("\n"))
        if match:
            yield len(match["level"]), index, match.start("title"), match["title"], ()


def _adornment(line: str) -> str | None:
    """The character of a reStructuredText adornment line (``=====``), or None."""
    match = _RST_ADORNMENT.match(line.rstrip("\r\n"))
    return match.group(1) if match else None


def _rst_headings(lines: list[str]) -> Iterator[_Parsed]:
    """Titles underlined (or over- and underlined) with a run of one punctuation character;
    levels in the order the styles first appear, as docutils counts them."""
    styles: list[tuple[str, bool]] = []
    adorned: tuple[int, ...]
    index = 0
    while index + 1 < len(lines):
        char, text, below = _adornment(lines[index]), lines[index], _adornment(lines[index + 1])
        if char and index + 2 < len(lines) and _adornment(lines[index + 2]) == char:
            style, line, adorned = (char, True), index + 1, (index, index + 2)
        elif below and not char and text.strip() and not text[0].isspace():
            style, line, adorned = (below, False), index, (index + 1,)
        else:
            index += 1
            continue
        title = lines[line].strip()
        if not title:
            index += 1
            continue
        if style not in styles:
            styles.append(style)
        column = len(lines[line]) - len(lines[line].lstrip())
        yield styles.index(style) + 1, line, column, title, adorned
        index = max(adorned) + 1


def retitled(text: str, heading: Heading, title: str) -> str:
    """``text`` with ``heading`` renamed ``title``; its adornments grow or shrink as much as
    the title does (never below its length), so renaming back gives the text back."""
    edits = [(heading.title_span, title)]
    change = len(title) - len(heading.title)
    for begin, end in heading.adornments:
        edits.append(((begin, end), text[begin] * max(end - begin + change, len(title))))
    for (begin, end), replacement in sorted(edits, reverse=True):
        text = text[:begin] + replacement + text[end:]
    return text
