//! `Condition`: asyncio's condition variable for coroutines.

use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use super::lock::{Lock, LockGuard};
use super::waiters::{WaitQueue, Waiter};

/// A lock plus a queue of coroutines waiting to be notified (asyncio's
/// `asyncio.Condition`). Waiting and checking are done through the guard from
/// [`acquire`](Condition::acquire), which proves the lock is held.
///
/// A waiter cancelled after it was notified but before it ran passes the notification to
/// the next waiter, so `notify(1)` always wakes someone who is still there.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let condition = Rc::new(evloop::sync::Condition::new());
/// let ready = Rc::new(Cell::new(false));
/// evloop::run(async move {
///     let (c, r) = (condition.clone(), ready.clone());
///     evloop::create_task(async move {
///         let _guard = c.acquire().await;
///         r.set(true);
///         c.notify_all();
///     });
///     let guard = condition.acquire().await;
///     let _guard = condition.wait_for(guard, || ready.get()).await;
/// })?;
/// # Ok::<(), evloop::RunError>(())
/// ```
#[derive(Default)]
pub struct Condition {
    lock: Lock,
    waiters: WaitQueue<bool>,
}

impl Condition {
    /// A condition with its own lock.
    pub fn new() -> Condition {
        Condition::default()
    }

    /// Takes the condition's lock (asyncio's `Condition.acquire`).
    pub async fn acquire(&self) -> LockGuard<'_> {
        self.lock.acquire().await
    }

    /// True while the lock is held (asyncio's `Condition.locked`).
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock, waits to be notified, takes the lock again and returns the new
    /// guard (asyncio's `Condition.wait`).
    ///
    /// # Panics
    /// If `guard` holds another lock than this condition's (asyncio raises there too).
    pub async fn wait<'a>(&'a self, guard: LockGuard<'a>) -> LockGuard<'a> {
        assert!(std::ptr::eq(guard.lock(), &self.lock), "Condition::wait given the guard of another lock");
        let waiter = NotifyWait { condition: self, waiter: self.waiters.push(false), consumed: false };
        drop(guard);
        waiter.notified().await;
        self.lock.acquire().await
    }

    /// Waits until `predicate` is true, checking it first and after each notification
    /// (asyncio's `Condition.wait_for`).
    pub async fn wait_for<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        mut predicate: impl FnMut() -> bool,
    ) -> LockGuard<'a> {
        while !predicate() {
            guard = self.wait(guard).await;
        }
        guard
    }

    /// Wakes up to `n` waiters, longest waiting first (asyncio's `Condition.notify`).
    pub fn notify(&self, n: usize) {
        for _ in 0..n {
            match self.waiters.pop_front() {
                Some(waiter) => waiter.grant(true),
                None => break,
            }
        }
    }

    /// Wakes every waiter (asyncio's `Condition.notify_all`).
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// A parked `wait` call; on drop it leaves the queue or passes on a notification it got.
struct NotifyWait<'a> {
    condition: &'a Condition,
    waiter: Rc<Waiter<bool>>,
    consumed: bool,
}

impl NotifyWait<'_> {
    async fn notified(mut self) {
        poll_fn(|cx| {
            if *self.waiter.state.borrow() {
                return Poll::Ready(());
            }
            self.waiter.register(cx);
            Poll::Pending
        })
        .await;
        self.consumed = true;
    }
}

impl Drop for NotifyWait<'_> {
    fn drop(&mut self) {
        if self.consumed {
            return;
        }
        if *self.waiter.state.borrow() {
            self.condition.notify(1);
        } else {
            self.condition.waiters.remove(&self.waiter);
        }
    }
}
