//! `Task<T>`: a coroutine driven by the loop (asyncio's `asyncio.Task`).
//!
//! A task is one allocation shared by the loop's slab and the task's handles: a small
//! header (name, state, the awaiting coroutine's waker), the coroutine kept in place
//! ([`PinnedFuture`]), and a slot for its output. Each step checks for cancellation, polls the coroutine and catches a
//! panic; the outcome waits in the cell for whoever awaits the task.
//!
//! What dropping a [`Task`] handle does, decided as asyncio does it:
//! - a handle dropped without ever being awaited leaves the task running (detached);
//! - a handle dropped *while awaiting* it (the awaiting coroutine was itself cancelled, or
//!   a timeout gave up on it) cancels the task, since in asyncio cancelling a coroutine
//!   cancels the task it awaits. [`shield`](crate::tasks::shield) opts out of this.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::event_loop::{
    get_running_loop, panic_message, EventLoop, ExceptionContext, LoopError, Schedulable, TaskId,
};
use crate::sys::pinned::PinnedFuture;

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

/// Where a task is in its life, as its header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Running,
    Finished,
    Cancelled,
    Panicked,
}

thread_local! {
    static NEXT_TASK_NUMBER: Cell<u32> = const { Cell::new(1) };
}

/// What few tasks have: a custom name, a panic message, functions to run when it
/// finishes. Boxed on first use, so the common task pays one word for all three.
#[derive(Default)]
struct Rarely {
    name: Option<String>,
    panic_message: Option<String>,
    on_done: Vec<Box<dyn FnOnce()>>,
}

/// The part of a task that does not depend on its type: name, state, the coroutine
/// awaiting it, and what to run when it finishes. Kept small: a million sleeping tasks
/// are a benchmark here.
pub(crate) struct TaskHeader {
    event_loop: EventLoop,
    id: TaskId,
    number: u32,
    stage: Cell<Stage>,
    cancel_requested: Cell<bool>,
    created_at: &'static Location<'static>,
    waiter: Cell<Option<Waker>>,
    rarely: Cell<Option<Box<Rarely>>>,
}

impl TaskHeader {
    fn new(event_loop: EventLoop, id: TaskId, created_at: &'static Location<'static>) -> TaskHeader {
        TaskHeader {
            event_loop,
            id,
            number: NEXT_TASK_NUMBER.with(|n| n.replace(n.get().wrapping_add(1))),
            stage: Cell::new(Stage::Running),
            cancel_requested: Cell::new(false),
            created_at,
            waiter: Cell::new(None),
            rarely: Cell::new(None),
        }
    }

    /// Runs `f` on the rarely-used fields, creating them if needed.
    fn rarely<R>(&self, f: impl FnOnce(&mut Rarely) -> R) -> R {
        let mut rarely = self.rarely.take().unwrap_or_default();
        let result = f(&mut rarely);
        self.rarely.set(Some(rarely));
        result
    }

    pub(crate) fn done(&self) -> bool {
        self.stage.get() != Stage::Running
    }

    fn cancelled(&self) -> bool {
        self.stage.get() == Stage::Cancelled
    }

    /// True if the task panicked (`wait`'s FirstException counts only panics, as asyncio
    /// does not count a cancellation as an exception).
    pub(crate) fn panicked(&self) -> bool {
        self.stage.get() == Stage::Panicked
    }

    /// True if the task ended by a panic or a cancellation.
    pub(crate) fn failed(&self) -> bool {
        matches!(self.stage.get(), Stage::Cancelled | Stage::Panicked)
    }

    /// The error of a failed task. A panic message can be taken once; after that the
    /// task reads as cancelled.
    pub(crate) fn take_error(&self) -> Option<TaskError> {
        match self.stage.get() {
            Stage::Running | Stage::Finished => None,
            Stage::Cancelled => Some(TaskError::Cancelled),
            Stage::Panicked => Some(
                self.rarely(|r| r.panic_message.take()).map_or(TaskError::Cancelled, TaskError::Panicked),
            ),
        }
    }

    fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.cancel_requested.set(true);
        self.event_loop.schedule_task(self.id);
        true
    }

    /// Records how the task ended, then runs the done-hooks and wakes the awaiter.
    fn finish(&self, stage: Stage, panic_message: Option<String>) {
        if self.done() {
            return;
        }
        self.stage.set(stage);
        let hooks = match (self.rarely.take(), panic_message) {
            (None, None) => Vec::new(),
            (rarely, panic_message) => {
                let mut rarely = rarely.unwrap_or_default();
                rarely.panic_message = panic_message;
                let hooks = std::mem::take(&mut rarely.on_done);
                self.rarely.set(Some(rarely));
                hooks
            }
        };
        hooks.into_iter().for_each(|hook| hook());
        if let Some(waker) = self.waiter.take() {
            waker.wake();
        }
    }

    /// Runs `hook` (inline) when the task finishes, or now if it has.
    pub(crate) fn on_done(&self, hook: Box<dyn FnOnce()>) {
        if self.done() {
            return hook();
        }
        self.rarely(|r| r.on_done.push(hook));
    }

    /// Remembers `cx`'s waker to wake when the task finishes.
    fn register_waiter(&self, cx: &Context<'_>) {
        let waiter = self.waiter.take().filter(|w| w.will_wake(cx.waker()));
        self.waiter.set(Some(waiter.unwrap_or_else(|| cx.waker().clone())));
    }

    fn name(&self) -> String {
        let custom = self.rarely.take();
        let name =
            custom.as_ref().and_then(|r| r.name.clone()).unwrap_or_else(|| format!("Task-{}", self.number));
        self.rarely.set(custom);
        name
    }

    fn set_name(&self, name: String) {
        self.rarely(|r| r.name = Some(name));
    }
}

/// What a task keeps beside its coroutine: the header and the output slot.
struct TaskState<T> {
    header: TaskHeader,
    output: Cell<Option<T>>,
}

impl<T> TaskState<T> {
    fn finish(&self, outcome: Result<T, TaskError>) {
        match outcome {
            Ok(output) => {
                self.output.set(Some(output));
                self.header.finish(Stage::Finished, None);
            }
            Err(TaskError::Cancelled) => self.header.finish(Stage::Cancelled, None),
            Err(TaskError::Panicked(message)) => self.header.finish(Stage::Panicked, Some(message)),
        }
    }
}

/// One task in one allocation, shared by the loop's slab and the task's handles: its
/// state, and its coroutine kept in place until it finishes.
type TaskCell<F> = PinnedFuture<TaskState<<F as std::future::Future>::Output>, F>;

impl<F: std::future::Future + 'static> Schedulable for TaskCell<F> {
    /// One step: poll the coroutine unless a cancel is pending, catching a panic. The
    /// outcome is recorded before the coroutine is dropped, so a destructor that panics
    /// cannot leave the task unfinished.
    fn step(self: Pin<&Self>, cx: &mut Context<'_>) -> Poll<()> {
        let state = self.extra();
        if state.header.done() {
            return Poll::Ready(());
        }
        let outcome = if state.header.cancel_requested.get() {
            Err(TaskError::Cancelled)
        } else {
            match catch_unwind(AssertUnwindSafe(|| self.poll(cx))) {
                Ok(None) => return Poll::Ready(()),
                Ok(Some(Poll::Pending)) => return Poll::Pending,
                // As in asyncio, a cancel requested during the last step wins over its result.
                Ok(Some(Poll::Ready(_))) if state.header.cancel_requested.get() => Err(TaskError::Cancelled),
                Ok(Some(Poll::Ready(output))) => Ok(output),
                Err(payload) => Err(TaskError::Panicked(panic_message(&*payload))),
            }
        };
        state.finish(outcome);
        self.drop_future();
        Poll::Ready(())
    }

    fn abandon(self: Pin<&Self>) {
        self.extra().finish(Err(TaskError::Cancelled));
        self.drop_future();
    }

    fn header(&self) -> &dyn Any {
        &self.extra().header
    }

    fn created_at(&self) -> &'static Location<'static> {
        self.extra().header.created_at
    }
}

impl Drop for TaskHeader {
    /// asyncio logs "Task exception was never retrieved"; we hand a panic nobody took to
    /// the loop's exception handler when the last reference to the task goes away.
    fn drop(&mut self) {
        if let Some(TaskError::Panicked(message)) = self.take_error() {
            self.event_loop.call_exception_handler(&ExceptionContext {
                message: format!("{} panicked and its outcome was never retrieved", self.name()),
                exception: Some(message),
                scheduled_at: Some(self.created_at),
            });
        }
    }
}

/// A task seen through its output type (what a [`Task<T>`] holds).
trait TaskOutput<T> {
    fn header(&self) -> &TaskHeader;
    /// The outcome of a finished task, moved out; `None` while it runs.
    fn take_outcome(&self) -> Option<Result<T, TaskError>>;
    fn to_schedulable(self: Pin<Rc<Self>>) -> Pin<Rc<dyn Schedulable>>;
}

impl<F: std::future::Future + 'static> TaskOutput<F::Output> for TaskCell<F> {
    fn header(&self) -> &TaskHeader {
        &self.extra().header
    }

    fn take_outcome(&self) -> Option<Result<F::Output, TaskError>> {
        let state = self.extra();
        match state.header.stage.get() {
            Stage::Running => None,
            Stage::Finished => Some(state.output.take().ok_or(TaskError::Cancelled)),
            Stage::Cancelled | Stage::Panicked => {
                Some(Err(state.header.take_error().unwrap_or(TaskError::Cancelled)))
            }
        }
    }

    fn to_schedulable(self: Pin<Rc<Self>>) -> Pin<Rc<dyn Schedulable>> {
        self
    }
}

/// A handle to a running coroutine (asyncio's `asyncio.Task`); await it for its
/// `Result<T, TaskError>`. See the module docs for what dropping it does.
pub struct Task<T> {
    cell: Pin<Rc<dyn TaskOutput<T>>>,
    awaiting: bool,
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
        let id = self.next_task_id()?;
        let header = TaskHeader::new(self.clone(), id, Location::caller());
        let cell = PinnedFuture::new(TaskState { header, output: Cell::new(None) }, future);
        self.spawn_task(cell.clone())?;
        Ok(Task { cell, awaiting: false })
    }

    /// Runs the loop until `future` is done and returns its output (asyncio's
    /// `loop.run_until_complete`). The future runs as a task.
    #[track_caller]
    pub fn run_until_complete<F>(&self, future: F) -> Result<F::Output, RunError>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        if self.is_running() {
            return Err(RunError::Loop(LoopError::AlreadyRunning));
        }
        let armed = Rc::new(Cell::new(true));
        let stop_when_done = StopOnDrop(self.clone(), armed.clone());
        // Boxed so a large future is not copied from stack frame to stack frame.
        let future = Box::pin(future);
        let task = self.create_task(async move {
            let _stop = stop_when_done;
            future.await
        })?;
        let ran = self.run_forever();
        // If the loop was stopped early, the task may finish during a later run: it must
        // not stop that one.
        armed.set(false);
        ran?;
        match task.cell.take_outcome() {
            Some(outcome) => Ok(outcome?),
            None => Err(RunError::StoppedBeforeComplete),
        }
    }
}

/// Stops the loop when dropped (the coroutine holding it finished, panicked or was
/// cancelled), while its `run_until_complete` is still waiting for it.
struct StopOnDrop(EventLoop, Rc<Cell<bool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.1.get() {
            self.0.stop();
        }
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
        self.cell.header().cancel()
    }

    /// True once it finished, was cancelled or panicked (asyncio's `Task.done`).
    pub fn done(&self) -> bool {
        self.cell.header().done()
    }

    /// True if it ended by cancellation (asyncio's `Task.cancelled`).
    pub fn cancelled(&self) -> bool {
        self.cell.header().cancelled()
    }

    /// The task's name, `Task-N` unless set (asyncio's `Task.get_name`).
    pub fn get_name(&self) -> String {
        self.cell.header().name()
    }

    /// Renames the task (asyncio's `Task.set_name`).
    pub fn set_name(&self, name: impl Into<String>) {
        self.cell.header().set_name(name.into());
    }

    /// The task's id in its loop.
    pub fn id(&self) -> TaskId {
        self.cell.header().id
    }

    /// A type-erased handle to the same task, as [`current_task`] and [`all_tasks`] give.
    pub fn as_ref(&self) -> TaskRef {
        TaskRef { task: self.cell.clone().to_schedulable() }
    }

    /// The outcome, if the task is done and it was not taken before; `None` if running.
    pub fn try_take(&mut self) -> Option<Result<T, TaskError>> {
        self.cell.take_outcome()
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        self.cell.header()
    }

    /// Polls for the outcome without counting as awaiting it, so dropping the handle
    /// afterwards does not cancel the task (for `shield`).
    pub(crate) fn poll_detached(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        match self.cell.take_outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                self.cell.header().register_waiter(cx);
                Poll::Pending
            }
        }
    }
}

impl<T: 'static> std::future::Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.awaiting = true;
        self.poll_detached(cx)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if self.awaiting && !self.cell.header().done() {
            self.cell.header().cancel();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_header(self.cell.header(), f)
    }
}

fn debug_header(header: &TaskHeader, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Task").field("name", &header.name()).field("stage", &header.stage.get()).finish()
}

/// A type-erased handle to a task, from [`current_task`] or [`all_tasks`]: it can be
/// named, inspected and cancelled, not awaited.
#[derive(Clone)]
pub struct TaskRef {
    task: Pin<Rc<dyn Schedulable>>,
}

impl TaskRef {
    pub(crate) fn header(&self) -> &TaskHeader {
        self.task.header().downcast_ref::<TaskHeader>().expect("every task of the loop is a TaskCell")
    }

    /// See [`Task::cancel`].
    pub fn cancel(&self) -> bool {
        self.header().cancel()
    }

    /// See [`Task::done`].
    pub fn done(&self) -> bool {
        self.header().done()
    }

    /// See [`Task::cancelled`].
    pub fn cancelled(&self) -> bool {
        self.header().cancelled()
    }

    /// True if the task ended by a panic or a cancellation.
    pub fn failed(&self) -> bool {
        self.header().failed()
    }

    /// See [`Task::get_name`].
    pub fn get_name(&self) -> String {
        self.header().name()
    }

    /// See [`Task::set_name`].
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().set_name(name.into());
    }

    /// See [`Task::id`].
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// Where the task was created.
    pub fn created_at(&self) -> &'static Location<'static> {
        self.header().created_at
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        std::ptr::eq(self.header(), other.header())
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_header(self.header(), f)
    }
}

/// The task whose step is running now (asyncio's `asyncio.current_task`).
pub fn current_task() -> Option<TaskRef> {
    let task = get_running_loop().ok()?.current_task()?;
    Some(TaskRef { task })
}

/// Every task of the running loop that has not finished (asyncio's `asyncio.all_tasks`).
pub fn all_tasks() -> Vec<TaskRef> {
    let Ok(event_loop) = get_running_loop() else { return Vec::new() };
    tasks_of(&event_loop)
}

pub(crate) fn tasks_of(event_loop: &EventLoop) -> Vec<TaskRef> {
    event_loop.all_tasks().into_iter().map(|task| TaskRef { task }).collect()
}
