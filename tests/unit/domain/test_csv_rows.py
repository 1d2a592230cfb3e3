"""CSV rows for imports: aliases, BOM, delimiters, offsets for resuming, bad bytes. No AWS."""

from __future__ import annotations

import io

import pytest

from loyalty.domain import csv_rows
from loyalty.domain.csv_rows import CsvFileError, Header, iter_rows, read_header


class CountingStream(io.BytesIO):
    """Remembers the largest single read, to prove the file is never read whole."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        self.largest = max(self.largest, len(block))
        return block


def rows_of(data: bytes) -> tuple[Header, list[csv_rows.CsvRow]]:
    header, offset = read_header(io.BytesIO(data))
    stream = io.BytesIO(data)
    stream.seek(offset)
    return header, list(iter_rows(stream, header, offset))


def test_header_aliases_are_case_insensitive_and_bom_is_skipped() -> None:
    # Given a UTF-8 file with BOM, mixed-case aliases and an unknown column
    data = (
        "\ufeffE-Mail,First Name,SURNAME,Mobile,Member ID,Shoe size\r\n"
        "ann@example.com,Ann,Lee,+4911111111,m1,42\r\n"
    )
    # When it is read
    header, rows = rows_of(data.encode())
    # Then columns map to canonical fields and the unknown one is ignored, not failed
    assert header.columns == ["email", "first_name", "last_name", "phone", "external_id", None]
    assert header.ignored == ["Shoe size"]
    assert rows[0].fields == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": "+4911111111",
        "external_id": "m1",
    }


def test_semicolon_files_are_sniffed_and_quoted_cells_kept() -> None:
    # Given a semicolon-separated file with a quoted cell holding the delimiter and a newline
    data = b'email;first_name\nann@example.com;"Ann; the\nfirst"\nbob@example.com;Bob\n'
    # When it is read
    header, rows = rows_of(data)
    # Then the delimiter is ';' and the quoted cell survives whole
    assert header.delimiter == ";"
    assert [r.fields.get("first_name") for r in rows] == ["Ann; the\nfirst", "Bob"]
    assert [r.row for r in rows] == [1, 2]


def test_offsets_let_a_reader_resume_exactly_after_any_row() -> None:
    # Given a file of 50 rows
    lines = ["email,first_name"] + [f"user{i}@example.com,User {i}" for i in range(1, 51)]
    data = ("\n".join(lines) + "\n").encode()
    header, rows = rows_of(data)
    # When reading resumes at the offset saved after row 20
    stream = io.BytesIO(data)
    stream.seek(rows[19].end_offset)
    resumed = list(iter_rows(stream, header, rows[19].end_offset, first_row=21))
    # Then it yields exactly rows 21..50 with the same numbers and offsets
    assert [(r.row, r.fields, r.end_offset) for r in resumed] == [
        (r.row, r.fields, r.end_offset) for r in rows[20:]
    ]
    assert rows[-1].end_offset == len(data)


def test_rows_stream_in_blocks_never_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a file much larger than one read block
    monkeypatch.setattr(csv_rows, "READ_SIZE", 1024)
    data = ("email\n" + "".join(f"user{i}@example.com\n" for i in range(5000))).encode()
    stream = CountingStream(data)
    header, offset = read_header(stream)
    stream.seek(offset)
    # When every row is read
    count = sum(1 for _ in iter_rows(stream, header, offset))
    # Then all rows came through with no read larger than a block
    assert count == 5000
    assert stream.largest <= 1024 < len(data)


def test_blank_lines_are_skipped_and_bad_bytes_become_row_errors() -> None:
    # Given blank lines, a line of invalid UTF-8, a NUL byte and a row with too many cells
    data = (
        b"email,first_name\n\nann@example.com,Ann\n\xff\xfe\xfa,x\n"
        b"nul\x00@example.com,N\na@b.co,A,extra\nbob@example.com,Bob\n"
    )
    # When it is read
    _, rows = rows_of(data)
    # Then good rows keep their data, bad ones carry an error, and numbering counts them all
    assert [(r.row, r.error is None) for r in rows] == [
        (1, True),
        (2, False),
        (3, False),
        (4, False),
        (5, True),
    ]
    assert "UTF-8" in (rows[1].error or "")
    assert "cells" in (rows[3].error or "")
    assert rows[4].fields == {"email": "bob@example.com", "first_name": "Bob"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\n\n\n", "empty"),
        (b"first_name,last_name\nAnn,Lee\n", "no email, phone or external_id column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b"email,E-mail\n", "both mean email"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    # Given a file that cannot be an import / When its header is read / Then it is refused, saying why
    with pytest.raises(CsvFileError, match=reason):
        read_header(io.BytesIO(data))


def test_a_line_without_end_is_refused_not_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given binary garbage with no newline, longer than any record may be
    monkeypatch.setattr(csv_rows, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(csv_rows, "READ_SIZE", 1024)
    data = b"email\n" + b"x" * 100_000
    stream = CountingStream(data)
    header, offset = read_header(stream)
    # When rows are read / Then reading stops with a clear error after a few blocks
    with pytest.raises(CsvFileError, match="longer than 4096 bytes"):
        list(iter_rows(stream, header, offset))
    assert stream.tell() < 10_000


def test_header_round_trips_through_the_report() -> None:
    # Given a parsed header / When stored as a dict and read back / Then it is the same
    header = Header(["email", None], ";", ["x"])
    assert Header.from_dict(header.to_dict()) == header
