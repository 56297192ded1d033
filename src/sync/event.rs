//! `Event`: asyncio's one-bit broadcast for coroutines.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{WaitQueue, Waiter};

/// A flag coroutines can wait for (asyncio's `asyncio.Event`). `set` wakes every waiter;
/// a waiter woken by `set` returns even if the flag is cleared again before it runs, as in
/// asyncio.
///
/// ```
/// use std::rc::Rc;
/// let event = Rc::new(evloop::sync::Event::new());
/// evloop::run(async move {
///     let setter = event.clone();
///     evloop::create_task(async move { setter.set() });
///     event.wait().await;
///     assert!(event.is_set());
/// })?;
/// # Ok::<(), evloop::RunError>(())
/// ```
#[derive(Default)]
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitQueue<bool>,
}

impl Event {
    /// An event that is not set.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter (asyncio's `Event.set`).
    pub fn set(&self) {
        if self.flag.replace(true) {
            return;
        }
        while let Some(waiter) = self.waiters.pop_front() {
            waiter.grant(true);
        }
    }

    /// Clears the flag (asyncio's `Event.clear`).
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// True if set (asyncio's `Event.is_set`).
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Waits until the flag is set; returns at once if it is (asyncio's `Event.wait`).
    pub fn wait(&self) -> EventWait<'_> {
        EventWait { event: self, waiter: None }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.flag.get()).field("waiters", &self.waiters.len()).finish()
    }
}

/// The future of [`Event::wait`].
pub struct EventWait<'a> {
    event: &'a Event,
    waiter: Option<Rc<Waiter<bool>>>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let woken = match &self.waiter {
            None => self.event.is_set(),
            Some(waiter) => *waiter.state.borrow(),
        };
        if woken {
            self.waiter = None;
            return Poll::Ready(());
        }
        let event = self.event;
        self.waiter.get_or_insert_with(|| event.waiters.push(false)).register(cx);
        Poll::Pending
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            self.event.waiters.remove(&waiter);
        }
    }
}
