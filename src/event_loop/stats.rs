//! Counters for people who study the loop: how many iterations, selects, events,
//! callbacks, timers and tasks a run took.

use std::cell::Cell;

/// A snapshot of a loop's counters, from [`EventLoop::stats`](crate::EventLoop::stats).
/// asyncio has no equivalent; these are what NOTES.md uses to trace an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Iterations of `run_once`.
    pub iterations: u64,
    /// Calls to `epoll_wait`. Fewer than iterations: while callbacks are always ready the
    /// loop polls for I/O only every [`POLL_IO_EVERY`](crate::POLL_IO_EVERY) callbacks.
    pub selects: u64,
    /// Events `epoll_wait` reported (the loop's own wake-up eventfd included).
    pub events: u64,
    /// Callbacks run: `call_soon` / timer / fd callbacks, not task steps.
    pub callbacks_run: u64,
    /// Timers scheduled with `call_later` / `call_at`.
    pub timers_scheduled: u64,
    /// Timers that came due and were moved to the ready queue.
    pub timers_fired: u64,
    /// Timers cancelled while still waiting in the heap.
    pub timers_cancelled: u64,
    /// Tasks spawned.
    pub tasks_spawned: u64,
    /// Task steps (polls of a task's coroutine).
    pub task_polls: u64,
    /// Tasks whose coroutine finished, was cancelled or panicked.
    pub tasks_finished: u64,
}

/// The live counters behind [`LoopStats`]: one `Cell` each, so bumping one costs an add.
#[derive(Default)]
pub(crate) struct StatCounters {
    pub iterations: Cell<u64>,
    pub selects: Cell<u64>,
    pub events: Cell<u64>,
    pub callbacks_run: Cell<u64>,
    pub timers_scheduled: Cell<u64>,
    pub timers_fired: Cell<u64>,
    pub timers_cancelled: Cell<u64>,
    pub tasks_spawned: Cell<u64>,
    pub task_polls: Cell<u64>,
    pub tasks_finished: Cell<u64>,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &Cell<u64>, n: u64) {
    counter.set(counter.get() + n);
}

impl StatCounters {
    pub(crate) fn snapshot(&self) -> LoopStats {
        LoopStats {
            iterations: self.iterations.get(),
            selects: self.selects.get(),
            events: self.events.get(),
            callbacks_run: self.callbacks_run.get(),
            timers_scheduled: self.timers_scheduled.get(),
            timers_fired: self.timers_fired.get(),
            timers_cancelled: self.timers_cancelled.get(),
            tasks_spawned: self.tasks_spawned.get(),
            task_polls: self.task_polls.get(),
            tasks_finished: self.tasks_finished.get(),
        }
    }
}
