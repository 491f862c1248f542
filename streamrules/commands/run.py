"""``streamrules run``: the Kafka service (consumer group -> rules -> decisions topic).

Wires configuration, logging, metrics (with the health probes on the metrics port) and the
Kafka transport to ``streamrules.app.App`` and runs it until SIGTERM/SIGINT (finish the
batch, flush, commit, exit 0) or, with ``--stop-when-idle S``, until no input arrived for S
seconds (batch jobs and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import tempfile
from collections.abc import Callable

from streamrules import build, config
from streamrules.errors import ConfigError
from streamrules.logging import configure_logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the rules processor as a Kafka service",
        description=(
            "Consume orders and incidents as a consumer group, merge partitions in event-time "
            "order, run the rules and publish decisions (and dead letters). Stops cleanly on "
            "SIGTERM or SIGINT. Settings: flags > STREAMRULES_* environment > --config TOML."
        ),
    )
    config.add_arguments(parser)
    parser.add_argument(
        "--runtime",
        default="aiokafka",
        metavar="NAME",
        help=(
            "aiokafka (default): the plain service; faust: the same rules as a faust-streaming "
            "worker (needs the faust extra; at-least-once, PLAINTEXT)"
        ),
    )
    parser.add_argument(
        "--stop-when-idle",
        type=float,
        default=None,
        metavar="S",
        help="exit (after committing) once no input arrived for S seconds",
    )
    parser.set_defaults(func=run)


RUNTIMES = ("aiokafka", "faust")


def run(args: argparse.Namespace) -> int:
    runtime = args.runtime
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    settings = config.load_settings(args)
    idle = args.stop_when_idle
    if idle is not None and not idle > 0:
        raise ConfigError(f"--stop-when-idle must be > 0 seconds, got {idle}")
    if runtime == "faust":
        return _run_faust(settings, None if idle is None else int(idle * 1000))
    configure_logging(settings.log_level, settings.log_format)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(_serve(settings, None if idle is None else int(idle * 1000)))


def _run_faust(settings: config.Settings, stop_when_idle_ms: int | None) -> int:
    """The Faust runtime: ``streamrules.faust.build_app`` run by a Faust worker, which
    stops cleanly on SIGTERM/SIGINT (Faust commits what was processed) and logs in
    Faust's format."""
    try:
        import faust

        from streamrules.faust.rules import attach, new_app
    except ImportError as exc:
        raise ConfigError(
            f"--runtime faust needs faust-streaming (pip install 'streamrules[faust]'): {exc}"
        ) from None
    from streamrules.httpserver import Probes, StatusServer
    from streamrules.metrics import PrometheusMetrics, make_metrics

    # Faust wants a data folder for tables; this app keeps none (memory store, no
    # tables): a throw-away folder instead of `<group>-data` in the working directory.
    datadir = tempfile.TemporaryDirectory(prefix="streamrules-faust-")
    app = new_app(settings, datadir=datadir.name)
    metrics = make_metrics(settings.metrics_port)
    rules = attach(app, settings, metrics=metrics)
    _check_topics(settings)
    server = None
    if settings.metrics_port is not None:
        # /metrics and the probes, as `run`'s; the probes answer on Faust's event loop.
        probes = Probes()
        registry = metrics.registry if isinstance(metrics, PrometheusMetrics) else None
        server = StatusServer(settings.metrics_host, settings.metrics_port, probes, registry)

        @app.task  # type: ignore[untyped-decorator]
        async def _attach_probes() -> None:
            probes.attach(asyncio.get_running_loop(), rules.readiness)

        server.start()
    if stop_when_idle_ms is not None:

        @app.timer(interval=0.5)  # type: ignore[untyped-decorator]
        async def _stop_when_idle() -> None:
            idle = rules.idle_ms()
            if idle is not None and idle >= stop_when_idle_ms:
                log.info("input idle for %d ms: stopping", stop_when_idle_ms)
                # The worker's own clean stop (flush, commit), as on SIGTERM.
                os.kill(os.getpid(), signal.SIGTERM)

    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        if server is not None:
            server.stop()
        datadir.cleanup()
    return 0


def _check_topics(settings: config.Settings) -> None:
    """The four topics must exist, as for the plain runtime (Faust would wait for a missing
    input topic forever, logging an error a tenth of a second)."""
    from streamrules.errors import TransportError
    from streamrules.transport import kafka_admin

    names = (
        settings.orders_topic,
        settings.incidents_topic,
        settings.decisions_topic,
        settings.dlq_topic,
    )
    bootstrap, options = kafka_admin.settings_options(settings)
    found = asyncio.run(kafka_admin.describe_topics(bootstrap, names, **options))
    missing = [n for n in names if n not in found]
    if missing:
        raise TransportError(
            f"missing topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} on "
            f"{settings.bootstrap} (streamrules topics apply creates them)"
        )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (``pip install 'streamrules[fast]'``), else
    None: asyncio's own. The same service either way; uvloop spends less CPU per record on
    the sockets and callbacks of the Kafka clients (benchmarks/RESULTS.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(settings: config.Settings, stop_when_idle_ms: int | None) -> int:
    # Imported here: `streamrules --help` must not pay for (or fail on) the engine.
    from streamrules.app import App, describe
    from streamrules.httpserver import Probes, StatusServer
    from streamrules.metrics import PrometheusMetrics, make_metrics
    from streamrules.transport.kafka import KafkaTransport

    metrics = make_metrics(settings.metrics_port)
    app = App(
        settings, KafkaTransport(settings), metrics=metrics, stop_when_idle_ms=stop_when_idle_ms
    )
    loop = asyncio.get_running_loop()
    probes = Probes()
    probes.attach(loop, app.readiness)
    server = None
    if settings.metrics_port is not None:
        registry = metrics.registry if isinstance(metrics, PrometheusMetrics) else None
        server = StatusServer(settings.metrics_host, settings.metrics_port, probes, registry)
        server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop)
    log.info(
        "starting",
        extra={
            "bootstrap_servers": settings.bootstrap,
            "group_id": settings.group_id,
            "exactly_once": settings.exactly_once,
            "rules": list(settings.rules),
            "build": build.describe(),  # pure Python, or the compiled modules (mypyc)
        },
    )
    # Every setting, for a debugging session; repr(Settings) leaves secrets out.
    log.debug("settings: %r", settings)
    try:
        await app.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        probes.detach()
        if server is not None:
            server.stop()
    log.info("summary", extra=describe(app.stats))
    return 0
