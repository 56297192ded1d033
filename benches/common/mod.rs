//! What the loop-core benches share: each side of each row runs in its own process, the
//! parent collects one result line per run and prints a plain-text table.
//!
//! The bench binary is both parent and child. Run without `--side`, it is the parent: for
//! every case it re-executes itself (`std::env::current_exe()`) with
//! `--side <evloop|tokio> --case <name> --n <ops>`, alternating the sides, and parses the
//! child's `EVLOOP_BENCH_RESULT ...` line. So each side's peak memory is its own.
//!
//! What a child measures, around the work only (loop / runtime creation excluded):
//! - wall time (`Instant`);
//! - CPU time: the sum of the first field of `/proc/self/task/*/schedstat`, which is the
//!   nanoseconds each thread of the process spent on a CPU (user + system, precise, not in
//!   clock ticks);
//! - peak RSS: `VmHWM` from `/proc/self/status` after the work, and `VmRSS` just before it
//!   (the "+work" column is their difference).
//!
//! Python peers: when `EVLOOP_BENCH_PYTHON` names a Python interpreter (benches/compare.sh
//! points it at a virtualenv with uvloop and aiohttp), a bench that has a Python peer
//! script (`benches/peers/*.py`) also runs the sides named in `EVLOOP_BENCH_PY_SIDES`
//! (default `asyncio,uvloop`): the child is then `<python> benches/peers/<script> --side
//! <asyncio|uvloop> --case <name> --n <ops>`, which measures the same way and prints the
//! same result line. Without `EVLOOP_BENCH_PYTHON`, `cargo bench` compares evloop and tokio
//! only.
//!
//! Arguments the parent does not know (`--bench`, which `cargo bench` passes, and any other
//! `--flag`) are ignored; a bare word keeps only the cases whose name contains it.
//! Environment: `EVLOOP_BENCH_RUNS` (runs per side, default 3), `EVLOOP_BENCH_N`
//! (operations per run, default: each case's own), `EVLOOP_BENCH_TIMEOUT` (seconds a
//! child may run before it is killed and the bench fails, default 120), and
//! `EVLOOP_BENCH_JSON`: a file to which every run is appended as one JSON line (what
//! benches/compare.sh reads).

// Each bench uses its own part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The two implementations compared in every row.
pub const SIDES: [&str; 2] = ["evloop", "tokio"];

/// The Python loops a bench with a peer script can run as well.
pub const PYTHON_SIDES: [&str; 2] = ["asyncio", "uvloop"];

/// The interpreter named by `EVLOOP_BENCH_PYTHON`, if any.
pub fn python() -> Option<String> {
    std::env::var("EVLOOP_BENCH_PYTHON").ok().filter(|p| !p.is_empty())
}

/// The Python sides to run: none without `EVLOOP_BENCH_PYTHON`, else those of
/// `EVLOOP_BENCH_PY_SIDES` (default both).
pub fn python_sides() -> Vec<&'static str> {
    if python().is_none() {
        return Vec::new();
    }
    let wanted = std::env::var("EVLOOP_BENCH_PY_SIDES").unwrap_or_else(|_| PYTHON_SIDES.join(","));
    PYTHON_SIDES.iter().copied().filter(|side| wanted.split(',').any(|w| w.trim() == *side)).collect()
}

/// `benches/peers/<script>`.
pub fn peer_script(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers").join(script)
}

/// A value for [`json_line`].
pub enum Json<'a> {
    Str(&'a str),
    Num(f64),
}

/// Appends one JSON object, the given fields in order, to the file `EVLOOP_BENCH_JSON`
/// names (nothing when unset). Strings here are our own names, so escaping `"` and `\`
/// is enough.
pub fn json_line(fields: &[(&str, Json)]) {
    let Ok(path) = std::env::var("EVLOOP_BENCH_JSON") else { return };
    let mut line = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        let _ = match value {
            Json::Str(text) => {
                write!(line, "\"{key}\": \"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Json::Num(v) if v.is_finite() => write!(line, "\"{key}\": {v}"),
            Json::Num(_) => write!(line, "\"{key}\": null"),
        };
    }
    line.push_str("}\n");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open EVLOOP_BENCH_JSON {path}: {e}"));
    file.write_all(line.as_bytes()).unwrap_or_else(|e| panic!("write EVLOOP_BENCH_JSON {path}: {e}"));
}

const RESULT_PREFIX: &str = "EVLOOP_BENCH_RESULT";

/// What one child run measured.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ops: u64,
    pub wall_ns: u64,
    pub cpu_ns: u64,
    pub hwm_kib: u64,
    pub base_kib: u64,
}

impl Sample {
    fn cpu_ns_per_op(&self) -> f64 {
        self.cpu_ns as f64 / self.ops as f64
    }

    fn wall_ms(&self) -> f64 {
        self.wall_ns as f64 / 1e6
    }

    fn peak_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }

    fn work_mib(&self) -> f64 {
        self.hwm_kib.saturating_sub(self.base_kib) as f64 / 1024.0
    }

    fn to_line(self) -> String {
        format!(
            "{RESULT_PREFIX} ops={} wall_ns={} cpu_ns={} hwm_kib={} base_kib={}",
            self.ops, self.wall_ns, self.cpu_ns, self.hwm_kib, self.base_kib
        )
    }

    fn parse(line: &str) -> Option<Sample> {
        let rest = line.strip_prefix(RESULT_PREFIX)?;
        let field = |name: &str| -> Option<u64> {
            rest.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        };
        Some(Sample {
            ops: field("ops")?,
            wall_ns: field("wall_ns")?,
            cpu_ns: field("cpu_ns")?,
            hwm_kib: field("hwm_kib")?,
            base_kib: field("base_kib")?,
        })
    }
}

/// Started right before the work, finished right after it.
pub struct Probe {
    wall: Instant,
    cpu_ns: u64,
    base_kib: u64,
}

impl Probe {
    pub fn start() -> Probe {
        let base_kib = status_kib("VmRSS:");
        let cpu_ns = process_cpu_ns();
        Probe { wall: Instant::now(), cpu_ns, base_kib }
    }

    pub fn finish(self, ops: u64) -> Sample {
        // Settle the allocator inside the window, always the same way: glibc keeps freed
        // small chunks (evloop's 64-byte callbacks) in fastbins and merges them only at the
        // next large malloc, while tokio's 400-byte task cells are merged as they are freed.
        // Without this the merge of a million chunks would land in whichever side's
        // measurement happens to malloc next (`read_dir` below), or in neither.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(64 * 1024)));
        let wall_ns = self.wall.elapsed().as_nanos() as u64;
        let cpu_ns = process_cpu_ns() - self.cpu_ns;
        Sample { ops, wall_ns, cpu_ns, hwm_kib: status_kib("VmHWM:"), base_kib: self.base_kib }
    }
}

/// Nanoseconds on a CPU of every live thread of this process (schedstat's first field).
fn process_cpu_ns() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks
        .map(|task| {
            let path = task.expect("task entry").path().join("schedstat");
            let text = std::fs::read_to_string(&path).expect("read schedstat");
            text.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).expect("parse schedstat")
        })
        .sum()
}

/// A `kB` line of `/proc/self/status`, such as `VmHWM:` or `VmRSS:`.
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// One row group of a bench: a case both sides run.
pub struct Case {
    /// Name used on the command line and in the table.
    pub name: &'static str,
    /// Operations per run unless `EVLOOP_BENCH_N` says otherwise.
    pub ops: u64,
    /// What one operation is, for the header.
    pub unit: &'static str,
    /// The target for evloop's median CPU per op, if any.
    pub max_cpu_ns_per_op: Option<f64>,
    /// The target for evloop's median peak RSS, if any.
    pub max_peak_mib: Option<f64>,
}

/// Runs the child part when called with `--side`, else the parent part. `child` does the
/// work of one side of one case with `n` operations and returns its measurement.
/// `python_peer` names the bench's script in `benches/peers/`, which the Python sides run
/// (see the module's header); `None` when the bench has no Python peer.
pub fn main(
    title: &str,
    about: &str,
    cases: &[Case],
    python_peer: Option<&str>,
    child: fn(side: &str, case: &str, n: u64) -> Sample,
) {
    let args = Args::parse();
    if let Some(side) = &args.side {
        let case = args.case.as_deref().expect("--side needs --case");
        let n = args.n.expect("--side needs --n");
        let sample = child(side, case, n);
        println!("{}", sample.to_line());
        return;
    }
    let mut sides: Vec<&str> = SIDES.to_vec();
    if python_peer.is_some() {
        sides.extend(python_sides());
    }
    let runs = env_u64("EVLOOP_BENCH_RUNS").unwrap_or(3).max(1) as usize;
    let ops_override = env_u64("EVLOOP_BENCH_N");
    let mut out = String::new();
    let _ = writeln!(out, "== {title} ==");
    let _ = writeln!(out, "{about}");
    let _ = writeln!(
        out,
        "{runs} runs per side, alternating {}, each run in its own process; median [min-max].\n\
         CPU = user+sys of the process from /proc/self/task/*/schedstat; peak = VmHWM; \
         +work = VmHWM - VmRSS just before the work.",
        sides.join("/")
    );
    if let (Some(script), Some(python)) = (python_peer, python()) {
        let _ = writeln!(out, "Python sides: {python} benches/peers/{script} --side <asyncio|uvloop>.");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:<7} {:>9}  {:>22}  {:>22}  {:>22}  {:>22}",
        "case", "side", "ops", "wall ms", "CPU ns/op", "peak MiB", "+work MiB"
    );
    for case in cases
        .iter()
        .filter(|c| args.filters.is_empty() || args.filters.iter().any(|f| c.name.contains(f.as_str())))
    {
        let n = ops_override.unwrap_or(case.ops);
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); sides.len()];
        for run in 0..runs {
            for (i, side) in sides.iter().enumerate() {
                let sample = run_child(side, case.name, n, python_peer);
                eprintln!(
                    "{} {side} run {}/{runs}: wall {:.1} ms, CPU {:.1} ns/op, peak {:.1} MiB, +work {:.1} MiB",
                    case.name,
                    run + 1,
                    sample.wall_ms(),
                    sample.cpu_ns_per_op(),
                    sample.peak_mib(),
                    sample.work_mib()
                );
                json_line(&[
                    ("bench", Json::Str(title)),
                    ("case", Json::Str(case.name)),
                    ("side", Json::Str(side)),
                    ("run", Json::Num((run + 1) as f64)),
                    ("ops", Json::Num(sample.ops as f64)),
                    ("wall_ns", Json::Num(sample.wall_ns as f64)),
                    ("cpu_ns", Json::Num(sample.cpu_ns as f64)),
                    ("hwm_kib", Json::Num(sample.hwm_kib as f64)),
                    ("base_kib", Json::Num(sample.base_kib as f64)),
                ]);
                samples[i].push(sample);
            }
        }
        for (i, side) in sides.iter().enumerate() {
            let s = &samples[i];
            let _ = writeln!(
                out,
                "{:<22} {:<7} {:>9}  {:>22}  {:>22}  {:>22}  {:>22}",
                case.name,
                side,
                n,
                stat(s, Sample::wall_ms, 1),
                stat(s, Sample::cpu_ns_per_op, 1),
                stat(s, Sample::peak_mib, 1),
                stat(s, Sample::work_mib, 1),
            );
        }
        let ev = &samples[0];
        for (peer, theirs) in sides.iter().zip(&samples).skip(1) {
            // A ratio of two near-zero memory figures means nothing: say so instead.
            let ratio = |f: fn(&Sample) -> f64, min_denominator: f64| {
                let (a, b) = (median(ev, f), median(theirs, f));
                if b < min_denominator {
                    "n/a".to_string()
                } else {
                    format!("{:.2}x", a / b)
                }
            };
            let _ = writeln!(
                out,
                "{:<22} evloop/{peer} (medians): CPU ns/op {}, peak {}, +work {}",
                "",
                ratio(Sample::cpu_ns_per_op, 0.0),
                ratio(Sample::peak_mib, 1.0),
                ratio(Sample::work_mib, 1.0)
            );
        }
        if let Some(max) = case.max_cpu_ns_per_op {
            let got = median(ev, Sample::cpu_ns_per_op);
            let _ = writeln!(
                out,
                "{:<22} target evloop CPU <= {max} ns/{}: {:.1} -> {}",
                "",
                case.unit,
                got,
                verdict(got <= max)
            );
        }
        if let Some(max) = case.max_peak_mib {
            let got = median(ev, Sample::peak_mib);
            let _ = writeln!(
                out,
                "{:<22} target evloop peak <= {max} MiB: {:.1} -> {}",
                "",
                got,
                verdict(got <= max)
            );
        }
    }
    print!("{out}");
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn median(samples: &[Sample], f: fn(&Sample) -> f64) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// "median [min-max]".
fn stat(samples: &[Sample], f: fn(&Sample) -> f64, decimals: usize) -> String {
    let values: Vec<f64> = samples.iter().map(f).collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.*} [{:.*}-{:.*}]", decimals, median(samples, f), decimals, min, decimals, max)
}

/// This binary again for the Rust sides, the peer script for the Python ones.
fn run_child(side: &str, case: &str, n: u64, python_peer: Option<&str>) -> Sample {
    let limit = Duration::from_secs(env_u64("EVLOOP_BENCH_TIMEOUT").unwrap_or(120));
    let mut command = if PYTHON_SIDES.contains(&side) {
        let python = python().expect("a Python side needs EVLOOP_BENCH_PYTHON");
        let mut command = Command::new(python);
        command.arg(peer_script(python_peer.expect("a Python side needs a peer script")));
        command
    } else {
        Command::new(std::env::current_exe().expect("current_exe"))
    };
    let mut child = command
        .args(["--side", side, "--case", case, "--n", &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bench child");
    // A loop that never stops must fail the bench, not hang it. The child prints one
    // short line, so its stdout pipe cannot fill up while we wait.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bench child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {side} {case} still running after {limit:?} (EVLOOP_BENCH_TIMEOUT): killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child.stdout.take().expect("piped stdout").read_to_string(&mut stdout).expect("read child stdout");
    assert!(status.success(), "child {side} {case} failed: {status}\n{stdout}");
    stdout
        .lines()
        .find_map(Sample::parse)
        .unwrap_or_else(|| panic!("child {side} {case} printed no result line:\n{stdout}"))
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

#[derive(Default)]
struct Args {
    side: Option<String>,
    case: Option<String>,
    n: Option<u64>,
    filters: Vec<String>,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--side" => args.side = it.next(),
                "--case" => args.case = it.next(),
                "--n" => args.n = it.next().and_then(|n| n.parse().ok()),
                other if other.starts_with('-') => {} // --bench and friends
                filter => args.filters.push(filter.to_string()),
            }
        }
        args
    }
}
