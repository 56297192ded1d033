//! The thread-safe way into a loop: `call_soon_threadsafe`, and task wake-ups that come
//! from other threads.
//!
//! Other threads push onto a mutex-protected injection queue and, unless a notification is
//! already pending, write the loop's eventfd so that an `epoll_wait` in progress returns.
//! The loop checks one atomic flag per iteration and only then takes the lock.
//! Nothing pushed while the loop is open is ever lost: the flag is set after the push and
//! cleared before the queue is taken.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::task_slab::TaskId;
use super::LoopError;
use crate::sys::eventfd::EventFd;

/// One thing another thread asked of the loop.
pub(crate) enum Injected {
    /// A `call_soon_threadsafe` callback and where it was scheduled.
    Callback(Box<dyn FnOnce() + Send>, &'static Location<'static>),
    /// A task's waker was woken on another thread.
    Wake(TaskId),
}

/// The state shared between a loop and every [`RemoteLoop`] pointing at it.
pub(crate) struct RemoteShared {
    queue: Mutex<Vec<Injected>>,
    notified: AtomicBool,
    closed: AtomicBool,
    clock_holds: AtomicUsize,
    eventfd: EventFd,
}

impl RemoteShared {
    pub(crate) fn new() -> std::io::Result<RemoteShared> {
        Ok(RemoteShared {
            queue: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            clock_holds: AtomicUsize::new(0),
            eventfd: EventFd::new()?,
        })
    }

    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Injected>> {
        // A panic while holding this lock cannot leave the Vec inconsistent: recover it.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` and wakes the loop if it is not already due to wake.
    pub(crate) fn push(&self, item: Injected) -> Result<(), LoopError> {
        {
            let mut queue = self.lock();
            if self.closed.load(Ordering::Acquire) {
                return Err(LoopError::Closed);
            }
            queue.push(item);
        }
        self.notify();
        Ok(())
    }

    /// Wakes the loop if it is not already due to wake.
    fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // The eventfd cannot fail to count unless the fd is gone, i.e. the loop closed.
            let _ = self.eventfd.notify();
        }
    }

    /// True if something was pushed since the last [`take`](Self::take): one atomic load,
    /// what the loop pays per iteration when no other thread talks to it.
    pub(crate) fn has_pending(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// True if something pushed has not been taken yet. Exact, unlike
    /// [`has_pending`](Self::has_pending), which may stay set for one iteration after a
    /// [`take`](Self::take) that raced with a push took the pushed item too; it locks.
    pub(crate) fn has_queued(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Moves everything queued into `into` (which should be empty); true if anything was
    /// notified since the last call.
    pub(crate) fn take(&self, into: &mut Vec<Injected>) -> bool {
        if !self.notified.swap(false, Ordering::AcqRel) {
            return false;
        }
        let _ = self.eventfd.drain();
        std::mem::swap(&mut *self.lock(), into);
        true
    }

    /// How many [`ClockHold`]s are alive. Read before the loop polls for what other
    /// threads sent: a holder pushes its result before it lets go, so a loop that reads
    /// zero here finds that result in the poll that follows.
    pub(crate) fn clock_holds(&self) -> usize {
        self.clock_holds.load(Ordering::SeqCst)
    }

    /// Refuses further pushes and returns what was still queued, for the caller to drop.
    pub(crate) fn close(&self) -> Vec<Injected> {
        let mut queue = self.lock();
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *queue)
    }
}

/// A `Send + Sync + Clone` handle to an [`EventLoop`](crate::EventLoop), usable from any
/// thread: the only safe way to reach a loop from outside its own thread (asyncio's
/// `loop.call_soon_threadsafe`). Get one with [`EventLoop::remote`](crate::EventLoop::remote).
#[derive(Clone)]
pub struct RemoteLoop {
    shared: Arc<RemoteShared>,
}

impl RemoteLoop {
    pub(crate) fn new(shared: Arc<RemoteShared>) -> RemoteLoop {
        RemoteLoop { shared }
    }

    /// Schedules `f` to run on the loop's thread in a coming iteration, waking the loop
    /// if it is sleeping in `epoll_wait` (asyncio's `loop.call_soon_threadsafe`).
    /// Calls from one thread run in the order they were made.
    /// Fails with [`LoopError::Closed`] once the loop is closed.
    #[track_caller]
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> Result<(), LoopError> {
        self.shared.push(Injected::Callback(Box::new(f), Location::caller()))
    }

    /// Keeps a virtual clock from jumping while the returned guard lives: for work on
    /// another thread whose result the loop awaits (the executor takes one per job), so
    /// that a timeout does not fire in virtual time before the work had a real chance.
    /// Without a virtual clock it does nothing.
    pub fn hold_clock(&self) -> ClockHold {
        self.shared.clock_holds.fetch_add(1, Ordering::SeqCst);
        ClockHold { shared: self.shared.clone() }
    }

    /// True once the loop was closed; calls are refused from then on.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for RemoteLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteLoop").field("closed", &self.is_closed()).finish()
    }
}

/// Keeps the loop's virtual clock from jumping ahead while it lives (see
/// [`RemoteLoop::hold_clock`]). `Send`, so the thread doing the work can drop it when done.
#[must_use = "the clock is held only while the guard lives"]
pub struct ClockHold {
    shared: Arc<RemoteShared>,
}

impl Drop for ClockHold {
    fn drop(&mut self) {
        if self.shared.clock_holds.fetch_sub(1, Ordering::SeqCst) == 1 {
            // A loop waiting for real because of this hold may now jump: make it look again.
            self.shared.notify();
        }
    }
}

impl fmt::Debug for ClockHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockHold")
    }
}
