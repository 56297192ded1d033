#!/usr/bin/env python3
"""The table and the chart of benches/compare.sh, from the JSON lines the benches append
to the file `EVLOOP_BENCH_JSON` names (standard library only).

    compare_report.py meta [--python PY] [--command CMD]   one "meta" JSON line on stdout
    compare_report.py report RESULTS.jsonl [--markdown OUT.md] [--svg OUT.svg]

`report` prints a plain-text table (benchmark, evloop, tokio current_thread, asyncio,
uvloop, evloop/best peer, evloop vs uvloop), each cell the median [min-max] of the runs,
and writes the same table as Markdown and a bar chart of evloop's advantage over each peer
as SVG.

Ratios: "evloop/best" is evloop's median over the best peer's median (the lowest for
times, memory and syscalls; the highest for rates), so below 1 is better for a cost and
above 1 is better for a rate. The chart and the "vs uvloop" column use one direction for
every row: "advantage" = how many times better evloop's median is (peer/evloop for costs,
evloop/peer for rates), so above 1 means evloop is ahead.
"""
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

PEERS = ["tokio", "asyncio", "uvloop"]
SIDES = ["evloop"] + PEERS
HEADERS = ["benchmark", "evloop", "tokio current_thread", "asyncio", "uvloop", "evloop/best peer", "vs uvloop"]


# ---------------------------------------------------------------------------------------
# meta


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def meta(args):
    python = None
    command = "benches/compare.sh"
    it = iter(args)
    for a in it:
        if a == "--python":
            python = next(it)
        elif a == "--command":
            command = next(it)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
            mem_gib = kib / 1024 / 1024
    except (OSError, StopIteration):
        pass
    lock_versions = {}
    try:
        with open("Cargo.lock") as f:
            text = f.read()
        for block in text.split("[[package]]"):
            lines = dict(
                l.split(" = ", 1) for l in block.strip().splitlines() if " = " in l
            )
            name = lines.get("name", "").strip('"')
            if name in ("tokio", "hyper"):
                lock_versions[name] = lines.get("version", "").strip('"')
    except OSError:
        pass
    py = {}
    if python:
        out = run(
            [
                python,
                "-c",
                "import sys, json\n"
                "v = {'python': sys.version.split()[0]}\n"
                "for m in ('uvloop', 'aiohttp'):\n"
                "    try:\n"
                "        v[m] = __import__(m).__version__\n"
                "    except Exception:\n"
                "        pass\n"
                "print(json.dumps(v))",
            ]
        )
        try:
            py = json.loads(out)
        except ValueError:
            py = {}
    record = {
        "meta": True,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        # EVLOOP_BENCH_COMMIT: for a run in an exported copy of the tree, which has no .git.
        "commit": os.environ.get("EVLOOP_BENCH_COMMIT") or run(["git", "rev-parse", "--short", "HEAD"]),
        "src_modified": bool(run(["git", "status", "--porcelain", "--", "src", "Cargo.toml"])),
        "rustc": run(["rustc", "-V"]),
        "tokio": lock_versions.get("tokio", ""),
        "hyper": lock_versions.get("hyper", ""),
        "python": py.get("python", ""),
        "uvloop": py.get("uvloop", ""),
        "aiohttp": py.get("aiohttp", ""),
        "command": command,
    }
    print(json.dumps(record))


# ---------------------------------------------------------------------------------------
# rows


class Row:
    """One line of the table: a metric of one benchmark, per side a list of run values."""

    def __init__(self, label, unit, lower_is_better, decimals, values, note=""):
        self.label = label
        self.unit = unit
        self.lower = lower_is_better
        self.decimals = decimals
        self.values = values  # side -> [floats]
        self.note = note

    def median(self, side):
        v = self.values.get(side) or []
        return statistics.median(v) if v else None

    def best_peer(self):
        peers = [(p, self.median(p)) for p in PEERS if self.median(p) is not None]
        if not peers:
            return None, None
        return (min if self.lower else max)(peers, key=lambda pv: pv[1])

    def ratio(self):
        """evloop / best peer, medians."""
        ev = self.median("evloop")
        _, best = self.best_peer()
        if ev is None or best is None or best == 0:
            return None
        return ev / best

    def advantage(self, peer):
        """How many times better evloop is than `peer` (above 1: evloop ahead)."""
        ev, theirs = self.median("evloop"), self.median(peer)
        if ev is None or theirs is None or ev <= 0 or theirs <= 0:
            return None
        return theirs / ev if self.lower else ev / theirs


def group(records, **match):
    """side -> [records] for the records whose fields equal `match`."""
    out = {}
    for r in records:
        if all(r.get(k) == v for k, v in match.items()):
            out.setdefault(r["side"], []).append(r)
    return out


def values(grouped, f):
    out = {}
    for side, recs in grouped.items():
        vs = [f(r) for r in recs]
        vs = [v for v in vs if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if vs:
            out[side] = vs
    return out


def cpu_per_op(r):
    return r["cpu_ns"] / r["ops"]


def work_mib(r):
    return max(r["hwm_kib"] - r["base_kib"], 0) / 1024


def work_bytes_per_op(r):
    return max(r["hwm_kib"] - r["base_kib"], 0) * 1024 / r["ops"]


def ops_per_s(r):
    return r["ops"] / (r["wall_ns"] / 1e9)


def n_label(records, bench, case, default):
    ops = {r["ops"] for r in records if r.get("bench") == bench and r.get("case") == case and "ops" in r}
    n = max(ops) if ops else default
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def build_rows(records):
    rows = []
    loop = [r for r in records if "ops" in r and "cpu_ns" in r]

    n = n_label(loop, "timers", "timers", 1_000_000)
    g = group(loop, bench="timers", case="timers")
    rows.append(Row(f"{n} timers, random delays in [0, 1 s): CPU per timer", "ns", True, 0, values(g, cpu_per_op)))
    rows.append(Row(f"{n} timers: memory (VmHWM growth)", "MiB", True, 1, values(g, work_mib)))
    g = group(loop, bench="timers", case="timers_cancel_half")
    rows.append(Row(f"{n} timers, every second one cancelled: CPU per timer", "ns", True, 0, values(g, cpu_per_op)))
    rows.append(Row(f"{n} timers, half cancelled: memory (VmHWM growth)", "MiB", True, 1, values(g, work_mib)))

    n = n_label(loop, "call_soon_chain", "chain", 1_000_000)
    g = group(loop, bench="call_soon_chain", case="chain")
    rows.append(Row(f"call_soon chain of {n} steps: CPU per step", "ns", True, 1, values(g, cpu_per_op)))

    g = group(loop, bench="ping_pong", case="ping_pong")
    rows.append(Row("ping-pong between two tasks: CPU per round trip", "ns", True, 1, values(g, cpu_per_op)))

    n = n_label(loop, "tasks", "sleeping_tasks", 1_000_000)
    g = group(loop, bench="tasks", case="sleeping_tasks")
    rows.append(Row(f"{n} sleeping tasks: CPU per task", "ns", True, 0, values(g, cpu_per_op)))
    rows.append(Row(f"{n} sleeping tasks: memory per task (VmHWM growth)", "B", True, 0, values(g, work_bytes_per_op)))

    echo = [r for r in records if r.get("bench") == "echo"]
    callgrind = [r for r in records if r.get("bench") == "echo_callgrind"]
    conns = sorted({int(r["conns"]) for r in echo + callgrind})
    for kind, name in (("protocol", "Protocol"), ("streams", "streams")):
        for c in conns:

            def pick(r, c=c, kind=kind):
                return int(r["conns"]) == c and (r["side"] == "tokio" or r["kind"] == kind)

            g = {}
            for r in echo:
                if pick(r):
                    g.setdefault(r["side"], []).append(r)
            base = f"echo 64 B, {name} server, C={c}"
            cg = {}
            for r in callgrind:
                if pick(r):
                    cg.setdefault(r["side"], []).append(r)
            rows.append(Row(f"{base}: messages/s", "msg/s", False, 0, values(g, lambda r: r["msgs_per_s"])))
            rows.append(Row(f"{base}: p99 latency", "us", True, 0, values(g, lambda r: r["p99_us"])))
            rows.append(
                Row(f"{base}: user CPU per message", "us", True, 3, values(g, lambda r: r["user_us_per_msg"]))
            )
            rows.append(
                Row(
                    f"{base}: syscalls per message (perf stat)",
                    "",
                    True,
                    2,
                    values(g, lambda r: r.get("syscalls_per_msg")),
                )
            )
            rows.append(
                Row(
                    f"{base}: user-space instructions per message (callgrind)",
                    "",
                    True,
                    0,
                    values(cg, lambda r: r["instructions_per_msg"]),
                )
            )

    for kind, name in (("protocol", "Protocol"), ("streams", "streams")):
        idle = [r for r in records if r.get("bench") == "echo_idle" and (r["side"] == "tokio" or r["kind"] == kind)]
        g = {}
        for r in idle:
            g.setdefault(r["side"], []).append(r)
        rows.append(
            Row(f"echo, {name} server: memory per idle connection (VmRSS growth)", "B", True, 0,
                values(g, lambda r: r["bytes_per_conn"]))
        )

    n = n_label(loop, "http_client", "get_1k_c100", 10_000)
    g = group(loop, bench="http_client", case="get_1k_c100")
    peers_note = "tokio = hyper; asyncio, uvloop = aiohttp"
    rows.append(Row(f"HTTP client, {n} GETs of 1 KiB, 100 in flight: requests/s", "req/s", False, 0, values(g, ops_per_s), peers_note))
    rows.append(
        Row("HTTP client: CPU per request", "us", True, 1, values(g, lambda r: cpu_per_op(r) / 1000), peers_note)
    )
    fetch = group(records, bench="http_client", case="fetch_200mib")
    if fetch:
        rows.append(Row("fetch -o, one 200 MiB body: peak RSS", "MiB", True, 1, values(fetch, lambda r: r["peak_mib"])))
    return [r for r in rows if r.values]


# ---------------------------------------------------------------------------------------
# formatting


def fmt_num(v, decimals):
    if v is None:
        return "-"
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:,.{decimals}f}"


def cell(row, side):
    v = row.values.get(side)
    if not v:
        return "-"
    med = statistics.median(v)
    s = fmt_num(med, row.decimals)
    if len(v) > 1:
        s += f" [{fmt_num(min(v), row.decimals)}-{fmt_num(max(v), row.decimals)}]"
    return s


def ratio_cell(row):
    r = row.ratio()
    if r is None:
        return "-"
    peer, _ = row.best_peer()
    return f"{r:.2f} ({peer}) {standing(row)}"


def standing(row):
    """"ahead", "even" (within 1%) or "BEHIND", against the best peer."""
    r = row.ratio()
    if abs(r - 1) < 0.01:
        return "even"
    return "ahead" if (r < 1 if row.lower else r > 1) else "BEHIND"


def uvloop_cell(row):
    a = row.advantage("uvloop")
    if a is None:
        return "-"
    return f"{a:.1f}x{'' if a >= 3 else ' (<3x)'}"


def label(row):
    return f"{row.label} ({row.unit})" if row.unit else row.label


def table_rows(rows):
    return [[label(r)] + [cell(r, s) for s in SIDES] + [ratio_cell(r), uvloop_cell(r)] for r in rows]


def text_table(rows):
    body = table_rows(rows)
    widths = [max(len(x) for x in col) for col in zip(HEADERS, *body)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join([b[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(b[1:], widths[1:])]))
    return "\n".join(lines)


def markdown_table(rows):
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for b in table_rows(rows):
        out.append("| " + " | ".join(b) + " |")
    return "\n".join(out)


def meta_text(m):
    if not m:
        return ""
    return (
        f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {m.get('mem_gib')} GiB, Linux {m.get('kernel')}. "
        f"Date: {m.get('date')}. Commit: {m.get('commit')}{' (src modified)' if m.get('src_modified') else ''}.\n"
        f"{m.get('rustc')}, tokio {m.get('tokio')}, hyper {m.get('hyper')}; Python {m.get('python') or '-'}, "
        f"uvloop {m.get('uvloop') or '-'}, aiohttp {m.get('aiohttp') or '-'}.\n"
        f"Command: {m.get('command')}"
    )


# ---------------------------------------------------------------------------------------
# chart


COLOURS = {"tokio": "#d95f02", "uvloop": "#1b9e77", "asyncio": "#7570b3"}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def short(a):
    return f"{a:.2f}" if a < 1 else f"{a:.1f}" if a < 10 else f"{a:.0f}"


def svg_chart(rows, m):
    rows = [r for r in rows if any(r.advantage(p) is not None for p in PEERS)]
    peers = [p for p in ["tokio", "uvloop", "asyncio"] if any(r.advantage(p) is not None for r in rows)]
    lo, hi = 0.25, 100.0
    left, right, top, bar, gap = 430, 90, 70, 7, 9
    plot_w = 520
    width = left + plot_w + right
    group_h = bar * len(peers) + gap
    height = top + group_h * len(rows) + 50

    def x(v):
        v = min(max(v, lo), hi)
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
        "evloop's advantage over each peer (median; log scale; right of 1x = evloop ahead)</text>",
    ]
    if m:
        out.append(
            f'<text x="{width / 2}" y="34" text-anchor="middle" fill="#555">'
            f"{esc(m.get('date', ''))}, {esc(m.get('cpu', ''))} x{m.get('cpus')}, commit {esc(m.get('commit', ''))}"
            "; benches/compare.sh</text>"
        )
    # legend
    lx = left
    for p in peers:
        out.append(f'<rect x="{lx}" y="44" width="10" height="10" fill="{COLOURS[p]}"/>')
        out.append(f'<text x="{lx + 14}" y="53">vs {p}</text>')
        lx += 90
    # grid
    for v in [0.25, 0.5, 1, 2, 3, 5, 10, 20, 50, 100]:
        gx = x(v)
        colour, w, dash = ("#000", 1.2, "") if v == 1 else (("#1b9e77", 1, ' stroke-dasharray="4,3"') if v == 3 else ("#ddd", 1, ""))
        out.append(
            f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{height - 40}" stroke="{colour}" stroke-width="{w}"{dash}/>'
        )
        out.append(f'<text x="{gx:.1f}" y="{height - 26}" text-anchor="middle">{v:g}x</text>')
    out.append(
        f'<text x="{x(3):.1f}" y="{height - 12}" text-anchor="middle" fill="#1b9e77">3x uvloop target</text>'
    )
    for i, r in enumerate(rows):
        y0 = top + i * group_h
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y0 - 2}" width="{left + plot_w}" height="{group_h}" fill="#f6f6f6"/>')
        text = (
            r.label.replace("user-space instructions per message (callgrind)", "instructions per message (callgrind)")
            .replace("syscalls per message (perf stat)", "syscalls per message")
            .replace("echo 64 B, ", "echo, ")
        )
        text = text if len(text) <= 70 else text[:68] + "..."
        out.append(
            f'<text x="{left - 6}" y="{y0 + group_h / 2 + 2:.1f}" text-anchor="end">{esc(text)}</text>'
        )
        for j, p in enumerate(peers):
            a = r.advantage(p)
            if a is None:
                continue
            by = y0 + j * bar
            x1, x0 = x(a), x(1)
            out.append(
                f'<rect x="{min(x0, x1):.1f}" y="{by}" width="{abs(x1 - x0):.1f}" height="{bar - 1}" fill="{COLOURS[p]}"/>'
            )
            out.append(
                f'<text x="{max(x0, x1) + 3:.1f}" y="{by + bar - 1}" font-size="8" fill="#333">{short(a)}x</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------


def report(args):
    path = args[0]
    md_out = svg_out = None
    it = iter(args[1:])
    for a in it:
        if a == "--markdown":
            md_out = next(it)
        elif a == "--svg":
            svg_out = next(it)
    records, m = [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("meta"):
                m = r
            else:
                records.append(r)
    rows = build_rows(records)
    runs = max((len(v) for r in rows for v in r.values.values()), default=0)
    about = (
        f"Each cell: median [min-max] of {runs} runs per side, sides alternating, each run in its own process.\n"
        "evloop/best peer: evloop's median over the best peer's (below 1 is better for costs, above 1 for rates; "
        "even = within 1%).\n"
        "vs uvloop: how many times better evloop is than uvloop (the issue's target is 3x).\n"
        "Echo: the same load generator (CPU 1) for every server (CPU 0); tokio's echo server is one task per "
        "connection, in both the Protocol and the streams rows. HTTP: tokio = hyper, asyncio/uvloop = aiohttp.\n"
        "callgrind rows: the server under valgrind, loaded for 1 s then 3 s (benches/callgrind_echo.sh); the "
        "difference in instructions over the difference in messages, one run (instruction counts do not depend on "
        "the machine's load, but at C=100 the batching does)."
    )
    echo = [r for r in records if r.get("bench") == "echo" and r.get("others_pct") is not None]
    if echo:
        others = sorted(r["others_pct"] for r in echo)
        about += (
            f"\nEcho windows: other processes used {statistics.median(others):.0f}% of a core (median), "
            f"{others[-1]:.0f}% at most (runs above 25% are retaken up to 3 times, keeping the quietest)."
        )
    text = text_table(rows)
    print(meta_text(m))
    print(about)
    print()
    print(text)
    behind = [r for r in rows if r.ratio() is not None and standing(r) != "ahead"]
    print()
    if behind:
        print("rows where evloop is not ahead of its best peer (even = within 1%):")
        for r in behind:
            print(f"  {label(r)}: {ratio_cell(r)}")
    else:
        print("evloop is ahead of every peer on every row.")
    if md_out:
        with open(md_out, "w") as f:
            f.write(meta_text(m).replace("\n", "  \n") + "\n\n" + about.replace("\n", "  \n") + "\n\n")
            f.write(markdown_table(rows) + "\n")
        print(f"\nmarkdown table: {md_out}")
    if svg_out:
        with open(svg_out, "w") as f:
            f.write(svg_chart(rows, m))
        print(f"chart: {svg_out}")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "meta":
        meta(sys.argv[2:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
