//! `as_completed`: the outcomes of a group of tasks in the order they finish (asyncio's
//! `asyncio.as_completed`), as an async stream.

use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::completion::Completions;
use super::task::{Task, TaskError};

/// Yields each task's outcome as soon as it finishes (asyncio's `asyncio.as_completed`).
/// Use `next().await`, or any `futures` stream tool: it implements
/// [`futures_core::Stream`]. Dropping it leaves the tasks running.
///
/// ```
/// use std::time::Duration;
/// let order = evloop::run(async {
///     let tasks: Vec<_> = [30u64, 10, 20]
///         .into_iter()
///         .map(|ms| evloop::create_task(async move { evloop::sleep(Duration::from_millis(ms)).await; ms }))
///         .collect();
///     let mut completed = evloop::as_completed(tasks);
///     let mut order = Vec::new();
///     while let Some(outcome) = completed.next().await {
///         order.push(outcome.unwrap());
///     }
///     order
/// })?;
/// assert_eq!(order, [10, 20, 30]);
/// # Ok::<(), evloop::RunError>(())
/// ```
pub fn as_completed<T: 'static>(tasks: Vec<Task<T>>) -> AsCompleted<T> {
    let completions = Completions::new();
    for (index, task) in tasks.iter().enumerate() {
        completions.watch(index, task.header());
    }
    let remaining = tasks.len();
    AsCompleted { tasks, completions, remaining }
}

/// The stream returned by [`as_completed`].
pub struct AsCompleted<T> {
    tasks: Vec<Task<T>>,
    completions: Rc<Completions>,
    remaining: usize,
}

impl<T: 'static> AsCompleted<T> {
    /// The next outcome to arrive, or `None` when every task has been reported.
    pub async fn next(&mut self) -> Option<Result<T, TaskError>> {
        poll_fn(|cx| self.poll_next_outcome(cx)).await
    }

    fn poll_next_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, TaskError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.completions.poll_next(cx).map(|index| {
            self.remaining -= 1;
            self.tasks[index].try_take()
        })
    }
}

impl<T: 'static> futures_core::Stream for AsCompleted<T> {
    type Item = Result<T, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_outcome(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}
