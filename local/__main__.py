"""`python -m local` (`make run`): the whole service on 127.0.0.1:3000, no AWS account, no Docker."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from local.workers import DEFAULT_WORKERS

    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    parser.add_argument("--outbox-dir", default=None, help="where sent e-mails go (default .local/outbox)")
    parser.add_argument(
        "--schedules-every",
        type=float,
        default=0,
        metavar="SECONDS",
        help="also run every schedule on a timer",
    )
    parser.add_argument("--stream-retries", type=int, default=3, help="retries of a failing stream batch")
    parser.add_argument(
        "--sqs-retry-seconds", type=float, default=1.0, help="delay before a failed message returns"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra function environment"
    )
    parser.add_argument("--ready-file", default=None, help="write the stack's URLs here as JSON once serving")
    parser.add_argument("--template", default=None, help="a SAM template other than template.yaml (tests)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("LOYALTY_LOCAL_WORKERS", DEFAULT_WORKERS)),
        metavar="N",
        help="containers (worker processes) per function, started on demand; "
        "0 runs functions in this process, one invocation at a time per function",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOYALTY_LOCAL_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from local.workers import configure_logging

    configure_logging(args.log_level)
    overrides = dict(item.split("=", 1) for item in args.env if "=" in item)

    from local.engine import Engine
    from local.server import LocalApiServer
    from local.template import TEMPLATE

    engine = Engine(
        template_path=Path(args.template).resolve() if args.template else TEMPLATE,
        outbox_dir=args.outbox_dir,
        env=overrides,
        stream_max_retries=args.stream_retries,
        sqs_retry_seconds=args.sqs_retry_seconds,
        workers=max(0, args.workers),
        log_level=args.log_level,
    )
    try:
        # Bind first: with --port 0 the functions' PUBLIC_BASE_URL needs the real port.
        server = LocalApiServer(engine, args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    engine.public_base_url = server.base_url
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    try:
        engine.start()
    except Exception:
        server.server_close()
        engine.stop()
        raise
    server.start()
    if args.schedules_every > 0:
        engine.run_schedules_every(args.schedules_every)

    info = {
        "base_url": server.base_url,
        "moto_endpoint": engine.moto_endpoint,
        "outbox_dir": str(engine.outbox_dir),
        "pid": os.getpid(),
    }
    if args.ready_file:
        ready = Path(args.ready_file)
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready)
    print(
        f"Loyalty local stack on {server.base_url}  (AWS services: moto at {engine.moto_endpoint})\n"
        f"  token:     make token BUSINESS=demo ROLE=admin\n"
        f'  try:       curl -H "Authorization: Bearer $(make -s token)" {server.base_url}/v1/customers\n'
        f"  schedules: curl {server.base_url}/_local/schedules   (POST /_local/schedules/<name> runs one)\n"
        f"  outbox:    {engine.outbox_dir}\n"
        f"Ctrl-C stops it; data lives as long as the process.",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        server.stop()
        engine.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
