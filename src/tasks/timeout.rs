//! Time limits: `wait_for` and `timeout` (asyncio's `asyncio.wait_for` and
//! `asyncio.timeout`). Giving up on a future drops it, which cancels the coroutine at its
//! current await point (and, for a [`Task`](super::Task) being awaited, cancels the task).

use std::cell::Cell;
use std::fmt;
use std::future::{poll_fn, Future, IntoFuture};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::sleep::{sleep, Sleep};
use crate::event_loop::get_running_loop;

/// The time limit passed before the future finished (asyncio's `TimeoutError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for TimeoutError {}

/// Awaits `future` for at most `limit` (asyncio's `asyncio.wait_for`). On timeout the
/// future is dropped, cancelling it, and `Err(TimeoutError)` returned. A future that is
/// ready at the same time as the limit wins.
///
/// # Panics
/// Outside a running loop.
pub async fn wait_for<F: IntoFuture>(future: F, limit: Duration) -> Result<F::Output, TimeoutError> {
    let mut future = pin!(future.into_future());
    let mut timer = pin!(sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.as_mut().poll(cx).map(|()| Err(TimeoutError))
    })
    .await
}

/// A deadline for a block of async code, which the block itself may move (asyncio's
/// `asyncio.timeout` context manager). Clone it into the block to `reschedule` it.
///
/// ```
/// use std::time::Duration;
/// let result = evloop::run(async {
///     let scope = evloop::timeout(Duration::from_millis(5));
///     scope.run(evloop::sleep(Duration::from_secs(3600))).await
/// })?;
/// assert_eq!(result, Err(evloop::TimeoutError));
/// # Ok::<(), evloop::RunError>(())
/// ```
#[derive(Clone)]
pub struct Timeout {
    deadline: Rc<Cell<Option<Instant>>>,
    expired: Rc<Cell<bool>>,
    /// The block's task, woken by `reschedule` so a moved deadline takes effect at once.
    waker: Rc<Cell<Option<Waker>>>,
}

/// A [`Timeout`] `delay` from now (asyncio's `asyncio.timeout(delay)`).
///
/// # Panics
/// Outside a running loop.
pub fn timeout(delay: Duration) -> Timeout {
    let now = get_running_loop().expect("timeout called outside a running event loop").time();
    timeout_at(Some(now + delay))
}

/// A [`Timeout`] at loop time `when`, or none for `None` (asyncio's `asyncio.timeout_at`).
pub fn timeout_at(when: Option<Instant>) -> Timeout {
    Timeout { deadline: Rc::new(Cell::new(when)), expired: Rc::new(Cell::new(false)), waker: Rc::default() }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("when", &self.deadline.get())
            .field("expired", &self.expired.get())
            .finish()
    }
}

impl Timeout {
    /// Runs `block` under this deadline: its output, or `Err(TimeoutError)` if the
    /// deadline passed first (the block is then dropped, cancelling it).
    pub async fn run<F: Future>(&self, block: F) -> Result<F::Output, TimeoutError> {
        let mut block = pin!(block);
        let mut armed: Option<(Instant, std::pin::Pin<Box<Sleep>>)> = None;
        poll_fn(|cx| {
            if let Poll::Ready(output) = block.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            self.waker.set(Some(cx.waker().clone()));
            let Some(deadline) = self.deadline.get() else { return Poll::Pending };
            if armed.as_ref().is_none_or(|(at, _)| *at != deadline) {
                let now = get_running_loop().expect("timeout polled outside a running event loop").time();
                armed = Some((deadline, Box::pin(sleep(deadline.saturating_duration_since(now)))));
            }
            let (_, timer) = armed.as_mut().expect("armed above");
            let now = get_running_loop().expect("timeout polled outside a running event loop").time();
            if timer.as_mut().poll(cx).is_ready() || deadline <= now {
                self.expired.set(true);
                return Poll::Ready(Err(TimeoutError));
            }
            Poll::Pending
        })
        .await
    }

    /// Moves the deadline (asyncio's `Timeout.reschedule`); `None` removes it.
    pub fn reschedule(&self, when: Option<Instant>) {
        self.deadline.set(when);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// The current deadline (asyncio's `Timeout.when`).
    pub fn when(&self) -> Option<Instant> {
        self.deadline.get()
    }

    /// True if the deadline passed while a block ran (asyncio's `Timeout.expired`).
    pub fn expired(&self) -> bool {
        self.expired.get()
    }
}
