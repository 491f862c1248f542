"""The metrics port: /metrics, /healthz (the loop answers) and /readyz (the service's checks)."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from streamrules.errors import ConfigError
from streamrules.httpserver import Probes, StatusServer
from streamrules.metrics import PrometheusMetrics


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


class _Loop:
    """An event loop running on a thread of its own, as the service's does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def block(self, seconds: float) -> threading.Event:
        """Make the loop busy (not yielding) for ``seconds``; set once it is busy."""
        busy = threading.Event()

        def hog() -> None:
            busy.set()
            time.sleep(seconds)

        self.loop.call_soon_threadsafe(hog)
        return busy

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[_Loop]:
    running = _Loop()
    yield running
    running.close()


@pytest.fixture
def server() -> Iterator[StatusServer]:
    metrics = PrometheusMetrics()
    metrics.decision("discount")
    with StatusServer("127.0.0.1", 0, Probes(answer_timeout_s=10.0), metrics.registry) as s:
        yield s


def test_metrics_are_served(server: StatusServer) -> None:
    status, body, ctype = _get(server.port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert b'streamrules_decisions_total{rule="discount"} 1.0' in body.splitlines()


def test_not_started_is_neither_live_nor_ready(server: StatusServer) -> None:
    status, body, ctype = _get(server.port, "/healthz")
    assert status == 503 and ctype == "application/json"
    assert orjson.loads(body)["status"] == "fail"
    status, body, _ = _get(server.port, "/readyz")
    assert status == 503


def test_healthz_answers_while_the_loop_answers(server: StatusServer, loop: _Loop) -> None:
    server.probes.attach(loop.loop, lambda: {"assigned": True})
    status, body, _ = _get(server.port, "/healthz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})
    server.probes.answer_timeout_s = 0.2
    loop.block(2.0).wait(30)
    status, body, _ = _get(server.port, "/healthz")
    assert status == 503
    assert "did not answer" in orjson.loads(body)["reason"]
    # /metrics still answers: a stuck loop's numbers tell why.
    assert _get(server.port, "/metrics")[0] == 200


def test_readyz_reports_every_check(server: StatusServer, loop: _Loop) -> None:
    checks: dict[str, Any] = {"assigned": True, "rebuilt": False, "broker": True}
    server.probes.attach(loop.loop, lambda: dict(checks))
    status, body, _ = _get(server.port, "/readyz")
    assert status == 503
    assert orjson.loads(body) == {"status": "fail", "checks": checks}
    checks["rebuilt"] = True
    status, body, _ = _get(server.port, "/readyz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "checks": checks})
    server.probes.detach()  # the service stopped
    assert _get(server.port, "/readyz")[0] == 503


def test_a_failing_check_is_not_ready_with_the_reason(server: StatusServer, loop: _Loop) -> None:
    def broken() -> dict[str, bool]:
        raise RuntimeError("no transport")

    server.probes.attach(loop.loop, broken)
    status, body, _ = _get(server.port, "/readyz")
    assert status == 503
    assert orjson.loads(body)["reason"] == "RuntimeError: no transport"
    assert _get(server.port, "/healthz")[0] == 200  # the loop itself is fine


def test_unknown_path_is_404(server: StatusServer) -> None:
    assert _get(server.port, "/nope")[0] == 404


def test_a_port_in_use_is_a_configuration_error(server: StatusServer) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        StatusServer("127.0.0.1", server.port, Probes())
