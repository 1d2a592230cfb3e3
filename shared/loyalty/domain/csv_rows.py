"""Streaming CSV rows for imports: header aliases, BOM, comma/semicolon, byte offsets.

Pure: reads from any binary file-like object with `read(n)`, never the whole file, and
reports the byte offset after every record so an import can resume with a ranged read.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

BOM = b"\xef\xbb\xbf"
# A customer row is short; a longer line (or record: a quoted cell may span lines) means the
# file is not the CSV we expect. Bounded so memory stays flat whatever the file holds.
MAX_LINE_BYTES = 64 * 1024
MAX_RECORD_BYTES = 64 * 1024
MAX_COLUMNS = 256
READ_SIZE = 64 * 1024
DELIMITERS = (",", ";", "\t")

# Header names squashed to lower-case letters and digits -> canonical field.
_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail", "email_address"),
    "phone": (
        "phone",
        "phone number",
        "telephone",
        "tel",
        "mobile",
        "mobile phone",
        "mobile number",
        "cell",
        "cellphone",
        "msisdn",
    ),
    "first_name": ("first_name", "first name", "firstname", "given name", "given_name", "forename"),
    "last_name": ("last_name", "last name", "lastname", "surname", "family name", "family_name"),
    "external_id": (
        "external_id",
        "external id",
        "externalid",
        "external ref",
        "external_reference",
        "member id",
        "member_id",
        "member number",
        "customer number",
    ),
    "marketing_consent": ("marketing_consent", "marketing consent", "marketing opt in", "opt in", "optin"),
}
IDENTIFIER_FIELDS = ("email", "phone", "external_id")


def squash(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.strip().lower())


HEADER_ALIASES: dict[str, str] = {
    squash(a): canonical for canonical, names in _ALIASES.items() for a in names
}


class BinaryReadable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class CsvFileError(Exception):
    """The file cannot be read as an import CSV at all (the whole import fails)."""


@dataclass
class Header:
    columns: list[str | None]  # canonical field per position, None for ignored columns
    delimiter: str
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "delimiter": self.delimiter, "ignored": self.ignored}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Header:
        return cls(list(data["columns"]), str(data["delimiter"]), list(data.get("ignored") or []))


@dataclass
class CsvRow:
    row: int  # data rows counted from 1 (docs/design.md#resource-shapes)
    fields: dict[str, str]
    end_offset: int  # byte offset just after this record: where a resumed read starts
    error: str | None = None  # the row cannot be read (bad bytes, wrong cell count)


class LineReader:
    """Binary lines with their byte offsets, read in fixed-size blocks."""

    def __init__(self, stream: BinaryReadable, offset: int = 0) -> None:
        self._stream = stream
        self._buffer = b""
        self._eof = False
        self.offset = offset  # absolute offset of the next unread byte

    def readline(self) -> bytes:
        while b"\n" not in self._buffer and not self._eof:
            if len(self._buffer) > MAX_LINE_BYTES:
                break
            block = self._stream.read(READ_SIZE)
            if not block:
                self._eof = True
            self._buffer += block
        cut = self._buffer.find(b"\n")
        end = cut + 1 if cut >= 0 else len(self._buffer)
        if end > MAX_LINE_BYTES:
            raise CsvFileError(
                f"a line near byte {self.offset} is longer than {MAX_LINE_BYTES} bytes; is this a CSV file?"
            )
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        self.offset += len(line)
        return line


def _decode(line: bytes) -> str:
    if b"\x00" in line:
        raise UnicodeDecodeError("utf-8", line, 0, len(line), "NUL byte")
    return line.decode("utf-8")


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_header(names: list[str], delimiter: str) -> Header:
    if len(names) > MAX_COLUMNS:
        raise CsvFileError(f"the header has {len(names)} columns; at most {MAX_COLUMNS} are read")
    columns: list[str | None] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        canonical = HEADER_ALIASES.get(squash(name))
        if canonical and canonical in seen:
            raise CsvFileError(f"columns {seen[canonical]!r} and {name.strip()!r} both mean {canonical}")
        if canonical:
            seen[canonical] = name.strip()
        elif name.strip():
            ignored.append(name.strip()[:64])
        columns.append(canonical)
    if not any(c in IDENTIFIER_FIELDS for c in columns):
        found = ", ".join(repr(n.strip()[:64]) for n in names if n.strip()) or "none"
        raise CsvFileError(f"the header names no email, phone or external_id column (found: {found})")
    return Header(columns, delimiter, ignored)


def read_header(stream: BinaryReadable) -> tuple[Header, int]:
    """The header of a file starting at byte 0, and the offset of the first data line."""
    reader = LineReader(stream)
    raw = reader.readline()
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    while raw and not raw.strip():
        raw = reader.readline()
    if not raw:
        raise CsvFileError("the file is empty")
    try:
        text = _decode(raw)
    except UnicodeDecodeError as exc:
        raise CsvFileError("the file is not UTF-8 CSV text (the header cannot be read)") from exc
    delimiter = sniff_delimiter(text)
    try:
        names = next(csv.reader([text], delimiter=delimiter))
    except (csv.Error, StopIteration) as exc:
        raise CsvFileError(f"the header cannot be read: {exc}") from exc
    return parse_header(names, delimiter), reader.offset


def iter_rows(stream: BinaryReadable, header: Header, offset: int, first_row: int = 1) -> Iterator[CsvRow]:
    """Data rows from `offset` (stream positioned there); numbering continues at `first_row`.

    A line that is not UTF-8 (or holds NUL bytes) becomes an error row and reading goes on;
    a line too long to be a record stops the file with CsvFileError.
    """
    reader = LineReader(stream, offset)
    bad: list[str] = []
    record_start = [offset]  # where the record being read began

    def lines() -> Iterator[str]:
        while True:
            if reader.offset - record_start[0] > MAX_RECORD_BYTES:
                # A quoted cell that never closes would otherwise gather the rest of the file.
                raise CsvFileError(
                    f"the record starting near byte {record_start[0]} is longer than "
                    f"{MAX_RECORD_BYTES} bytes (an unclosed quote?)"
                )
            raw = reader.readline()
            if not raw:
                return
            try:
                yield _decode(raw)
            except UnicodeDecodeError:
                # Hand csv a blank line; the loop below turns it into an error row.
                bad.append("the row is not UTF-8 text")
                yield "\n"

    records = csv.reader(lines(), delimiter=header.delimiter)
    number = first_row
    width = len(header.columns)
    while True:
        try:
            cells = next(records)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError(f"row {number} cannot be read: {exc}") from exc
        record_start[0] = reader.offset
        if bad:
            yield CsvRow(number, {}, reader.offset, bad.pop())
            number += 1
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines are not rows
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield CsvRow(number, {}, reader.offset, f"the row has {len(cells)} cells, the header {width}")
        else:
            values = {
                name: cell.strip()
                for name, cell in zip(header.columns, cells, strict=False)
                if name and cell.strip()
            }
            yield CsvRow(number, values, reader.offset)
        number += 1
