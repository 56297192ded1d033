//! `Task<T>`: a coroutine driven by the loop (asyncio's `asyncio.Task`).
//!
//! A task is one boxed future in the loop's task slab: the user's coroutine wrapped in a
//! small step function that checks for cancellation before each poll, catches panics, and
//! stores the outcome in the task's shared record ([`TaskCore`]) for whoever awaits it.
//!
//! What dropping a [`Task`] handle does, decided as asyncio does it:
//! - a handle dropped without ever being awaited leaves the task running (detached);
//! - a handle dropped *while awaiting* it (the awaiting coroutine was itself cancelled, or
//!   a timeout gave up on it) cancels the task, since in asyncio cancelling a coroutine
//!   cancels the task it awaits. [`shield`](crate::tasks::shield) opts out of this.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::event_loop::{get_running_loop, panic_message, EventLoop, ExceptionContext, LoopError, TaskId};

/// Why a task produced no value (asyncio raises `CancelledError` or the exception).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// The task was cancelled before it finished.
    Cancelled,
    /// The task's coroutine panicked; the panic message.
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(message) => write!(f, "task panicked: {message}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Why `run_until_complete` or [`run`](crate::run) returned no value.
#[derive(Debug)]
pub enum RunError {
    /// The loop refused (closed, already running, ...).
    Loop(LoopError),
    /// The main coroutine was cancelled or panicked.
    Task(TaskError),
    /// `stop()` was called before the coroutine finished (asyncio: "Event loop stopped
    /// before Future completed").
    StoppedBeforeComplete,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Loop(e) => e.fmt(f),
            RunError::Task(e) => e.fmt(f),
            RunError::StoppedBeforeComplete => f.write_str("event loop stopped before the future completed"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Loop(e) => Some(e),
            RunError::Task(e) => Some(e),
            RunError::StoppedBeforeComplete => None,
        }
    }
}

impl From<LoopError> for RunError {
    fn from(e: LoopError) -> RunError {
        RunError::Loop(e)
    }
}

impl From<TaskError> for RunError {
    fn from(e: TaskError) -> RunError {
        RunError::Task(e)
    }
}

type Outcome = Result<Box<dyn Any>, TaskError>;

enum State {
    Running,
    Done(Outcome),
    Taken,
}

/// What a task shares between its handle, its coroutine wrapper and the loop: the type-
/// erased part of a task (the output is boxed as `dyn Any`; a `()` output allocates nothing).
pub(crate) struct TaskCore {
    event_loop: EventLoop,
    id: Cell<Option<TaskId>>,
    number: u64,
    name: RefCell<Option<String>>,
    created_at: &'static Location<'static>,
    cancel_requested: Cell<bool>,
    state: RefCell<State>,
    waiter: RefCell<Option<Waker>>,
    on_done: RefCell<Vec<Box<dyn FnOnce()>>>,
}

thread_local! {
    static NEXT_TASK_NUMBER: Cell<u64> = const { Cell::new(1) };
}

impl TaskCore {
    fn new(event_loop: EventLoop, created_at: &'static Location<'static>) -> TaskCore {
        TaskCore {
            event_loop,
            id: Cell::new(None),
            number: NEXT_TASK_NUMBER.with(|n| n.replace(n.get() + 1)),
            name: RefCell::new(None),
            created_at,
            cancel_requested: Cell::new(false),
            state: RefCell::new(State::Running),
            waiter: RefCell::new(None),
            on_done: RefCell::new(Vec::new()),
        }
    }

    /// One step: poll the coroutine unless a cancel is pending, catching a panic.
    fn step<F: std::future::Future>(&self, future: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<Outcome>
    where
        F::Output: 'static,
    {
        if self.cancel_requested.get() {
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            // As in asyncio, a cancel requested during the last step wins over its result.
            Ok(Poll::Ready(_)) if self.cancel_requested.get() => Poll::Ready(Err(TaskError::Cancelled)),
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(Box::new(output))),
            Err(payload) => Poll::Ready(Err(TaskError::Panicked(panic_message(&*payload)))),
        }
    }

    /// Records the outcome (the first one wins), then wakes the awaiter and runs the
    /// internal done-hooks.
    fn finish(&self, outcome: Outcome) {
        {
            let mut state = self.state.borrow_mut();
            if !matches!(*state, State::Running) {
                return;
            }
            *state = State::Done(outcome);
        }
        let hooks = std::mem::take(&mut *self.on_done.borrow_mut());
        hooks.into_iter().for_each(|hook| hook());
        if let Some(waker) = self.waiter.borrow_mut().take() {
            waker.wake();
        }
    }

    pub(crate) fn done(&self) -> bool {
        !matches!(*self.state.borrow(), State::Running)
    }

    fn cancelled(&self) -> bool {
        matches!(*self.state.borrow(), State::Done(Err(TaskError::Cancelled)))
    }

    /// True if the task panicked (`wait`'s FirstException counts only panics, as asyncio
    /// does not count a cancellation as an exception).
    pub(crate) fn panicked(&self) -> bool {
        matches!(*self.state.borrow(), State::Done(Err(TaskError::Panicked(_))))
    }

    /// True if the task ended by a panic or a cancellation.
    pub(crate) fn failed(&self) -> bool {
        matches!(*self.state.borrow(), State::Done(Err(_)))
    }

    /// Takes the error of a failed task, leaving it taken.
    pub(crate) fn take_error(&self) -> Option<TaskError> {
        let mut state = self.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(Err(error)) => Some(error),
            other => {
                *state = other;
                None
            }
        }
    }

    fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.cancel_requested.set(true);
        if let Some(id) = self.id.get() {
            self.event_loop.schedule_task(id);
        }
        true
    }

    /// Runs `hook` (inline, when the task finishes, or now if it has).
    pub(crate) fn on_done(&self, hook: Box<dyn FnOnce()>) {
        if self.done() {
            hook();
        } else {
            self.on_done.borrow_mut().push(hook);
        }
    }

    /// Moves the outcome out of a finished task.
    fn take_outcome<T: 'static>(&self) -> Option<Result<T, TaskError>> {
        let mut state = self.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(outcome) => Some(outcome.map(|boxed| {
                *boxed.downcast::<T>().unwrap_or_else(|_| unreachable!("a task's output has the task's type"))
            })),
            State::Taken => Some(Err(TaskError::Cancelled)),
            State::Running => {
                *state = State::Running;
                None
            }
        }
    }

    fn poll_outcome<T: 'static>(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        match self.take_outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                let mut waiter = self.waiter.borrow_mut();
                if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waiter = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    fn name(&self) -> String {
        self.name.borrow().clone().unwrap_or_else(|| format!("Task-{}", self.number))
    }
}

impl Drop for TaskCore {
    /// asyncio logs "Task exception was never retrieved"; we hand a panic nobody took to
    /// the loop's exception handler when the last reference to the task goes away.
    fn drop(&mut self) {
        if let State::Done(Err(TaskError::Panicked(message))) = &*self.state.borrow() {
            let name = self.name();
            self.event_loop.call_exception_handler(&ExceptionContext {
                message: format!("{name} panicked and its outcome was never retrieved"),
                exception: Some(message.clone()),
                scheduled_at: Some(self.created_at),
            });
        }
    }
}

/// Marks the task cancelled if its coroutine is dropped before finishing (the loop was
/// closed with the task alive).
struct FinishOnDrop(Rc<TaskCore>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish(Err(TaskError::Cancelled));
    }
}

/// A handle to a running coroutine (asyncio's `asyncio.Task`); await it for its
/// `Result<T, TaskError>`. See the module docs for what dropping it does.
pub struct Task<T> {
    core: Rc<TaskCore>,
    awaiting: bool,
    _output: PhantomData<fn() -> T>,
}

impl EventLoop {
    /// Wraps `future` in a task whose first step runs in the next iteration (asyncio's
    /// `loop.create_task`). Fails only if the loop is closed.
    #[track_caller]
    pub fn create_task<F>(&self, future: F) -> Result<Task<F::Output>, LoopError>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        let core = Rc::new(TaskCore::new(self.clone(), Location::caller()));
        let guard = FinishOnDrop(core.clone());
        let coroutine = async move {
            let outcome = {
                let mut future = pin!(future);
                std::future::poll_fn(|cx| guard.0.step(future.as_mut(), cx)).await
            };
            guard.0.finish(outcome);
        };
        let id = self.spawn_task(Box::pin(coroutine), core.clone())?;
        core.id.set(Some(id));
        Ok(Task { core, awaiting: false, _output: PhantomData })
    }

    /// Runs the loop until `future` is done and returns its output (asyncio's
    /// `loop.run_until_complete`). The future runs as a task.
    pub fn run_until_complete<F>(&self, future: F) -> Result<F::Output, RunError>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        if self.is_running() {
            return Err(RunError::Loop(LoopError::AlreadyRunning));
        }
        let stop_when_done = StopOnDrop(self.clone());
        let task = self.create_task(async move {
            let _stop = stop_when_done;
            future.await
        })?;
        self.run_forever()?;
        match task.core.take_outcome() {
            Some(outcome) => Ok(outcome?),
            None => Err(RunError::StoppedBeforeComplete),
        }
    }
}

/// Stops the loop when dropped: when the coroutine holding it finishes, panics or is
/// cancelled.
struct StopOnDrop(EventLoop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Starts `future` as a task on the running loop (asyncio's `asyncio.create_task`).
///
/// # Panics
/// If no loop is running on this thread, as `asyncio.create_task` raises there.
#[track_caller]
pub fn create_task<F>(future: F) -> Task<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let event_loop = get_running_loop().expect("create_task called outside a running event loop");
    event_loop.create_task(future).expect("a running loop is not closed")
}

impl<T: 'static> Task<T> {
    /// Asks the task to stop: its coroutine is dropped at its current await point on its
    /// next step. False if it is already done (asyncio's `Task.cancel`).
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }

    /// True once it finished, was cancelled or panicked (asyncio's `Task.done`).
    pub fn done(&self) -> bool {
        self.core.done()
    }

    /// True if it ended by cancellation (asyncio's `Task.cancelled`).
    pub fn cancelled(&self) -> bool {
        self.core.cancelled()
    }

    /// The task's name, `Task-N` unless set (asyncio's `Task.get_name`).
    pub fn get_name(&self) -> String {
        self.core.name()
    }

    /// Renames the task (asyncio's `Task.set_name`).
    pub fn set_name(&self, name: impl Into<String>) {
        *self.core.name.borrow_mut() = Some(name.into());
    }

    /// The task's id in its loop.
    pub fn id(&self) -> Option<TaskId> {
        self.core.id.get()
    }

    /// A type-erased handle to the same task, as [`current_task`] and [`all_tasks`] give.
    pub fn as_ref(&self) -> TaskRef {
        TaskRef { core: self.core.clone() }
    }

    /// The outcome, if the task is done and it was not taken before; `None` if running.
    pub fn try_take(&mut self) -> Option<Result<T, TaskError>> {
        self.core.take_outcome()
    }

    pub(crate) fn core(&self) -> &Rc<TaskCore> {
        &self.core
    }

    /// Polls for the outcome without counting as awaiting it, so dropping the handle
    /// afterwards does not cancel the task (for `shield`).
    pub(crate) fn poll_detached(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        self.core.poll_outcome(cx)
    }
}

impl<T: 'static> std::future::Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.awaiting = true;
        self.core.poll_outcome(cx)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if self.awaiting && !self.core.done() {
            self.core.cancel();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TaskRef { core: self.core.clone() }.fmt(f)
    }
}

/// A type-erased handle to a task, from [`current_task`] or [`all_tasks`]: it can be
/// named, inspected and cancelled, not awaited.
#[derive(Clone)]
pub struct TaskRef {
    core: Rc<TaskCore>,
}

impl TaskRef {
    /// See [`Task::cancel`].
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }

    /// See [`Task::done`].
    pub fn done(&self) -> bool {
        self.core.done()
    }

    /// See [`Task::cancelled`].
    pub fn cancelled(&self) -> bool {
        self.core.cancelled()
    }

    /// See [`Task::get_name`].
    pub fn get_name(&self) -> String {
        self.core.name()
    }

    /// See [`Task::set_name`].
    pub fn set_name(&self, name: impl Into<String>) {
        *self.core.name.borrow_mut() = Some(name.into());
    }

    /// See [`Task::id`].
    pub fn id(&self) -> Option<TaskId> {
        self.core.id.get()
    }

    /// True if the task ended by a panic or a cancellation.
    pub fn failed(&self) -> bool {
        self.core.failed()
    }

    /// Where the task was created.
    pub fn created_at(&self) -> &'static Location<'static> {
        self.core.created_at
    }

    pub(crate) fn core(&self) -> &Rc<TaskCore> {
        &self.core
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        Rc::ptr_eq(&self.core, &other.core)
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.core.state.borrow() {
            State::Running => "running",
            State::Done(Ok(_)) | State::Taken => "done",
            State::Done(Err(TaskError::Cancelled)) => "cancelled",
            State::Done(Err(TaskError::Panicked(_))) => "panicked",
        };
        f.debug_struct("Task").field("name", &self.get_name()).field("state", &state).finish()
    }
}

/// The task whose step is running now (asyncio's `asyncio.current_task`).
pub fn current_task() -> Option<TaskRef> {
    let owner = get_running_loop().ok()?.current_task_owner()?;
    owner.downcast::<TaskCore>().ok().map(|core| TaskRef { core })
}

/// Every task of the running loop that has not finished (asyncio's `asyncio.all_tasks`).
pub fn all_tasks() -> Vec<TaskRef> {
    let Ok(event_loop) = get_running_loop() else { return Vec::new() };
    tasks_of(&event_loop)
}

pub(crate) fn tasks_of(event_loop: &EventLoop) -> Vec<TaskRef> {
    event_loop
        .task_owners()
        .into_iter()
        .filter_map(|owner| owner.downcast::<TaskCore>().ok())
        .map(|core| TaskRef { core })
        .collect()
}
