//! `Future<T>`: asyncio's `asyncio.Future`, a cell for a result that arrives later.
//!
//! This is the bridge between the callback world and coroutines. A callback (a reader
//! firing, a timer) calls [`Future::set_result`]; a coroutine that awaits the future is
//! woken and resumes with the value. Done-callbacks are scheduled with `call_soon`, as
//! asyncio does, never run inline.
//!
//! ```
//! use std::time::Duration;
//! let event_loop = evloop::EventLoop::new()?;
//! let future = event_loop.create_future::<&str>();
//! let setter = future.clone();
//! event_loop.call_later(Duration::from_millis(1), move || {
//!     setter.set_result("done").unwrap();
//! })?;
//! let value = event_loop.run_until_complete(async move { future.await })?;
//! assert_eq!(value, Ok("done"));
//! event_loop.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::event_loop::EventLoop;

/// Why a [`Future`] gave no value (asyncio's `CancelledError` and `InvalidStateError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FutureError {
    /// The future was cancelled.
    Cancelled,
    /// The operation does not fit the future's state, e.g. setting a result twice,
    /// asking for a result that is not there yet, or awaiting a value already taken.
    InvalidState(&'static str),
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("future was cancelled"),
            FutureError::InvalidState(why) => write!(f, "invalid future state: {why}"),
        }
    }
}

impl std::error::Error for FutureError {}

/// Identifies a done-callback so it can be removed again (asyncio removes by function
/// identity; Rust closures have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DoneCallbackId(u64);

enum State<T> {
    Pending,
    Done(T),
    Cancelled,
    Taken,
}

type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

struct Shared<T> {
    event_loop: EventLoop,
    state: RefCell<State<T>>,
    waiters: RefCell<Vec<Waker>>,
    callbacks: RefCell<Vec<(DoneCallbackId, DoneCallback<T>)>>,
    next_callback_id: Cell<u64>,
}

/// A result that a callback sets and a coroutine awaits (asyncio's `asyncio.Future`).
///
/// Cloning gives another handle to the same cell. Awaiting it yields
/// `Ok(value)`, moving the value out, or `Err(FutureError::Cancelled)`; a second await of
/// a taken value is `Err(InvalidState)`. Use [`result`](Self::result) to read a value
/// without taking it.
pub struct Future<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future { shared: self.shared.clone() }
    }
}

impl EventLoop {
    /// A new pending future tied to this loop (asyncio's `loop.create_future`).
    pub fn create_future<T: 'static>(&self) -> Future<T> {
        Future {
            shared: Rc::new(Shared {
                event_loop: self.clone(),
                state: RefCell::new(State::Pending),
                waiters: RefCell::new(Vec::new()),
                callbacks: RefCell::new(Vec::new()),
                next_callback_id: Cell::new(0),
            }),
        }
    }
}

impl<T: 'static> Future<T> {
    /// Completes the future with `value`, waking its awaiters and scheduling its
    /// done-callbacks (asyncio's `Future.set_result`). An error if it is already done.
    pub fn set_result(&self, value: T) -> Result<(), FutureError> {
        self.finish(State::Done(value))
    }

    /// Cancels the future if it is pending; true if it did (asyncio's `Future.cancel`).
    pub fn cancel(&self) -> bool {
        self.finish(State::Cancelled).is_ok()
    }

    fn finish(&self, outcome: State<T>) -> Result<(), FutureError> {
        {
            let mut state = self.shared.state.borrow_mut();
            if !matches!(*state, State::Pending) {
                return Err(FutureError::InvalidState("the future is already done"));
            }
            *state = outcome;
        }
        let waiters = std::mem::take(&mut *self.shared.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
        let callbacks = std::mem::take(&mut *self.shared.callbacks.borrow_mut());
        for (_, callback) in callbacks {
            self.schedule_callback(callback);
        }
        Ok(())
    }

    fn schedule_callback(&self, callback: DoneCallback<T>) {
        let future = self.clone();
        // A closed loop drops the callback, as asyncio's would raise and lose it.
        let _ = self.shared.event_loop.call_soon(move || callback(&future));
    }

    /// True once it has a result or was cancelled (asyncio's `Future.done`).
    pub fn done(&self) -> bool {
        !matches!(*self.shared.state.borrow(), State::Pending)
    }

    /// True if it was cancelled (asyncio's `Future.cancelled`).
    pub fn cancelled(&self) -> bool {
        matches!(*self.shared.state.borrow(), State::Cancelled)
    }

    /// Runs `callback` (through `call_soon`) once the future is done, at once if it is
    /// done already (asyncio's `Future.add_done_callback`).
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + 'static) -> DoneCallbackId {
        let id = DoneCallbackId(self.shared.next_callback_id.get());
        self.shared.next_callback_id.set(id.0 + 1);
        if self.done() {
            self.schedule_callback(Box::new(callback));
        } else {
            self.shared.callbacks.borrow_mut().push((id, Box::new(callback)));
        }
        id
    }

    /// Removes a done-callback that has not been scheduled yet; returns how many were
    /// removed, 0 or 1 (asyncio's `Future.remove_done_callback`).
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> usize {
        let removed = {
            let mut callbacks = self.shared.callbacks.borrow_mut();
            callbacks.iter().position(|(i, _)| *i == id).map(|at| callbacks.remove(at))
        };
        usize::from(removed.is_some())
    }

    /// The value, if it has one and it was not taken by an await (asyncio's
    /// `Future.result`): `Cancelled` if cancelled, `InvalidState` if not done.
    pub fn result(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        match &*self.shared.state.borrow() {
            State::Done(value) => Ok(value.clone()),
            State::Cancelled => Err(FutureError::Cancelled),
            State::Pending => Err(FutureError::InvalidState("the result is not set yet")),
            State::Taken => Err(FutureError::InvalidState("the result was taken by an await")),
        }
    }

    /// The loop this future belongs to (asyncio's `Future.get_loop`).
    pub fn get_loop(&self) -> EventLoop {
        self.shared.event_loop.clone()
    }
}

impl<T: 'static> std::future::Future for Future<T> {
    type Output = Result<T, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(value) => Poll::Ready(Ok(value)),
            State::Cancelled => {
                *state = State::Cancelled;
                Poll::Ready(Err(FutureError::Cancelled))
            }
            State::Taken => {
                Poll::Ready(Err(FutureError::InvalidState("the result was taken by an earlier await")))
            }
            State::Pending => {
                *state = State::Pending;
                let mut waiters = self.shared.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.shared.state.borrow() {
            State::Pending => "pending",
            State::Done(_) => "done",
            State::Cancelled => "cancelled",
            State::Taken => "done (taken)",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}
