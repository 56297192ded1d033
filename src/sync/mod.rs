//! Coordination between coroutines (asyncio's `locks.py` and `queues.py`): `Lock`,
//! `Event`, `Condition`, `Semaphore`, `BoundedSemaphore` and the queues.
//!
//! All are single-threaded (share them with `Rc`) and serve waiters first come, first
//! served. None loses a permit, notification or item when a waiter is cancelled at the
//! moment it was granted one: the grant passes to the next waiter.

mod condition;
mod event;
mod lock;
mod queue;
mod semaphore;
mod waiters;

pub use condition::Condition;
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockGuard};
pub use queue::{Fifo, Lifo, LifoQueue, Order, Priority, PriorityQueue, Queue, QueueEmpty, QueueFull};
pub use semaphore::{Acquire, BoundedSemaphore, Semaphore, SemaphorePermit, ValueError};
