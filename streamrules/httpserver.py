"""Observability: the HTTP server on the metrics port (``/metrics``, ``/healthz``, ``/readyz``).

Beside the flow, on a thread of its own, so that ``/metrics`` still answers when the
service loop is stuck (its numbers then tell why) and a probe can tell a stuck loop from a
busy one:

- ``/healthz`` (liveness): the event loop answers. The server puts a callback on the loop
  and waits up to ``answer_timeout_s`` for it to run; 200 ``{"status": "ok"}``, else 503
  with the reason. The service yields to the loop between chunks of rule work, so a
  healthy loop answers in milliseconds even under load.
- ``/readyz`` (readiness): the loop computes the readiness checks (partitions assigned,
  working memory rebuilt, broker reachable); 200 when all pass, else 503, with every
  check in the body.
- ``/metrics``: the Prometheus registry's text exposition.

Bodies are short JSON objects. Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from streamrules.errors import ConfigError

__all__ = ["Probes", "StatusServer"]

log = logging.getLogger(__name__)


class Probes:
    """What the probes ask, answered on the service's event loop.

    ``readiness`` runs on the loop and returns named checks (all true: ready). Until
    ``attach`` is called (the service has not started its loop yet), the process is alive
    but not ready.
    """

    def __init__(self, answer_timeout_s: float = 2.0) -> None:
        self.answer_timeout_s = answer_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readiness: Callable[[], Mapping[str, bool]] | None = None

    def attach(
        self, loop: asyncio.AbstractEventLoop, readiness: Callable[[], Mapping[str, bool]]
    ) -> None:
        self._loop = loop
        self._readiness = readiness

    def detach(self) -> None:
        self._loop = None
        self._readiness = None

    def _on_loop(self, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``fn`` on the loop; (answered, its result)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False, None
        done = threading.Event()
        box: list[Any] = []

        def call() -> None:
            try:
                box.append(fn())
            except Exception as exc:  # a failing check is an answer: not ready, and why
                log.exception("health check failed")
                box.append(exc)
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # closed between the check and the call
            return False, None
        if not done.wait(self.answer_timeout_s):
            return False, None
        return True, box[0] if box else None

    def live(self) -> tuple[bool, dict[str, Any]]:
        if self._loop is None:
            return False, {"status": "fail", "reason": "the service has not started"}
        answered, _ = self._on_loop(lambda: None)
        if answered:
            return True, {"status": "ok"}
        reason = f"the event loop did not answer within {self.answer_timeout_s:g} s"
        return False, {"status": "fail", "reason": reason}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        readiness = self._readiness
        if readiness is None:
            return False, {"status": "fail", "checks": {"started": False}}
        answered, checks = self._on_loop(readiness)
        if not answered:
            return False, {"status": "fail", "checks": {"loop": False}}
        if isinstance(checks, Exception):
            reason = f"{type(checks).__name__}: {checks}"
            return False, {"status": "fail", "checks": {"readiness": False}, "reason": reason}
        checks = dict(checks)
        ok = all(checks.values())
        return ok, {"status": "ok" if ok else "fail", "checks": checks}


class StatusServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port``, on a daemon thread."""

    def __init__(self, host: str, port: int, probes: Probes, registry: Any = None) -> None:
        self.probes = probes
        self.registry = registry
        handler = _handler(self)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"metrics_port: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._server.daemon_threads = True
        # A short poll interval: stop() (the service's shutdown) waits for one.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="streamrules-http",
            daemon=True,
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def start(self) -> StatusServer:
        self._thread.start()
        log.info("metrics and health probes on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._json(*server.probes.live())
            elif path == "/readyz":
                self._json(*server.probes.ready())
            elif path == "/metrics" and server.registry is not None:
                from prometheus_client.exposition import choose_encoder

                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, content_type, encoder(server.registry))
            else:
                self._json(False, {"status": "fail", "reason": f"no such path {path}"}, 404)

        def _json(self, ok: bool, body: dict[str, Any], status: int | None = None) -> None:
            code = status if status is not None else (200 if ok else 503)
            self._send(code, "application/json", orjson.dumps(body) + b"\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the service's own log

    return Handler
