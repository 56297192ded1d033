//! `Lock`: asyncio's mutual exclusion for coroutines, held through a guard.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::semaphore::{Acquire, Semaphore, SemaphorePermit};

/// A lock for coroutines (asyncio's `asyncio.Lock`): one holder at a time, waiters served
/// first come, first served. It guards no data of its own, as in asyncio; hold the guard
/// while touching what it protects.
///
/// ```
/// let lock = evloop::sync::Lock::new();
/// evloop::run(async move {
///     let guard = lock.acquire().await;
///     assert!(lock.locked());
///     drop(guard);
///     assert!(!lock.locked());
/// })?;
/// # Ok::<(), evloop::RunError>(())
/// ```
#[derive(Debug)]
pub struct Lock {
    semaphore: Semaphore,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Lock {
        Lock { semaphore: Semaphore::new(1) }
    }

    /// Waits until the lock is free and takes it (asyncio's `Lock.acquire`, or entering
    /// `async with lock:`); dropping the guard releases it.
    pub fn acquire(&self) -> LockAcquire<'_> {
        LockAcquire { lock: self, acquire: self.semaphore.acquire() }
    }

    /// Takes the lock if it is free and nobody waits.
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.semaphore.try_acquire().map(|permit| LockGuard { lock: self, _permit: permit })
    }

    /// True while someone holds it (asyncio's `Lock.locked`).
    pub fn locked(&self) -> bool {
        self.semaphore.available_permits() == 0
    }
}

/// The future of [`Lock::acquire`].
pub struct LockAcquire<'a> {
    lock: &'a Lock,
    acquire: Acquire<'a>,
}

impl<'a> Future for LockAcquire<'a> {
    type Output = LockGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a>> {
        let lock = self.lock;
        Pin::new(&mut self.acquire).poll(cx).map(|permit| LockGuard { lock, _permit: permit })
    }
}

/// Proof of holding a [`Lock`]; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    _permit: SemaphorePermit<'a>,
}

impl<'a> LockGuard<'a> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}
