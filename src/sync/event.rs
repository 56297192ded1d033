//! `Event`: asyncio's one-bit broadcast for coroutines.
//!
//! Waiting allocates nothing: a waiter notes the event's generation (how many times it
//! has been set) and parks its waker in the event's list; it is done once the generation
//! has moved on. So a waiter woken by `set` returns even if `clear` ran before it resumed,
//! as in asyncio, where the waiter's future was already resolved.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A flag coroutines can wait for (asyncio's `asyncio.Event`). `set` wakes every waiter.
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
    generation: Cell<u64>,
    next_waiter: Cell<u64>,
    waiters: RefCell<VecDeque<(u64, Waker)>>,
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
        self.generation.set(self.generation.get() + 1);
        // Waiters wake in the order they came; no borrow is held while a waker runs.
        loop {
            let next = self.waiters.borrow_mut().pop_front();
            match next {
                Some((_, waker)) => waker.wake(),
                None => break,
            }
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
        EventWait { event: self, parked: None }
    }

    fn park(&self, id: u64, cx: &Context<'_>) {
        let mut waiters = self.waiters.borrow_mut();
        match waiters.iter_mut().find(|(i, _)| *i == id) {
            Some((_, waker)) if waker.will_wake(cx.waker()) => {}
            Some((_, waker)) => *waker = cx.waker().clone(),
            None => waiters.push_back((id, cx.waker().clone())),
        }
    }

    fn unpark(&self, id: u64) {
        self.waiters.borrow_mut().retain(|(i, _)| *i != id);
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.flag.get())
            .field("waiters", &self.waiters.borrow().len())
            .finish()
    }
}

/// The future of [`Event::wait`].
pub struct EventWait<'a> {
    event: &'a Event,
    /// (waiter id, generation when it parked)
    parked: Option<(u64, u64)>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let event = self.event;
        let (id, generation) = match self.parked {
            None if event.is_set() => return Poll::Ready(()),
            None => {
                let id = event.next_waiter.get();
                event.next_waiter.set(id + 1);
                (id, event.generation.get())
            }
            Some((_, generation)) if generation != event.generation.get() => {
                self.parked = None;
                return Poll::Ready(());
            }
            Some(parked) => parked,
        };
        event.park(id, cx);
        self.parked = Some((id, generation));
        Poll::Pending
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some((id, generation)) = self.parked {
            if generation == self.event.generation.get() {
                self.event.unpark(id);
            }
        }
    }
}
