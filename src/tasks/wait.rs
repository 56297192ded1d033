//! `wait`: block until some or all of a group of tasks are done (asyncio's `asyncio.wait`).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::completion::Completions;
use super::sleep::sleep;
use super::task::Task;

/// When [`wait`] returns (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task is done.
    FirstCompleted,
    /// As soon as any task panics (cancellations do not count, as in asyncio), or when
    /// all are done.
    FirstException,
    /// When all tasks are done.
    AllCompleted,
}

/// Waits until `return_when` is satisfied or `timeout` passes, then returns the tasks
/// split into `(done, pending)`, each in input order (asyncio's `asyncio.wait`).
/// Nothing is cancelled: pending tasks keep running.
///
/// # Panics
/// With a timeout, outside a running loop.
pub async fn wait<T: 'static>(
    tasks: Vec<Task<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Task<T>>, Vec<Task<T>>) {
    let completions = Completions::new();
    for (index, task) in tasks.iter().enumerate() {
        completions.watch(index, task.header());
    }
    let mut timer = pin!(timeout.map(sleep));
    let mut remaining = tasks.len();
    poll_fn(|cx| {
        while remaining > 0 {
            let Poll::Ready(index) = completions.poll_next(cx) else { break };
            remaining -= 1;
            let satisfied = match return_when {
                ReturnWhen::FirstCompleted => true,
                ReturnWhen::FirstException => tasks[index].header().panicked(),
                ReturnWhen::AllCompleted => false,
            };
            if satisfied {
                return Poll::Ready(());
            }
        }
        if remaining == 0 {
            return Poll::Ready(());
        }
        match timer.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx),
            None => Poll::Pending,
        }
    })
    .await;
    tasks.into_iter().partition(|task| task.done())
}
