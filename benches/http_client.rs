//! HTTP/1.1 client: 10,000 GETs of a 1 KiB page from a local keep-alive server with 100
//! requests in flight, evloop's `http::Client` against a tokio + hyper client (issue 5,
//! Targets; issue 6, the HTTP row). Then a 200 MiB body downloaded by the `fetch` example
//! with `-o DIR`, whose peak RSS must stay under 64 MiB.
//!
//! Processes:
//! - the server: this binary re-executed with `--server`, pinned to CPU 1 (`taskset -c 1`
//!   when present). A tokio `current_thread` runtime, one task per connection reading
//!   request heads up to `\r\n\r\n` and answering each with a 200 and a 1 KiB body (or a
//!   200 MiB body for `/big`), keep-alive, no pipelining needed. The same server process
//!   serves every run of both sides, so it cannot favour either.
//! - the parent pins itself to CPU 0 (`taskset -p -c 0`), so every client child the
//!   harness (`common`) starts runs on CPU 0, one side per process, alternating.
//! - evloop side: `evloop::http::Client` with `per_host_limit = total_limit = 100`, 100
//!   tasks each looping `get` + `bytes()` until 10,000 requests have been claimed.
//! - tokio side: `current_thread` runtime, 100 connections made with
//!   `hyper::client::conn::http1::handshake` over `TokioIo<TcpStream>` (TCP_NODELAY, as
//!   evloop sets it), each a task doing sequential GETs (body gathered with
//!   `BodyExt::collect`) until 10,000 requests have been claimed.
//!
//!   Both sides open their 100 connections inside the measured window and send the same
//!   headers (Host, User-Agent, Accept, Accept-Encoding, Connection); each child checks
//!   that it got 10,000 × 200 and 10,000 × 1024 body bytes.
//!
//! - asyncio and uvloop sides (only when `EVLOOP_BENCH_PYTHON` names an interpreter with
//!   aiohttp, see benches/common): `benches/peers/http_client_aiohttp.py`, an
//!   `aiohttp.ClientSession` with a connector limited to 100, 100 coroutines looping `get`
//!   + `read()`, on asyncio's loop or uvloop's.
//!
//! Requests/s = requests / wall time of the child's window; the harness's table gives the
//! client's CPU per request and peak RSS.
//!
//! The `fetch` case builds the example (`cargo build --profile bench --example fetch`: release
//! settings, into target/release, without rebuilding what `cargo bench` just built), runs
//! `target/release/examples/fetch -o DIR http://.../big` and samples its `VmHWM` from
//! `/proc/<pid>/status` every 2 ms while it runs (VmHWM only grows; the last sample is
//! taken at most 2 ms before exit).
//!
//! Run: `cargo bench --bench http_client`. Environment: `EVLOOP_BENCH_RUNS` (runs per side,
//! default 3), `EVLOOP_BENCH_N` (requests per run, default 10,000),
//! `EVLOOP_BENCH_TIMEOUT`, and `EVLOOP_HTTP_SKIP_FETCH=1` to skip the 200 MiB case.

mod common;

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Case, Probe, Sample};

/// Requests in flight, and connections.
const IN_FLIGHT: usize = 100;
/// The page body size.
const PAGE: usize = 1024;
/// The large body of the `fetch` case.
const BIG: usize = 200 * 1024 * 1024;
/// Target for the `fetch` case.
const FETCH_MAX_PEAK_MIB: f64 = 64.0;
/// Where the server's address reaches the client children.
const ADDR_ENV: &str = "EVLOOP_HTTP_BENCH_ADDR";
/// Where each client child appends its result line, for the requests/s summary.
const LOG_ENV: &str = "EVLOOP_HTTP_BENCH_LOG";
const USER_AGENT: &str = "evloop-bench/0.1";
/// The Python sides' client (aiohttp on asyncio or on uvloop), in `benches/peers/`.
const PYTHON_PEER: &str = "http_client_aiohttp.py";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--server") {
        serve();
        return;
    }
    if args.iter().any(|a| a == "--side") {
        common::main(TITLE, ABOUT, &CASES, Some(PYTHON_PEER), child);
        return;
    }
    parent();
}

const TITLE: &str = "http_client";
const ABOUT: &str = "10,000 GETs of a 1 KiB page, 100 in flight over 100 keep-alive connections, from one local \
     server process (tokio current_thread, pinned to CPU 1); clients pinned to CPU 0.\n\
     evloop: evloop::http::Client (per_host_limit = total_limit = 100), 100 tasks looping get + bytes().\n\
     tokio: current_thread runtime, 100 hyper::client::conn::http1 connections over TokioIo<TcpStream>, each a \
     task doing sequential GETs + BodyExt::collect. One op = one request (connects included).";

const CASES: [Case; 1] =
    [Case { name: "get_1k_c100", ops: 10_000, unit: "request", max_cpu_ns_per_op: None, max_peak_mib: None }];

fn parent() {
    pin_self_to_cpu0();
    let mut server = Server::start();
    let log = std::env::temp_dir().join(format!("evloop-http-bench-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    // Edition 2021: setting our own environment before any thread starts is safe; the
    // children the harness spawns inherit it.
    std::env::set_var(ADDR_ENV, &server.addr);
    std::env::set_var(LOG_ENV, &log);

    let server_cpu_before = server.cpu_ns();
    common::main(TITLE, ABOUT, &CASES, Some(PYTHON_PEER), child);
    let server_cpu = server.cpu_ns().saturating_sub(server_cpu_before);
    print!("{}", requests_per_second_summary(&log, server_cpu));
    let _ = std::fs::remove_file(&log);

    let skip_fetch = std::env::var("EVLOOP_HTTP_SKIP_FETCH").is_ok_and(|v| v == "1");
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = filters.is_empty() || filters.iter().any(|f| "fetch_200mib".contains(f.as_str()));
    if !skip_fetch && wanted {
        print!("{}", fetch_case(&server.addr));
    }
    server.stop();
}

/// `taskset -p -c 0 <our pid>`: the harness's children inherit the affinity.
fn pin_self_to_cpu0() {
    let pid = std::process::id().to_string();
    match Command::new("taskset").args(["-p", "-c", "0", &pid]).stdout(Stdio::null()).status() {
        Ok(status) if status.success() => eprintln!("clients pinned to CPU 0"),
        _ => eprintln!("taskset unavailable: clients not pinned"),
    }
}

// ---------------------------------------------------------------------------------------
// Summary lines the harness's table does not have.

/// `server_cpu_ns`: the server's CPU time over all the runs of both sides.
fn requests_per_second_summary(log: &Path, server_cpu_ns: u64) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut sides: Vec<&str> = common::SIDES.to_vec();
    sides.extend(common::python_sides());
    let mut per_side: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut requests = 0.0;
    let mut wall_s = 0.0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(side), Some(ops), Some(wall_ns)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(ops), Ok(wall_ns)) = (ops.parse::<f64>(), wall_ns.parse::<f64>()) else { continue };
        if let Some(i) = sides.iter().position(|s| *s == side) {
            per_side[i].push(ops / (wall_ns / 1e9));
            requests += ops;
            wall_s += wall_ns / 1e9;
        }
    }
    let mut out = String::new();
    if per_side.iter().any(Vec::is_empty) {
        let _ = writeln!(out, "(no requests/s figures: a side did not run)");
        return out;
    }
    for (i, side) in sides.iter().enumerate() {
        let (med, min, max) = median_min_max(&mut per_side[i]);
        let _ =
            writeln!(out, "{:<22} {:<7} requests/s {:.0} [{:.0}-{:.0}]", CASES[0].name, side, med, min, max);
    }
    // Not the bottleneck if it was busy for well under the clients' wall time.
    let _ = writeln!(
        out,
        "{:<22} server (all sides, all runs): CPU {:.0} ns/request, busy {:.0}% of the clients' wall time",
        "",
        server_cpu_ns as f64 / requests,
        100.0 * server_cpu_ns as f64 / 1e9 / wall_s
    );
    let (ev, _, _) = median_min_max(&mut per_side[0]);
    let (tk, _, _) = median_min_max(&mut per_side[1]);
    let _ = writeln!(
        out,
        "{:<22} target evloop requests/s >= hyper's (medians): {:.0} vs {:.0} ({:.2}x) -> {}",
        "",
        ev,
        tk,
        ev / tk,
        if ev >= tk { "MET" } else { "MISSED" }
    );
    out
}

fn median_min_max(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 };
    (median, values[0], values[values.len() - 1])
}

// ---------------------------------------------------------------------------------------
// The client children.

fn child(side: &str, case: &str, n: u64) -> Sample {
    assert_eq!(case, CASES[0].name, "unknown case");
    let addr = std::env::var(ADDR_ENV).expect("the parent sets the server address");
    let (sample, ok, body_bytes) = match side {
        "evloop" => evloop_client(&addr, n),
        "tokio" => hyper_client(&addr, n),
        other => panic!("unknown side {other:?}"),
    };
    assert_eq!(ok, n, "{side}: wrong number of 200 responses");
    assert_eq!(body_bytes, n * PAGE as u64, "{side}: wrong number of body bytes");
    if let Ok(log) = std::env::var(LOG_ENV) {
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("open the results log");
        writeln!(file, "{side} {} {}", sample.ops, sample.wall_ns).expect("write the results log");
    }
    sample
}

/// Returns the measurement, the 200 responses and the body bytes received.
fn evloop_client(addr: &str, n: u64) -> (Sample, u64, u64) {
    use evloop::http::{Client, ClientOptions};

    let url = format!("http://{addr}/page");
    let probe = Probe::start();
    let (ok, body_bytes) = evloop::run(async move {
        let client = Client::with_options(ClientOptions {
            per_host_limit: IN_FLIGHT,
            total_limit: IN_FLIGHT,
            user_agent: USER_AGENT.to_string(),
            ..ClientOptions::default()
        });
        let claimed = Rc::new(Cell::new(0u64));
        let ok = Rc::new(Cell::new(0u64));
        let body_bytes = Rc::new(Cell::new(0u64));
        let workers = (0..IN_FLIGHT).map(|_| {
            let (client, claimed, ok, body_bytes, url) =
                (client.clone(), claimed.clone(), ok.clone(), body_bytes.clone(), url.clone());
            async move {
                while claimed.get() < n {
                    claimed.set(claimed.get() + 1);
                    let response = client.get(&url).await.expect("evloop GET");
                    if response.status() == 200 {
                        ok.set(ok.get() + 1);
                    }
                    let body = response.bytes().await.expect("evloop body");
                    body_bytes.set(body_bytes.get() + body.len() as u64);
                }
            }
        });
        evloop::gather(workers).await.expect("evloop workers");
        (ok.get(), body_bytes.get())
    })
    .expect("evloop::run");
    (probe.finish(n), ok, body_bytes)
}

fn hyper_client(addr: &str, n: u64) -> (Sample, u64, u64) {
    use http_body_util::{BodyExt as _, Empty};
    use hyper::Request;
    use hyper_util::rt::TokioIo;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let addr = addr.to_string();
    let probe = Probe::start();
    let (ok, body_bytes) = runtime.block_on(async move {
        let claimed = Arc::new(AtomicU64::new(0));
        let ok = Arc::new(AtomicU64::new(0));
        let body_bytes = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            let (claimed, ok, body_bytes, addr) =
                (claimed.clone(), ok.clone(), body_bytes.clone(), addr.clone());
            workers.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&addr).await.expect("tokio connect");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream))
                        .await
                        .expect("hyper handshake");
                tokio::spawn(connection);
                while claimed.fetch_add(1, Ordering::Relaxed) < n {
                    let request = Request::get("/page")
                        .header("host", &addr)
                        .header("user-agent", USER_AGENT)
                        .header("accept", "*/*")
                        .header("accept-encoding", "identity")
                        .header("connection", "keep-alive")
                        .body(Empty::new())
                        .expect("request");
                    let response = sender.send_request(request).await.expect("hyper GET");
                    if response.status() == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    let body = response.into_body().collect().await.expect("hyper body").to_bytes();
                    body_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                }
            }));
        }
        for worker in workers {
            worker.await.expect("hyper worker");
        }
        (ok.load(Ordering::Relaxed), body_bytes.load(Ordering::Relaxed))
    });
    let sample = probe.finish(n);
    drop(runtime);
    (sample, ok, body_bytes)
}

// ---------------------------------------------------------------------------------------
// The server process.

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts `<this exe> --server`, on CPU 1 when `taskset` exists, and reads its address.
    fn start() -> Server {
        let exe = std::env::current_exe().expect("current_exe");
        let pinned = Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
        let mut command = if pinned.is_ok_and(|s| s.success()) {
            let mut command = Command::new("taskset");
            command.args(["-c", "1"]).arg(&exe);
            command
        } else {
            eprintln!("taskset unavailable: server not pinned");
            Command::new(&exe)
        };
        let mut child = command
            .arg("--server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("server stdout"))
            .read_line(&mut line)
            .expect("server address");
        let addr = line.trim().to_string();
        assert!(!addr.is_empty(), "the server printed no address");
        eprintln!("server on {addr} (pid {})", child.id());
        Server { child, addr }
    }

    /// CPU time of the server process so far (its threads' schedstat), in ns.
    fn cpu_ns(&self) -> u64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        let Ok(entries) = std::fs::read_dir(tasks) else { return 0 };
        entries
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
            .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Closes its stdin (it exits on EOF); kills it if it has not gone within a second.
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server: prints its address, serves until its stdin ends.
fn serve() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("local_addr"));
        std::io::stdout().flush().expect("flush");
        // The parent closing our stdin is the signal to stop (read in a plain thread: it
        // blocks).
        let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = stop_tx.blocking_send(());
        });
        let page: Rc<[u8]> = {
            let mut page = format!("HTTP/1.1 200 OK\r\nContent-Length: {PAGE}\r\n\r\n").into_bytes();
            page.extend(std::iter::repeat_n(b'x', PAGE));
            page.into()
        };
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((mut stream, _)) = accepted else { continue };
                            let _ = stream.set_nodelay(true);
                            let page = page.clone();
                            tokio::task::spawn_local(async move {
                                let mut buffer = Vec::with_capacity(4096);
                                let mut chunk = [0u8; 4096];
                                loop {
                                    // Answer every complete head in the buffer.
                                    while let Some(end) = find_head_end(&buffer) {
                                        let big = buffer.starts_with(b"GET /big ");
                                        buffer.drain(..end);
                                        let sent = if big {
                                            send_big(&mut stream).await
                                        } else {
                                            stream.write_all(&page).await
                                        };
                                        if sent.is_err() {
                                            return;
                                        }
                                    }
                                    match stream.read(&mut chunk).await {
                                        Ok(0) | Err(_) => return,
                                        Ok(got) => buffer.extend_from_slice(&chunk[..got]),
                                    }
                                }
                            });
                        }
                        _ = stop_rx.recv() => return,
                    }
                }
            })
            .await;
    });
}

/// The index just past the first `\r\n\r\n`.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

async fn send_big(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;

    const PIECE: usize = 1024 * 1024;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let piece = vec![b'y'; PIECE];
    for _ in 0..BIG / PIECE {
        stream.write_all(&piece).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The 200 MiB download by the fetch example.

fn fetch_case(addr: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "== fetch -o: one {} MiB body streamed to disk ==", BIG / (1024 * 1024));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // Only the user's environment: the variables `cargo bench` sets for its bench run
    // (dynamic library paths, CARGO_* ...) would change the build scripts' fingerprints and
    // make this build, then the next `cargo bench`, rebuild ring, rustls and evloop.
    let keep =
        ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR", "RUSTFLAGS"];
    let built = Command::new(&cargo)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| keep.iter().any(|name| k == name)))
        // The bench profile (release settings, same target/release directory): with
        // `--release` cargo would rebuild ring, rustls and evloop here and again at the next
        // `cargo bench` (~45 s each), since the two profiles share those artifacts.
        .args(["build", "--profile", "bench", "--example", "fetch"])
        .current_dir(manifest)
        .stdin(Stdio::null())
        .status();
    if !built.is_ok_and(|s| s.success()) {
        let _ =
            writeln!(out, "fetch_200mib: `cargo build --profile bench --example fetch` failed: case skipped");
        return out;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("target"));
    let fetch = target.join("release/examples/fetch");
    let runs = std::env::var("EVLOOP_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3usize).max(1);
    let url = format!("http://{addr}/big");
    let mut peaks = Vec::new();
    let mut walls = Vec::new();
    for run in 0..runs {
        let dir = std::env::temp_dir().join(format!("evloop-http-bench-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let mut child = Command::new(&fetch)
            .arg("-o")
            .arg(&dir)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", fetch.display()));
        let status_path = format!("/proc/{}/status", child.id());
        let mut peak_kib = 0u64;
        let status = loop {
            if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| vm_hwm_kib(&s)) {
                peak_kib = peak_kib.max(kib);
            }
            if let Some(status) = child.try_wait().expect("wait for fetch") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fetch still running after 120 s: killed");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let wall = started.elapsed().as_secs_f64();
        let mut stdout = String::new();
        let _ = child.stdout.take().expect("piped").read_to_string(&mut stdout);
        let written = std::fs::metadata(dir.join("0")).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(status.success(), "fetch failed: {status}: {stdout}");
        assert_eq!(written, BIG as u64, "fetch wrote {written} bytes, not {BIG}");
        let peak = peak_kib as f64 / 1024.0;
        eprintln!("fetch_200mib run {}/{runs}: wall {:.2} s, peak {:.1} MiB", run + 1, wall, peak);
        peaks.push(peak);
        walls.push(wall);
    }
    for (run, (peak, wall)) in peaks.iter().zip(&walls).enumerate() {
        common::json_line(&[
            ("bench", common::Json::Str("http_client")),
            ("case", common::Json::Str("fetch_200mib")),
            ("side", common::Json::Str("evloop")),
            ("run", common::Json::Num((run + 1) as f64)),
            ("bytes", common::Json::Num(BIG as f64)),
            ("wall_s", common::Json::Num(*wall)),
            ("peak_mib", common::Json::Num(*peak)),
        ]);
    }
    let (peak, peak_min, peak_max) = median_min_max(&mut peaks);
    let (wall, wall_min, wall_max) = median_min_max(&mut walls);
    let _ = writeln!(
        out,
        "{runs} runs of `{} -o DIR {url}`, VmHWM sampled every 2 ms; median [min-max].",
        fetch.strip_prefix(manifest).unwrap_or(&fetch).display()
    );
    let _ = writeln!(
        out,
        "{:<22} wall s {wall:.2} [{wall_min:.2}-{wall_max:.2}]  peak MiB {peak:.1} [{peak_min:.1}-{peak_max:.1}]  \
         MiB/s {:.0}",
        "fetch_200mib",
        BIG as f64 / (1024.0 * 1024.0) / wall
    );
    let _ = writeln!(
        out,
        "{:<22} target fetch peak < {FETCH_MAX_PEAK_MIB} MiB: {peak:.1} -> {}",
        "",
        if peak < FETCH_MAX_PEAK_MIB { "MET" } else { "MISSED" }
    );
    out
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
}
