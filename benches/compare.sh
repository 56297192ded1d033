#!/usr/bin/env bash
# benches/compare.sh: every benchmark of evloop and its peers in one run (issue 6).
#
# Builds the benches, sets up the Python peers (a virtualenv with uvloop and aiohttp from
# PyPI, in <target dir>/bench-venv), then runs `cargo bench` for each bench with the
# Python sides switched on. Each bench alternates its sides run by run (evloop, tokio,
# asyncio, uvloop, evloop, ...), each run in its own process, and appends every run to one
# JSON-lines file. benches/compare_report.py turns that file into one table (median
# [min-max] per side, evloop / best peer) and an SVG bar chart of the ratios.
#
#   benches/compare.sh            full run: 3 runs per side, about 15 minutes on 2 cores;
#                                 the chart goes to docs/bench-ratios.svg
#   QUICK=1 benches/compare.sh    small sizes, 1 run per side, a few minutes; nothing
#                                 outside the results directory is written
#
# Environment: RUNS (runs per side; default 3, QUICK 1), CHART (where the SVG goes),
# BENCHES (which benches to run, e.g. "timers echo"; default all), CALLGRIND=0 (no
# callgrind rows), CALLGRIND_CONNS (the C values of the callgrind rows;
# default "1 100"),
# EVLOOP_BENCH_VENV (the virtualenv's directory), PYTHON (the python3 that makes the
# virtualenv and writes the report; default python3), SKIP_PYTHON=1 (evloop and tokio
# only). Everything lands in <target dir>/bench-results/compare-<UTC time>/: results.jsonl
# (one line per run), bench.log (everything the benches printed), table.txt, table.md and
# the chart.
#
# A peer that cannot be set up (no python3, no venv module, pip cannot reach PyPI, a wheel
# that does not build) is skipped with a message saying so; its column then shows "-".
# Without python3 at all there is no report: python3 writes it.
set -uo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-1}; else RUNS=${RUNS:-3}; fi
PYTHON=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in benches/peers

say() { printf 'compare: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v cargo >/dev/null || die "cargo not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: it writes the report (and runs the asyncio/uvloop peers)"

target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null) ||
    target_dir=${CARGO_TARGET_DIR:-target}
[ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/bench-results/compare-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out_dir" || die "cannot create $out_dir"
results=$out_dir/results.jsonl
log=$out_dir/bench.log
: >"$results"
: >"$log"
say "results in $out_dir"

# ---------------------------------------------------------------------------------------
# Python peers.

py=""
loop_sides=""
http_sides=""
setup_python() {
    if [ "${SKIP_PYTHON:-0}" = 1 ]; then
        say "SKIP_PYTHON=1: no asyncio or uvloop peers"
        return
    fi
    local venv=${EVLOOP_BENCH_VENV:-$target_dir/bench-venv}
    if [ ! -x "$venv/bin/python" ]; then
        say "creating a virtualenv in $venv"
        if ! "$PYTHON" -m venv "$venv" >>"$log" 2>&1; then
            rm -rf "$venv"
            say "cannot create a virtualenv ($PYTHON -m venv failed, see $log; on Debian: apt-get install python3-venv)"
        fi
    fi
    if [ -x "$venv/bin/python" ]; then
        py=$venv/bin/python
        if ! "$py" -c 'import uvloop, aiohttp' 2>/dev/null; then
            say "installing uvloop and aiohttp into $venv (pip, from PyPI)"
            if ! "$py" -m pip install --quiet --disable-pip-version-check 'uvloop>=0.19' 'aiohttp>=3.9' >>"$log" 2>&1; then
                # One may install where both together did not.
                "$py" -m pip install --quiet --disable-pip-version-check 'uvloop>=0.19' >>"$log" 2>&1
                "$py" -m pip install --quiet --disable-pip-version-check 'aiohttp>=3.9' >>"$log" 2>&1
            fi
        fi
    else
        py=$(command -v "$PYTHON")
        say "using $py without a virtualenv: uvloop and aiohttp only if it already has them"
    fi
    if ! "$py" -c 'import sys, asyncio; assert sys.version_info >= (3, 8)' 2>/dev/null; then
        say "$py is not a Python >= 3.8: asyncio and uvloop peers skipped"
        py=""
        return
    fi
    loop_sides=asyncio
    if "$py" -c 'import uvloop' 2>/dev/null; then
        loop_sides=asyncio,uvloop
    else
        say "uvloop could not be installed (see $log): the uvloop column is skipped"
    fi
    if "$py" -c 'import aiohttp' 2>/dev/null; then
        http_sides=$loop_sides
    else
        say "aiohttp could not be installed (see $log): the HTTP row has no asyncio/uvloop peers"
    fi
    say "Python peers: $py ($("$py" -V 2>&1)); loop benches: ${loop_sides:-none}; HTTP: ${http_sides:-none}"
}
setup_python

# ---------------------------------------------------------------------------------------
# Build everything first, so no build lands inside a measurement.

say "building: cargo bench --no-run, cargo build --profile bench --example fetch"
cargo bench --no-run 2>&1 | tee -a "$log" | grep -E '^(error|warning: unused)' >&2
[ "${PIPESTATUS[0]}" = 0 ] || die "cargo bench --no-run failed (see $log)"
cargo build --profile bench --example fetch >>"$log" 2>&1 || die "building the fetch example failed (see $log)"

"$PYTHON" benches/compare_report.py meta ${py:+--python "$py"} \
    --command "$([ "$QUICK" = 1 ] && printf 'QUICK=1 ')benches/compare.sh (RUNS=$RUNS)" >>"$results"

# ---------------------------------------------------------------------------------------
# The benches. Each appends its runs to $results.

failed=()
# run_bench NAME PYTHON_SIDES [VAR=VALUE...]
run_bench() {
    local name=$1 sides=$2
    shift 2
    case " ${BENCHES:-$name} " in *" $name "*) ;; *) return ;; esac
    local env=(EVLOOP_BENCH_JSON="$results" EVLOOP_BENCH_RUNS="$RUNS")
    if [ -n "$py" ] && [ -n "$sides" ]; then
        env+=(EVLOOP_BENCH_PYTHON="$py" EVLOOP_BENCH_PY_SIDES="$sides")
    fi
    say "cargo bench --bench $name ($(date +%T); sides evloop,tokio${sides:+,$sides})"
    env -u EVLOOP_BENCH_PYTHON -u EVLOOP_BENCH_N "${env[@]}" "$@" cargo bench --bench "$name" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || { failed+=("$name"); say "bench $name FAILED (see $log); going on"; }
}

if [ "$QUICK" = 1 ]; then
    loop_n=(EVLOOP_BENCH_N=100000)
    echo_env=(EVLOOP_ECHO_WARMUP_MS=200 EVLOOP_ECHO_MEASURE_MS=500)
    http_env=(EVLOOP_BENCH_N=2000 EVLOOP_HTTP_SKIP_FETCH=1)
else
    loop_n=()
    # 1.5 s windows instead of the bench's 2 s: 63 runs, and retakes on a busy machine.
    echo_env=(EVLOOP_ECHO_WARMUP_MS=400 EVLOOP_ECHO_MEASURE_MS=1500)
    http_env=()
fi
run_bench timers "$loop_sides" "${loop_n[@]}"
run_bench call_soon_chain "$loop_sides" "${loop_n[@]}"
run_bench ping_pong "$loop_sides" "${loop_n[@]}"
run_bench tasks "$loop_sides" "${loop_n[@]}"
run_bench echo "$loop_sides" "${echo_env[@]}"
run_bench http_client "$http_sides" "${http_env[@]}"

# User-space instructions per echoed message, from callgrind: the one echo figure the
# machine's other load cannot move (benches/callgrind_echo.sh).
if [ -n "${BENCHES:-}" ] && [[ " $BENCHES " != *" echo "* ]]; then
    : # BENCHES without echo: no echo rows of any kind
elif [ "${CALLGRIND:-1}" = 0 ]; then
    say "CALLGRIND=0: no callgrind rows"
elif ! command -v valgrind >/dev/null; then
    say "valgrind not found: no callgrind rows"
else
    servers=(evloop-protocol evloop-streams tokio)
    for side in ${loop_sides//,/ }; do servers+=("$side-protocol" "$side-streams"); done
    for c in ${CALLGRIND_CONNS:-1 100}; do
        for server in "${servers[@]}"; do
            say "callgrind: $server, C=$c ($(date +%T))"
            EVLOOP_BENCH_JSON=$results EVLOOP_BENCH_PYTHON=$py CALLGRIND_OUT_DIR=$out_dir/callgrind \
                benches/callgrind_echo.sh "$server" "$c" 1 2>&1 | tee -a "$log"
            [ "${PIPESTATUS[0]}" = 0 ] || { failed+=("callgrind $server C=$c"); say "callgrind $server C=$c FAILED"; }
        done
    done
fi

# ---------------------------------------------------------------------------------------
# The table and the chart.

if [ "$QUICK" = 1 ]; then chart=${CHART:-$out_dir/bench-ratios.svg}; else chart=${CHART:-docs/bench-ratios.svg}; fi
mkdir -p "$(dirname "$chart")"
echo
"$PYTHON" benches/compare_report.py report "$results" --markdown "$out_dir/table.md" --svg "$chart" |
    tee "$out_dir/table.txt"
[ "$chart" = "$out_dir/bench-ratios.svg" ] || cp "$chart" "$out_dir/"
elapsed=$(($(date +%s) - started))
say "done in $((elapsed / 60)) min $((elapsed % 60)) s; everything is in $out_dir"
if [ ${#failed[@]} -gt 0 ]; then
    die "failed benches: ${failed[*]}"
fi
