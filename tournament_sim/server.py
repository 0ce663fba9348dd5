"""A loopback stand-in of the Numerai API that the real numerapi client talks to.

    POST /  or  /graphql          GraphQL operations (tournament_sim.graphql_api)
    GET|HEAD /files/<path>        dataset and live files, with `Range: bytes=N-[M]` (206)
    PUT /uploads/<n>/<model>/<k>  the upload target handed out by submission_upload_auth
    PUT /uploads/diagnostics/<model>/<k>   ... and by diagnosticsUploadAuth
    GET /health                   {"status": "ok"}; never faulted (for container health checks)

Download and upload URLs are built from the request's Host header, so a client that reaches the
server under another name (a compose service) gets URLs it can reach too.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tournament_sim import graphql_api, graphql_common, uploads
from tournament_sim.faults import FaultConfig, FaultInjector  # FaultConfig: re-exported
from tournament_sim.file_transfer import CHUNK_SIZE, parse_range, read_span, write_chunks_atomic
from tournament_sim.layout import load_state
from tournament_sim.rounds import (  # re-exported: the CLI and tests use them from here
    advance_round,
    close_round,
)
from tournament_sim.uploads import list_diagnostics, list_submissions

logger = logging.getLogger(__name__)
__all__ = [
    "FaultConfig",
    "PortInUseError",
    "SimServer",
    "advance_round",
    "close_round",
    "list_diagnostics",
    "list_submissions",
    "serve_forever",
]

NO_FAULTS = FaultConfig()  # frozen, so one shared default is safe
MAX_GRAPHQL_BODY = 1024 * 1024
MAX_UPLOAD_BODY = 512 * 1024 * 1024
REQUEST_LOG_LIMIT = 10_000  # a server left running for weeks must not grow without bound
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")


class PortInUseError(OSError):
    """The port to serve on is taken (another `sim serve`, or any other program)."""


class _HttpError(Exception):
    """Answer this status with {"error": message} (and extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class SimServer:
    """The simulated API on 127.0.0.1 (by default), served from a background thread."""

    def __init__(
        self,
        sim_dir: Path,
        port: int = 0,
        faults: FaultConfig = NO_FAULTS,
        *,
        host: str = "127.0.0.1",
        verbose: bool = False,
    ) -> None:
        self.sim_dir = Path(sim_dir)
        self.host = host
        self.verbose = verbose
        self.request_log: list[tuple[str, str, str | None, int]] = []
        self._log_lock = threading.Lock()
        self._injector = FaultInjector(faults)
        self._httpd = _bind(host, port, self)
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def faults(self) -> FaultConfig:
        return self._injector.faults

    def set_faults(self, faults: FaultConfig) -> None:
        self._injector = FaultInjector(faults)  # a fresh counter: fail_first counts from now

    def start(self) -> SimServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="sim-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def record(self, method: str, path: str, operation: str | None, status: int) -> None:
        """Called as an answer starts (499: the client left before any answer); never with headers."""
        with self._log_lock:
            self.request_log.append((method, path, operation, status))
            if len(self.request_log) > REQUEST_LOG_LIMIT:
                del self.request_log[: REQUEST_LOG_LIMIT // 2]
        if self.verbose:
            print(f"{method} {path} {operation or '-'} {status}", file=sys.stderr, flush=True)


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that abandons a download must not block shutdown

    def __init__(self, address: tuple[str, int], handler: type, sim: SimServer) -> None:
        self.sim = sim
        super().__init__(address, handler)


def _bind(host: str, port: int, sim: SimServer) -> _SimHTTPServer:
    """The listening server; a taken port is a PortInUseError that says which, not a raw OSError."""
    try:
        return _SimHTTPServer((host, port), _Handler, sim)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        raise PortInUseError(
            f"port {port} on {host} is already in use; stop what holds it or pick another port"
        ) from None


def request_kind(method: str, path: str) -> str | None:
    if method == "POST" and path.rstrip("/") in ("", "/graphql"):
        return "graphql"
    if method in ("GET", "HEAD") and path.startswith(graphql_api.FILES_PREFIX):
        return "download"
    if method == "PUT" and path.startswith(uploads.UPLOADS_PREFIX):
        return "upload"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _SimHTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive state to get wrong
    timeout = 120  # seconds a stalled client may hold a thread (socket timeout)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # SimServer.record logs (without headers) when verbose; the default would spam stderr

    def _dispatch(self) -> None:
        sim = self.server.sim
        path = urlsplit(self.path).path
        kind = request_kind(self.command, path)
        injector = sim._injector  # one snapshot per request: set_faults may swap it meanwhile
        self._sent_headers = False
        self._operation: str | None = None
        self._unread = self._content_length() or 0
        try:
            if injector.applies(kind) and injector.faults.delay_s:
                time.sleep(injector.faults.delay_s)
            if injector.should_fail(kind):
                self._send_json(500, {"error": "simulated server error (fault injection)"})
            elif kind == "graphql":
                self._graphql()
            elif kind == "download":
                self._download(unquote(path[len(graphql_api.FILES_PREFIX) :]))
            elif kind == "upload":
                self._upload(unquote(path[len(uploads.UPLOADS_PREFIX) :]))
            elif self.command == "GET" and path == "/health":
                self._send_json(200, {"status": "ok"})
            else:
                self._send_json(404, {"error": f"no such endpoint: {self.command} {path}"})
        except _HttpError as err:
            self._send_json(err.status, {"error": str(err)}, err.headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away (numerapi abandons its first GET when it resumes a download)
        except Exception as exc:  # any bug answers 500 and the server keeps serving
            logger.exception("simulator error on %s %s", self.command, path)
            if not self._sent_headers:
                self._send_json(500, {"error": f"simulator error: {type(exc).__name__}: {exc}"})
        finally:
            if not self._sent_headers:  # nothing was answered: the client left before its answer
                sim.record(self.command, path, self._operation, 499)

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    # -- GraphQL ---------------------------------------------------------------------------------

    def _graphql(self) -> None:
        body = self._read_json_body()
        context = graphql_common.RequestContext(
            sim_dir=self.server.sim.sim_dir,
            base_url=self._base_url(),
            authorization=self.headers.get("Authorization"),
        )
        self._operation, response = graphql_api.execute(context, body["query"], body.get("variables"))
        self._send_json(200, response)

    def _read_json_body(self) -> dict[str, Any]:
        if self._content_length() is None:
            raise _HttpError(411, "Content-Length required")
        if self._unread > MAX_GRAPHQL_BODY:
            raise _HttpError(413, f"request body larger than {MAX_GRAPHQL_BODY} bytes")
        try:
            body = json.loads(b"".join(self._body_chunks()))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise _HttpError(400, f"request body is not JSON: {err}") from err
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise _HttpError(400, 'expected a JSON object {"query": "...", "variables": {...}}')
        if not isinstance(body.get("variables") or {}, dict):
            raise _HttpError(400, "variables must be a JSON object")
        return body

    def _base_url(self) -> str:
        host = self.headers.get("Host", "")
        return f"http://{host}" if _HOST.match(host) else self.server.sim.url

    # -- downloads and uploads -------------------------------------------------------------------

    def _download(self, relative: str) -> None:
        path = graphql_api.download_path(self.server.sim.sim_dir, relative)
        if path is None:
            raise _HttpError(404, f"file not found: {relative}")
        size = path.stat().st_size
        span = parse_range(self.headers.get("Range"), size)
        if span == "unsatisfiable":
            raise _HttpError(
                416, f"range not satisfiable ({size} bytes)", {"Content-Range": f"bytes */{size}"}
            )
        start, end = span if span else (0, size - 1)
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send_headers(206 if span else 200, end - start + 1, headers)
        if self.command == "GET":
            with path.open("rb") as handle:
                for chunk in read_span(handle, start, end - start + 1):
                    self.wfile.write(chunk)

    def _upload(self, relative: str) -> None:
        state = load_state(self.server.sim.sim_dir)
        target = uploads.upload_path(self.server.sim.sim_dir, state, relative)
        if target is None:
            raise _HttpError(404, f"not an upload URL this server hands out: {relative}")
        if self._content_length() is None:
            raise _HttpError(411, "Content-Length required")
        if self._unread > MAX_UPLOAD_BODY:
            raise _HttpError(413, f"upload larger than {MAX_UPLOAD_BODY} bytes")
        write_chunks_atomic(target, self._body_chunks())
        self._send_json(200, {})

    # -- plumbing --------------------------------------------------------------------------------

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    def _body_chunks(self) -> Iterator[bytes]:
        while self._unread > 0:
            chunk = self.rfile.read(min(CHUNK_SIZE, self._unread))
            if not chunk:
                raise ConnectionResetError(f"request body ended {self._unread} bytes early")
            self._unread -= len(chunk)
            yield chunk

    def _send_headers(self, status: int, length: int, headers: dict[str, str]) -> None:
        # Read what the client sent first: closing a socket with unread data makes the kernel send
        # a reset, and the client would see a broken connection instead of this answer.
        if self._unread <= MAX_UPLOAD_BODY:
            for _ in self._body_chunks():
                pass
        # Log before the client can see the end of the answer, so a test that inspects
        # request_log right after a call finds its request there.
        self.server.sim.record(self.command, urlsplit(self.path).path, self._operation, status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self._sent_headers = True

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self._send_headers(status, len(payload), {"Content-Type": "application/json", **(headers or {})})
        if self.command != "HEAD":
            self.wfile.write(payload)


def serve_forever(
    sim_dir: Path,
    port: int,
    faults: FaultConfig = NO_FAULTS,
    *,
    host: str = "127.0.0.1",
    verbose: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM (the CLI's `sim serve`)."""
    load_state(sim_dir)  # fail now, with the generator hint, rather than on the first request
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with SimServer(sim_dir, port, faults, host=host, verbose=verbose) as server:
            print(f"simulated Numerai API at {server.url} (serving {Path(sim_dir).resolve()})", flush=True)
            while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("simulated Numerai API stopped", flush=True)
