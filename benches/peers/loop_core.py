"""The loop-core benches (timers, call_soon_chain, tasks, ping_pong) for Python's asyncio
and uvloop: a child of the bench harness (`benches/common/mod.rs`), started as

    python benches/peers/loop_core.py --side asyncio|uvloop --case CASE --n N

when `EVLOOP_BENCH_PYTHON` names the interpreter. It does the same work as the Rust
sides of the same case and prints the harness's result line:

    EVLOOP_BENCH_RESULT ops=N wall_ns=.. cpu_ns=.. hwm_kib=.. base_kib=..

measured the same way (CPU from /proc/self/task/*/schedstat, VmHWM and VmRSS from
/proc/self/status, loop creation outside the window).

Cases:
- timers, timers_cancel_half: N `loop.call_later` with the delays of benches/timers.rs
  (xorshift64, same seed, same [0, 1 s) mapping); in the second, every odd-numbered handle
  is cancelled right after it is made. The last callback to fire stops the loop. The
  delays are computed before the window (pure-Python xorshift would cost ~1 us a timer).
- chain: a chain of N callbacks, each scheduling the next with `loop.call_soon`.
- sleeping_tasks: N tasks, each `await asyncio.sleep(delay)` with the delays of
  benches/tasks.rs, then counting itself; the last sets an Event main awaits.
- ping_pong: main and one task alternate through two Events (set, then wait and clear).

The process stops itself after `EVLOOP_BENCH_TIMEOUT` seconds (default 120), as the
harness would kill it.
"""
import argparse
import asyncio
import os
import signal
import sys
import time

MASK = (1 << 64) - 1


def xorshift(seed):
    x = seed or 1
    while True:
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        yield x


def timer_delays(n):
    """benches/timers.rs: XorShift::SEED, delay_below(1 s) = (x * 1e9) >> 64 ns."""
    gen = xorshift(0x9E3779B97F4A7C15)
    return [((next(gen) * 1_000_000_000) >> 64) / 1e9 for _ in range(n)]


def task_delays(n):
    """benches/tasks.rs: its own seed, x % 1e9 ns."""
    gen = xorshift(0x2545F4914F6CDD1D)
    return [(next(gen) % 1_000_000_000) / 1e9 for _ in range(n)]


def cpu_ns():
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


class Probe:
    def __init__(self):
        self.base_kib = status_kib("VmRSS:")
        self.cpu = cpu_ns()
        self.wall = time.perf_counter_ns()

    def finish(self, ops):
        wall = time.perf_counter_ns() - self.wall
        cpu = cpu_ns() - self.cpu
        hwm = status_kib("VmHWM:")
        return f"EVLOOP_BENCH_RESULT ops={ops} wall_ns={wall} cpu_ns={cpu} hwm_kib={hwm} base_kib={self.base_kib}"


def new_loop(side):
    if side == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if side == "asyncio":
        return asyncio.new_event_loop()
    raise SystemExit(f"unknown side {side!r}")


def timers(loop, n, cancel_half):
    delays = timer_delays(n)
    expected = n - n // 2 if cancel_half else n
    fired = 0

    def on_fire():
        nonlocal fired
        fired += 1
        if fired == expected:
            loop.stop()

    probe = Probe()
    call_later = loop.call_later
    if cancel_half:
        for i, delay in enumerate(delays):
            handle = call_later(delay, on_fire)
            if i & 1:
                handle.cancel()
    else:
        for delay in delays:
            call_later(delay, on_fire)
    loop.run_forever()
    result = probe.finish(n)
    assert fired == expected, (fired, expected)
    return result


def chain(loop, n):
    steps = 0

    def step():
        nonlocal steps
        steps += 1
        if steps == n:
            loop.stop()
        else:
            loop.call_soon(step)

    probe = Probe()
    loop.call_soon(step)
    loop.run_forever()
    result = probe.finish(n)
    assert steps == n, steps
    return result


def sleeping_tasks(loop, n):
    delays = task_delays(n)

    async def main():
        finished = 0
        all_done = asyncio.Event()

        async def sleeper(delay):
            nonlocal finished
            await asyncio.sleep(delay)
            finished += 1
            if finished == n:
                all_done.set()

        # The loop keeps each task alive through its sleep's timer, as evloop's does.
        for delay in delays:
            asyncio.ensure_future(sleeper(delay))
        await all_done.wait()
        return finished

    probe = Probe()
    finished = loop.run_until_complete(main())
    result = probe.finish(n)
    assert finished == n, finished
    return result


def ping_pong(loop, n):
    async def main():
        ping, pong = asyncio.Event(), asyncio.Event()

        async def partner():
            for _ in range(n):
                await ping.wait()
                ping.clear()
                pong.set()

        task = asyncio.ensure_future(partner())
        rounds = 0
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()
            rounds += 1
        await task
        return rounds

    probe = Probe()
    rounds = loop.run_until_complete(main())
    result = probe.finish(n)
    assert rounds == n, rounds
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", required=True, choices=["asyncio", "uvloop"])
    parser.add_argument("--case", required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args()
    signal.alarm(int(os.environ.get("EVLOOP_BENCH_TIMEOUT", "120")))
    loop = new_loop(args.side)
    asyncio.set_event_loop(loop)
    cases = {
        "timers": lambda: timers(loop, args.n, False),
        "timers_cancel_half": lambda: timers(loop, args.n, True),
        "chain": lambda: chain(loop, args.n),
        "sleeping_tasks": lambda: sleeping_tasks(loop, args.n),
        "ping_pong": lambda: ping_pong(loop, args.n),
    }
    if args.case not in cases:
        raise SystemExit(f"unknown case {args.case!r}")
    line = cases[args.case]()
    print(line, flush=True)
    # Leaving a million finished handles or tasks to the interpreter's teardown costs
    # seconds and measures nothing.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
