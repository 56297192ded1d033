//! How a loop is configured before it is made: the deterministic mode's virtual clock,
//! seeded task order, injected socket faults and flight recorder. `EventLoop::new()` is
//! `EventLoop::builder().build()`.

use std::io;

use super::clock::ClockJump;
use super::EventLoop;
use crate::sys::faults::FaultPlan;

/// Builds an [`EventLoop`] (asyncio has `new_event_loop()` only; these options are the
/// deterministic mode, for tests).
///
/// ```
/// use std::time::Duration;
/// let event_loop = evloop::EventLoop::builder().virtual_clock().seed(7).build()?;
/// let start = event_loop.time();
/// event_loop.run_until_complete(evloop::sleep(Duration::from_secs(3600)))?;
/// assert!(event_loop.time() - start >= Duration::from_secs(3600));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventLoopBuilder {
    pub(crate) clock: Option<ClockJump>,
    pub(crate) seed: Option<u64>,
    pub(crate) faults: Option<FaultPlan>,
    pub(crate) recorder: Option<usize>,
}

impl EventLoopBuilder {
    /// A virtual clock that jumps to the next timer when nothing can happen otherwise
    /// ([`ClockJump::WhenNoIo`]): a program that sleeps an hour finishes at once, with
    /// `time()` an hour later.
    pub fn virtual_clock(self) -> EventLoopBuilder {
        self.clock_jump(ClockJump::WhenNoIo)
    }

    /// A virtual clock with the given jump policy.
    pub fn clock_jump(self, policy: ClockJump) -> EventLoopBuilder {
        EventLoopBuilder { clock: Some(policy), ..self }
    }

    /// Runs the tasks woken in one iteration in an order drawn from `seed` instead of
    /// the order they were woken. Callbacks keep their FIFO order, as asyncio promises;
    /// the same seed gives the same order.
    pub fn seed(self, seed: u64) -> EventLoopBuilder {
        EventLoopBuilder { seed: Some(seed), ..self }
    }

    /// Injects the socket faults of `plan` into the socket calls made on the loop's
    /// thread while it runs.
    pub fn faults(self, plan: FaultPlan) -> EventLoopBuilder {
        EventLoopBuilder { faults: Some(plan), ..self }
    }

    /// Records the last `iterations` iterations (see
    /// [`EventLoop::trace`](crate::EventLoop::trace)).
    pub fn flight_recorder(self, iterations: usize) -> EventLoopBuilder {
        EventLoopBuilder { recorder: Some(iterations), ..self }
    }

    /// The loop (asyncio's `new_event_loop`).
    pub fn build(self) -> io::Result<EventLoop> {
        EventLoop::with_options(self)
    }
}
