"""The echo bench's servers for Python (benches/echo.rs starts them when
`EVLOOP_BENCH_PYTHON` names the interpreter):

    python benches/peers/echo_server.py --side asyncio|uvloop --kind protocol|streams

- protocol: an `asyncio.Protocol` whose `data_received` writes the bytes back, as the
  `evloop-protocol` server does;
- streams: `asyncio.start_server`, each client a coroutine doing `read(64)`, then
  `write` + `await drain()`, as the `evloop-streams` server does.

It listens on 127.0.0.1 (port chosen by the kernel, backlog 1024), prints
`EVLOOP_ECHO_PORT <port>` and serves until it is killed (the bench kills it by its pid)
or until `EVLOOP_BENCH_TIMEOUT` seconds (default 120) have passed, whichever comes first.
"""
import argparse
import asyncio
import os
import signal
import sys

MESSAGE = 64


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.transport = None


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(MESSAGE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(kind):
    loop = asyncio.get_running_loop()
    if kind == "protocol":
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
    elif kind == "streams":
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    port = server.sockets[0].getsockname()[1]
    print(f"EVLOOP_ECHO_PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", required=True, choices=["asyncio", "uvloop"])
    parser.add_argument("--kind", required=True, choices=["protocol", "streams"])
    args = parser.parse_args()
    # Bounded in time even if the bench that started it dies without killing it.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(os.environ.get("EVLOOP_BENCH_TIMEOUT", "120")))
    if args.side == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(args.kind))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
