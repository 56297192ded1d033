//! `run`: asyncio's `asyncio.run`, the usual entry point of a program.

use std::future::Future;

use super::task::{tasks_of, RunError};
use crate::event_loop::{EventLoop, LoopError};

/// The most iterations `run` spends letting cancelled tasks finish. A cancelled task ends
/// at its next step, so one or two suffice unless tasks keep spawning new ones.
const SHUTDOWN_ITERATIONS: usize = 100;

/// Runs `main` on a new loop and returns its output (asyncio's `asyncio.run`): creates
/// the loop, runs `main` to completion, cancels the tasks still alive and lets them finish
/// their cancellation, then closes the loop.
///
/// ```
/// let answer = evloop::run(async { 6 * 7 })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), evloop::RunError>(())
/// ```
pub fn run<F>(main: F) -> Result<F::Output, RunError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let event_loop = EventLoop::new().map_err(|e| RunError::Loop(LoopError::Io(e)))?;
    let output = event_loop.run_until_complete(main);
    cancel_all_tasks(&event_loop);
    event_loop.close()?;
    output
}

/// Cancels every task of `event_loop` and runs it until they are gone (asyncio's
/// `_cancel_all_tasks`), giving up after [`SHUTDOWN_ITERATIONS`].
pub(crate) fn cancel_all_tasks(event_loop: &EventLoop) {
    for _ in 0..SHUTDOWN_ITERATIONS {
        let tasks = tasks_of(event_loop);
        if tasks.is_empty() {
            return;
        }
        tasks.iter().for_each(|task| {
            task.cancel();
        });
        if event_loop.run_once().is_err() {
            return;
        }
    }
}
