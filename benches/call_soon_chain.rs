//! A 1,000,000-step chain of callbacks, each scheduling the next with `call_soon`, against
//! tokio's current_thread runtime running one task that does `yield_now().await` 1,000,000
//! times. Per op = per step.
//!
//! With `EVLOOP_BENCH_PYTHON` set (see benches/common), asyncio and uvloop run the same
//! chain with `loop.call_soon`: `benches/peers/loop_core.py`.
//!
//! Run: `cargo bench --bench call_soon_chain`.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Case, Probe, Sample};
use evloop::EventLoop;

fn main() {
    common::main(
        "call_soon_chain",
        "evloop: a chain of N callbacks, each scheduling the next with call_soon; the last stops the loop.\n\
         tokio: current_thread runtime (enable_all), one tokio::spawn'ed task doing \
         tokio::task::yield_now().await N times.",
        &[Case {
            name: "chain",
            ops: 1_000_000,
            unit: "step",
            max_cpu_ns_per_op: Some(50.0),
            max_peak_mib: None,
        }],
        Some("loop_core.py"),
        child,
    );
}

fn child(side: &str, case: &str, n: u64) -> Sample {
    assert_eq!(case, "chain", "unknown case");
    match side {
        "evloop" => evloop_chain(n),
        "tokio" => tokio_chain(n),
        other => panic!("unknown side {other:?}"),
    }
}

/// One link of the chain: count it, then schedule the next or stop.
fn step(event_loop: EventLoop, steps: Rc<Cell<u64>>, n: u64) {
    let count = steps.get() + 1;
    steps.set(count);
    if count == n {
        event_loop.stop();
    } else {
        let next = event_loop.clone();
        next.call_soon(move || step(event_loop, steps, n)).expect("call_soon");
    }
}

fn evloop_chain(n: u64) -> Sample {
    let event_loop = EventLoop::new().expect("EventLoop::new");
    let steps = Rc::new(Cell::new(0u64));

    let probe = Probe::start();
    let (first_loop, first_steps) = (event_loop.clone(), steps.clone());
    event_loop.call_soon(move || step(first_loop, first_steps, n)).expect("call_soon");
    event_loop.run_forever().expect("run_forever");
    let sample = probe.finish(n);

    assert_eq!(steps.get(), n, "evloop ran the wrong number of steps");
    event_loop.close().expect("close");
    sample
}

fn tokio_chain(n: u64) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");

    let probe = Probe::start();
    let steps = runtime.block_on(async {
        tokio::spawn(async move {
            let mut steps = 0u64;
            for _ in 0..n {
                tokio::task::yield_now().await;
                steps += 1;
            }
            steps
        })
        .await
        .expect("chain task")
    });
    let sample = probe.finish(n);

    assert_eq!(steps, n, "tokio ran the wrong number of steps");
    drop(runtime);
    sample
}
