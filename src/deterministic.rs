//! Using the deterministic mode from a test: the seed to run with, and the seed printed
//! when the test fails (NOTES.md, chapter 5). asyncio has no such mode.
//!
//! The mode itself is configured on the loop: [`EventLoop::builder`] with
//! [`virtual_clock`](crate::EventLoopBuilder::virtual_clock),
//! [`seed`](crate::EventLoopBuilder::seed), [`faults`](crate::EventLoopBuilder::faults) and
//! [`flight_recorder`](crate::EventLoopBuilder::flight_recorder). In short:
//!
//! ```
//! use std::time::Duration;
//! use evloop::{deterministic, sleep, EventLoop};
//!
//! deterministic::report_seed(42, |seed| {
//!     let event_loop = EventLoop::builder().virtual_clock().seed(seed).build().unwrap();
//!     let start = event_loop.time();
//!     event_loop.run_until_complete(sleep(Duration::from_secs(86_400))).unwrap();
//!     assert_eq!(event_loop.time() - start, Duration::from_secs(86_400));
//!     event_loop.assert_quiescent();
//! });
//! ```
//!
//! A complete property test of one's own async code in this mode, to copy (with proptest
//! in your dev-dependencies). Write `#[test]` before the `fn` inside `proptest!` to make it
//! a test; here, in the docs, it is called by hand:
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! use evloop::{create_task, deterministic, gather, sleep, EventLoop};
//! use proptest::prelude::*;
//!
//! /// The code under test: one task per delay, each noting its index when it wakes.
//! async fn wake_order(delays_ms: Vec<u64>) -> Vec<usize> {
//!     let woke = Rc::new(RefCell::new(Vec::new()));
//!     let tasks: Vec<_> = delays_ms
//!         .iter()
//!         .enumerate()
//!         .map(|(index, &ms)| {
//!             let woke = woke.clone();
//!             create_task(async move {
//!                 sleep(Duration::from_millis(ms)).await;
//!                 woke.borrow_mut().push(index);
//!             })
//!         })
//!         .collect();
//!     gather(tasks).await.unwrap();
//!     woke.take()
//! }
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(32))]
//!     fn tasks_wake_in_deadline_order(
//!         seed in any::<u64>(),
//!         delays_ms in prop::collection::vec(0u64..86_400_000, 1..20),
//!     ) {
//!         deterministic::report_seed(seed, |seed| {
//!             let event_loop = EventLoop::builder().virtual_clock().seed(seed).build().unwrap();
//!             let order = event_loop.run_until_complete(wake_order(delays_ms.clone())).unwrap();
//!             // Distinct deadlines wake in deadline order whatever the seed; equal ones may
//!             // wake in any order the seed picks.
//!             for pair in order.windows(2) {
//!                 assert!(delays_ms[pair[0]] <= delays_ms[pair[1]], "{order:?} for {delays_ms:?}");
//!             }
//!             event_loop.assert_quiescent();
//!         });
//!     }
//! }
//!
//! tasks_wake_in_deadline_order();
//! ```
//!
//! `tests/example_user_property.rs` is a longer one (a job runner with a concurrency
//! limit), run with the other tests.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

#[cfg(doc)]
use crate::EventLoop;

/// The environment variable [`seed_from_env`] reads, to replay a failing seed.
pub const SEED_VARIABLE: &str = "EVLOOP_SEED";

/// The seed in `EVLOOP_SEED` (decimal, or hexadecimal after `0x`) if it is set, else
/// `default`: how a test replays the seed a failure printed.
///
/// # Panics
/// If `EVLOOP_SEED` is set but is not a number, rather than silently testing another seed.
pub fn seed_from_env(default: u64) -> u64 {
    let Ok(text) = std::env::var(SEED_VARIABLE) else { return default };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{SEED_VARIABLE}={text:?} is not a seed"))
}

/// Runs `body` with `seed` (or the one `EVLOOP_SEED` names); if it panics, prints the seed
/// and how to replay it to stderr, then lets the panic go on.
pub fn report_seed<T>(seed: u64, body: impl FnOnce(u64) -> T) -> T {
    let seed = seed_from_env(seed);
    match catch_unwind(AssertUnwindSafe(|| body(seed))) {
        Ok(value) => value,
        Err(panic) => {
            eprintln!("evloop: failed with seed {seed:#x}; replay it with {SEED_VARIABLE}={seed:#x}");
            resume_unwind(panic)
        }
    }
}
