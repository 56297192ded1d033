//! Which of a group of tasks finished, in the order they finished: the shared machinery of
//! `gather`, `wait` and `as_completed`.
//!
//! Each watched task gets a done-hook that pushes its index here and wakes the waiting
//! coroutine, so the combinator touches only tasks that finished: O(n) for n tasks rather
//! than a rescan of all of them on every wake-up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::task::TaskHeader;

#[derive(Default)]
pub(crate) struct Completions {
    finished: RefCell<VecDeque<usize>>,
    waker: RefCell<Option<Waker>>,
}

impl Completions {
    pub(crate) fn new() -> Rc<Completions> {
        Rc::new(Completions::default())
    }

    /// Reports `index` here when `task` finishes (at once if it has).
    pub(crate) fn watch(self: &Rc<Self>, index: usize, task: &TaskHeader) {
        let completions: Weak<Completions> = Rc::downgrade(self);
        task.on_done(Box::new(move || {
            if let Some(completions) = completions.upgrade() {
                completions.finished.borrow_mut().push_back(index);
                if let Some(waker) = completions.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
        }));
    }

    /// The index of the next task to finish.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<usize> {
        if let Some(index) = self.finished.borrow_mut().pop_front() {
            return Poll::Ready(index);
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
