//! Helpers shared by the integration tests; each test file includes them with `mod common;`.
//!
//! Every test binary compiles this whole module but uses only part of it, hence the
//! `#[allow(dead_code)]` on each item.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Once;
use std::task::{Poll, Waker};
use std::time::Duration;

use evloop::transport::Server;
use evloop::{get_running_loop, sleep, wait_for, EventLoop};

// ---------------------------------------------------------------------------------------
// Expected panics

/// Panics these tests cause on purpose carry this marker; the hook keeps them quiet.
#[allow(dead_code)]
pub const EXPECTED: &str = "expected test panic";

/// Installs (once per test binary) a panic hook that keeps panics carrying [`EXPECTED`] quiet.
#[allow(dead_code)]
pub fn quiet_expected_panics() {
    quiet_panics_containing(&[EXPECTED]);
}

/// Installs (once per test binary) a panic hook that keeps panics mentioning any of `markers` quiet.
#[allow(dead_code)]
pub fn quiet_panics_containing(markers: &'static [&'static str]) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !markers.iter().any(|marker| message.contains(marker)) {
                default(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------
// Flags, counters and logs

/// Sets its flag when dropped: proves a coroutine was dropped (at its await point).
#[allow(dead_code)]
pub struct DropGuard(pub Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A fresh flag, initially false.
#[allow(dead_code)]
pub fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

/// A fresh counter, initially zero.
#[allow(dead_code)]
pub fn counter() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

/// A callback that adds one to `counter`.
#[allow(dead_code)]
pub fn bump(counter: &Rc<Cell<u32>>) -> impl FnOnce() + 'static {
    let counter = counter.clone();
    move || counter.set(counter.get() + 1)
}

/// A shared list of what happened, in order.
#[allow(dead_code)]
pub type Log = Rc<RefCell<Vec<String>>>;

/// A fresh, empty log.
#[allow(dead_code)]
pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Appends `entry` to `log`.
#[allow(dead_code)]
pub fn push(log: &Log, entry: impl Into<String>) {
    log.borrow_mut().push(entry.into());
}

/// A copy of what `log` holds so far.
#[allow(dead_code)]
pub fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

// ---------------------------------------------------------------------------------------
// Loop iterations and bounded runs

/// Yields for one loop iteration.
#[allow(dead_code)]
pub async fn yield_now() {
    sleep(Duration::ZERO).await
}

/// Yields for `n` loop iterations.
#[allow(dead_code)]
pub async fn yields(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

/// Every [`run_test`] body runs under this limit, so a bug fails the test instead of hanging it.
#[allow(dead_code)]
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `body` on a fresh loop with `evloop::run`, failing the test if it takes over [`LIMIT`].
/// The body goes to the heap first: some futures (the HTTP client's) are large in debug
/// builds, and `evloop::run` moves its argument through several stack frames.
#[allow(dead_code)]
pub fn run_test<F>(body: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let body = Box::pin(body);
    evloop::run(async move { wait_for(body, LIMIT).await.expect("test timed out") }).expect("loop failed")
}

/// The running loop (only inside `evloop::run`).
#[allow(dead_code)]
pub fn this_loop() -> EventLoop {
    get_running_loop().expect("inside evloop::run")
}

/// Polls `future` once, in the calling task's context.
#[allow(dead_code)]
pub async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(move |cx| Poll::Ready(future.as_mut().poll(cx))).await
}

// ---------------------------------------------------------------------------------------
// Waiting on what callbacks record

/// A value that callbacks change and coroutines wait on.
#[allow(dead_code)]
pub struct Watch<T> {
    value: RefCell<T>,
    waiters: RefCell<Vec<Waker>>,
}

impl<T: Default> Default for Watch<T> {
    fn default() -> Watch<T> {
        Watch { value: RefCell::new(T::default()), waiters: RefCell::new(Vec::new()) }
    }
}

#[allow(dead_code)]
impl<T> Watch<T> {
    /// A shared watch holding `value`.
    pub fn new(value: T) -> Rc<Watch<T>> {
        Rc::new(Watch { value: RefCell::new(value), waiters: RefCell::new(Vec::new()) })
    }

    /// Changes the value with `f` and wakes the coroutines waiting on it.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let result = f(&mut self.value.borrow_mut());
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
        result
    }

    /// Reads the value with `f`.
    pub fn get<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.value.borrow())
    }

    /// Waits until `done` holds for the value.
    pub async fn until(&self, mut done: impl FnMut(&T) -> bool) {
        self.until_some(|value| done(value).then_some(())).await
    }

    /// Waits until `f` gives a value.
    pub async fn until_some<R>(&self, mut f: impl FnMut(&T) -> Option<R>) -> R {
        poll_fn(|cx| match f(&self.value.borrow()) {
            Some(result) => Poll::Ready(result),
            None => {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// Sockets, servers and data

/// The port of `server`'s first (IP) listening address.
#[allow(dead_code)]
pub fn port_of(server: &Server) -> u16 {
    server.addresses()[0].as_inet().expect("an IP listener").port()
}

/// Reads from a non-blocking `socket` until it would block or ends; the bytes read.
#[allow(dead_code)]
pub fn drain(socket: &mut UnixStream) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 65536];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("draining the socket: {e}"),
        }
    }
}

/// The soft limit on open files, from /proc/self/limits.
#[allow(dead_code)]
pub fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `len` pseudo-random bytes (xorshift), different for each seed.
#[allow(dead_code)]
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// FNV-1a over 64-bit little-endian words (fast enough in debug builds), fed in pieces of
/// any size, with the length mixed in at the end.
#[allow(dead_code)]
#[derive(Clone)]
pub struct Checksum {
    hash: u64,
    carry: [u8; 8],
    carried: usize,
    /// How many bytes were fed in so far.
    pub len: u64,
}

#[allow(dead_code)]
impl Checksum {
    /// An empty checksum.
    pub fn new() -> Checksum {
        Checksum { hash: 0xcbf2_9ce4_8422_2325, carry: [0; 8], carried: 0, len: 0 }
    }

    /// Mixes in one 64-bit word.
    fn word(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(23);
    }

    /// Feeds in `data`, however it is cut into pieces.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while self.carried > 0 && !data.is_empty() {
            self.carry[self.carried] = data[0];
            self.carried += 1;
            data = &data[1..];
            if self.carried == 8 {
                self.word(u64::from_le_bytes(self.carry));
                self.carried = 0;
            }
        }
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().unwrap()));
        }
        for &byte in words.remainder() {
            self.carry[self.carried] = byte;
            self.carried += 1;
        }
    }

    /// The checksum of everything fed so far, and its length in bytes.
    pub fn finish(&self) -> (u64, u64) {
        let mut last = self.clone();
        let mut tail = [0u8; 8];
        tail[..self.carried].copy_from_slice(&self.carry[..self.carried]);
        last.word(u64::from_le_bytes(tail) ^ ((self.carried as u64) << 56));
        last.word(self.len);
        (last.hash, self.len)
    }
}

// ---------------------------------------------------------------------------------------
// Property suites in the deterministic mode (issue 7): proptest settings and a watchdog

/// A proptest configuration for the deterministic-mode suites: `cases` cases (unless
/// `PROPTEST_CASES` is set), generated from the fixed `seed` (unless `PROPTEST_RNG_SEED`
/// is set), so CI runs the same cases every time; shrinking a failure is bounded to a
/// minute.
#[allow(dead_code)]
pub fn proptest_config(cases: u32, seed: u64) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let default = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { cases },
        rng_seed: match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(seed),
            chosen => chosen,
        },
        max_shrink_time: 60_000,
        ..default
    }
}

/// Aborts the whole test process, after printing `what` (the case, with its seed), if it
/// is not dropped within `limit` of real time: a loop spinning inside one callback, which
/// no in-loop time limit can interrupt, fails the run instead of hanging CI.
#[allow(dead_code)]
pub struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[allow(dead_code)]
impl Watchdog {
    /// Starts watching.
    pub fn start(limit: Duration, what: impl Into<String>) -> Watchdog {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let what = what.into();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                eprintln!("watchdog: still running after {limit:?}, aborting: {what}");
                std::process::abort();
            }
        });
        Watchdog { done: Some(done), thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
