//! `Semaphore` and `BoundedSemaphore` (asyncio's), with permits as RAII guards.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{WaitQueue, Waiter};

/// A counter of permits; `acquire` waits while it is zero (asyncio's `asyncio.Semaphore`).
///
/// Waiters are served first come, first served: a released permit goes straight to the
/// longest waiter, so a newcomer cannot take it first. A waiter cancelled just after it was
/// handed a permit passes it on.
///
/// ```
/// let semaphore = evloop::sync::Semaphore::new(2);
/// let peak = evloop::run(async move {
///     let permit = semaphore.acquire().await;
///     assert_eq!(semaphore.available_permits(), 1);
///     drop(permit);
///     semaphore.available_permits()
/// })?;
/// assert_eq!(peak, 2);
/// # Ok::<(), evloop::RunError>(())
/// ```
pub struct Semaphore {
    value: std::cell::Cell<usize>,
    waiters: WaitQueue<Grant>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    Waiting,
    Granted,
}

impl Semaphore {
    /// A semaphore with `permits` permits (asyncio's `Semaphore(value)`).
    pub fn new(permits: usize) -> Semaphore {
        Semaphore { value: std::cell::Cell::new(permits), waiters: WaitQueue::default() }
    }

    /// Waits for a permit (asyncio's `Semaphore.acquire`); it is returned when the
    /// permit is dropped.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire { semaphore: self, waiter: None }
    }

    /// A permit if one is free and nobody is waiting, without waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.take_free().then(|| SemaphorePermit { semaphore: self })
    }

    fn take_free(&self) -> bool {
        if self.value.get() > 0 && self.waiters.is_empty() {
            self.value.set(self.value.get() - 1);
            return true;
        }
        false
    }

    /// Adds a permit, handing it to the longest waiter if there is one (asyncio's
    /// `Semaphore.release`). With a plain semaphore this may raise the count past its
    /// initial value, as in asyncio.
    pub fn release(&self) {
        match self.waiters.pop_front() {
            Some(waiter) => waiter.grant(Grant::Granted),
            None => self.value.set(self.value.get() + 1),
        }
    }

    /// True if `acquire` would wait (asyncio's `Semaphore.locked`).
    pub fn locked(&self) -> bool {
        self.value.get() == 0 || !self.waiters.is_empty()
    }

    /// Free permits now.
    pub fn available_permits(&self) -> usize {
        self.value.get()
    }

    /// Coroutines waiting for a permit.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The future of [`Semaphore::acquire`].
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    waiter: Option<Rc<Waiter<Grant>>>,
}

impl<'a> Future for Acquire<'a> {
    type Output = SemaphorePermit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphorePermit<'a>> {
        let semaphore = self.semaphore;
        match &self.waiter {
            None if semaphore.take_free() => return Poll::Ready(SemaphorePermit { semaphore }),
            None => self.waiter = Some(semaphore.waiters.push(Grant::Waiting)),
            Some(waiter) if *waiter.state.borrow() == Grant::Granted => {
                self.waiter = None;
                return Poll::Ready(SemaphorePermit { semaphore });
            }
            Some(_) => {}
        }
        self.waiter.as_ref().expect("parked above").register(cx);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else { return };
        if *waiter.state.borrow() == Grant::Granted {
            // Granted a permit but cancelled before taking it: pass it on.
            self.semaphore.release();
        } else {
            self.semaphore.waiters.remove(&waiter);
        }
    }
}

/// A permit of a [`Semaphore`]; dropping it releases the permit (the end of asyncio's
/// `async with semaphore:` block).
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good: it is not released on drop.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// An error for releasing more than was acquired (asyncio raises `ValueError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueError(pub &'static str);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ValueError {}

/// A semaphore that refuses to be released above its initial value (asyncio's
/// `asyncio.BoundedSemaphore`).
pub struct BoundedSemaphore {
    semaphore: Semaphore,
    bound: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, never more.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore { semaphore: Semaphore::new(permits), bound: permits }
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self) -> Acquire<'_> {
        self.semaphore.acquire()
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.semaphore.try_acquire()
    }

    /// Adds a permit taken with [`SemaphorePermit::forget`]; an error if that would
    /// exceed the initial value (asyncio's `BoundedSemaphore.release`).
    pub fn release(&self) -> Result<(), ValueError> {
        if self.semaphore.waiters.is_empty() && self.semaphore.value.get() >= self.bound {
            return Err(ValueError("BoundedSemaphore released too many times"));
        }
        self.semaphore.release();
        Ok(())
    }

    /// See [`Semaphore::locked`].
    pub fn locked(&self) -> bool {
        self.semaphore.locked()
    }

    /// See [`Semaphore::available_permits`].
    pub fn available_permits(&self) -> usize {
        self.semaphore.available_permits()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("semaphore", &self.semaphore)
            .field("bound", &self.bound)
            .finish()
    }
}
