//! A future kept in place next to other data, in one shared allocation.
//!
//! A task is polled by the loop and inspected by its handles, so it lives behind an `Rc`;
//! its coroutine must not move once polled. Boxing the coroutine separately would be safe
//! without this module, but costs a second allocation and a cache miss per task step,
//! which a million sleeping tasks measured. This is the one pin projection that needs
//! `unsafe`, kept here with the rest of it.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// `extra` beside a future that stays where it is from its first poll to its drop.
/// It can only be created behind a pinned `Rc`, and never hands the future out.
pub struct PinnedFuture<X, F> {
    extra: X,
    future: RefCell<Option<F>>,
    _pinned: PhantomPinned,
}

impl<X, F: Future> PinnedFuture<X, F> {
    /// Puts `extra` and `future` in a new pinned `Rc`.
    pub fn new(extra: X, future: F) -> Pin<Rc<Self>> {
        Rc::pin(PinnedFuture { extra, future: RefCell::new(Some(future)), _pinned: PhantomPinned })
    }

    /// The data beside the future.
    pub fn extra(&self) -> &X {
        &self.extra
    }

    /// Polls the future where it lies. `None` if it is gone (dropped by
    /// [`drop_future`](Self::drop_future)) or is being polled already.
    pub fn poll(self: Pin<&Self>, cx: &mut Context<'_>) -> Option<Poll<F::Output>> {
        let mut slot = self.get_ref().future.try_borrow_mut().ok()?;
        let future = slot.as_mut()?;
        // SAFETY: `self` is pinned and `PinnedFuture` is `!Unpin`, so the slot is not moved
        // before it is dropped. Nothing moves the future out of the slot: it is only ever
        // reached here, as a pinned reference, and dropped in place by `drop_future`.
        let future = unsafe { Pin::new_unchecked(future) };
        Some(future.poll(cx))
    }

    /// Drops the future in place (assigning `None` runs its destructor where it lies).
    /// False if it is being polled right now and so cannot be dropped.
    pub fn drop_future(self: Pin<&Self>) -> bool {
        match self.get_ref().future.try_borrow_mut() {
            Ok(mut slot) => {
                *slot = None;
                true
            }
            Err(_) => false,
        }
    }
}
