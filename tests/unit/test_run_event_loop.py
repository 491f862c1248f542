"""`streamrules run`'s event loop: uvloop's when installed, asyncio's otherwise, and the
service gives the same decisions on either (over the in-memory transport)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from streamrules.app import App
from streamrules.commands.run import event_loop_factory
from streamrules.config import Settings
from streamrules.generate import generate_events
from streamrules.transport.memory import ManualClock, MemoryBroker, MemoryTransport


def test_without_uvloop_asyncio_s_own_loop_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert event_loop_factory() is None


def test_with_uvloop_its_loop_is_used() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert event_loop_factory() is uvloop.new_event_loop


def _decisions_on(factory: object) -> list[bytes]:
    broker = MemoryBroker()
    for name, parts in (("orders", 2), ("incidents", 1), ("decisions", 1), ("decisions.dlq", 1)):
        broker.create_topic(name, parts)
    for topic, key, value in generate_events(5, days=0.1, orders_per_hour=240):
        broker.produce(topic, key, value)

    async def go() -> None:
        clock = ManualClock()
        transport = MemoryTransport(broker, "g", ("orders", "incidents"), clock=clock)
        app = App(Settings(batch_size=50), transport, clock=clock, stop_when_idle_ms=2_000)
        await app.run()

    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        runner.run(go())
    return [r.value for r in broker.records("decisions")]


def test_the_same_decisions_on_either_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    on_uvloop = _decisions_on(event_loop_factory())
    assert on_uvloop
    assert _decisions_on(None) == on_uvloop
