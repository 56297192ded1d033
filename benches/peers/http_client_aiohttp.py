"""The HTTP client bench's workload for Python's aiohttp: 10,000 GETs of a 1 KiB page
with 100 requests in flight over keep-alive connections, against the server that
`benches/http_client.rs --server` runs.

Two ways to run it:

    python3 benches/peers/http_client_aiohttp.py 127.0.0.1:PORT [REQUESTS]

prints requests/s and CPU time per request (asyncio's loop). As a side of the bench
harness (`benches/common/mod.rs`, when `EVLOOP_BENCH_PYTHON` names the interpreter):

    python benches/peers/http_client_aiohttp.py --side asyncio|uvloop --case get_1k_c100 --n N

takes the server's address from `EVLOOP_HTTP_BENCH_ADDR`, runs on asyncio's loop or
uvloop's, prints the harness's `EVLOOP_BENCH_RESULT` line (CPU from schedstat, VmHWM and
VmRSS, as the Rust sides measure) and appends `side ops wall_ns` to the file
`EVLOOP_HTTP_BENCH_LOG` names, for the bench's requests/s summary. The session, its
connections and the 100 coroutines are inside the window, as on the Rust sides.
"""
import asyncio
import os
import signal
import sys
import time

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loop_core import Probe, new_loop  # noqa: E402  (the same measurement as the loop benches)


async def fetch_all(address: str, total: int) -> int:
    """Returns the body bytes received; asserts every response was a 200."""
    url = f"http://{address}/page"
    claimed = 0
    ok = 0
    received = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal claimed, ok, received
        while claimed < total:
            claimed += 1
            async with session.get(url) as response:
                ok += response.status == 200
                received += len(await response.read())

    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(100)))
    assert ok == total, (ok, total)
    assert received == total * 1024, received
    return received


def standalone(address: str, total: int) -> None:
    async def main() -> None:
        started, cpu = time.perf_counter(), time.process_time()
        await fetch_all(address, total)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"aiohttp {aiohttp.__version__}: {total / wall:.0f} requests/s, {cpu / total * 1e6:.1f} us CPU per request"
        )

    asyncio.run(main())


def harness_child(side: str, case: str, n: int) -> None:
    if case != "get_1k_c100":
        raise SystemExit(f"unknown case {case!r}")
    signal.alarm(int(os.environ.get("EVLOOP_BENCH_TIMEOUT", "120")))
    address = os.environ["EVLOOP_HTTP_BENCH_ADDR"]
    loop = new_loop(side)
    asyncio.set_event_loop(loop)
    probe = Probe()
    loop.run_until_complete(fetch_all(address, n))
    line = probe.finish(n)
    wall_ns = int(line.split("wall_ns=")[1].split()[0])
    log = os.environ.get("EVLOOP_HTTP_BENCH_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{side} {n} {wall_ns}\n")
    print(line, flush=True)
    loop.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--side":
        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        harness_child(args["--side"], args["--case"], int(args["--n"]))
    else:
        standalone(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
