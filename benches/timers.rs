//! 1,000,000 timers with pseudo-random delays uniform in [0, 1 s): evloop's `call_later`
//! against tokio's current_thread runtime with one spawned task per timer sleeping the same
//! delay. Scheduling and firing are both inside the measurement.
//!
//! Cases:
//! - `timers`: every timer fires; each increments a counter and the last one ends the run.
//! - `timers_cancel_half`: every second timer is cancelled right after it is scheduled
//!   (evloop: `TimerHandle::cancel`; tokio: `JoinHandle::abort`); the other half fire.
//!
//! Per op = per timer scheduled (1,000,000 in both cases).
//!
//! With `EVLOOP_BENCH_PYTHON` set (see benches/common), asyncio and uvloop run the same
//! delays with `loop.call_later` (and `TimerHandle.cancel`): `benches/peers/loop_core.py`.
//!
//! Run: `cargo bench --bench timers` (`-- cancel` keeps only the matching case).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Case, Probe, Sample};
use evloop::EventLoop;

const MAX_DELAY: Duration = Duration::from_secs(1);

fn main() {
    common::main(
        "timers",
        "N timers, delays uniform in [0, 1 s) (xorshift64, fixed seed), same delays on both sides.\n\
         evloop: call_later + run_forever, the last callback stops the loop.\n\
         tokio: current_thread runtime (enable_all), one tokio::spawn'ed task per timer doing \
         sleep(delay).await, run until the last one notifies.\n\
         timers_cancel_half: every second timer cancelled right after scheduling \
         (evloop TimerHandle::cancel, tokio JoinHandle::abort). ns/op = per timer scheduled.",
        &[
            Case {
                name: "timers",
                ops: 1_000_000,
                unit: "timer",
                max_cpu_ns_per_op: Some(650.0),
                max_peak_mib: Some(180.0),
            },
            Case {
                name: "timers_cancel_half",
                ops: 1_000_000,
                unit: "timer",
                max_cpu_ns_per_op: None,
                max_peak_mib: None,
            },
        ],
        Some("loop_core.py"),
        child,
    );
}

fn child(side: &str, case: &str, n: u64) -> Sample {
    let cancel_half = match case {
        "timers" => false,
        "timers_cancel_half" => true,
        other => panic!("unknown case {other:?}"),
    };
    match side {
        "evloop" => evloop_timers(n, cancel_half),
        "tokio" => tokio_timers(n, cancel_half),
        other => panic!("unknown side {other:?}"),
    }
}

/// Timers with an odd index are the cancelled ones in the `cancel_half` case.
fn expected_fired(n: u64, cancel_half: bool) -> u64 {
    if cancel_half {
        n - n / 2
    } else {
        n
    }
}

fn evloop_timers(n: u64, cancel_half: bool) -> Sample {
    let event_loop = EventLoop::new().expect("EventLoop::new");
    let fired = Rc::new(Cell::new(0u64));
    let expected = expected_fired(n, cancel_half);
    let mut rng = XorShift::new(XorShift::SEED);

    let probe = Probe::start();
    for i in 0..n {
        let delay = rng.delay_below(MAX_DELAY);
        let (fired, stopper) = (fired.clone(), event_loop.clone());
        let handle = event_loop
            .call_later(delay, move || {
                let count = fired.get() + 1;
                fired.set(count);
                if count == expected {
                    stopper.stop();
                }
            })
            .expect("call_later");
        if cancel_half && i % 2 == 1 {
            handle.cancel();
        }
    }
    event_loop.run_forever().expect("run_forever");
    let sample = probe.finish(n);

    assert_eq!(fired.get(), expected, "evloop fired the wrong number of timers");
    let stats = event_loop.stats();
    assert_eq!(stats.timers_fired, expected);
    event_loop.close().expect("close");
    sample
}

struct Shared {
    fired: AtomicU64,
    expected: u64,
    done: tokio::sync::Notify,
}

fn tokio_timers(n: u64, cancel_half: bool) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let shared = Arc::new(Shared {
        fired: AtomicU64::new(0),
        expected: expected_fired(n, cancel_half),
        done: Default::default(),
    });
    let mut rng = XorShift::new(XorShift::SEED);

    let probe = Probe::start();
    runtime.block_on(async {
        for i in 0..n {
            let delay = rng.delay_below(MAX_DELAY);
            let shared = shared.clone();
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let count = shared.fired.fetch_add(1, Ordering::Relaxed) + 1;
                if count == shared.expected {
                    shared.done.notify_one();
                }
            });
            if cancel_half && i % 2 == 1 {
                task.abort();
            }
        }
        shared.done.notified().await;
    });
    let sample = probe.finish(n);

    assert_eq!(
        shared.fired.load(Ordering::Relaxed),
        shared.expected,
        "tokio fired the wrong number of timers"
    );
    drop(runtime);
    sample
}

/// A tiny xorshift64 PRNG (Marsaglia's 13/7/17), so both sides see the same delays without
/// the rand crate.
pub struct XorShift(u64);

impl XorShift {
    /// The fixed seed every bench uses.
    pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A delay uniform in [0, `below`) with nanosecond resolution (multiply-shift, no
    /// modulo bias worth the name).
    pub fn delay_below(&mut self, below: Duration) -> Duration {
        let span = below.as_nanos() as u64;
        Duration::from_nanos(((self.next_u64() as u128 * span as u128) >> 64) as u64)
    }
}
