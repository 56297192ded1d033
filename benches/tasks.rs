//! 1,000,000 tasks alive at once, each sleeping a pseudo-random time in [0, 1 s), against
//! tokio's current_thread runtime doing the same. Per op = per task: spawn, sleep, wake,
//! finish. Bytes per task = "+work MiB" × 1,048,576 / 1,000,000.
//!
//! With `EVLOOP_BENCH_PYTHON` set (see benches/common), asyncio and uvloop run the same
//! tasks with `asyncio.sleep`: `benches/peers/loop_core.py`.
//!
//! Run: `cargo bench --bench tasks`.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Case, Probe, Sample};

fn main() {
    common::main(
        "tasks",
        "evloop: evloop::run spawns N tasks, each evloop::sleep(random [0, 1 s)) then counts itself; the last \
         sets an Event main awaits.\n\
         tokio: current_thread runtime (enable_all), N tokio::spawn'ed tasks doing tokio::time::sleep(same delays) \
         then counting; the last notifies main. Bytes per task = +work MiB x 1048576 / N.",
        &[Case {
            name: "sleeping_tasks",
            ops: 1_000_000,
            unit: "task",
            max_cpu_ns_per_op: Some(600.0),
            // 300 bytes per task for a million tasks, plus a few MiB of process.
            max_peak_mib: Some(290.0),
        }],
        Some("loop_core.py"),
        child,
    );
}

fn child(side: &str, case: &str, n: u64) -> Sample {
    assert_eq!(case, "sleeping_tasks", "unknown case");
    match side {
        "evloop" => evloop_tasks(n),
        "tokio" => tokio_tasks(n),
        other => panic!("unknown side {other:?}"),
    }
}

/// The same pseudo-random delays for both sides (xorshift64, fixed seed).
fn delays(n: u64) -> impl Iterator<Item = Duration> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_nanos(state % 1_000_000_000)
    })
}

fn evloop_tasks(n: u64) -> Sample {
    let probe = Probe::start();
    let finished = evloop::run(async move {
        let finished = Rc::new(Cell::new(0u64));
        let all_done = Rc::new(evloop::sync::Event::new());
        for delay in delays(n) {
            let (finished, all_done) = (finished.clone(), all_done.clone());
            evloop::create_task(async move {
                evloop::sleep(delay).await;
                finished.set(finished.get() + 1);
                if finished.get() == n {
                    all_done.set();
                }
            });
        }
        all_done.wait().await;
        finished.get()
    })
    .expect("evloop::run");
    let sample = probe.finish(n);
    assert_eq!(finished, n, "evloop finished the wrong number of tasks");
    sample
}

fn tokio_tasks(n: u64) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let probe = Probe::start();
    let finished = runtime.block_on(async move {
        let finished = Arc::new(AtomicU64::new(0));
        let all_done = Arc::new(tokio::sync::Notify::new());
        for delay in delays(n) {
            let (finished, all_done) = (finished.clone(), all_done.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if finished.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_done.notify_one();
                }
            });
        }
        all_done.notified().await;
        finished.load(Ordering::Relaxed)
    });
    let sample = probe.finish(n);
    assert_eq!(finished, n, "tokio finished the wrong number of tasks");
    drop(runtime);
    sample
}
