//! The FIFO queue of parked coroutines that every sync primitive is built on.
//!
//! A waiter is an `Rc` shared by the queue and the future that parked: the primitive
//! grants it something (a permit, a notification, an item) by changing its state and
//! waking it. The future that owns it removes it on drop, and if it was granted something
//! it did not get to use, hands that on, so a cancellation at the moment of a grant loses
//! nothing. Removal is O(n), as in asyncio: cancellation is rare, parking is not.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Waker};

/// One parked coroutine: its waker and a state the primitive defines.
pub(crate) struct Waiter<S> {
    waker: RefCell<Option<Waker>>,
    pub(crate) state: RefCell<S>,
}

impl<S> Waiter<S> {
    pub(crate) fn new(state: S) -> Rc<Waiter<S>> {
        Rc::new(Waiter { waker: RefCell::new(None), state: RefCell::new(state) })
    }

    /// Remembers the task to wake (the latest poll's).
    pub(crate) fn register(&self, cx: &Context<'_>) {
        let mut waker = self.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
    }

    /// Sets the state and wakes the parked task.
    pub(crate) fn grant(&self, state: S) {
        *self.state.borrow_mut() = state;
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Waiters in arrival order.
pub(crate) struct WaitQueue<S> {
    waiters: RefCell<VecDeque<Rc<Waiter<S>>>>,
}

impl<S> Default for WaitQueue<S> {
    fn default() -> Self {
        WaitQueue { waiters: RefCell::new(VecDeque::new()) }
    }
}

impl<S> WaitQueue<S> {
    /// Parks a new waiter at the back.
    pub(crate) fn push(&self, state: S) -> Rc<Waiter<S>> {
        let waiter = Waiter::new(state);
        self.waiters.borrow_mut().push_back(waiter.clone());
        waiter
    }

    /// Takes the longest-waiting waiter off the queue.
    pub(crate) fn pop_front(&self) -> Option<Rc<Waiter<S>>> {
        self.waiters.borrow_mut().pop_front()
    }

    /// Removes `waiter` if it is still queued; true if it was.
    pub(crate) fn remove(&self, waiter: &Rc<Waiter<S>>) -> bool {
        let mut waiters = self.waiters.borrow_mut();
        match waiters.iter().position(|w| Rc::ptr_eq(w, waiter)) {
            Some(at) => {
                waiters.remove(at);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().len()
    }
}
