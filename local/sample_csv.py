"""Generated customer CSVs for `make import`, the local-stack tests and the benchmarks.

    python -m local.sample_csv 100000 customers.csv      # then: make import FILE=customers.csv

Deterministic for a given size and tag: every 20th row repeats an earlier person with a
changed last name (an update), every 50th row has a bad e-mail (a failure), every other
row has a phone number. The tag keeps two files' people apart in one business (their
e-mails and phone numbers differ).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

HEADER = "Email;First Name;Last Name;Phone"


def csv_lines(rows: int, duplicates: float = 0.05, bad: float = 0.02, tag: str = "user") -> Iterator[str]:
    """The header, then `rows` data lines (no line ends)."""
    yield HEADER
    # +49151... for the default tag (the benchmarks' numbers); another range per other tag.
    prefix = "+49151" if tag == "user" else f"+49{zlib.crc32(tag.encode()) % 900 + 100}"
    dup_every = round(1 / duplicates) if duplicates else 0
    bad_every = round(1 / bad) if bad else 0
    for i in range(1, rows + 1):
        if bad_every and i % bad_every == 0:
            yield f"not-an-email-{i};Bad;Row;"
        elif dup_every and i % dup_every == 0:
            j = i - 7
            yield f"{tag}{j}@example.com;First{j};Changed{i};"
        else:
            phone = f"{prefix}{i:07d}" if i % 2 else ""
            yield f"{tag}{i}@example.com;First{i};Last{i};{phone}"


def csv_bytes(rows: int, duplicates: float = 0.05, bad: float = 0.02, tag: str = "user") -> bytes:
    return ("\n".join(csv_lines(rows, duplicates, bad, tag)) + "\n").encode()


def expected_counts(rows: int, duplicates: float = 0.05, bad: float = 0.02) -> dict[str, int]:
    """What an import of a fresh file reports: created, updated and failed rows."""
    dup_every = round(1 / duplicates) if duplicates else 0
    bad_every = round(1 / bad) if bad else 0
    failed = rows // bad_every if bad_every else 0
    # A duplicate row is an update unless it is itself a multiple of `bad_every` (then bad),
    # or it repeats a row that was bad (then it creates that person).
    updated = created_by_dup = 0
    for i in range(dup_every, rows + 1, dup_every or rows + 1):
        if bad_every and i % bad_every == 0:
            continue
        if bad_every and (i - 7) % bad_every == 0:
            created_by_dup += 1
        else:
            updated += 1
    return {"created": rows - failed - updated, "updated": updated, "failed": failed}


def write_csv(path: Path, rows: int, duplicates: float = 0.05, bad: float = 0.02, tag: str = "user") -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        for line in csv_lines(rows, duplicates, bad, tag):
            out.write(line + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sample_csv", description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("file", type=Path, nargs="?", help="default: standard output")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of rows repeating a person")
    parser.add_argument("--bad", type=float, default=0.02, help="share of rows with a bad e-mail")
    parser.add_argument("--tag", default="user", help="e-mail prefix, to keep files' people apart")
    args = parser.parse_args(argv)
    if args.file:
        write_csv(args.file, args.rows, args.duplicates, args.bad, args.tag)
    else:
        for line in csv_lines(args.rows, args.duplicates, args.bad, args.tag):
            sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
