//! Leak checks as an API: is anything still alive on the loop? (No asyncio equivalent;
//! asyncio's test suite checks the same things by hand in `tearDown`.)

use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;

use super::{EventLoop, Runnable};

/// What was still alive on a loop that should have been quiescent, from
/// [`EventLoop::check_quiescent`](crate::EventLoop::check_quiescent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotQuiescent {
    /// Fds with a reader or writer registered.
    pub watched_fds: Vec<RawFd>,
    /// Timers scheduled and not cancelled (`call_later`, `sleep`, timeouts).
    pub pending_timers: usize,
    /// Callbacks on the ready queue, not cancelled, and where they were scheduled.
    pub ready_callbacks: Vec<&'static Location<'static>>,
    /// Tasks not finished, and where they were created.
    pub live_tasks: Vec<&'static Location<'static>>,
    /// True if another thread sent something the loop has not taken yet.
    pub injected_pending: bool,
    /// [`ClockHold`](crate::ClockHold)s alive (executor jobs in flight, say).
    pub clock_holds: usize,
}

impl NotQuiescent {
    /// True if nothing at all is alive.
    pub fn is_empty(&self) -> bool {
        *self == NotQuiescent::default()
    }
}

impl fmt::Display for NotQuiescent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop is not quiescent:")?;
        if !self.watched_fds.is_empty() {
            write!(f, " fds still watched {:?};", self.watched_fds)?;
        }
        if self.pending_timers > 0 {
            write!(f, " {} timer(s) pending;", self.pending_timers)?;
        }
        for origin in &self.ready_callbacks {
            write!(f, " callback from {origin} ready;")?;
        }
        for origin in &self.live_tasks {
            write!(f, " task created at {origin} alive;")?;
        }
        if self.injected_pending {
            f.write_str(" a call from another thread not yet taken;")?;
        }
        if self.clock_holds > 0 {
            write!(f, " {} clock hold(s) alive;", self.clock_holds)?;
        }
        Ok(())
    }
}

impl std::error::Error for NotQuiescent {}

impl EventLoop {
    /// Everything still alive on the loop: watched fds, pending timers, ready callbacks,
    /// live tasks, calls from other threads not yet taken, clock holds. `Ok` if there is
    /// nothing, which is how a test shows that the code under test cleaned up after itself.
    pub fn check_quiescent(&self) -> Result<(), NotQuiescent> {
        let inner = &*self.inner;
        let ready_callbacks = inner
            .ready
            .borrow()
            .iter()
            .filter_map(|runnable| match runnable {
                Runnable::Callback(callback) if !callback.state().is_cancelled() => {
                    Some(callback.state().origin())
                }
                _ => None,
            })
            .collect();
        let report = NotQuiescent {
            watched_fds: inner.fds.borrow().watched_fds(),
            pending_timers: inner.timers.len() - inner.timers.cancelled_count(),
            ready_callbacks,
            live_tasks: inner.tasks.borrow().all().iter().map(|task| task.created_at()).collect(),
            injected_pending: inner.remote.has_queued(),
            clock_holds: inner.remote.clock_holds(),
        };
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }

    /// Panics with the list of what is still alive unless the loop is quiescent (see
    /// [`check_quiescent`](Self::check_quiescent)): the last line of a property test.
    #[track_caller]
    pub fn assert_quiescent(&self) {
        if let Err(alive) = self.check_quiescent() {
            panic!("{alive}");
        }
    }
}
