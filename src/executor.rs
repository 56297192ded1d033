//! Threads next to the loop: asyncio's default executor (`loop.run_in_executor`), host-name
//! resolution on it (`loop.getaddrinfo`), and the way in from other threads
//! (`asyncio.run_coroutine_threadsafe`).
//!
//! The loop itself never blocks and never shares its state. Work that must block (a
//! `std::thread::sleep`, a blocking socket, `getaddrinfo`) goes to a pool of worker threads;
//! a worker sends the result back with [`RemoteLoop::call_soon_threadsafe`], and the loop
//! thread, running that callback, hands it to the awaiting coroutine.
//!
//! ```
//! let answer = evloop::run(async {
//!     let event_loop = evloop::get_running_loop().unwrap();
//!     event_loop.run_in_executor(|| 6 * 7).await
//! })?;
//! assert_eq!(answer, Ok(42));
//! # Ok::<(), evloop::RunError>(())
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::event_loop::{panic_message, EventLoop, RemoteLoop};

/// Why a job given to [`EventLoop::run_in_executor`] produced no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorError {
    /// The job panicked; the panic message (asyncio sets the exception on the future).
    Panicked(String),
    /// [`EventLoop::shutdown_default_executor`] was called: no new work is accepted
    /// (asyncio's "Executor shutdown has been called").
    Shutdown,
    /// The loop is closed, so no result could be delivered to it.
    LoopClosed,
    /// No worker thread could be started (the operating system's message).
    Spawn(String),
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorError::Panicked(message) => write!(f, "executor job panicked: {message}"),
            ExecutorError::Shutdown => f.write_str("the default executor was shut down"),
            ExecutorError::LoopClosed => f.write_str("event loop is closed"),
            ExecutorError::Spawn(message) => write!(f, "could not start an executor thread: {message}"),
        }
    }
}

impl std::error::Error for ExecutorError {}

/// The number of worker threads of the default executor: `min(32, cores + 4)`, asyncio's
/// (`ThreadPoolExecutor`'s) default, enough for blocking I/O without one thread per call.
pub fn default_max_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores + 4).min(32)
}

/// Locks `mutex`, recovering it if a thread panicked while holding it: every lock in this
/// module guards plain data that a panic cannot leave half-changed (jobs run unlocked).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// The pool
// ---------------------------------------------------------------------------------------

type Job = Box<dyn FnOnce() + Send>;

/// What the loop thread and the workers share.
#[derive(Default)]
struct Pool {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool shuts down.
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers whose exit the loop has not yet seen (see `work`).
    alive: usize,
    shutdown: bool,
}

/// A loop's default executor (asyncio's `ThreadPoolExecutor` behind `run_in_executor`):
/// threads are started when the queue has more jobs than idle workers, up to
/// [`default_max_workers`]. Kept as a loop extension, so it is dropped when the loop closes.
struct Executor {
    pool: Arc<Pool>,
    threads: RefCell<Vec<JoinHandle<()>>>,
    max_workers: usize,
}

impl Default for Executor {
    fn default() -> Executor {
        Executor { pool: Arc::default(), threads: RefCell::default(), max_workers: default_max_workers() }
    }
}

impl Executor {
    /// Queues `job`, starting a worker if none is idle and the pool is not full.
    fn submit(&self, job: Job, remote: &RemoteLoop) -> Result<(), ExecutorError> {
        let need_worker = {
            let mut queue = lock(&self.pool.queue);
            if queue.shutdown {
                return Err(ExecutorError::Shutdown);
            }
            queue.jobs.push_back(job);
            queue.jobs.len() > queue.idle
        };
        self.pool.work.notify_one();
        if need_worker && self.threads.borrow().len() < self.max_workers {
            if let Err(e) = self.start_worker(remote) {
                if self.threads.borrow().is_empty() {
                    // Nobody would ever run it: take it back.
                    let job = lock(&self.pool.queue).jobs.pop_back();
                    drop(job);
                    return Err(ExecutorError::Spawn(e.to_string()));
                }
            }
        }
        Ok(())
    }

    fn start_worker(&self, remote: &RemoteLoop) -> io::Result<()> {
        let mut threads = self.threads.borrow_mut();
        let (pool, remote) = (self.pool.clone(), remote.clone());
        lock(&self.pool.queue).alive += 1;
        let started = std::thread::Builder::new()
            .name(format!("evloop-executor-{}", threads.len()))
            .spawn(move || work(&pool, &remote));
        match started {
            Ok(thread) => {
                threads.push(thread);
                Ok(())
            }
            Err(e) => {
                lock(&self.pool.queue).alive -= 1;
                Err(e)
            }
        }
    }

    /// Refuses new jobs and tells the workers to exit once the queue is empty.
    fn stop_accepting(&self) {
        lock(&self.pool.queue).shutdown = true;
        self.pool.work.notify_all();
    }

    fn has_live_workers(&self) -> bool {
        lock(&self.pool.queue).alive > 0
    }

    fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.borrow_mut());
        for thread in threads {
            // Jobs run under catch_unwind, so a worker does not panic; nothing to report.
            let _ = thread.join();
        }
    }
}

impl Drop for Executor {
    /// The loop closed: tell the workers to exit after the queued jobs, without waiting
    /// (asyncio's `executor.shutdown(wait=False)` in `loop.close`).
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

/// A worker thread: runs jobs until the pool shuts down and the queue is empty.
fn work(pool: &Arc<Pool>, remote: &RemoteLoop) {
    let mut queue = lock(&pool.queue);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            job();
            queue = lock(&pool.queue);
        } else if queue.shutdown {
            break;
        } else {
            queue.idle += 1;
            queue = pool.work.wait(queue).unwrap_or_else(PoisonError::into_inner);
            queue.idle -= 1;
        }
    }
    drop(queue);
    // The worker's last call to the loop counts it gone, on the loop's thread: so a
    // `shutdown_default_executor`, which runs the loop until no worker is alive, has also
    // run every worker's last call by then, and leaves nothing queued behind it.
    let gone = pool.clone();
    if remote.call_soon_threadsafe(move || lock(&gone.queue).alive -= 1).is_err() {
        // The loop is closed: nobody waits for this count.
        lock(&pool.queue).alive -= 1;
    }
}

// ---------------------------------------------------------------------------------------
// run_in_executor
// ---------------------------------------------------------------------------------------

/// Where a job's outcome meets the coroutine awaiting it. Only the loop thread writes the
/// outcome (in a `call_soon_threadsafe` callback); the worker only reads `abandoned`.
struct Slot<T> {
    outcome: Option<Result<T, ExecutorError>>,
    waker: Option<Waker>,
    abandoned: bool,
}

/// The future returned by [`EventLoop::run_in_executor`]: resolves to the job's value,
/// or to an [`ExecutorError`].
///
/// Dropping it works as for a [`Task`](crate::Task): never awaited, the job still runs
/// (fire and forget); dropped *while being awaited* (the awaiting coroutine was cancelled,
/// a timeout gave up), a job that has not started is skipped, as cancelling asyncio's
/// future cancels a job still queued. A job already running finishes either way.
pub struct ExecutorFuture<T> {
    slot: Arc<Mutex<Slot<T>>>,
    awaited: bool,
}

impl<T> ExecutorFuture<T> {
    fn new(outcome: Option<Result<T, ExecutorError>>) -> ExecutorFuture<T> {
        let slot = Arc::new(Mutex::new(Slot { outcome, waker: None, abandoned: false }));
        ExecutorFuture { slot, awaited: false }
    }
}

impl<T> std::future::Future for ExecutorFuture<T> {
    type Output = Result<T, ExecutorError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.awaited = true;
        let mut slot = lock(&self.slot);
        if let Some(outcome) = slot.outcome.take() {
            return Poll::Ready(outcome);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for ExecutorFuture<T> {
    fn drop(&mut self) {
        if self.awaited {
            lock(&self.slot).abandoned = true;
        }
    }
}

impl<T> fmt::Debug for ExecutorFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = lock(&self.slot).outcome.is_some();
        f.debug_struct("ExecutorFuture").field("done", &done).finish()
    }
}

impl EventLoop {
    /// Runs the blocking function `f` on the loop's default thread pool and returns a
    /// future of its value (asyncio's `loop.run_in_executor(None, f)`).
    ///
    /// The job is queued at once, as in asyncio; awaiting only collects the result. The
    /// pool has at most [`default_max_workers`] threads, started as needed. A panic in `f`
    /// becomes `Err(ExecutorError::Panicked(message))`. The value comes back to this
    /// thread through [`RemoteLoop::call_soon_threadsafe`]: the worker never touches the
    /// loop. Fails with `Shutdown` after [`shutdown_default_executor`](Self::shutdown_default_executor)
    /// and `LoopClosed` on a closed loop.
    pub fn run_in_executor<T, F>(&self, f: F) -> ExecutorFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.is_closed() {
            return ExecutorFuture::new(Some(Err(ExecutorError::LoopClosed)));
        }
        let future = ExecutorFuture::new(None);
        let (slot, remote) = (future.slot.clone(), self.remote());
        let deliver_to = remote.clone();
        // A virtual clock must not jump past a timeout while the job runs for real; the
        // hold is let go after the result is sent, so the loop sees one or the other.
        let clock_hold = remote.hold_clock();
        let job = Box::new(move || {
            if lock(&slot).abandoned {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(f))
                .map_err(|payload| ExecutorError::Panicked(panic_message(&*payload)));
            // Runs on the loop thread. If the loop has closed, the value is dropped here.
            let _ = deliver_to.call_soon_threadsafe(move || {
                let waker = {
                    let mut slot = lock(&slot);
                    slot.outcome = Some(outcome);
                    slot.waker.take()
                };
                if let Some(waker) = waker {
                    waker.wake();
                }
            });
            drop(clock_hold);
        });
        if let Err(e) = self.extension::<Executor>().submit(job, &remote) {
            lock(&future.slot).outcome = Some(Err(e));
        }
        future
    }

    /// Stops the default executor (asyncio's `loop.shutdown_default_executor`): no new
    /// jobs are accepted, the queued ones are finished, and the threads are joined.
    ///
    /// If the loop is not running, it runs while it waits, as asyncio awaits the threads:
    /// the results the jobs send back are delivered, and a job that waits for the loop
    /// (through [`run_coroutine_threadsafe`], say) can finish. Called from a coroutine, it
    /// blocks the loop until the jobs are done. [`run`](crate::run) calls it before
    /// closing the loop; a loop closed without it lets its threads exit on their own.
    pub fn shutdown_default_executor(&self) {
        if self.is_closed() {
            return;
        }
        let executor = self.extension::<Executor>();
        executor.stop_accepting();
        while executor.has_live_workers() && self.run_once().is_ok() {}
        executor.join();
    }

    /// Resolves `host` to socket addresses for `port` (asyncio's `loop.getaddrinfo`).
    ///
    /// An IP literal (`"127.0.0.1"`, `"::1"`, `"[::1]"`) is parsed at once, without a
    /// thread. Anything else goes to the default executor, where `std::net::ToSocketAddrs`
    /// calls the C library's blocking `getaddrinfo`. A name that does not resolve, or has no
    /// address, is an `io::ErrorKind::NotFound` error (asyncio's `gaierror`). The future owns
    /// its arguments, so it can be handed to `create_task`.
    pub fn getaddrinfo(
        &self,
        host: &str,
        port: u16,
    ) -> impl std::future::Future<Output = io::Result<Vec<SocketAddr>>> + 'static {
        let lookup = match parse_ip_literal(host) {
            Some(ip) => Lookup::Literal(SocketAddr::new(ip, port)),
            None => {
                let host = host.to_owned();
                Lookup::OnPool(self.run_in_executor(move || resolve(&host, port)))
            }
        };
        async move {
            match lookup {
                Lookup::Literal(address) => Ok(vec![address]),
                Lookup::OnPool(job) => job.await.map_err(io::Error::other)?,
            }
        }
    }
}

/// A host name lookup: done already, or running on the pool.
enum Lookup {
    Literal(SocketAddr),
    OnPool(ExecutorFuture<io::Result<Vec<SocketAddr>>>),
}

/// `host` as an IP address, if it is one: dotted IPv4, IPv6, or IPv6 in brackets.
fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    match unbracketed {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse().ok(),
    }
}

/// The blocking lookup, run on a worker thread.
fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(lookup_error)?.collect();
    if addresses.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no addresses found for {host:?}")));
    }
    Ok(addresses)
}

/// `getaddrinfo`'s own failures (no such name, no address for it, the resolver failing:
/// asyncio's `socket.gaierror`) come from std with no kind a caller can match, so they
/// become `NotFound`, the kind `resolve` gives a name with no address. A failure of the
/// system underneath (`EAI_SYSTEM`: out of file descriptors, say) keeps its OS error.
fn lookup_error(error: io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(_) => error,
        None => io::Error::new(io::ErrorKind::NotFound, error),
    }
}

// ---------------------------------------------------------------------------------------
// run_coroutine_threadsafe
// ---------------------------------------------------------------------------------------

/// Why [`ConcurrentFuture::result`] returned no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConcurrentError {
    /// The timeout passed before the coroutine finished (asyncio's `TimeoutError`); it
    /// keeps running, and `result` can be called again.
    Timeout,
    /// The coroutine's task was cancelled, by [`ConcurrentFuture::cancel`] or on the loop
    /// (asyncio's `CancelledError`).
    Cancelled,
    /// The coroutine panicked; the panic message.
    Panicked(String),
    /// The loop was closed before the coroutine started.
    LoopClosed,
    /// The value was already returned by an earlier call to `result`.
    AlreadyTaken,
}

impl fmt::Display for ConcurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcurrentError::Timeout => f.write_str("timed out waiting for the coroutine"),
            ConcurrentError::Cancelled => f.write_str("the coroutine was cancelled"),
            ConcurrentError::Panicked(message) => write!(f, "the coroutine panicked: {message}"),
            ConcurrentError::LoopClosed => f.write_str("event loop is closed"),
            ConcurrentError::AlreadyTaken => f.write_str("the result was already taken"),
        }
    }
}

impl std::error::Error for ConcurrentError {}

enum Outcome<T> {
    Pending,
    Done(Result<T, ConcurrentError>),
    Taken,
}

struct ConcurrentState<T> {
    outcome: Outcome<T>,
    cancel_requested: bool,
    /// The waker of the task running the coroutine, to wake it for a cancellation.
    waker: Option<Waker>,
}

struct ConcurrentShared<T> {
    state: Mutex<ConcurrentState<T>>,
    done: Condvar,
}

impl<T> ConcurrentShared<T> {
    /// Records the outcome unless there already is one (the first outcome wins).
    fn complete(&self, outcome: Result<T, ConcurrentError>) {
        let mut state = lock(&self.state);
        if matches!(state.outcome, Outcome::Pending) {
            state.outcome = Outcome::Done(outcome);
            self.done.notify_all();
        }
    }
}

/// A handle to a coroutine running on a loop in another thread, returned by
/// [`run_coroutine_threadsafe`] (asyncio's `concurrent.futures.Future`). `Send + Sync`:
/// any thread may wait for it or cancel it.
pub struct ConcurrentFuture<T> {
    shared: Arc<ConcurrentShared<T>>,
}

impl<T> ConcurrentFuture<T> {
    /// Blocks until the coroutine finishes, or until `timeout` has passed (`None`: no
    /// limit), and returns its value (asyncio's `Future.result(timeout)`). Never call it
    /// without a timeout from the loop's own thread: the loop could not run the coroutine.
    pub fn result(&self, timeout: Option<Duration>) -> Result<T, ConcurrentError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = lock(&self.shared.state);
        while matches!(state.outcome, Outcome::Pending) {
            state = match deadline {
                None => self.shared.done.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ConcurrentError::Timeout);
                    }
                    self.shared.done.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        match std::mem::replace(&mut state.outcome, Outcome::Taken) {
            Outcome::Done(Ok(value)) => Ok(value),
            Outcome::Done(Err(e)) => {
                state.outcome = Outcome::Done(Err(e.clone()));
                Err(e)
            }
            Outcome::Taken | Outcome::Pending => Err(ConcurrentError::AlreadyTaken),
        }
    }

    /// True once the coroutine finished, failed or was cancelled (asyncio's `Future.done`).
    pub fn done(&self) -> bool {
        !matches!(lock(&self.shared.state).outcome, Outcome::Pending)
    }

    /// Cancels the coroutine: the handle is done at once, with `Cancelled`, and the task
    /// on the loop is cancelled on the loop's thread, so the coroutine is dropped at its
    /// current await point there (asyncio's `Future.cancel`, which cancels the task
    /// through `call_soon_threadsafe`). False if it had already finished.
    pub fn cancel(&self) -> bool {
        let waker = {
            let mut state = lock(&self.shared.state);
            if !matches!(state.outcome, Outcome::Pending) {
                return false;
            }
            state.outcome = Outcome::Done(Err(ConcurrentError::Cancelled));
            state.cancel_requested = true;
            self.shared.done.notify_all();
            state.waker.take()
        };
        // Without a waker the task has not been polled yet: its first poll sees the flag.
        // The loop's wakers are thread-safe: this puts the task on the loop's ready queue.
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentFuture").field("done", &self.done()).finish()
    }
}

/// Submits `future` to the loop behind `remote` from any thread and returns a handle to
/// wait for its result (asyncio's `asyncio.run_coroutine_threadsafe`).
///
/// The loop's thread starts it as a task in a coming iteration (through
/// [`RemoteLoop::call_soon_threadsafe`] and [`create_task`](crate::create_task)). A panic
/// in it becomes `Err(ConcurrentError::Panicked(message))`; if the loop is closed before
/// the task starts, `Err(ConcurrentError::LoopClosed)`.
///
/// ```
/// use std::time::Duration;
/// let event_loop = evloop::EventLoop::new()?;
/// let remote = event_loop.remote();
/// let caller = std::thread::spawn(move || {
///     let answer = evloop::run_coroutine_threadsafe(async { 6 * 7 }, &remote);
///     let value = answer.result(Some(Duration::from_secs(5)));
///     remote.call_soon_threadsafe(|| evloop::get_running_loop().unwrap().stop()).unwrap();
///     value
/// });
/// event_loop.run_forever()?;
/// assert_eq!(caller.join().unwrap(), Ok(42));
/// event_loop.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_coroutine_threadsafe<F>(future: F, remote: &RemoteLoop) -> ConcurrentFuture<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let shared = Arc::new(ConcurrentShared {
        state: Mutex::new(ConcurrentState {
            outcome: Outcome::Pending,
            cancel_requested: false,
            waker: None,
        }),
        done: Condvar::new(),
    });
    let mut reported = Reported { future: Some(Box::pin(future)), shared: shared.clone(), started: false };
    // Refused or never run because the loop closed: the closure and `reported` are
    // dropped unstarted, which reports LoopClosed.
    let _ = remote.call_soon_threadsafe(move || {
        reported.started = true;
        crate::create_task(reported);
    });
    ConcurrentFuture { shared }
}

/// The coroutine as its task runs it: reports the outcome to the [`ConcurrentFuture`],
/// turns a panic into an error value, and cancels its own task when asked to.
struct Reported<F: std::future::Future> {
    /// `None` once finished (or, in `drop`, once dropped).
    future: Option<Pin<Box<F>>>,
    shared: Arc<ConcurrentShared<F::Output>>,
    /// Handed to the loop as a task; dropped unstarted means the loop closed first.
    started: bool,
}

impl<F: std::future::Future> std::future::Future for Reported<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let cancel_requested = {
            let mut state = lock(&self.shared.state);
            if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.waker = Some(cx.waker().clone());
            }
            state.cancel_requested
        };
        if cancel_requested {
            // Cancel the task itself, as asyncio does: its next step drops the coroutine.
            return match crate::current_task() {
                Some(task) if task.cancel() => Poll::Pending,
                _ => Poll::Ready(()),
            };
        }
        let Some(future) = self.future.as_mut() else { return Poll::Ready(()) };
        let outcome = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(ConcurrentError::Panicked(panic_message(&*payload))),
        };
        self.future = None;
        self.shared.complete(outcome);
        Poll::Ready(())
    }
}

impl<F: std::future::Future> Drop for Reported<F> {
    /// Dropped before finishing: the task was cancelled (or the loop closed under it), or
    /// the loop never started it. The coroutine is dropped first, so its clean-up has run
    /// by the time a waiting thread sees the error.
    fn drop(&mut self) {
        self.future = None;
        let why = if self.started { ConcurrentError::Cancelled } else { ConcurrentError::LoopClosed };
        self.shared.complete(Err(why));
    }
}
