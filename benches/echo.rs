//! TCP echo: 64-byte ping-pong over loopback against three servers, each in its own
//! process pinned to CPU 0, driven by one load generator in its own process pinned to
//! CPU 1 (issue 4, point 12 and its Targets).
//!
//! Servers:
//! - `evloop-protocol`: a `transport::Protocol` whose `data_received` writes the bytes back;
//! - `evloop-streams`: `streams::start_server`, each client a task doing `read(64)`, then
//!   `write` + `drain().await`;
//! - `tokio`: a `current_thread` runtime (IO only), `TcpListener`, one spawned task per
//!   connection doing `read` into a 1 KiB buffer (as tokio's own echo example) and `write_all`;
//! - only when `EVLOOP_BENCH_PYTHON` names a Python interpreter (see benches/common; the
//!   loops are those of `EVLOOP_BENCH_PY_SIDES`, default `asyncio,uvloop`):
//!   `asyncio-protocol`, `asyncio-streams`, `uvloop-protocol`, `uvloop-streams`, the same two
//!   servers written for Python's asyncio on its own loop or on uvloop's
//!   (`benches/peers/echo_server.py`).
//!
//! The load generator is the same program for every server: single-threaded, C non-blocking
//! `std::net::TcpStream`s polled with evloop's own `selector::Selector` (level-triggered
//! epoll, nothing else of evloop). Each connection sends 64 bytes, waits until all 64 are
//! back, sends again. It warms up, then measures messages/s and the latency of each
//! round trip (p99) over a fixed window, then keeps the load on until told to stop.
//!
//! What the parent measures on the server process:
//! - during the generator's window: the server's CPU time, precisely, from
//!   `/proc/<pid>/task/*/schedstat`;
//! - its split into user and kernel time: this kernel (tick-based accounting at 250 Hz)
//!   splits utime/stime by sampling at its tick, which gives a server that spends about
//!   5% of its time in user space only a dozen user ticks in a 2 s window. So after the
//!   window, with the load still on, the parent samples the server with `perf record -e
//!   cpu-clock -F 10000` for one second and takes the share of samples outside the
//!   kernel: user µs/msg = CPU µs/msg × that share. Without a working perf, utime/stime
//!   from `/proc/<pid>/stat` (10 ms units) are used instead;
//! - after it, with the load still on: syscalls from `perf stat --per-thread -e
//!   raw_syscalls:sys_enter,syscalls:sys_enter_<name>... -p <server>,<generator> -- sleep 1`,
//!   divided by the messages of that same second, which are the generator's sends (it
//!   sends each message with exactly one `write`). The
//!   wildcard `syscalls:sys_enter_*` takes ~14 s to attach here, so the total comes from
//!   `raw_syscalls:sys_enter` and the breakdown from a list of the calls an echo server
//!   makes. perf's own CPU cost (tracepoints) therefore never lands in the CPU figures.
//!
//! And, once the timed runs are done, each server's memory per idle connection: the
//! growth of its `VmRSS` from 1,000 connections to 2,000, each connection having echoed one
//! message and then stayed open (issue 4's "memory per idle connection <= tokio's").
//!
//! Every run is also appended to the file `EVLOOP_BENCH_JSON` names, as one JSON line.
//!
//! Run: `cargo bench --bench echo [-- FILTER...]`. A bare number keeps only that C
//! (`1`, `100`, `1000`); any other bare word keeps the servers whose name contains it
//! (tokio always runs, since everything is compared with it). Environment:
//! `EVLOOP_BENCH_RUNS` (runs per server and C, default 3), `EVLOOP_ECHO_MEASURE_MS`
//! (window, default 2000), `EVLOOP_ECHO_WARMUP_MS` (default 500), `EVLOOP_ECHO_MAX_OTHERS`
//! and `EVLOOP_ECHO_RETRIES` (a run during which other processes used more than this % of
//! a core, default 25, is taken again, up to this many times, default 3, keeping the
//! quietest), `EVLOOP_BENCH_TIMEOUT`
//! (seconds one run may take before it is killed and the bench fails, default 120),
//! `EVLOOP_ECHO_RATE` (messages per second: an open loop instead of ping-pong, below).
//!
//! Open loop: the closed loop saturates both cores at C >= 100, where the mean latency is
//! fixed by the rate (Little's law) and p99 says how evenly a server spreads a full load,
//! not how fast it is. With `EVLOOP_ECHO_RATE=R` the generator sends R messages per second
//! in all, round robin over the connections, whether or not the earlier ones are back, and
//! counts each latency from when its message was due; below saturation, p99 then compares
//! the servers at the same load (e.g. `EVLOOP_ECHO_RATE=60000 cargo bench --bench echo --
//! 100`). The targets are judged only in a closed-loop run.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use evloop::selector::{Interest, Selector};
use evloop::transport::{Protocol, ServerOptions, Transport};

const SERVERS: [&str; 3] = ["evloop-protocol", "evloop-streams", "tokio"];
/// The servers of `benches/peers/echo_server.py`, one of each per Python side.
const PYTHON_KINDS: [&str; 2] = ["protocol", "streams"];
const CONNS: [usize; 3] = [1, 100, 1000];
const MESSAGE: usize = 64;
/// Connections per step of the idle-memory measurement.
const IDLE_CONNS: usize = 1000;
const PERF_WINDOW: Duration = Duration::from_secs(1);
/// How long, and how often, the server is sampled for its user / kernel split.
const USER_SAMPLE_WINDOW: Duration = Duration::from_millis(1000);
const USER_SAMPLE_HZ: u32 = 10_000;
/// `USER_HZ`: the unit of utime/stime in `/proc/<pid>/stat` (100 on every Linux arch
/// that matters here).
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// The syscalls whose counts are broken out (the total is `raw_syscalls:sys_enter`).
const SYSCALLS: [&str; 12] = [
    "recvfrom",
    "sendto",
    "read",
    "write",
    "readv",
    "writev",
    "recvmsg",
    "sendmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "futex",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--server") => serve(args.get(1).expect("--server needs a kind")),
        Some("--load") => {
            let get = |name: &str| -> u64 {
                let at = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("--load needs {name}"));
                args[at + 1].parse().unwrap_or_else(|_| panic!("{name} must be a number"))
            };
            let pacing = match args.iter().position(|a| a == "--rate") {
                Some(_) => Pacing::OpenLoop { per_second: get("--rate") },
                None => Pacing::ClosedLoop,
            };
            load(
                get("--port") as u16,
                get("--conns") as usize,
                pacing,
                Duration::from_millis(get("--warmup-ms")),
                Duration::from_millis(get("--measure-ms")),
            )
            .expect("load generator");
        }
        _ => parent(&args),
    }
}

// ---------------------------------------------------------------------------------------
// Servers (child processes).

fn serve(kind: &str) {
    match kind {
        "evloop-protocol" => evloop_protocol_server(),
        "evloop-streams" => evloop_streams_server(),
        "tokio" => tokio_server(),
        other => panic!("unknown server {other:?}"),
    }
}

fn announce(port: u16) {
    println!("EVLOOP_ECHO_PORT {port}");
    io::stdout().flush().expect("flush stdout");
}

/// Writes back whatever arrives.
struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: &Transport) {
        self.transport = Some(transport.clone());
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(transport) = &self.transport {
            transport.write(data);
        }
    }

    fn connection_lost(&mut self, _error: Option<io::Error>) {
        self.transport = None;
    }
}

fn evloop_protocol_server() {
    evloop::run(async {
        let event_loop = evloop::get_running_loop().expect("running loop");
        let options = ServerOptions { backlog: 1024, ..ServerOptions::default() };
        let server = event_loop
            .create_server(|| Echo { transport: None }, "127.0.0.1", 0, options)
            .await
            .expect("create_server");
        announce(server.addresses()[0].as_inet().expect("an IP listener").port());
        server.wait_closed().await;
    })
    .expect("evloop::run");
}

fn evloop_streams_server() {
    evloop::run(async {
        let options = ServerOptions { backlog: 1024, ..ServerOptions::default() };
        let server = evloop::streams::start_server_with_options(
            |reader, writer| async move {
                loop {
                    match reader.read(MESSAGE).await {
                        Ok(data) if !data.is_empty() => {
                            writer.write(&data);
                            if writer.drain().await.is_err() {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                writer.close();
            },
            "127.0.0.1",
            0,
            options,
        )
        .await
        .expect("start_server");
        announce(server.addresses()[0].as_inet().expect("an IP listener").port());
        server.wait_closed().await;
    })
    .expect("evloop::run");
}

/// The tokio server's read buffer: 1 KiB, as in tokio's `examples/echo.rs`.
const TOKIO_READ_BUFFER: usize = 1024;

fn tokio_server() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        announce(listener.local_addr().expect("local_addr").port());
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                // As tokio's own echo example: a read shorter than the buffer tells tokio the
                // socket is drained, so it makes one `recv` per message, not a second one
                // that returns EAGAIN (as a buffer of exactly MESSAGE bytes would).
                let mut buffer = [0u8; TOKIO_READ_BUFFER];
                loop {
                    let n = match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if stream.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Load generator (child process).

const STDIN_TOKEN: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Tail,
}

/// How the generator paces its messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pacing {
    /// Each connection sends its next message as soon as the last one is back (ping-pong):
    /// the load rises until a core is saturated.
    ClosedLoop,
    /// Messages leave at a fixed total rate, round robin over the connections, whether or
    /// not the earlier ones are back (echo keeps them in order). A latency counts from
    /// when its message was due, so a late generator cannot hide a slow server.
    OpenLoop { per_second: u64 },
}

/// The generator's measuring: warm-up, then a window of latencies, then the tail until
/// stdin says stop. Prints `measure-start` when the window opens and the result line
/// when it closes.
struct Window {
    started: Instant,
    warmup: Duration,
    measure: Duration,
    phase: Phase,
    measure_start: Instant,
    latencies_ns: Vec<u32>,
}

impl Window {
    fn new(warmup: Duration, measure: Duration) -> Window {
        let started = Instant::now();
        Window {
            started,
            warmup,
            measure,
            phase: Phase::Warmup,
            measure_start: started,
            latencies_ns: Vec::with_capacity(1 << 20),
        }
    }

    /// One message back, `latency` after it was sent (or due).
    fn record(&mut self, latency: Duration) {
        if self.phase == Phase::Measure {
            self.latencies_ns.push(latency.as_nanos().min(u32::MAX as u128) as u32);
        }
    }

    /// Opens or closes the window when its time has come.
    fn advance(&mut self, now: Instant) -> io::Result<()> {
        if self.phase == Phase::Warmup && now >= self.started + self.warmup {
            self.phase = Phase::Measure;
            self.measure_start = now;
            println!("measure-start");
            io::stdout().flush()?;
        } else if self.phase == Phase::Measure && now >= self.measure_start + self.measure {
            self.phase = Phase::Tail;
            let latencies = &mut self.latencies_ns;
            latencies.sort_unstable();
            let pick = |q: f64| -> u32 {
                if latencies.is_empty() {
                    return 0;
                }
                latencies[((latencies.len() - 1) as f64 * q).round() as usize]
            };
            println!(
                "EVLOOP_ECHO_RESULT msgs={} ns={} p50_ns={} p99_ns={}",
                latencies.len(),
                (now - self.measure_start).as_nanos(),
                pick(0.50),
                pick(0.99)
            );
            io::stdout().flush()?;
        }
        Ok(())
    }
}

/// C connections to the server, non-blocking, each registered for reading under its
/// index, and stdin under `STDIN_TOKEN`.
fn connect_all(port: u16, conns: usize) -> io::Result<(Vec<TcpStream>, Selector)> {
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        streams.push(stream);
    }
    let mut selector = Selector::new()?;
    for (i, stream) in streams.iter().enumerate() {
        selector.register(stream.as_raw_fd(), Interest::READ, i as u64)?;
    }
    selector.register(io::stdin().as_raw_fd(), Interest::READ, STDIN_TOKEN)?;
    Ok((streams, selector))
}

/// Stdin spoke: prints every message echoed since the start, warm-up and tail included
/// (for per-message costs measured over the server's whole life, as callgrind does).
fn stop(echoed: u64) -> io::Result<()> {
    println!("EVLOOP_ECHO_TOTAL msgs={echoed}");
    io::stdout().flush()
}

/// C connections sending 64-byte messages on one thread, paced by `pacing`. Prints
/// `measure-start`, then the result line, then keeps the load on (while the parent runs
/// perf) until a line or EOF arrives on stdin. Each message is sent with exactly one
/// `write`: perf counts the messages of its window from that.
fn load(port: u16, conns: usize, pacing: Pacing, warmup: Duration, measure: Duration) -> io::Result<()> {
    let (streams, selector) = connect_all(port, conns)?;
    let window = Window::new(warmup, measure);
    match pacing {
        Pacing::ClosedLoop => ping_pong(streams, selector, window),
        Pacing::OpenLoop { per_second } => at_rate(streams, selector, per_second, window),
    }
}

fn ping_pong(mut streams: Vec<TcpStream>, mut selector: Selector, mut window: Window) -> io::Result<()> {
    let conns = streams.len();
    let message = [0x5au8; MESSAGE];
    let mut received = vec![0usize; conns];
    let mut sent_at = vec![Instant::now(); conns];
    let mut ready: Vec<u64> = Vec::with_capacity(conns + 1);
    let mut echoed = 0u64;

    for (i, stream) in streams.iter_mut().enumerate() {
        send_all(stream, &message)?;
        sent_at[i] = Instant::now();
    }
    loop {
        ready.clear();
        ready.extend(selector.select(Some(Duration::from_millis(50)))?.map(|event| event.token));
        for &token in &ready {
            if token == STDIN_TOKEN {
                return stop(echoed);
            }
            let i = token as usize;
            let mut buffer = [0u8; MESSAGE];
            let Some(n) = read_some(&mut streams[i], &mut buffer[..MESSAGE - received[i]])? else { continue };
            received[i] += n;
            if received[i] < MESSAGE {
                continue;
            }
            received[i] = 0;
            echoed += 1;
            let now = Instant::now();
            window.record(now - sent_at[i]);
            send_all(&mut streams[i], &message)?;
            sent_at[i] = now;
        }
        window.advance(Instant::now())?;
    }
}

/// The open loop. epoll's timeout is in whole milliseconds, far coarser than the gap
/// between two messages, so the generator polls (a zero timeout) until the next is due:
/// it spins on its own core, and its syscalls are not the ones counted.
fn at_rate(
    mut streams: Vec<TcpStream>,
    mut selector: Selector,
    per_second: u64,
    mut window: Window,
) -> io::Result<()> {
    let conns = streams.len();
    let message = [0x5au8; MESSAGE];
    let mut received = vec![0usize; conns];
    // When each message still on its way was due, per connection, oldest first.
    let mut due_times: Vec<VecDeque<Instant>> = vec![Default::default(); conns];
    let mut ready: Vec<u64> = Vec::with_capacity(conns + 1);
    let mut echoed = 0u64;
    let start = Instant::now();
    let due = |nth: u64| start + Duration::from_secs_f64(nth as f64 / per_second as f64);
    let mut sent = 0u64;

    loop {
        let now = Instant::now();
        while due(sent) <= now {
            let i = (sent % conns as u64) as usize;
            send_all(&mut streams[i], &message)?;
            due_times[i].push_back(due(sent));
            sent += 1;
        }
        let next_due = due(sent);
        ready.clear();
        let idle = next_due.saturating_duration_since(Instant::now());
        let wait = idle.checked_sub(Duration::from_millis(1)).unwrap_or(Duration::ZERO);
        ready.extend(selector.select(Some(wait))?.map(|event| event.token));
        for &token in &ready {
            if token == STDIN_TOKEN {
                return stop(echoed);
            }
            let i = token as usize;
            let mut buffer = [0u8; 4096];
            let Some(n) = read_some(&mut streams[i], &mut buffer)? else { continue };
            received[i] += n;
            let now = Instant::now();
            while received[i] >= MESSAGE {
                received[i] -= MESSAGE;
                echoed += 1;
                let due = due_times[i].pop_front().expect("an echo of a message that was sent");
                window.record(now - due);
            }
        }
        window.advance(Instant::now())?;
    }
}

/// What one `read` gave: `None` if nothing was there (a spurious wake-up); the server
/// closing a connection is an error, as no server here ever should.
fn read_some(stream: &mut TcpStream, buffer: &mut [u8]) -> io::Result<Option<usize>> {
    match stream.read(buffer) {
        Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed a connection")),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// 64 bytes into a socket buffer with room for them (one message in flight, or a few in
/// the open loop): the kernel takes them whole, and anything less stops the bench.
fn send_all(stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    let n = stream.write(data)?;
    if n != data.len() {
        return Err(io::Error::other(format!("short send of {n} bytes on an idle connection")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Parent: orchestration, measurement of the server, table.

#[derive(Clone, Debug, Default)]
struct Sample {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    user_us_per_msg: f64,
    sys_us_per_msg: f64,
    cpu_us_per_msg: f64,
    /// CPU used by everything else on the machine during the window, in % of one core
    /// (all CPUs' busy time from /proc/stat minus the server's and the generator's).
    others_pct: f64,
    /// None when perf could not count.
    syscalls_per_msg: Option<f64>,
    breakdown: Vec<(String, f64)>,
}

struct Tools {
    taskset: bool,
    perf: Result<(), String>,
}

fn parent(args: &[String]) {
    let mut conn_filter = Vec::new();
    let mut server_filter = Vec::new();
    for arg in args.iter().filter(|a| !a.starts_with('-')) {
        match arg.parse::<usize>() {
            Ok(c) => conn_filter.push(c),
            Err(_) => server_filter.push(arg.clone()),
        }
    }
    let conns: Vec<usize> =
        CONNS.iter().copied().filter(|c| conn_filter.is_empty() || conn_filter.contains(c)).collect();
    let python_servers: Vec<&'static str> = common::python_sides()
        .into_iter()
        .flat_map(|side| PYTHON_KINDS.iter().map(move |kind| &*format!("{side}-{kind}").leak()))
        .collect();
    let servers: Vec<&str> = SERVERS
        .iter()
        .copied()
        .chain(python_servers)
        .filter(|s| {
            *s == "tokio" || server_filter.is_empty() || server_filter.iter().any(|f| s.contains(f.as_str()))
        })
        .collect();
    let runs = env_u64("EVLOOP_BENCH_RUNS").unwrap_or(3).max(1) as usize;
    let measure = Duration::from_millis(env_u64("EVLOOP_ECHO_MEASURE_MS").unwrap_or(2000));
    let warmup = Duration::from_millis(env_u64("EVLOOP_ECHO_WARMUP_MS").unwrap_or(500));
    let max_others = env_u64("EVLOOP_ECHO_MAX_OTHERS").unwrap_or(25) as f64;
    let retries = env_u64("EVLOOP_ECHO_RETRIES").unwrap_or(3);
    let pacing = match env_u64("EVLOOP_ECHO_RATE") {
        Some(per_second) => Pacing::OpenLoop { per_second: per_second.max(1) },
        None => Pacing::ClosedLoop,
    };
    let tools = Tools { taskset: taskset_works(), perf: perf_works() };

    let mut out = String::new();
    let _ = writeln!(out, "== echo: 64-byte TCP ping-pong over loopback ==");
    let _ = writeln!(
        out,
        "servers: evloop-protocol (Protocol writing back in data_received), evloop-streams (start_server, read(64) \
         then write + drain), tokio (current_thread, TcpListener, a task per connection, read into 1 KiB, write_all).\n\
         load: one single-threaded generator (std non-blocking sockets on evloop's Selector), C connections {}; \
         {} ms warm-up, {} ms window.",
        match pacing {
            Pacing::ClosedLoop => "each sending 64 bytes and waiting for them back (closed loop)".to_string(),
            Pacing::OpenLoop { per_second } => format!(
                "sent 64 bytes at a time, round robin, {per_second} messages/s in all whatever comes back \
                 (open loop; latency from when a message was due)"
            ),
        },
        warmup.as_millis(),
        measure.as_millis()
    );
    if tools.taskset {
        let _ = writeln!(out, "pinning: server on CPU 0, generator on CPU 1 (taskset).");
    } else {
        let _ = writeln!(
            out,
            "pinning: NONE (no working taskset): figures are noisier and the cores are shared."
        );
    }
    let _ = writeln!(
        out,
        "{runs} runs per server and C, alternating servers, each in its own process; median [min-max].\n\
         CPU = the server's schedstat total over the window per message; user/sys = CPU split by the share of \
         perf record -e cpu-clock -F {USER_SAMPLE_HZ} samples in user space (1 s after the window; without \
         perf: utime/stime);\n\
         syscalls = perf stat raw_syscalls:sys_enter on the server for {} s right after the window (load still on), \
         divided by the generator's sends counted in the same perf session (one write per message).",
        PERF_WINDOW.as_secs_f64()
    );
    if let Err(why) = &tools.perf {
        let _ = writeln!(out, "syscalls: n/a ({why})");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>5} {:<16} {:>24} {:>22} {:>22} {:>22} {:>22} {:>22} {:>16}",
        "C",
        "server",
        "msgs/s",
        "p99 us",
        "user us/msg",
        "sys us/msg",
        "CPU us/msg",
        "syscalls/msg",
        "others %core"
    );

    let mut all: Vec<(usize, Vec<Vec<Sample>>)> = Vec::new();
    for &c in &conns {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
        for run in 0..runs {
            // Each round starts with the next server, so that none always runs first or
            // last: a host that speeds up or slows down over a round then favours no one.
            for s in (0..servers.len()).map(|k| (k + run) % servers.len()) {
                let server = &servers[s];
                let mut sample = run_once(server, c, pacing, warmup, measure, &tools);
                // A window in which other processes took a good part of the machine says
                // more about them than about the server: take it again, up to
                // `retries` times, and keep the quietest.
                for _ in 0..retries {
                    if sample.others_pct <= max_others {
                        break;
                    }
                    eprintln!(
                        "C={c} {server} run {}/{runs}: others used {:.0}% of a core (> {max_others}%): again",
                        run + 1,
                        sample.others_pct
                    );
                    std::thread::sleep(Duration::from_secs(2));
                    let again = run_once(server, c, pacing, warmup, measure, &tools);
                    if again.others_pct < sample.others_pct {
                        sample = again;
                    }
                }
                eprintln!(
                    "C={c} {server} run {}/{runs}: {:.0} msgs/s, p50 {:.1} us, p99 {:.1} us, user {:.3} sys {:.3} \
                     CPU {:.3} us/msg, syscalls/msg {} [{}], others {:.0}% of a core",
                    run + 1,
                    sample.msgs_per_s,
                    sample.p50_us,
                    sample.p99_us,
                    sample.user_us_per_msg,
                    sample.sys_us_per_msg,
                    sample.cpu_us_per_msg,
                    sample.syscalls_per_msg.map_or("n/a".to_string(), |v| format!("{v:.3}")),
                    sample.breakdown.iter().map(|(name, v)| format!("{name} {v:.3}")).collect::<Vec<_>>().join(", "),
                    sample.others_pct
                );
                let (side, kind) = server.split_once('-').unwrap_or((server, "task-per-connection"));
                common::json_line(&[
                    ("bench", common::Json::Str("echo")),
                    ("case", common::Json::Str(&format!("echo_c{c}"))),
                    ("server", common::Json::Str(server)),
                    ("side", common::Json::Str(side)),
                    ("kind", common::Json::Str(kind)),
                    ("conns", common::Json::Num(c as f64)),
                    ("run", common::Json::Num((run + 1) as f64)),
                    ("msgs_per_s", common::Json::Num(sample.msgs_per_s)),
                    ("p50_us", common::Json::Num(sample.p50_us)),
                    ("p99_us", common::Json::Num(sample.p99_us)),
                    ("user_us_per_msg", common::Json::Num(sample.user_us_per_msg)),
                    ("sys_us_per_msg", common::Json::Num(sample.sys_us_per_msg)),
                    ("cpu_us_per_msg", common::Json::Num(sample.cpu_us_per_msg)),
                    ("syscalls_per_msg", common::Json::Num(sample.syscalls_per_msg.unwrap_or(f64::NAN))),
                    ("others_pct", common::Json::Num(sample.others_pct)),
                ]);
                samples[s].push(sample);
            }
        }
        for (s, server) in servers.iter().enumerate() {
            let v = &samples[s];
            let _ = writeln!(
                out,
                "{:>5} {:<16} {:>24} {:>22} {:>22} {:>22} {:>22} {:>22} {:>16}",
                c,
                server,
                stat(v, |x| Some(x.msgs_per_s), 0),
                stat(v, |x| Some(x.p99_us), 1),
                stat(v, |x| Some(x.user_us_per_msg), 3),
                stat(v, |x| Some(x.sys_us_per_msg), 3),
                stat(v, |x| Some(x.cpu_us_per_msg), 3),
                stat(v, |x| x.syscalls_per_msg, 2),
                stat(v, |x| Some(x.others_pct), 0),
            );
        }
        let tokio_at = servers.iter().position(|s| *s == "tokio").expect("tokio always runs");
        for (s, server) in servers.iter().enumerate().filter(|(s, _)| *s != tokio_at) {
            let ratio =
                |f: fn(&Sample) -> Option<f64>| match (median(&samples[s], f), median(&samples[tokio_at], f))
                {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                    _ => "n/a".to_string(),
                };
            let _ = writeln!(
                out,
                "{:>5} {:<16} /tokio (medians): msgs/s {}, p99 {}, user {}, sys {}, CPU {}, syscalls {}",
                "",
                server,
                ratio(|x| Some(x.msgs_per_s)),
                ratio(|x| Some(x.p99_us)),
                ratio(|x| Some(x.user_us_per_msg)),
                ratio(|x| Some(x.sys_us_per_msg)),
                ratio(|x| Some(x.cpu_us_per_msg)),
                ratio(|x| x.syscalls_per_msg),
            );
        }
        for (s, server) in servers.iter().enumerate().filter(|(s, _)| *s != tokio_at) {
            let _ = writeln!(
                out,
                "{:>5} {:<16} msgs/s paired with tokio's run of the same round: {}",
                "",
                server,
                paired_ratios(&samples[s], &samples[tokio_at])
            );
        }
        for (s, server) in servers.iter().enumerate() {
            let breakdown = breakdown_medians(&samples[s]);
            if !breakdown.is_empty() {
                let _ = writeln!(out, "{:>5} {:<16} syscalls/msg by name (medians): {breakdown}", "", server);
            }
        }
        all.push((c, samples));
    }

    let idle = idle_memory_rows(&servers, runs, &tools, &mut out);

    let others = all.iter().flat_map(|(_, v)| v.iter().flatten()).map(|x| x.others_pct).fold(0.0, f64::max);
    if others > 10.0 {
        let _ = writeln!(
            out,
            "\nWARNING: other processes used up to {others:.0}% of a core during some windows (column \"others\"): \
             the machine was not quiet, so msgs/s and latency are not comparable with the issue's figures, and \
             rows with a high \"others\" are suspect. Rerun on an idle machine."
        );
    }
    if pacing == Pacing::ClosedLoop {
        write_targets(&mut out, &all, &servers, &idle);
    } else {
        let _ =
            writeln!(out, "\n(open loop: messages/s is the offered rate; compare p99 and CPU; no targets)");
    }
    print!("{out}");
}

/// Issue 4's targets, judged on the medians of a closed-loop run.
fn write_targets(
    out: &mut String,
    all: &[(usize, Vec<Vec<Sample>>)],
    servers: &[&str],
    idle: &[(String, f64)],
) {
    let _ = writeln!(out);
    let _ = writeln!(out, "targets (issue 4), on medians:");
    for (c, samples) in all {
        let tokio_at = servers.iter().position(|s| *s == "tokio").expect("tokio always runs");
        let tokio_rate = median(&samples[tokio_at], |x| Some(x.msgs_per_s)).unwrap_or(0.0);
        let tokio_user = median(&samples[tokio_at], |x| Some(x.user_us_per_msg)).unwrap_or(0.0);
        for (s, server) in servers.iter().enumerate().filter(|(_, server)| server.starts_with("evloop")) {
            let rate = median(&samples[s], |x| Some(x.msgs_per_s)).unwrap_or(0.0);
            let _ = writeln!(
                out,
                "  C={c:<5} {server:<16} msgs/s >= tokio's: {rate:.0} vs {tokio_rate:.0} -> {}",
                verdict(rate >= tokio_rate)
            );
            if *c >= 100 {
                let factor = if *server == "evloop-protocol" { 0.75 } else { 1.0 };
                let user = median(&samples[s], |x| Some(x.user_us_per_msg)).unwrap_or(f64::INFINITY);
                let _ = writeln!(
                    out,
                    "  C={c:<5} {server:<16} user CPU/msg <= {factor}x tokio's: {user:.3} vs {:.3} us -> {}",
                    factor * tokio_user,
                    verdict(user <= factor * tokio_user)
                );
            }
            if *c == 100 {
                let line = match median(&samples[s], |x| x.syscalls_per_msg) {
                    Some(v) => format!("{v:.2} -> {}", verdict(v <= 2.02)),
                    None => "n/a (perf could not count)".to_string(),
                };
                let _ = writeln!(out, "  C={c:<5} {server:<16} syscalls/msg <= 2.02: {line}");
            }
        }
    }
    let tokio_idle = idle.iter().find(|(server, _)| *server == "tokio").map(|(_, bytes)| *bytes);
    for (server, bytes) in idle.iter().filter(|(server, _)| server.starts_with("evloop")) {
        if let Some(tokio_bytes) = tokio_idle {
            let _ = writeln!(
                out,
                "  idle   {server:<16} memory per idle connection <= tokio's: {bytes:.0} vs {tokio_bytes:.0} B -> {}",
                verdict(*bytes <= tokio_bytes)
            );
        }
    }
}

/// Measures every server's memory per idle connection `runs` times, alternating servers;
/// writes a table to `out` and returns each server's median.
fn idle_memory_rows(servers: &[&str], runs: usize, tools: &Tools, out: &mut String) -> Vec<(String, f64)> {
    let batch = idle_batch();
    let mut bytes: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for run in 0..runs {
        for (s, server) in servers.iter().enumerate() {
            let per_conn = idle_memory(server, tools);
            eprintln!("idle {server} run {}/{runs}: {per_conn:.0} B per connection", run + 1);
            let (side, kind) = server.split_once('-').unwrap_or((server, "task-per-connection"));
            common::json_line(&[
                ("bench", common::Json::Str("echo_idle")),
                ("case", common::Json::Str("idle_memory")),
                ("server", common::Json::Str(server)),
                ("side", common::Json::Str(side)),
                ("kind", common::Json::Str(kind)),
                ("run", common::Json::Num((run + 1) as f64)),
                ("bytes_per_conn", common::Json::Num(per_conn)),
            ]);
            bytes[s].push(per_conn);
        }
    }
    let _ = writeln!(
        out,
        "\nmemory per idle connection: VmRSS growth of the server from {batch} to {} connections, each having \
         echoed one message; median [min-max] of {runs} runs",
        2 * batch
    );
    let mut medians = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        let mut v = bytes[s].clone();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let _ = writeln!(out, "  {server:<16} {median:>6.0} B [{:.0}-{:.0}]", v[0], v[v.len() - 1]);
        medians.push((server.to_string(), median));
    }
    medians
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn median(samples: &[Sample], f: fn(&Sample) -> Option<f64>) -> Option<f64> {
    median_of(samples.iter().filter_map(f).collect())
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// "median [min-max]", or "n/a".
fn stat(samples: &[Sample], f: fn(&Sample) -> Option<f64>, decimals: usize) -> String {
    let values: Vec<f64> = samples.iter().filter_map(f).collect();
    let Some(mid) = median(samples, f) else { return "n/a".to_string() };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{mid:.decimals$} [{min:.decimals$}-{max:.decimals$}]")
}

/// Messages/s of one server over tokio's, run by run. Each round runs every server once,
/// one after the other (a different one first in each round), so the two runs of a round
/// share the machine's state of the moment; when the machine drifts more from round to
/// round than the servers differ, the ratios of the rounds show a difference the medians
/// of the two columns hide.
/// "median ratio [min-max], ahead in K of N rounds".
fn paired_ratios(server: &[Sample], tokio: &[Sample]) -> String {
    let ratios: Vec<f64> = server.iter().zip(tokio).map(|(a, b)| a.msgs_per_s / b.msgs_per_s).collect();
    let Some(median) = median_of(ratios.clone()) else { return "n/a".to_string() };
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ahead = ratios.iter().filter(|&&r| r >= 1.0).count();
    format!("median {median:.3}x [{min:.3}-{max:.3}], ahead in {ahead} of {} rounds", ratios.len())
}

fn breakdown_medians(samples: &[Sample]) -> String {
    let mut parts = Vec::new();
    for name in SYSCALLS {
        let mut values: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.breakdown.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
            .collect();
        if values.is_empty() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let mid = values[values.len() / 2];
        if mid >= 0.005 {
            parts.push(format!("{name} {mid:.2}"));
        }
    }
    parts.join(", ")
}

/// The server `kind`, on CPU 0: this binary with `--server kind` for the Rust servers,
/// `benches/peers/echo_server.py` for the Python ones ("asyncio-protocol" and so on).
fn server_command(tools: &Tools, kind: &str) -> Command {
    let python_side = common::PYTHON_SIDES.iter().find(|side| kind.starts_with(&format!("{side}-")));
    let Some(side) = python_side else {
        return pinned(tools, "0", &["--server".to_string(), kind.to_string()]);
    };
    let python = common::python().expect("a Python server needs EVLOOP_BENCH_PYTHON");
    let mut command = if tools.taskset {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(python);
        c
    } else {
        Command::new(python)
    };
    command.arg(common::peer_script("echo_server.py")).args([
        "--side",
        side,
        "--kind",
        &kind[side.len() + 1..],
    ]);
    command
}

/// A child of this bench binary, on `cpu` when taskset works.
fn pinned(tools: &Tools, cpu: &str, args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = if tools.taskset {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    command.args(args);
    command
}

/// A child that is killed (if still running) and reaped when dropped, so a failed run
/// leaves no server or generator behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, read on a thread so the parent can time out.
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

fn expect_line(lines: &mpsc::Receiver<String>, prefix: &str, deadline: Instant, who: &str) -> String {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{who}: no {prefix:?} line before the deadline (EVLOOP_BENCH_TIMEOUT)")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{who}: exited before printing {prefix:?}"),
        }
    }
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// Starts `server` on CPU 0 and waits for the port it announces.
fn start_server(server: &str, tools: &Tools, deadline: Instant, who: &str) -> (Reaped, u16) {
    let mut child = Reaped(
        server_command(tools, server)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server"),
    );
    let lines = lines_of(child.0.stdout.take().expect("server stdout"));
    let port_line = expect_line(&lines, "EVLOOP_ECHO_PORT", deadline, who);
    let port = port_line.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("a port number");
    (child, port)
}

fn run_once(
    server: &str,
    conns: usize,
    pacing: Pacing,
    warmup: Duration,
    measure: Duration,
    tools: &Tools,
) -> Sample {
    let deadline = Instant::now() + Duration::from_secs(env_u64("EVLOOP_BENCH_TIMEOUT").unwrap_or(120));
    let who = format!("C={conns} {server}");
    let (server_child, port) = start_server(server, tools, deadline, &who);
    let pid = server_child.0.id();

    let mut load_args: Vec<String> = [
        "--load",
        "--port",
        &port.to_string(),
        "--conns",
        &conns.to_string(),
        "--warmup-ms",
        &warmup.as_millis().to_string(),
        "--measure-ms",
        &measure.as_millis().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Pacing::OpenLoop { per_second } = pacing {
        load_args.extend(["--rate".to_string(), per_second.to_string()]);
    }
    let mut load_child = Reaped(
        pinned(tools, "1", &load_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn load generator"),
    );
    let mut load_stdin: ChildStdin = load_child.0.stdin.take().expect("load stdin");
    let load_lines = lines_of(load_child.0.stdout.take().expect("load stdout"));

    let load_pid = load_child.0.id();
    expect_line(&load_lines, "measure-start", deadline, &who);
    let (ticks0, cpu0, t0) = (proc_ticks(pid), schedstat_ns(pid), Instant::now());
    let (busy0, load0) = (machine_busy_ticks(), proc_ticks(load_pid));
    let result = expect_line(&load_lines, "EVLOOP_ECHO_RESULT", deadline, &who);
    let (ticks1, cpu1, t1) = (proc_ticks(pid), schedstat_ns(pid), Instant::now());
    let (busy1, load1) = (machine_busy_ticks(), proc_ticks(load_pid));
    let ours =
        (ticks1.0 + ticks1.1 + load1.0 + load1.1).saturating_sub(ticks0.0 + ticks0.1 + load0.0 + load0.1);
    let others_pct = (busy1.saturating_sub(busy0).saturating_sub(ours)) as f64
        / CLOCK_TICKS_PER_S
        / (t1 - t0).as_secs_f64()
        * 100.0;

    let msgs_per_s = field(&result, "msgs") / (field(&result, "ns") / 1e9);
    // Messages the server echoed while the parent watched its CPU: the generator's rate
    // over the parent's own (nearly identical) window.
    let window_msgs = msgs_per_s * (t1 - t0).as_secs_f64();
    let per_msg_us = |seconds: f64| seconds * 1e6 / window_msgs;

    let perf = tools.perf.as_ref().ok().map(|_| perf_syscalls(pid, load_pid));
    let user_share = tools.perf.as_ref().ok().map(|_| perf_user_share(pid));
    let _ = writeln!(load_stdin, "stop");
    drop(load_stdin);
    let _ = load_child.0.wait();
    drop(load_child);
    drop(server_child);

    let mut sample = Sample {
        msgs_per_s,
        p50_us: field(&result, "p50_ns") / 1e3,
        p99_us: field(&result, "p99_ns") / 1e3,
        user_us_per_msg: per_msg_us((ticks1.0 - ticks0.0) as f64 / CLOCK_TICKS_PER_S),
        sys_us_per_msg: per_msg_us((ticks1.1 - ticks0.1) as f64 / CLOCK_TICKS_PER_S),
        cpu_us_per_msg: per_msg_us((cpu1 - cpu0) as f64 / 1e9),
        others_pct,
        ..Sample::default()
    };
    match user_share {
        Some(Ok(share)) => {
            sample.user_us_per_msg = sample.cpu_us_per_msg * share;
            sample.sys_us_per_msg = sample.cpu_us_per_msg * (1.0 - share);
        }
        Some(Err(why)) => eprintln!("{who}: perf record failed, user/sys from clock ticks: {why}"),
        None => {}
    }
    if let Some(Ok((counts, messages))) = perf {
        let msgs = messages as f64;
        sample.syscalls_per_msg = counts.iter().find(|(n, _)| n == "total").map(|(_, v)| *v as f64 / msgs);
        sample.breakdown =
            counts.iter().filter(|(n, _)| n != "total").map(|(n, v)| (n.clone(), *v as f64 / msgs)).collect();
    } else if let Some(Err(why)) = perf {
        eprintln!("{who}: perf failed: {why}");
    }
    sample
}

/// Memory per idle connection of `server`, in bytes: the growth of its `VmRSS` from
/// [`IDLE_CONNS`] open connections to twice as many, each having echoed one message and
/// then left open. Counting from the first batch leaves out what a server allocates once
/// for its first connections (a read buffer, the runtime's tables).
fn idle_memory(server: &str, tools: &Tools) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(env_u64("EVLOOP_BENCH_TIMEOUT").unwrap_or(120));
    let (server_child, port) = start_server(server, tools, deadline, &format!("idle {server}"));
    let pid = server_child.0.id();
    let batch = idle_batch();
    let mut open = Vec::with_capacity(2 * batch);
    echo_once_and_keep(port, batch, &mut open);
    let before = vm_rss_kib(pid);
    echo_once_and_keep(port, batch, &mut open);
    let after = vm_rss_kib(pid);
    drop(open);
    drop(server_child);
    after.saturating_sub(before) as f64 * 1024.0 / batch as f64
}

/// [`IDLE_CONNS`], or fewer if this process may not open twice as many descriptors.
fn idle_batch() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok());
    soft.map_or(IDLE_CONNS, |limit| IDLE_CONNS.min(limit.saturating_sub(64) / 2))
}

/// Opens `count` connections one after another, each echoing one message, and keeps them.
fn echo_once_and_keep(port: u16, count: usize, open: &mut Vec<TcpStream>) {
    let message = [b'x'; MESSAGE];
    for _ in 0..count {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the echo server");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
        stream.write_all(&message).expect("send one message");
        let mut back = [0u8; MESSAGE];
        stream.read_exact(&mut back).expect("read the echo");
        open.push(stream);
    }
}

/// A process's resident memory in KiB (`VmRSS` of /proc/<pid>/status).
fn vm_rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/<pid>/status");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// The share of the server's CPU time spent in user space: `perf record -e cpu-clock -F
/// USER_SAMPLE_HZ -p <server>` for `USER_SAMPLE_WINDOW` (load still on), then the share of
/// samples whose instruction pointer is not a kernel address. This kernel splits
/// utime/stime by sampling at its 250 Hz tick, which gives an evloop server (about 5% of
/// its time in user space) a dozen user ticks in a 2 s window; 10 kHz gives hundreds.
fn perf_user_share(server: u32) -> Result<f64, String> {
    let data = std::env::temp_dir().join(format!("evloop-echo-bench-{}-{server}.perf", std::process::id()));
    let recorded = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", &USER_SAMPLE_HZ.to_string()])
        .args(["-p", &server.to_string(), "-o"])
        .arg(&data)
        .args(["--", "sleep", &format!("{}", USER_SAMPLE_WINDOW.as_secs_f64())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run perf record: {e}"))?;
    if !recorded.status.success() {
        let _ = std::fs::remove_file(&data);
        return Err(format!("perf record: {}", String::from_utf8_lossy(&recorded.stderr).trim()));
    }
    let script = Command::new("perf")
        .args(["script", "-F", "ip", "-i"])
        .arg(&data)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run perf script: {e}"));
    let _ = std::fs::remove_file(&data);
    let script = script?;
    let (mut user, mut kernel) = (0u64, 0u64);
    for line in String::from_utf8_lossy(&script.stdout).lines() {
        let Ok(ip) = u64::from_str_radix(line.trim(), 16) else { continue };
        // x86-64 and aarch64 kernels live in the top half of the address space.
        if ip >= 1 << 63 {
            kernel += 1;
        } else {
            user += 1;
        }
    }
    if user + kernel < 100 {
        return Err(format!("only {} samples", user + kernel));
    }
    Ok(user as f64 / (user + kernel) as f64)
}

/// Busy clock ticks of all CPUs together (the `cpu` line of /proc/stat: all but idle and
/// iowait; guest time is already inside user).
fn machine_busy_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = text.lines().find(|l| l.starts_with("cpu ")).expect("cpu line in /proc/stat");
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum()
}

/// (utime, stime) of a process, in clock ticks.
fn proc_ticks(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &text[text.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (fields[11].parse().expect("utime"), fields[12].parse().expect("stime"))
}

/// Nanoseconds on a CPU of every thread of a process (schedstat's first field).
fn schedstat_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/<pid>/task");
    tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

fn perf_events() -> String {
    let mut events = vec!["raw_syscalls:sys_enter".to_string()];
    events.extend(SYSCALLS.iter().map(|name| format!("syscalls:sys_enter_{name}")));
    events.join(",")
}

/// Counts the syscalls of the server and of the generator for `PERF_WINDOW` in one perf
/// session (`--per-thread`), so both cover the same window. Returns the server's counts,
/// ("total", n) then (name, n) per call, and the messages of that window: the
/// generator's sends, since it sends each message with exactly one `write`/`sendto`.
fn perf_syscalls(server: u32, generator: u32) -> Result<(Vec<(String, u64)>, u64), String> {
    let output = Command::new("perf")
        .args([
            "stat",
            "--per-thread",
            "-x",
            ",",
            "-e",
            &perf_events(),
            "-p",
            &format!("{server},{generator}"),
        ])
        .args(["--", "sleep", &format!("{}", PERF_WINDOW.as_secs_f64())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    let text = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("perf exited with {}: {}", output.status, text.trim()));
    }
    let mut counts: Vec<(String, u64)> = Vec::new();
    let mut messages = 0;
    let mut seen_total = false;
    for line in text.lines() {
        // "comm-tid,count,,event,..."
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 4 {
            continue;
        }
        let Some(tid) = cols[0].rsplit('-').next().and_then(|t| t.parse::<u32>().ok()) else { continue };
        let count = if cols[1].contains("not counted") { Some(0) } else { cols[1].parse::<u64>().ok() };
        let Some(count) = count else { continue };
        let name = if cols[3] == "raw_syscalls:sys_enter" {
            "total"
        } else if let Some(name) = cols[3].strip_prefix("syscalls:sys_enter_") {
            name
        } else {
            continue;
        };
        if tid == generator {
            if name == "write" || name == "sendto" {
                messages += count;
            }
            continue;
        }
        seen_total |= name == "total";
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += count,
            None => counts.push((name.to_string(), count)),
        }
    }
    if !seen_total || messages == 0 {
        return Err(format!("perf printed no usable counts: {}", text.trim()));
    }
    Ok((counts, messages))
}

fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// perf can count syscall tracepoints here (`perf stat -e raw_syscalls:sys_enter true`).
fn perf_works() -> Result<(), String> {
    let output = Command::new("perf")
        .args(["stat", "-x", ",", "-e", &perf_events(), "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("perf not runnable: {e}"))?;
    let text = String::from_utf8_lossy(&output.stderr);
    if output.status.success()
        && text.lines().any(|l| {
            l.contains("raw_syscalls:sys_enter")
                && l.split(',').next().is_some_and(|c| c.parse::<u64>().is_ok())
        })
    {
        Ok(())
    } else {
        Err(format!("perf stat cannot count syscall tracepoints: {}", text.trim()))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}
