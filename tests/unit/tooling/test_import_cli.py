"""The `make import` progress line: pure formatting, no stack."""

from __future__ import annotations

from local.import_cli import progress_line


def test_progress_line_fills_the_bar_by_share_read_and_shows_counts() -> None:
    # Given a report 40% through the file
    report = {"state": "running", "progress": 0.4, "total": 400, "created": 390, "failed": 10}
    # When it is drawn on a 10-wide bar
    line = progress_line(report, width=10)
    # Then four cells are filled and the counts are shown
    assert line.startswith("[####......]  40.0%  running")
    assert "rows 400" in line and "created 390" in line and "failed 10" in line


def test_progress_line_of_a_pending_upload_is_empty() -> None:
    line = progress_line({"state": "pending", "progress": None}, width=4)
    assert line.startswith("[....]   0.0%  pending")
