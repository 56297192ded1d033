#!/usr/bin/env bash
# benches/callgrind_echo.sh: user-space instructions per echoed message of one echo server,
# counted by valgrind's callgrind, so they do not depend on how busy the machine is.
#
#   benches/callgrind_echo.sh SERVER [C] [SECONDS]
#
# SERVER is one of the echo bench's servers: evloop-protocol, evloop-streams, tokio, or,
# with EVLOOP_BENCH_PYTHON naming a Python interpreter (see benches/common/mod.rs),
# asyncio-protocol, asyncio-streams, uvloop-protocol, uvloop-streams. C is the number of
# connections (default 1), SECONDS how long the load runs (default 3).
#
# The server runs twice under callgrind, driven by the echo bench's load generator (not
# under valgrind) for SECONDS and then for 3 x SECONDS. Start-up and connection set-up are
# the same in both runs, so (instructions of the long run - those of the short one) /
# (messages of the long run - those of the short one) is the cost of one message. The
# long run's profile is kept (callgrind.out.*) for callgrind_annotate.
#
# With CALLGRIND_CACHE_SIM=1, callgrind also simulates the caches and the script prints
# first-level and last-level data-cache misses per message (reads + writes): a stable
# stand-in for the memory stalls that a timed run shows only as noise.
#
# With EVLOOP_BENCH_JSON naming a file, the result is also appended to it as one JSON line
# (benches/compare.sh does this for every server at C = 1 and C = 100).
#
# Under callgrind the server runs 20-100x slower, so the generator is far from being the
# bottleneck: at C > 1 the server finds many connections ready per epoll_wait, more than
# in the timed bench.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${1:?usage: benches/callgrind_echo.sh SERVER [C] [SECONDS]}
conns=${2:-1}
seconds=${3:-3}
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }

cargo bench --no-run --bench echo 2>/dev/null
echo_bin=$(cargo bench --no-run --bench echo --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "echo" and m.get("executable"):
        print(m["executable"])')
[ -x "$echo_bin" ] || { echo "cannot find the echo bench binary" >&2; exit 1; }

# CALLGRIND_OUT_DIR: where the profiles go (default: a new directory under /tmp).
out_dir=${CALLGRIND_OUT_DIR:-$(mktemp -d /tmp/callgrind-echo.XXXXXX)}
mkdir -p "$out_dir"
case $server in
    evloop-* | tokio) server_cmd=("$echo_bin" --server "$server") ;;
    asyncio-* | uvloop-*)
        : "${EVLOOP_BENCH_PYTHON:?a Python server needs EVLOOP_BENCH_PYTHON}"
        server_cmd=("$EVLOOP_BENCH_PYTHON" benches/peers/echo_server.py --side "${server%%-*}" --kind "${server#*-}")
        ;;
    *) echo "unknown server $server" >&2; exit 1 ;;
esac

cache_sim=()
[ "${CALLGRIND_CACHE_SIM:-0}" = 1 ] && cache_sim=(--cache-sim=yes)

# run_once MILLISECONDS -> "counts messages profile", counts being the profile's summary
# joined by commas, in the order of its "events:" line (Ir first)
run_once() {
    local ms=$1 out=$out_dir/callgrind.out.$server.c$conns.$1
    local said=$out_dir/stdout.$server.c$conns.$1
    EVLOOP_BENCH_TIMEOUT=600 taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" "${cache_sim[@]}" \
        "${server_cmd[@]}" >"$said" 2>"$out_dir/valgrind.$server.c$conns.$1.log" &
    local pid=$!
    local port="" tries=0
    while [ -z "$port" ]; do # "EVLOOP_ECHO_PORT <port>"
        sleep 0.2
        port=$(sed -n 's/^EVLOOP_ECHO_PORT //p' "$said")
        tries=$((tries + 1))
        [ $tries -lt 300 ] || { kill "$pid"; echo "$server printed no port" >&2; exit 1; }
    done
    local load
    load=$( (sleep "$(python3 -c "print($ms / 1000 + 0.2)")"; echo stop) |
        taskset -c 1 "$echo_bin" --load --port "$port" --conns "$conns" --warmup-ms 0 --measure-ms "$ms")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local msgs instr
    msgs=$(sed -n 's/^EVLOOP_ECHO_TOTAL msgs=//p' <<<"$load")
    instr=$(sed -n 's/^summary: //p' "$out" | tr ' ' ,)
    echo "$instr $msgs $out"
}

read -r i1 m1 _ < <(run_once $((seconds * 1000)))
read -r i3 m3 keep < <(run_once $((seconds * 3000)))
python3 - "$server" "$conns" "$i1" "$m1" "$i3" "$m3" "$keep" <<'EOF'
import json, os, sys
server, conns, i1, m1, i3, m3, keep = sys.argv[1:]
e1, e3 = [int(x) for x in i1.split(",")], [int(x) for x in i3.split(",")]
i1, m1, i3, m3 = e1[0], int(m1), e3[0], int(m3)
print(f"{server} C={conns}: short run {i1:,} instructions / {m1:,} messages, long run {i3:,} / {m3:,}")
if m3 - m1 < 100:
    sys.exit(f"{server} C={conns}: too few messages between the runs to divide by")
per_msg = (i3 - i1) / (m3 - m1)
print(f"{server} C={conns}: {per_msg:,.0f} user-space instructions per message")
names = next(line.split()[1:] for line in open(keep) if line.startswith("events:"))
if "D1mr" in names:
    def per_msg_of(*events):
        return sum(e3[names.index(e)] - e1[names.index(e)] for e in events) / (m3 - m1)
    d1, ll = per_msg_of("D1mr", "D1mw"), per_msg_of("DLmr", "DLmw")
    print(f"{server} C={conns}: {d1:,.1f} D1 and {ll:,.1f} LL data-cache misses per message (simulated)")
print(f"profile of the long run: {keep}")
if os.environ.get("EVLOOP_BENCH_JSON"):
    side, _, kind = server.partition("-")
    record = {"bench": "echo_callgrind", "case": f"echo_c{conns}", "server": server, "side": side,
              "kind": kind or "task-per-connection", "conns": int(conns), "run": 1, "instructions_per_msg": per_msg}
    with open(os.environ["EVLOOP_BENCH_JSON"], "a") as f:
        f.write(json.dumps(record) + "\n")
EOF
