//! `gather`: run coroutines concurrently and collect their results in input order
//! (asyncio's `asyncio.gather`).

use std::future::{poll_fn, Future};
use std::task::Poll;

use super::completion::Completions;
use super::task::{create_task, Task, TaskError, TaskRef};

/// Runs every future as a task and returns their outputs in input order (asyncio's
/// `asyncio.gather`). The first failure, in completion order, is returned at once; the
/// other tasks keep running, as in asyncio. If the gather itself is cancelled (dropped
/// before it finishes), the tasks not yet done are cancelled.
///
/// ```
/// use std::time::Duration;
/// let sum = evloop::run(async {
///     let slow = |n: u32| async move { evloop::sleep(Duration::from_millis(u64::from(10 - n))).await; n };
///     evloop::gather((1..=3).map(slow)).await.unwrap().iter().sum::<u32>()
/// })?;
/// assert_eq!(sum, 6);
/// # Ok::<(), evloop::RunError>(())
/// ```
///
/// # Panics
/// Outside a running loop (it starts tasks).
pub async fn gather<F>(futures: impl IntoIterator<Item = F>) -> Result<Vec<F::Output>, TaskError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let tasks: Vec<Task<F::Output>> = futures.into_iter().map(create_task).collect();
    let outcomes = collect_outcomes(tasks, StopOnError::Yes).await?;
    Ok(outcomes.into_iter().map(|outcome| outcome.expect("no task failed")).collect())
}

/// Like [`gather`], but a failure does not end it: every outcome is returned, in input
/// order (asyncio's `gather(..., return_exceptions=True)`).
///
/// # Panics
/// Outside a running loop.
pub async fn gather_return_exceptions<F>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<Result<F::Output, TaskError>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let tasks: Vec<Task<F::Output>> = futures.into_iter().map(create_task).collect();
    collect_outcomes(tasks, StopOnError::No).await.expect("failures are collected, not returned")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StopOnError {
    Yes,
    No,
}

/// Waits for every task and returns their outcomes in input order, or, with
/// `StopOnError::Yes`, the first failure as soon as it happens. Tasks still running when
/// the returned future is dropped early are cancelled; after a failure they run on.
async fn collect_outcomes<T: 'static>(
    mut tasks: Vec<Task<T>>,
    stop: StopOnError,
) -> Result<Vec<Result<T, TaskError>>, TaskError> {
    let mut guard = CancelUnfinished(tasks.iter().map(Task::as_ref).collect());
    let completions = Completions::new();
    for (index, task) in tasks.iter().enumerate() {
        completions.watch(index, task.header());
    }
    let mut outcomes: Vec<Option<Result<T, TaskError>>> = tasks.iter().map(|_| None).collect();
    let mut remaining = tasks.len();
    let result = poll_fn(|cx| {
        while remaining > 0 {
            let Poll::Ready(index) = completions.poll_next(cx) else { return Poll::Pending };
            remaining -= 1;
            match tasks[index].try_take().expect("a finished task has an outcome") {
                Err(error) if stop == StopOnError::Yes => return Poll::Ready(Err(error)),
                outcome => outcomes[index] = Some(outcome),
            }
        }
        Poll::Ready(Ok(()))
    })
    .await;
    guard.0.clear();
    result.map(|()| outcomes.into_iter().map(|outcome| outcome.expect("every task finished")).collect())
}

/// Cancels the listed tasks that are not done when dropped; emptied once the wait is over.
struct CancelUnfinished(Vec<TaskRef>);

impl Drop for CancelUnfinished {
    fn drop(&mut self) {
        for task in &self.0 {
            task.cancel();
        }
    }
}

/// Gathers a fixed set of futures of different types into a tuple, in input order
/// (asyncio's `asyncio.gather(a, b, c)`): `gather!(a, b, c).await` gives
/// `Result<(A, B, C), TaskError>`. Each future runs as a task; up to 12 of them.
///
/// ```
/// let (a, b) = evloop::run(async { evloop::gather!(async { 1 }, async { "two" }).await.unwrap() })?;
/// assert_eq!((a, b), (1, "two"));
/// # Ok::<(), evloop::RunError>(())
/// ```
#[macro_export]
macro_rules! gather {
    ($($future:expr),+ $(,)?) => {
        $crate::tasks::gather_tuple(($($crate::create_task($future),)+))
    };
}

/// A tuple of tasks that [`gather!`](crate::gather!) can wait for and unpack.
pub trait TaskTuple {
    /// The tuple of the tasks' outputs.
    type Output;
    /// Type-erased handles to the tasks, in order.
    fn refs(&self) -> Vec<TaskRef>;
    /// The outputs of the finished tasks, or the first failure in input order.
    fn take_outputs(self) -> Result<Self::Output, TaskError>;
}

macro_rules! impl_task_tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: 'static),+> TaskTuple for ($(Task<$name>,)+) {
            type Output = ($($name,)+);
            fn refs(&self) -> Vec<TaskRef> {
                vec![$(self.$index.as_ref()),+]
            }
            fn take_outputs(mut self) -> Result<Self::Output, TaskError> {
                Ok(($(self.$index.try_take().expect("gathered task is done")?,)+))
            }
        }
    };
}

impl_task_tuple!(A 0);
impl_task_tuple!(A 0, B 1);
impl_task_tuple!(A 0, B 1, C 2);
impl_task_tuple!(A 0, B 1, C 2, D 3);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
impl_task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Waits for a tuple of tasks as [`gather`] does and unpacks their outputs; what
/// [`gather!`](crate::gather!) expands to.
pub async fn gather_tuple<Tasks: TaskTuple>(tasks: Tasks) -> Result<Tasks::Output, TaskError> {
    let refs = tasks.refs();
    let completions = Completions::new();
    for (index, task) in refs.iter().enumerate() {
        completions.watch(index, task.header());
    }
    let mut guard = CancelUnfinished(refs.clone());
    let mut remaining = refs.len();
    let first_failure = poll_fn(|cx| {
        while remaining > 0 {
            let Poll::Ready(index) = completions.poll_next(cx) else { return Poll::Pending };
            remaining -= 1;
            if refs[index].failed() {
                return Poll::Ready(Some(index));
            }
        }
        Poll::Ready(None)
    })
    .await;
    guard.0.clear();
    match first_failure {
        Some(index) => Err(refs[index].header().take_error().expect("the task failed")),
        None => tasks.take_outputs(),
    }
}
