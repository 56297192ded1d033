//! `run`: asyncio's `asyncio.run`, the usual entry point of a program.

use std::future::Future;

use super::task::{current_task, tasks_of, RunError};
use crate::event_loop::{get_running_loop, EventLoop, LoopError};
use crate::sys::signal::{disposition, Disposition};

/// The most iterations `run` spends letting cancelled tasks finish. A cancelled task ends
/// at its next step, so one or two suffice unless tasks keep spawning new ones.
const SHUTDOWN_ITERATIONS: usize = 100;

/// Runs `main` on a new loop and returns its output (asyncio's `asyncio.run`): creates
/// the loop, runs `main` to completion, cancels the tasks still alive and lets them finish
/// their cancellation, shuts the default executor down, then closes the loop.
///
/// Ctrl-C (SIGINT) cancels `main`, as in asyncio: its clean-up code (drop guards) runs
/// and `run` returns `Err(RunError::Task(TaskError::Cancelled))`. From then on, and once
/// `run` returns, SIGINT does what it did before, so a second Ctrl-C interrupts as usual.
/// This applies only if SIGINT has its default action when `run` starts (asyncio too
/// leaves a program's own SIGINT handler alone) and no other loop handles signals.
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
    // Boxed at once: a big main future moved through the wrappers below by value would be
    // copied on the stack at each step (a few HTTP requests in debug builds overflowed it).
    let main = Box::pin(main);
    let event_loop = EventLoop::new().map_err(|e| RunError::Loop(LoopError::Io(e)))?;
    let ctrl_c = disposition(libc::SIGINT).is_ok_and(|d| d == Disposition::Default);
    let output = event_loop.run_until_complete(async move {
        if ctrl_c {
            cancel_current_task_on_ctrl_c();
        }
        main.await
    });
    if ctrl_c {
        let _ = event_loop.remove_signal_handler(libc::SIGINT);
    }
    cancel_all_tasks(&event_loop);
    event_loop.shutdown_default_executor();
    event_loop.close()?;
    output
}

/// Makes SIGINT cancel the task running now (the main task) and then stop being handled
/// (asyncio's `Runner._on_sigint`). Nothing happens if another loop handles signals.
fn cancel_current_task_on_ctrl_c() {
    let (Ok(event_loop), Some(main)) = (get_running_loop(), current_task()) else { return };
    let _ = event_loop.add_signal_handler(libc::SIGINT, move || {
        main.cancel();
        if let Ok(event_loop) = get_running_loop() {
            let _ = event_loop.remove_signal_handler(libc::SIGINT);
        }
    });
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
