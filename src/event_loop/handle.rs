//! Callback handles: what `call_soon`, `call_later` and `call_at` return (asyncio's `Handle`
//! and `TimerHandle`), and the shared cell that the ready queue and the timer heap hold.
//!
//! A scheduled callback is one heap allocation: an `Rc` holding the closure, its
//! cancelled flag and where it was scheduled. The handle returned to the user and the
//! entry in the ready queue or timer heap are two `Rc` clones of that one cell.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::LoopInner;
use crate::timer::TimerKey;

/// A callback as the loop stores it: run it, cancel it, ask where it came from.
pub(crate) trait Callback {
    /// Runs the callback. A one-shot callback runs at most once; later calls do nothing.
    fn run(&self);
    /// The bookkeeping every callback carries.
    fn state(&self) -> &CallbackState;
}

/// The flags and origin shared by every kind of callback.
pub(crate) struct CallbackState {
    cancelled: Cell<bool>,
    in_timer_heap: Cell<bool>,
    origin: &'static Location<'static>,
}

impl CallbackState {
    fn new(origin: &'static Location<'static>) -> CallbackState {
        CallbackState { cancelled: Cell::new(false), in_timer_heap: Cell::new(false), origin }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    /// Marks it cancelled; true if this call did it (it was not cancelled before).
    pub(crate) fn cancel(&self) -> bool {
        !self.cancelled.replace(true)
    }

    /// Where `call_soon` / `call_later` / `add_reader` ... was called for this callback.
    pub(crate) fn origin(&self) -> &'static Location<'static> {
        self.origin
    }

    pub(crate) fn set_in_timer_heap(&self, in_heap: bool) {
        self.in_timer_heap.set(in_heap);
    }

    pub(crate) fn in_timer_heap(&self) -> bool {
        self.in_timer_heap.get()
    }
}

/// A callback that runs once (`call_soon`, `call_later`, `call_at`).
struct OnceCallback<F> {
    state: CallbackState,
    f: Cell<Option<F>>,
}

impl<F: FnOnce()> Callback for OnceCallback<F> {
    fn run(&self) {
        if let Some(f) = self.f.take() {
            f()
        }
    }

    fn state(&self) -> &CallbackState {
        &self.state
    }
}

/// A callback that runs every time its fd is ready (`add_reader`, `add_writer`).
struct RepeatingCallback<F> {
    state: CallbackState,
    f: RefCell<F>,
}

impl<F: FnMut()> Callback for RepeatingCallback<F> {
    fn run(&self) {
        // A reader that (oddly) re-enters itself is skipped rather than aliased.
        if let Ok(mut f) = self.f.try_borrow_mut() {
            (f)()
        }
    }

    fn state(&self) -> &CallbackState {
        &self.state
    }
}

pub(crate) fn once(f: impl FnOnce() + 'static, origin: &'static Location<'static>) -> Rc<dyn Callback> {
    Rc::new(OnceCallback { state: CallbackState::new(origin), f: Cell::new(Some(f)) })
}

pub(crate) fn repeating(f: impl FnMut() + 'static, origin: &'static Location<'static>) -> Rc<dyn Callback> {
    Rc::new(RepeatingCallback { state: CallbackState::new(origin), f: RefCell::new(f) })
}

/// A callback scheduled with [`EventLoop::call_soon`](crate::EventLoop::call_soon)
/// (asyncio's `asyncio.Handle`). Dropping it does not cancel the callback.
#[derive(Clone)]
pub struct Handle {
    callback: Rc<dyn Callback>,
}

impl Handle {
    pub(crate) fn new(callback: Rc<dyn Callback>) -> Handle {
        Handle { callback }
    }

    /// Cancels the callback if it has not run yet (asyncio's `Handle.cancel`).
    /// Cancelling twice, or after it ran, does nothing.
    pub fn cancel(&self) {
        self.callback.state().cancel();
    }

    /// True once [`cancel`](Self::cancel) was called (asyncio's `Handle.cancelled`).
    pub fn cancelled(&self) -> bool {
        self.callback.state().is_cancelled()
    }

    /// Where the callback was scheduled (asyncio shows this in debug mode).
    pub fn scheduled_at(&self) -> &'static Location<'static> {
        self.callback.state().origin()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("scheduled_at", &self.scheduled_at())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// A callback scheduled for a point in time with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`] (asyncio's `asyncio.TimerHandle`). Dropping it does not cancel it.
///
/// [`EventLoop::call_later`]: crate::EventLoop::call_later
/// [`EventLoop::call_at`]: crate::EventLoop::call_at
#[derive(Clone)]
pub struct TimerHandle {
    callback: Rc<dyn Callback>,
    key: TimerKey,
    when: Instant,
    event_loop: Weak<LoopInner>,
}

impl TimerHandle {
    pub(crate) fn new(
        callback: Rc<dyn Callback>,
        key: TimerKey,
        when: Instant,
        event_loop: Weak<LoopInner>,
    ) -> TimerHandle {
        TimerHandle { callback, key, when, event_loop }
    }

    /// Cancels the timer if it has not fired yet (asyncio's `TimerHandle.cancel`). O(1):
    /// the heap entry is discarded lazily, and the heap compacted when mostly cancelled.
    pub fn cancel(&self) {
        let state = self.callback.state();
        if state.cancel() && state.in_timer_heap() {
            if let Some(inner) = self.event_loop.upgrade() {
                inner.cancel_timer(self.key);
            }
        }
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.callback.state().is_cancelled()
    }

    /// The loop time at which the callback is due (asyncio's `TimerHandle.when`).
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Where the callback was scheduled.
    pub fn scheduled_at(&self) -> &'static Location<'static> {
        self.callback.state().origin()
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("when", &self.when)
            .field("scheduled_at", &self.scheduled_at())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
