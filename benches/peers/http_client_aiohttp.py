"""The HTTP client bench's workload for Python's aiohttp: 10,000 GETs of a 1 KiB page
with 100 requests in flight over keep-alive connections, against the server that
`benches/http_client.rs --server` runs. Prints requests/s and CPU time per request.

    python3 benches/peers/http_client_aiohttp.py 127.0.0.1:PORT [REQUESTS]
"""
import asyncio
import sys
import time

import aiohttp


async def main(address: str, total: int) -> None:
    url = f"http://{address}/"
    done = 0
    received = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, received
        while done < total:
            done += 1
            async with session.get(url) as response:
                received += len(await response.read())

    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(100)))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert received >= total * 1024, received
    print(f"aiohttp {aiohttp.__version__}: {total / wall:.0f} requests/s, {cpu / total * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000))
