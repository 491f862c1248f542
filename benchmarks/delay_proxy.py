"""A TCP proxy that delays every byte by a fixed time each way (a benchmark tool, not a test).

``python -m benchmarks.delay_proxy --listen PORT --to HOST:PORT --delay-ms D`` forwards
every connection made to ``127.0.0.1:PORT`` to ``HOST:PORT``, holding each chunk of data
``D`` ms before writing it on, in order, in both directions: a round trip costs ``2 D`` ms
more, as a broker across a network would (bandwidth is not limited). The service
benchmark's ``--rtt-ms`` puts its private broker behind one (the broker advertises the
proxy's port, so every connection of the clients goes through it): what the per-batch
round trips (acknowledgements, commits, transactions) cost a service whose broker is not
on the same host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(forward())
    try:
        while data := await reader.read(1 << 16):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(ConnectionError):
        await task
    writer.close()


async def serve(port: int, host: str, target_port: int, delay_ms: float) -> None:
    delay = delay_ms / 1000

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delay_proxy", description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", required=True, help="HOST:PORT")
    parser.add_argument("--delay-ms", type=float, required=True, help="each way")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, host, int(port), args.delay_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
