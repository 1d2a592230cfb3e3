"""`make import` as a user runs it: the CLI in its own process against the local stack.

The import runs in one container of the import function while the CLI's progress reads
are served by another, so the bar moves with the rows the server has processed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from local.sample_csv import expected_counts, write_csv
from local.stack import LocalStack
from local.template import ROOT

pytestmark = pytest.mark.local

ROWS = 2000  # eight chunks of 250 rows: eight steps of the bar


def _cli(stack: LocalStack, csv: Path, business: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.import_cli",
            str(csv),
            "--url",
            stack.base_url,
            "--business",
            business,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _percentages(terminal: str) -> list[float]:
    return [float(p) for p in re.findall(r"\]\s+(\d+\.\d)%", terminal)]


def _server_errors(stack: LocalStack) -> list[str]:
    """What the issue saw when a client gave up: 500s on progress reads, broken pipes."""
    return [
        line
        for line in stack.log_tail(500_000).splitlines()
        if "BrokenPipeError" in line
        or "local server error" in line
        or ("/v1/imports/" in line and '" 500 ' in line)
    ]


def test_make_import_draws_a_bar_that_moves_with_the_rows(local_stack: LocalStack, tmp_path: Path) -> None:
    # Given a generated CSV of 2,000 rows (5% repeat a person, 2% are bad)
    business = f"cli-{uuid.uuid4().hex[:8]}"
    csv = write_csv(tmp_path / "customers.csv", ROWS)

    # When `make import` runs against the stack (its output piped: one line per change)
    cli = _cli(local_stack, csv, business, "--every", "0.2")
    out, terminal = cli.communicate(timeout=600)

    # Then the bar went through several distinct, increasing percentages to 100%
    assert cli.returncode == 0, terminal
    shown = _percentages(terminal)
    between = [p for p in shown if 0 < p < 100]
    assert len(set(between)) >= 3, terminal
    assert shown == sorted(shown) and shown[-1] == 100.0, terminal
    # And it printed the rows per second and the final counts, here and in the report
    assert re.search(rf"completed: {ROWS} rows in [\d.]+s \([\d,]+ rows/s\)", terminal), terminal
    counts = expected_counts(ROWS)
    final = terminal.splitlines()[-2]
    for name, count in counts.items():
        assert f"{name} {count}" in final, final
    assert '"state": "completed"' in out and f'"created": {counts["created"]}' in out
    # And no progress read failed on the server
    assert _server_errors(local_stack) == []


def test_ctrl_c_leaves_the_import_running_and_says_how_to_follow_it(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # Given `make import` following an import of 2,000 rows
    business = f"cli-{uuid.uuid4().hex[:8]}"
    csv = write_csv(tmp_path / "customers.csv", ROWS)
    cli = _cli(local_stack, csv, business, "--every", "0.2")
    assert cli.stderr is not None
    first = ""
    while "running" not in first:  # the upload is done and the import has started
        first = cli.stderr.readline()
        assert first or cli.poll() is None, "the CLI ended before the import started"

    # When the user presses Ctrl-C
    cli.send_signal(signal.SIGINT)
    _, rest = cli.communicate(timeout=60)

    # Then the CLI ends without a traceback, saying the import keeps running and how to follow it
    terminal = first + rest
    assert cli.returncode == 130, terminal
    assert "Traceback" not in terminal
    found = re.search(r"import ([0-9a-f]{32}) keeps running on the server", terminal)
    assert found, terminal
    import_id = found.group(1)
    assert f"GET /v1/imports/{import_id}" in terminal

    # And the import does run to the end on the server
    headers = local_stack.auth("admin", business)
    deadline = time.monotonic() + 600
    report = {}
    while time.monotonic() < deadline:
        report = requests.get(local_stack.url(f"/v1/imports/{import_id}"), headers=headers, timeout=30).json()
        if report["state"] == "completed":
            break
        time.sleep(0.5)
    assert (report["state"], report["total"]) == ("completed", ROWS), report
    # And the stack logged no 500 or broken pipe for the reads the CLI left behind
    assert _server_errors(local_stack) == []


def test_make_import_without_a_stack_says_so(tmp_path: Path) -> None:
    # Given no stack listening on the URL
    csv = write_csv(tmp_path / "customers.csv", 10)
    # When the CLI runs against it
    done = subprocess.run(
        [sys.executable, "-m", "local.import_cli", str(csv), "--url", "http://127.0.0.1:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it says so in one line, without a traceback
    assert done.returncode == 4
    assert "no local stack answered at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
