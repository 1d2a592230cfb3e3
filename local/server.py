"""The local HTTP API: template routes to handlers as API Gateway HTTP API 2.0 events.

The JWT check stands in for the HTTP API's JWT authorizer; `/_local/...` routes are
local-only tools (health, schedules, idle, resources, SES identities) and need no token.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.engine import Engine, FunctionFailed
from local.events import http_api_event
from local.token import TokenError, verify

log = logging.getLogger("local.server")

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
# An invitation link's token is its credential: access lines show it as "***".
_TOKEN_IN_PATH = re.compile(r"(/v1/invitations/)[^/\s?]+")


def _redacted(line: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1***", line)


# `POST /_local/idle?timeout=SECONDS` waits as long as asked, up to this (an hour).
MAX_IDLE_TIMEOUT = 3600.0
DEFAULT_IDLE_TIMEOUT = 10.0


def idle_timeout(asked: str | None) -> tuple[float, str]:
    """Seconds `POST /_local/idle?timeout=` waits, and a note when that is less than asked."""
    try:
        timeout = float(asked) if asked else DEFAULT_IDLE_TIMEOUT
    except ValueError:
        timeout = float("nan")
    if not 0 <= timeout < float("inf"):  # NaN fails both
        raise ValueError("timeout must be a number of seconds, 0 or more")
    if timeout > MAX_IDLE_TIMEOUT:
        return MAX_IDLE_TIMEOUT, f" (asked {timeout:g}s; /_local/idle waits at most {MAX_IDLE_TIMEOUT:g}s)"
    return timeout, ""


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when many clients connect at
    # once (bench_load: 200 clients); API Gateway has no such limit.
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.engine = engine
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):  # listening everywhere: links still need one address
            host = "127.0.0.1"
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (Ctrl-C on `make import`, a timed-out poll) is not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def start(self) -> LocalApiServer:
        self._thread = threading.Thread(target=self.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), _redacted(format % args))

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def __getattr__(self, name: str) -> Any:
        # API Gateway answers any other verb (TRACE, QUERY, ...) from its routes with 405 or
        # 404; http.server would answer 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    # --- plumbing ------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for key, value in (headers or {}).items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        if "content-type" not in sent and body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, default=str).encode())

    def _error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self._json(status, error_body(code, message, details))

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked() or None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("payload too large")
        return self.rfile.read(length) if length else None

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()  # the CRLF after each chunk
            if len(body) > MAX_BODY:
                raise ValueError("payload too large")

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._error(413, "payload_too_large", f"request bodies are limited to {MAX_BODY} bytes")
            return
        try:
            if path.startswith("/_local/") or path == "/_local":
                self._local(path, split.query, raw)
            else:
                self._api(path, split.query, raw)
        except ConnectionError:
            # The client hung up before its answer was written (a poll given up, Ctrl-C):
            # nobody is left to answer; what the function did stands.
            self.close_connection = True
            log.info("%s %s: the client went away before the answer", self.command, path)
        except Exception:  # a bug here must cost one request, never the server
            log.exception("local server error")
            self._error(500, "internal_error", "local stack error; see its log")

    # --- the API -------------------------------------------------------------------------

    def _api(self, path: str, query_string: str, raw: bytes | None) -> None:
        engine = self.server.engine
        matched = engine.routes.match(self.command, path)
        if matched is None:
            self._error(404, "not_found", f"no route for {path}")
            return
        if isinstance(matched, str):
            self._error(405, "method_not_allowed", f"{self.command} is not allowed on {path}")
            return
        spec, route, params = matched
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        claims = None
        if route.authorizer:
            try:
                claims = verify(headers.get("authorization"))
            except TokenError as exc:
                self._error(401, "unauthorized", str(exc))
                return
        query: dict[str, str] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            # API Gateway joins repeated parameters with commas in queryStringParameters.
            query[key] = f"{query[key]},{value}" if key in query else value
        event = http_api_event(
            self.command,
            path,
            route_path=route.path,
            path_parameters=params,
            raw_body=raw,
            query=query,
            headers=headers,
            claims=claims,
            source_ip=self.client_address[0],
        )
        event["rawQueryString"] = query_string
        cookie = event["headers"].pop("cookie", None)
        if cookie:  # payload 2.0 moves cookies out of the headers
            event["cookies"] = [c.strip() for c in cookie.split(";") if c.strip()]
        assert engine.invoker is not None
        try:
            result = engine.invoker(spec, event)
        except FunctionFailed as exc:
            self._error(
                500, "internal_error", "the function failed; see the local stack log", {"function": str(exc)}
            )
            return
        finally:
            engine.note_activity()
        self._lambda_response(result)

    def _lambda_response(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # Payload 2.0: a handler may return any JSON value, which becomes a 200.
            self._json(200, result)
            return
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(key)] = ",".join(str(v) for v in values)
        self.send_response(int(result["statusCode"]))
        for cookie in result.get("cookies") or []:
            self.send_header("Set-Cookie", str(cookie))
        if data and "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = "application/json"
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # --- local-only tools ---------------------------------------------------------------

    def _local(self, path: str, query_string: str, raw: bytes | None) -> None:
        if path == "/_local/ses/identities":
            self._ses_identities(raw)
            return
        engine = self.server.engine
        query = dict(parse_qsl(query_string))
        if path == "/_local/health" and self.command in ("GET", "HEAD"):
            self._json(200, {"status": "ok", "moto_endpoint": engine.moto_endpoint, **engine.status()})
        elif path == "/_local/schedules" and self.command == "GET":
            items = [s.as_dict() for s in engine.schedules.values()]
            self._json(200, {"items": items, "next_cursor": None})
        elif (found := re.fullmatch(r"/_local/schedules/([^/]+)", path)) and self.command == "POST":
            self._run_schedule(found.group(1))
        elif path == "/_local/idle" and self.command == "POST":
            self._wait_idle(query.get("timeout"))
        elif path == "/_local/resources" and self.command == "GET":
            self._json(
                200,
                {
                    "moto_endpoint": engine.moto_endpoint,
                    "outbox_dir": str(engine.outbox_dir),
                    "refs": engine.refs,
                    "functions": sorted(engine.specs),
                },
            )
        elif path in (
            "/_local/health",
            "/_local/schedules",
            "/_local/idle",
            "/_local/resources",
        ) or re.fullmatch(r"/_local/schedules/[^/]+", path):
            self._error(405, "method_not_allowed", f"{self.command} is not allowed on {path}")
        else:
            self._error(404, "not_found", f"no route for {path}")

    def _wait_idle(self, asked: str | None) -> None:
        try:
            timeout, capped = idle_timeout(asked)
        except ValueError as exc:
            self._error(400, "bad_request", str(exc))
            return
        engine = self.server.engine
        if engine.wait_idle(timeout):
            self._json(200, {"idle": True, **engine.status()})
            return
        self._error(
            504,
            "not_idle",
            f"still busy after {timeout:g}s{capped}",
            {"timeout": timeout, "max_timeout": MAX_IDLE_TIMEOUT, **engine.status()},
        )

    def _run_schedule(self, name: str) -> None:
        engine = self.server.engine
        if name not in engine.schedules:
            self._error(
                404, "not_found", f"no schedule named {name}", {"schedules": sorted(engine.schedules)}
            )
            return
        try:
            result = engine.run_schedule(name)
        except FunctionFailed as exc:
            self._error(
                500, "internal_error", "the scheduled function failed; see the log", {"function": str(exc)}
            )
            return
        schedule = engine.schedules[name]
        self._json(200, {"schedule": name, "function": schedule.function.logical_id, "result": result})

    def _ses_identities(self, raw: bytes | None) -> None:
        """GET lists the SES identities the stack can send from; POST `{"identity": "club@example.org"}`
        (an address) or `{"identity": "example.org"}` (a domain) verifies one at once, as SES
        does after its confirmation e-mail or DNS records."""
        import boto3

        ses = boto3.client("ses")  # this process's clients all reach the stack's moto
        if self.command == "POST":
            try:
                identity = str(json.loads(raw or b"{}").get("identity") or "").strip()
            except (ValueError, AttributeError):
                identity = ""
            if not identity or len(identity) > 254 or any(c.isspace() for c in identity):
                self._error(
                    422, "validation_error", 'send {"identity": "<address or domain>"}', {"field": "identity"}
                )
                return
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity.lower())
        elif self.command != "GET":
            self._error(405, "method_not_allowed", f"{self.command} is not allowed on /_local/ses/identities")
            return
        identities = sorted(ses.list_identities().get("Identities") or [])
        self._json(200, {"items": identities, "next_cursor": None})
