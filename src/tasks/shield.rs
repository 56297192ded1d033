//! `shield`: await something without passing cancellation on to it (asyncio's
//! `asyncio.shield`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::task::{create_task, Task, TaskError};

/// Runs `future` as a task and awaits it; if the awaiting coroutine is cancelled (this
/// future dropped), the task keeps running (asyncio's `asyncio.shield`).
///
/// # Panics
/// Outside a running loop.
pub fn shield<F>(future: F) -> Shield<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Shield { task: create_task(future) }
}

/// The future returned by [`shield`].
pub struct Shield<T> {
    task: Task<T>,
}

impl<T: 'static> Shield<T> {
    /// The shielded task, e.g. to cancel it on purpose.
    pub fn task(&self) -> &Task<T> {
        &self.task
    }
}

impl<T: 'static> Future for Shield<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Polling through the core, not the Task, keeps the task "not awaited", so
        // dropping this handle does not cancel it.
        self.get_mut().task.poll_detached(cx)
    }
}
