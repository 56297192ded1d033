//! The event loop: a ready queue, a timer heap and fd callbacks, turned by `run_once`
//! (asyncio's `BaseEventLoop` and its `_run_once`).
//!
//! One iteration, as in asyncio:
//! 1. compute how long to wait: zero if callbacks are ready (or the loop is stopping),
//!    else until the earliest timer (rounded up to whole milliseconds), else forever;
//! 2. ask epoll for events and put the callbacks of ready fds on the ready queue;
//! 3. move callbacks from other threads (also taken before the wait, as asyncio appends
//!    them to its ready queue at once), and timers that are due, to the ready queue;
//! 4. run exactly the callbacks that were ready at this point. What they schedule waits
//!    for the next iteration, so a callback that keeps rescheduling itself cannot starve I/O.
//!
//! One departure, for speed: a zero-timeout `epoll_wait` costs about 300 ns, so while
//! callbacks are always ready the loop polls for I/O only after [`POLL_IO_EVERY`]
//! callbacks have run since the last poll. An fd waits at most that many callbacks.

mod builder;
mod clock;
mod exception;
mod fd_callbacks;
mod handle;
mod quiescence;
mod recorder;
mod remote;
mod stats;
mod task_slab;
mod wake;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub use builder::EventLoopBuilder;
pub use clock::ClockJump;
pub use exception::{default_exception_handler, panic_message, ExceptionContext};
pub use handle::{Handle, TimerHandle};
pub use quiescence::NotQuiescent;
pub use recorder::{first_divergence, IterationRecord, LoopHealth, PollRecord, Ran, RunRecord};
pub use remote::{ClockHold, RemoteLoop};
pub use stats::LoopStats;
pub use task_slab::TaskId;

use self::clock::Clock;
use self::fd_callbacks::{FdCallbacks, Side};
use self::handle::Callback;
use self::recorder::FlightRecorder;
use self::remote::{Injected, RemoteShared};
use self::stats::{add, StatCounters};
pub(crate) use self::task_slab::Schedulable;
use self::task_slab::TaskSlab;
use crate::rng::SeededRng;
use crate::selector::Interest;
use crate::sys::faults::{self, FaultCounts, FaultInjector};
use crate::timer::{TimerHeap, TimerKey};

/// While callbacks are always ready, the loop still polls for I/O (a zero-timeout
/// `epoll_wait`) once at least this many callbacks and task steps have run since the last
/// poll. tokio uses 61 for the same purpose.
pub const POLL_IO_EVERY: u64 = 64;

/// Callbacks slower than this are reported in debug mode (asyncio's
/// `slow_callback_duration`).
pub const DEFAULT_SLOW_CALLBACK_DURATION: Duration = Duration::from_millis(100);

/// Why a loop operation was refused (asyncio raises `RuntimeError` for these).
#[derive(Debug)]
pub enum LoopError {
    /// The loop was closed: nothing can be scheduled on it any more.
    Closed,
    /// The loop is already running (`run_forever` inside a callback, say).
    AlreadyRunning,
    /// Another loop is running on this thread.
    AnotherLoopRunning,
    /// `get_running_loop` was called outside a running loop.
    NoRunningLoop,
    /// The selector failed (only a broken epoll fd can cause this).
    Io(io::Error),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Closed => f.write_str("event loop is closed"),
            LoopError::AlreadyRunning => f.write_str("this event loop is already running"),
            LoopError::AnotherLoopRunning => {
                f.write_str("cannot run the event loop while another loop is running")
            }
            LoopError::NoRunningLoop => f.write_str("no running event loop"),
            LoopError::Io(e) => write!(f, "event loop I/O error: {e}"),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LoopError> for io::Error {
    fn from(e: LoopError) -> io::Error {
        match e {
            LoopError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// One entry of the ready queue. A task wake-up is a plain id: no allocation.
enum Runnable {
    Callback(Rc<dyn Callback>),
    Task(TaskId),
}

/// What a timer does when it comes due: run a callback (`call_at`), or wake a waker
/// (`sleep`: no callback is allocated, the waker is stored in the entry itself).
enum TimerAction {
    Callback(Rc<dyn Callback>),
    Wake(Waker),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RunState {
    Idle,
    Running,
    Closed,
}

type ExceptionHandler = Rc<dyn Fn(&ExceptionContext)>;

pub(crate) struct LoopInner {
    id: u16,
    clock: Clock,
    created_at: Instant,
    /// Seeded order of the tasks woken in one iteration (the deterministic mode).
    task_order: RefCell<Option<SeededRng>>,
    /// The loop's socket faults while it is not running; on its thread while it runs.
    faults: RefCell<Option<FaultInjector>>,
    injects_faults: bool,
    recorder: Option<RefCell<FlightRecorder>>,
    ready: RefCell<VecDeque<Runnable>>,
    timers: TimerHeap<TimerAction>,
    fds: RefCell<FdCallbacks>,
    tasks: RefCell<TaskSlab>,
    remote: Arc<RemoteShared>,
    injected: RefCell<Vec<Injected>>,
    state: Cell<RunState>,
    stopping: Cell<bool>,
    timers_checked_at: Cell<Option<Instant>>,
    current_task: Cell<Option<TaskId>>,
    work_since_select: Cell<u64>,
    stats: StatCounters,
    debug: Cell<bool>,
    slow_callback_duration: Cell<Duration>,
    exception_handler: RefCell<Option<ExceptionHandler>>,
    extensions: RefCell<Vec<Rc<dyn Any>>>,
}

thread_local! {
    /// The loop running on this thread, if any (asyncio's `_running_loop`).
    static RUNNING: RefCell<Option<Rc<LoopInner>>> = const { RefCell::new(None) };
}

/// A single-threaded event loop on epoll (asyncio's `asyncio.AbstractEventLoop`).
///
/// Cloning gives another handle to the same loop, which is how callbacks reach it.
///
/// ```
/// use std::time::Duration;
/// let event_loop = evloop::EventLoop::new().unwrap();
/// let stopper = event_loop.clone();
/// event_loop.call_later(Duration::from_millis(1), move || stopper.stop()).unwrap();
/// event_loop.run_forever().unwrap();
/// event_loop.close().unwrap();
/// ```
#[derive(Clone)]
pub struct EventLoop {
    inner: Rc<LoopInner>,
}

impl EventLoop {
    /// A new, idle loop with its own epoll instance and wake-up eventfd
    /// (asyncio's `asyncio.new_event_loop`).
    pub fn new() -> io::Result<EventLoop> {
        EventLoop::builder().build()
    }

    /// A builder for a loop with the deterministic mode's options: virtual clock, seeded
    /// task order, injected socket faults, flight recorder.
    pub fn builder() -> EventLoopBuilder {
        EventLoopBuilder::default()
    }

    fn with_options(options: EventLoopBuilder) -> io::Result<EventLoop> {
        let remote = Arc::new(RemoteShared::new()?);
        let mut fds = FdCallbacks::new()?;
        fds.register_wakeup(remote.eventfd().as_raw_fd())?;
        let id = wake::register_loop(&remote)?;
        let clock = options.clock.map_or(Clock::Real, Clock::virtual_from_now);
        let inner = LoopInner {
            id,
            created_at: clock.now(),
            clock,
            task_order: RefCell::new(options.seed.map(SeededRng::new)),
            injects_faults: options.faults.is_some(),
            faults: RefCell::new(options.faults.map(FaultInjector::new)),
            recorder: options.recorder.map(|capacity| RefCell::new(FlightRecorder::new(capacity))),
            ready: RefCell::new(VecDeque::new()),
            timers: TimerHeap::new(),
            fds: RefCell::new(fds),
            tasks: RefCell::new(TaskSlab::default()),
            remote,
            injected: RefCell::new(Vec::new()),
            state: Cell::new(RunState::Idle),
            stopping: Cell::new(false),
            timers_checked_at: Cell::new(None),
            current_task: Cell::new(None),
            work_since_select: Cell::new(0),
            stats: StatCounters::default(),
            debug: Cell::new(false),
            slow_callback_duration: Cell::new(DEFAULT_SLOW_CALLBACK_DURATION),
            exception_handler: RefCell::new(None),
            extensions: RefCell::new(Vec::new()),
        };
        Ok(EventLoop { inner: Rc::new(inner) })
    }

    /// The loop's clock: a monotonic `Instant` (asyncio's `loop.time()`). With a virtual
    /// clock (see [`EventLoopBuilder::virtual_clock`]) it stands still while callbacks
    /// run and moves between iterations.
    pub fn time(&self) -> Instant {
        self.inner.clock.now()
    }

    /// Keeps a virtual clock from jumping while the guard lives (see
    /// [`RemoteLoop::hold_clock`]).
    pub fn hold_clock(&self) -> ClockHold {
        self.remote().hold_clock()
    }

    /// Schedules `callback` to run in the next iteration, after the callbacks already
    /// scheduled (asyncio's `loop.call_soon`).
    #[track_caller]
    pub fn call_soon(&self, callback: impl FnOnce() + 'static) -> Result<Handle, LoopError> {
        self.check_open()?;
        let callback = handle::once(callback, Location::caller());
        self.inner.ready.borrow_mut().push_back(Runnable::Callback(callback.clone()));
        Ok(Handle::new(callback))
    }

    /// Schedules `callback` to run `delay` from now (asyncio's `loop.call_later`).
    #[track_caller]
    pub fn call_later(
        &self,
        delay: Duration,
        callback: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, LoopError> {
        let when = self.time() + delay;
        self.schedule_timer(when, handle::once(callback, Location::caller()))
    }

    /// Schedules `callback` to run at loop time `when` (asyncio's `loop.call_at`).
    /// Timers due at the same instant run in the order they were scheduled.
    #[track_caller]
    pub fn call_at(
        &self,
        when: Instant,
        callback: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, LoopError> {
        self.schedule_timer(when, handle::once(callback, Location::caller()))
    }

    fn schedule_timer(&self, when: Instant, callback: Rc<dyn Callback>) -> Result<TimerHandle, LoopError> {
        self.check_open()?;
        callback.state().set_in_timer_heap(true);
        let key = self.inner.timers.push(when, TimerAction::Callback(callback.clone()));
        add(&self.inner.stats.timers_scheduled, 1);
        Ok(TimerHandle::new(callback, key, when, Rc::downgrade(&self.inner)))
    }

    /// Wakes `waker` at loop time `when` (what `sleep` is built on: cheaper than a
    /// callback, as nothing is allocated). Cancel with [`cancel_wake`](Self::cancel_wake)
    /// only while `time() < when`, when the timer is certainly still queued.
    pub(crate) fn wake_at(&self, when: Instant, waker: Waker) -> Result<TimerKey, LoopError> {
        self.check_open()?;
        add(&self.inner.stats.timers_scheduled, 1);
        Ok(self.inner.timers.push(when, TimerAction::Wake(waker)))
    }

    /// The clock reading at which the loop last fired due timers: every `wake_at` timer
    /// with a deadline up to it has fired. Lets a woken `sleep` see that it is done
    /// without reading the clock again.
    pub(crate) fn timers_checked_at(&self) -> Option<Instant> {
        self.inner.timers_checked_at.get()
    }

    /// Cancels a [`wake_at`](Self::wake_at) timer that has not fired.
    pub(crate) fn cancel_wake(&self, key: TimerKey) {
        self.inner.cancel_timer(key);
    }

    /// A handle other threads can use to schedule callbacks on this loop
    /// (for asyncio's `loop.call_soon_threadsafe`).
    pub fn remote(&self) -> RemoteLoop {
        RemoteLoop::new(self.inner.remote.clone())
    }

    /// Schedules `callback` from this thread through the thread-safe path
    /// (asyncio's `loop.call_soon_threadsafe`; from other threads use [`RemoteLoop`]).
    #[track_caller]
    pub fn call_soon_threadsafe(&self, callback: impl FnOnce() + Send + 'static) -> Result<(), LoopError> {
        self.remote().call_soon_threadsafe(callback)
    }

    /// Calls `callback` whenever `fd` is readable, every iteration while it stays readable,
    /// until [`remove_reader`](Self::remove_reader) (asyncio's `loop.add_reader`).
    /// Replaces an earlier reader of the same fd.
    #[track_caller]
    pub fn add_reader(&self, fd: impl AsRawFd, callback: impl FnMut() + 'static) -> io::Result<()> {
        self.set_fd_callback(fd.as_raw_fd(), Side::Reader, handle::repeating(callback, Location::caller()))
    }

    /// Calls `callback` whenever `fd` is writable (asyncio's `loop.add_writer`).
    #[track_caller]
    pub fn add_writer(&self, fd: impl AsRawFd, callback: impl FnMut() + 'static) -> io::Result<()> {
        self.set_fd_callback(fd.as_raw_fd(), Side::Writer, handle::repeating(callback, Location::caller()))
    }

    /// Stops watching `fd` for reading; true if it had a reader (asyncio's
    /// `loop.remove_reader`). Remove it before closing the fd.
    pub fn remove_reader(&self, fd: impl AsRawFd) -> io::Result<bool> {
        self.remove_fd_callback(fd.as_raw_fd(), Side::Reader)
    }

    /// Stops watching `fd` for writing; true if it had a writer (asyncio's
    /// `loop.remove_writer`).
    pub fn remove_writer(&self, fd: impl AsRawFd) -> io::Result<bool> {
        self.remove_fd_callback(fd.as_raw_fd(), Side::Writer)
    }

    fn set_fd_callback(&self, fd: RawFd, side: Side, callback: Rc<dyn Callback>) -> io::Result<()> {
        self.check_open()?;
        let outcome = self.inner.fds.borrow_mut().set(fd, side, callback);
        // Callbacks are dropped here, after the borrow: their destructors may use the loop.
        match outcome {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    old.state().cancel();
                }
                Ok(())
            }
            Err((error, refused)) => {
                drop(refused);
                Err(error)
            }
        }
    }

    fn remove_fd_callback(&self, fd: RawFd, side: Side) -> io::Result<bool> {
        let (removed, updated) = self.inner.fds.borrow_mut().remove(fd, side);
        // A call already queued for this iteration must not run after its removal.
        let was_there = removed.map(|callback| callback.state().cancel()).is_some();
        updated.map(|()| was_there)
    }

    /// What `fd` is registered for with the selector, if it has a reader or writer.
    pub fn fd_interest(&self, fd: impl AsRawFd) -> Option<Interest> {
        self.inner.fds.borrow().interest(fd.as_raw_fd())
    }

    /// Runs iterations until [`stop`](Self::stop) is called (asyncio's `loop.run_forever`).
    /// Fails if the loop is closed or running, or another loop runs on this thread.
    pub fn run_forever(&self) -> Result<(), LoopError> {
        let _running = self.enter()?;
        let _clear_stop = ClearStopOnExit(&self.inner);
        loop {
            self.iterate()?;
            if self.inner.stopping.get() {
                return Ok(());
            }
        }
    }

    /// Runs exactly one iteration (asyncio's private `_run_once`, public here for study).
    pub fn run_once(&self) -> Result<(), LoopError> {
        let _running = self.enter()?;
        self.iterate()
    }

    /// Asks the loop to stop once the current iteration is done (asyncio's `loop.stop`).
    /// Called before `run_forever`, it makes the next run do one iteration.
    pub fn stop(&self) {
        self.inner.stopping.set(true);
    }

    /// True while `run_forever` / `run_once` is running (asyncio's `loop.is_running`).
    pub fn is_running(&self) -> bool {
        self.inner.state.get() == RunState::Running
    }

    /// True once the loop was closed (asyncio's `loop.is_closed`).
    pub fn is_closed(&self) -> bool {
        self.inner.state.get() == RunState::Closed
    }

    /// Closes the loop (asyncio's `loop.close`): drops every pending callback, timer and fd
    /// registration, cancels the tasks still alive by dropping their coroutines, and refuses
    /// all scheduling from then on. A running loop cannot be closed; closing twice is fine.
    pub fn close(&self) -> Result<(), LoopError> {
        let inner = &self.inner;
        match inner.state.get() {
            RunState::Running => return Err(LoopError::AlreadyRunning),
            RunState::Closed => return Ok(()),
            RunState::Idle => inner.state.set(RunState::Closed),
        }
        // Everything is moved out of the cells first and dropped afterwards: a destructor
        // may call back into the loop, which must then find it closed, not borrowed.
        let injected = inner.remote.close();
        let ready = std::mem::take(&mut *inner.ready.borrow_mut());
        let timers = inner.timers.drain();
        for timer in &timers {
            if let TimerAction::Callback(callback) = timer {
                callback.state().set_in_timer_heap(false);
            }
        }
        let fd_callbacks = inner.fds.borrow_mut().clear();
        drop((injected, ready, timers, fd_callbacks));
        loop {
            let next = inner.tasks.borrow().any_id();
            let Some(id) = next else { break };
            let task = inner.tasks.borrow_mut().remove(id);
            if let Some(task) = task {
                task.as_ref().abandon();
            }
        }
        let extensions = std::mem::take(&mut *inner.extensions.borrow_mut());
        drop(extensions);
        Ok(())
    }

    /// A copy of the loop's counters.
    pub fn stats(&self) -> LoopStats {
        self.inner.stats.snapshot()
    }

    /// How many socket faults the loop injected so far, if it was built with
    /// [`faults`](EventLoopBuilder::faults).
    pub fn fault_counts(&self) -> Option<FaultCounts> {
        if !self.inner.injects_faults {
            return None;
        }
        let resting = self.inner.faults.borrow().as_ref().map(FaultInjector::counts);
        resting.or_else(faults::active_counts)
    }

    /// Turns debug mode on or off (asyncio's `loop.set_debug`): in debug mode callbacks and
    /// task steps slower than [`slow_callback_duration`](Self::set_slow_callback_duration)
    /// are reported with where they were scheduled.
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled);
    }

    /// True in debug mode (asyncio's `loop.get_debug`).
    pub fn get_debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// Sets the threshold for slow-callback reports (asyncio's `loop.slow_callback_duration`).
    pub fn set_slow_callback_duration(&self, threshold: Duration) {
        self.inner.slow_callback_duration.set(threshold);
    }

    /// Sets what happens to a panic caught in a callback or task (asyncio's
    /// `loop.set_exception_handler`). Pass [`default_exception_handler`] to restore the
    /// default, which prints it to stderr.
    pub fn set_exception_handler(&self, handler: impl Fn(&ExceptionContext) + 'static) {
        *self.inner.exception_handler.borrow_mut() = Some(Rc::new(handler));
    }

    /// Hands `context` to the exception handler (asyncio's `loop.call_exception_handler`).
    /// A panic in the handler itself is caught and printed by the default handler.
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        let handler = self.inner.exception_handler.borrow().clone();
        let Some(handler) = handler else {
            return default_exception_handler(context);
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| handler(context))) {
            default_exception_handler(&ExceptionContext {
                message: format!("exception handler panicked while handling: {context}"),
                exception: Some(panic_message(&*payload)),
                scheduled_at: None,
            });
        }
    }

    /// The id the next [`spawn_task`](Self::spawn_task) will give, so a task can carry its
    /// id from birth.
    pub(crate) fn next_task_id(&self) -> Result<TaskId, LoopError> {
        self.check_open()?;
        Ok(self.inner.tasks.borrow().next_id())
    }

    /// Stores a task and schedules its first step, as asyncio's `Task.__init__` does with
    /// `call_soon`.
    pub(crate) fn spawn_task(&self, task: Pin<Rc<dyn Schedulable>>) -> Result<TaskId, LoopError> {
        self.check_open()?;
        let id = self.inner.tasks.borrow_mut().insert(task);
        add(&self.inner.stats.tasks_spawned, 1);
        self.inner.wake_task(id);
        Ok(id)
    }

    /// Puts task `id` on the ready queue for its next step (if it is alive and not queued).
    pub(crate) fn schedule_task(&self, id: TaskId) {
        self.inner.wake_task(id);
    }

    /// The task whose step is running now, if any.
    pub(crate) fn current_task(&self) -> Option<Pin<Rc<dyn Schedulable>>> {
        let id = self.inner.current_task.get()?;
        self.inner.tasks.borrow().get(id)
    }

    /// All tasks not yet finished.
    pub(crate) fn all_tasks(&self) -> Vec<Pin<Rc<dyn Schedulable>>> {
        self.inner.tasks.borrow().all()
    }

    /// The loop's one value of type `T`, made with `T::default()` on first use: where the
    /// layers above keep per-loop state (the executor's thread pool, say) without the loop
    /// knowing their types. Dropped when the loop closes, after its tasks.
    pub(crate) fn extension<T: Default + 'static>(&self) -> Rc<T> {
        let found = self.inner.extensions.borrow().iter().find_map(|e| e.clone().downcast::<T>().ok());
        found.unwrap_or_else(|| {
            let value = Rc::new(T::default());
            self.inner.extensions.borrow_mut().push(value.clone());
            value
        })
    }

    /// The loop's value of type `T`, if [`extension`](Self::extension) made one.
    pub(crate) fn existing_extension<T: 'static>(&self) -> Option<Rc<T>> {
        self.inner.extensions.borrow().iter().find_map(|e| e.clone().downcast::<T>().ok())
    }

    /// Number of tasks not yet finished.
    pub fn task_count(&self) -> usize {
        self.inner.tasks.borrow().len()
    }

    fn check_open(&self) -> Result<(), LoopError> {
        if self.is_closed() {
            return Err(LoopError::Closed);
        }
        Ok(())
    }

    /// Marks the loop running on this thread until the guard drops.
    fn enter(&self) -> Result<RunningGuard, LoopError> {
        match self.inner.state.get() {
            RunState::Closed => return Err(LoopError::Closed),
            RunState::Running => return Err(LoopError::AlreadyRunning),
            RunState::Idle => {}
        }
        RUNNING.with(|running| {
            let mut running = running.borrow_mut();
            if running.is_some() {
                return Err(LoopError::AnotherLoopRunning);
            }
            *running = Some(self.inner.clone());
            self.inner.state.set(RunState::Running);
            if let Some(injector) = self.inner.faults.borrow_mut().take() {
                faults::install(injector);
            }
            Ok(RunningGuard { inner: self.inner.clone() })
        })
    }

    /// One iteration: see the module documentation.
    fn iterate(&self) -> Result<(), LoopError> {
        let inner = &*self.inner;
        add(&inner.stats.iterations, 1);
        self.record(|recorder| recorder.begin(inner.stats.iterations.get(), self.time() - inner.created_at));
        if inner.timers.worth_compacting() {
            drop(inner.timers.compact());
        }
        self.take_injected();
        let has_ready = !inner.ready.borrow().is_empty();
        if !has_ready || inner.work_since_select.get() >= POLL_IO_EVERY {
            let timeout = self.select_timeout(has_ready);
            self.wait_for_io(timeout)?;
            self.take_injected();
        }
        self.fire_due_timers();
        let ntodo = inner.ready.borrow().len();
        self.shuffle_woken_tasks(ntodo);
        self.record(|recorder| recorder.ready(ntodo));
        add(&inner.work_since_select, ntodo as u64);
        for _ in 0..ntodo {
            let next = inner.ready.borrow_mut().pop_front();
            match next {
                Some(Runnable::Callback(callback)) => self.run_callback(callback),
                Some(Runnable::Task(id)) => self.run_task(id),
                None => break,
            }
        }
        self.record(FlightRecorder::end);
        Ok(())
    }

    /// Hands the flight recorder to `note`, if the loop records.
    #[inline]
    fn record(&self, note: impl FnOnce(&mut FlightRecorder)) {
        if let Some(recorder) = &self.inner.recorder {
            note(&mut recorder.borrow_mut());
        }
    }

    /// In the deterministic mode with a seed: shuffles the tasks among the first `count`
    /// ready entries (those woken before this iteration's run phase), leaving every
    /// callback where it is, so `call_soon` keeps its FIFO promise.
    fn shuffle_woken_tasks(&self, count: usize) {
        let mut task_order = self.inner.task_order.borrow_mut();
        let Some(rng) = task_order.as_mut() else { return };
        let mut ready = self.inner.ready.borrow_mut();
        let slots: Vec<usize> = (0..count).filter(|&i| matches!(ready[i], Runnable::Task(_))).collect();
        for k in (1..slots.len()).rev() {
            ready.swap(slots[k], slots[rng.below(k + 1)]);
        }
    }

    /// Waits for I/O for at most `timeout`. With a virtual clock that may jump (see
    /// [`ClockJump`]), polls without waiting and, if nothing came, moves the clock to the
    /// deadline instead; otherwise waits for real and moves a virtual clock by the time
    /// really waited.
    fn wait_for_io(&self, timeout: Option<Duration>) -> Result<(), LoopError> {
        let inner = &*self.inner;
        let Some(policy) = inner.clock.jump_policy() else { return self.select(timeout) };
        if timeout == Some(Duration::ZERO) {
            return self.select(timeout);
        }
        // Holds are read before the poll: a holder sends its result before letting go, so
        // a zero read here means that result is already visible to the poll.
        let may_jump = inner.remote.clock_holds() == 0
            && (policy == ClockJump::Always || inner.fds.borrow().watched() == 0);
        if may_jump {
            self.select(Some(Duration::ZERO))?;
            self.take_injected();
            if !inner.ready.borrow().is_empty() {
                return Ok(());
            }
            if let Some(ahead) = timeout {
                inner.clock.advance(ahead);
                self.record(|recorder| recorder.jumped(ahead));
                return Ok(());
            }
        }
        let started = Instant::now();
        self.select(timeout)?;
        inner.clock.advance(started.elapsed());
        Ok(())
    }

    /// How long `epoll_wait` may block: zero with work ready or a stop pending; else until
    /// the earliest live timer; else no limit.
    fn select_timeout(&self, has_ready: bool) -> Option<Duration> {
        if has_ready || self.inner.stopping.get() {
            return Some(Duration::ZERO);
        }
        let mut cancelled = Vec::new();
        let deadline = self.inner.timers.next_deadline(&mut cancelled);
        drop(cancelled);
        deadline.map(|when| when.saturating_duration_since(self.time()))
    }

    fn select(&self, timeout: Option<Duration>) -> Result<(), LoopError> {
        let inner = &*self.inner;
        let started = inner.recorder.is_some().then(Instant::now);
        let mut events = Vec::new();
        let mut ready = inner.ready.borrow_mut();
        let polled = inner
            .fds
            .borrow_mut()
            .select(
                timeout,
                |callback| ready.push_back(Runnable::Callback(callback.clone())),
                started.is_some().then_some(&mut events),
            )
            .map_err(LoopError::Io)?;
        drop(ready);
        add(&inner.stats.selects, 1);
        add(&inner.stats.events, polled.events as u64);
        inner.work_since_select.set(0);
        if let Some(started) = started {
            let waited = started.elapsed();
            self.record(|recorder| {
                recorder.poll(PollRecord {
                    timeout,
                    waited,
                    events,
                    woken: polled.woken,
                    ..PollRecord::default()
                })
            });
        }
        Ok(())
    }

    /// Moves what other threads sent (callbacks, task wake-ups) onto the ready queue.
    #[inline]
    fn take_injected(&self) {
        if self.inner.remote.has_pending() {
            self.move_injected();
        }
    }

    fn move_injected(&self) {
        let inner = &*self.inner;
        let mut injected = std::mem::take(&mut *inner.injected.borrow_mut());
        if inner.remote.take(&mut injected) {
            for item in injected.drain(..) {
                match item {
                    Injected::Callback(f, origin) => {
                        inner.ready.borrow_mut().push_back(Runnable::Callback(handle::once(f, origin)))
                    }
                    Injected::Wake(id) => inner.wake_task(id),
                }
            }
        }
        *inner.injected.borrow_mut() = injected;
    }

    fn fire_due_timers(&self) {
        let inner = &*self.inner;
        if inner.timers.is_empty() {
            return;
        }
        let now = self.time();
        inner.timers_checked_at.set(Some(now));
        let mut cancelled = Vec::new();
        while let Some((deadline, action)) = inner.timers.pop_due_with_deadline(now, &mut cancelled) {
            add(&inner.stats.timers_fired, 1);
            self.record(|recorder| recorder.timer_fired(now - deadline));
            match action {
                TimerAction::Callback(callback) => {
                    callback.state().set_in_timer_heap(false);
                    inner.ready.borrow_mut().push_back(Runnable::Callback(callback));
                }
                TimerAction::Wake(waker) => waker.wake(),
            }
        }
        drop(cancelled);
    }

    fn run_callback(&self, callback: Rc<dyn Callback>) {
        let state = callback.state();
        if state.is_cancelled() {
            return;
        }
        add(&self.inner.stats.callbacks_run, 1);
        let started = self.times_runs().then(Instant::now);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback.run())) {
            self.call_exception_handler(&ExceptionContext {
                message: "callback panicked".to_string(),
                exception: Some(panic_message(&*payload)),
                scheduled_at: Some(state.origin()),
            });
        }
        if let Some(started) = started {
            self.finished_run(Ran::Callback(state.origin()), started, state.origin());
        }
    }

    /// True if callbacks and task steps are timed: in debug mode, or when recording.
    #[inline]
    fn times_runs(&self) -> bool {
        self.inner.debug.get() || self.inner.recorder.is_some()
    }

    /// One step of a task: poll its coroutine once with a waker that names it.
    fn run_task(&self, id: TaskId) {
        let inner = &*self.inner;
        let Some(task) = inner.tasks.borrow_mut().take_for_step(id) else {
            return;
        };
        add(&inner.stats.task_polls, 1);
        let waker = wake::task_waker(inner.id, id);
        let previous = inner.current_task.replace(Some(id));
        let started = self.times_runs().then(Instant::now);
        let outcome = catch_unwind(AssertUnwindSafe(|| task.as_ref().step(&mut Context::from_waker(&waker))));
        inner.current_task.set(previous);
        if let Some(started) = started {
            self.finished_run(Ran::Task(id, task.created_at()), started, task.created_at());
        }
        if let Ok(Poll::Pending) = outcome {
            return;
        }
        let removed = inner.tasks.borrow_mut().remove(id);
        add(&inner.stats.tasks_finished, 1);
        drop((task, removed));
        if let Err(payload) = outcome {
            self.call_exception_handler(&ExceptionContext {
                message: "task panicked".to_string(),
                exception: Some(panic_message(&*payload)),
                scheduled_at: None,
            });
        }
    }

    /// Records a timed run, and in debug mode reports it if it was slow.
    fn finished_run(&self, ran: Ran, started: Instant, origin: &'static Location<'static>) {
        let took = started.elapsed();
        if self.inner.debug.get() && took >= self.inner.slow_callback_duration.get() {
            let what = if matches!(ran, Ran::Task(..)) { "task step" } else { "callback" };
            eprintln!("evloop: {what} from {origin} took {:.3} s", took.as_secs_f64());
        }
        self.record(|recorder| recorder.ran(ran, took));
    }
}

impl LoopInner {
    /// Cancels a timer still in the heap (asyncio's `_timer_handle_cancelled`).
    fn cancel_timer(&self, key: TimerKey) {
        self.timers.cancel(key);
        add(&self.stats.timers_cancelled, 1);
    }

    /// Puts task `id` on the ready queue unless it is queued already or gone.
    fn wake_task(&self, id: TaskId) {
        if let Some(id) = self.tasks.borrow_mut().mark_queued(id) {
            self.ready.borrow_mut().push_back(Runnable::Task(id));
        }
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        self.remote.close();
        wake::unregister_loop(self.id);
    }
}

/// Same-thread fast path of a task waker: true if the loop `loop_id` is running on this
/// thread and took the wake-up directly.
fn wake_on_running_loop(loop_id: u16, task: TaskId) -> bool {
    RUNNING
        .try_with(|running| {
            let Ok(running) = running.try_borrow() else { return false };
            match running.as_ref() {
                Some(inner) if inner.id == loop_id => {
                    match (inner.tasks.try_borrow_mut(), inner.ready.try_borrow_mut()) {
                        (Ok(mut tasks), Ok(mut ready)) => {
                            if let Some(id) = tasks.mark_queued(task) {
                                ready.push_back(Runnable::Task(id));
                            }
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            }
        })
        .unwrap_or(false)
}

/// Clears the running state when `run_forever` / `run_once` returns, even by a panic.
struct RunningGuard {
    inner: Rc<LoopInner>,
}

/// `run_forever` consumes a `stop()` when it returns, as asyncio resets `_stopping`;
/// `run_once` leaves it for the next run.
struct ClearStopOnExit<'a>(&'a LoopInner);

impl Drop for ClearStopOnExit<'_> {
    fn drop(&mut self) {
        self.0.stopping.set(false);
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.inner.injects_faults {
            *self.inner.faults.borrow_mut() = faults::uninstall();
        }
        if self.inner.state.get() == RunState::Running {
            self.inner.state.set(RunState::Idle);
        }
        let previous = RUNNING.with(|running| running.borrow_mut().take());
        drop(previous);
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("state", &self.inner.state.get())
            .field("ready", &self.inner.ready.borrow().len())
            .field("timers", &self.inner.timers.len())
            .field("watched_fds", &self.inner.fds.borrow().watched())
            .field("tasks", &self.inner.tasks.borrow().len())
            .finish()
    }
}

/// The loop running on this thread (asyncio's `asyncio.get_running_loop`).
pub fn get_running_loop() -> Result<EventLoop, LoopError> {
    RUNNING
        .with(|running| running.borrow().clone())
        .map(|inner| EventLoop { inner })
        .ok_or(LoopError::NoRunningLoop)
}
