//! The loop's clock: the real monotonic clock, or a virtual one for tests.
//!
//! A virtual clock stands still while callbacks run and moves only between iterations:
//! when the loop has nothing ready and may not hear from the outside world, it jumps
//! straight to the next timer instead of sleeping, so an hour of `sleep` takes no time.
//! When the outside world may still speak (an fd is watched, or another thread holds the
//! clock), it does not jump: the loop waits in `epoll_wait` for real and the clock moves
//! on by the time really waited. A test with a live socket therefore never sees a timeout
//! that the socket had no chance to beat. tokio's paused clock jumps whenever its runtime
//! is idle, I/O or not (tokio issues #4522 and #8232); here the default is the careful
//! policy and jumping regardless is the opt-in [`ClockJump::Always`].

use std::cell::Cell;
use std::time::{Duration, Instant};

/// When a virtual clock may jump ahead to the next timer instead of waiting
/// (no asyncio equivalent: asyncio tests use a mocked `loop.time()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockJump {
    /// Only when no fd is watched and no [`ClockHold`](crate::ClockHold) is alive: nothing
    /// outside the loop can then make progress, so waiting would only waste real time.
    /// Otherwise the loop waits for real and the clock moves by the time waited.
    #[default]
    WhenNoIo,
    /// Whenever nothing is ready, even with fds watched: for programs whose I/O all
    /// happens inside the loop's own thread (a socketpair the program both writes and
    /// reads, say), where a watched fd that is not ready will not become ready by waiting.
    Always,
}

/// The clock behind [`EventLoop::time`](crate::EventLoop::time).
pub(crate) enum Clock {
    Real,
    Virtual { now: Cell<Instant>, jump: ClockJump },
}

impl Clock {
    /// A virtual clock that starts at the real clock's present reading.
    pub(crate) fn virtual_from_now(jump: ClockJump) -> Clock {
        Clock::Virtual { now: Cell::new(Instant::now()), jump }
    }

    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Virtual { now, .. } => now.get(),
        }
    }

    /// The jump policy, or `None` for the real clock.
    pub(crate) fn jump_policy(&self) -> Option<ClockJump> {
        match self {
            Clock::Real => None,
            Clock::Virtual { jump, .. } => Some(*jump),
        }
    }

    /// Moves a virtual clock forward by `by` (the real clock moves by itself).
    pub(crate) fn advance(&self, by: Duration) {
        if let Clock::Virtual { now, .. } = self {
            now.set(now.get() + by);
        }
    }
}
