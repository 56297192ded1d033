//! The default executor (`run_in_executor`, `shutdown_default_executor`), `getaddrinfo` on
//! it, and `run_coroutine_threadsafe` from other threads.
//!
//! Jobs wait on gates and channels rather than on the clock wherever order matters; the
//! few sleeps only make jobs overlap, and every test takes well under a second.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use evloop::executor::default_max_workers;
use evloop::{
    get_running_loop, run_coroutine_threadsafe, sleep, wait_for, ConcurrentError, EventLoop, ExecutorError,
    RemoteLoop, TimeoutError,
};

mod common;
use common::{quiet_expected_panics, EXPECTED};

/// A gate jobs wait at until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, changed) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = changed.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

// ---------------------------------------------------------------------------------------
// run_in_executor
// ---------------------------------------------------------------------------------------

#[test]
fn a_result_comes_back_from_another_thread() {
    let loop_thread = thread::current().id();
    let (value, worker) = evloop::run(async {
        let event_loop = get_running_loop().unwrap();
        event_loop.run_in_executor(|| (6 * 7, thread::current().id())).await.unwrap()
    })
    .unwrap();
    assert_eq!(value, 42);
    assert_ne!(worker, loop_thread, "the job ran on a worker thread");
}

#[test]
fn a_panic_in_the_job_becomes_an_error() {
    quiet_expected_panics();
    let outcome = evloop::run(async {
        let event_loop = get_running_loop().unwrap();
        let failed = event_loop.run_in_executor(|| -> u32 { panic!("{EXPECTED}: boom") }).await;
        // The pool survives the panic.
        let next = event_loop.run_in_executor(|| 7).await;
        (failed, next)
    })
    .unwrap();
    assert_eq!(outcome.0, Err(ExecutorError::Panicked(format!("{EXPECTED}: boom"))));
    assert_eq!(outcome.1, Ok(7));
}

#[test]
fn many_jobs_all_complete_and_never_more_than_the_pool_run_at_once() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let values = evloop::run(async move {
        let event_loop = get_running_loop().unwrap();
        let jobs: Vec<_> = (0..200u64)
            .map(|i| {
                let (running, most) = (r.clone(), m.clone());
                event_loop.run_in_executor(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(1));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * i
                })
            })
            .collect();
        let mut values = Vec::new();
        for job in jobs {
            values.push(job.await.unwrap());
        }
        values
    })
    .unwrap();
    assert_eq!(values, (0..200u64).map(|i| i * i).collect::<Vec<_>>());
    let most = most.load(Ordering::SeqCst);
    assert!(most <= default_max_workers(), "{most} jobs ran at once, the pool has {}", default_max_workers());
    assert!(most > 1, "the jobs ran one at a time");
    assert_eq!(default_max_workers(), (thread::available_parallelism().unwrap().get() + 4).min(32));
}

#[test]
fn the_loop_keeps_running_while_a_job_blocks() {
    let ticks = evloop::run(async {
        let event_loop = get_running_loop().unwrap();
        let gate = Gate::default();
        let opener = gate.clone();
        let job = event_loop.run_in_executor(move || gate.wait());
        let mut ticks = 0;
        for _ in 0..3 {
            sleep(Duration::from_millis(1)).await;
            ticks += 1;
        }
        opener.open();
        job.await.unwrap();
        ticks
    })
    .unwrap();
    assert_eq!(ticks, 3);
}

#[test]
fn shutdown_waits_for_queued_work_then_refuses_more() {
    let event_loop = EventLoop::new().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..20)
        .map(|i| {
            let done = done.clone();
            event_loop.run_in_executor(move || {
                thread::sleep(Duration::from_millis(2));
                done.fetch_add(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    event_loop.shutdown_default_executor();
    assert_eq!(done.load(Ordering::SeqCst), 20, "every queued job ran before shutdown returned");
    let values = event_loop
        .run_until_complete(async move {
            let mut values = Vec::new();
            for job in jobs {
                values.push(job.await.unwrap());
            }
            values
        })
        .unwrap();
    assert_eq!(values, (0..20).collect::<Vec<_>>());
    let refused =
        event_loop.run_until_complete(async move { get_running_loop().unwrap().run_in_executor(|| 1).await });
    assert_eq!(refused.unwrap(), Err(ExecutorError::Shutdown));
    event_loop.close().unwrap();
}

/// Each worker's last act is to wake the loop, after it stopped counting as live: the
/// shutdown takes that wake-up too, so the loop is quiescent right after it. (Once it did
/// not, now and then: the race is narrow, hence many rounds.)
#[test]
fn after_a_shutdown_nothing_from_the_workers_is_left_pending() {
    for round in 0..200 {
        let event_loop = EventLoop::new().unwrap();
        let answer = event_loop.run_until_complete(event_loop.run_in_executor(|| 42)).unwrap();
        assert_eq!(answer, Ok(42));
        event_loop.shutdown_default_executor();
        if let Err(left) = event_loop.check_quiescent() {
            panic!("round {round}: {left}");
        }
        event_loop.close().unwrap();
    }
}

#[test]
fn run_shuts_the_executor_down_after_main() {
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    evloop::run(async move {
        let event_loop = get_running_loop().unwrap();
        // Never awaited (fire and forget): run still waits for it before closing the loop.
        drop(event_loop.run_in_executor(move || {
            thread::sleep(Duration::from_millis(20));
            f.store(true, Ordering::SeqCst);
        }));
    })
    .unwrap();
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn a_job_may_call_back_into_the_loop_while_run_shuts_down() {
    let answer = Arc::new(Mutex::new(None));
    let a = answer.clone();
    evloop::run(async move {
        let event_loop = get_running_loop().unwrap();
        let remote = event_loop.remote();
        drop(event_loop.run_in_executor(move || {
            thread::sleep(Duration::from_millis(5)); // main has returned by now
            let value = run_coroutine_threadsafe(async { 5 }, &remote).result(Some(Duration::from_secs(5)));
            *a.lock().unwrap() = Some(value);
        }));
    })
    .unwrap();
    assert_eq!(*answer.lock().unwrap(), Some(Ok(5)), "the loop ran while shutdown waited");
}

#[test]
fn a_future_dropped_while_awaited_skips_its_job_if_it_has_not_started() {
    let event_loop = EventLoop::new().unwrap();
    let gate = Gate::default();
    let blockers: Vec<_> = (0..default_max_workers())
        .map(|_| {
            let gate = gate.clone();
            event_loop.run_in_executor(move || gate.wait())
        })
        .collect();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = event_loop.run_in_executor(move || r.store(true, Ordering::SeqCst));
    let gave_up = event_loop.run_until_complete(wait_for(queued, Duration::from_millis(1))).unwrap();
    assert_eq!(gave_up, Err(TimeoutError));
    gate.open();
    event_loop.shutdown_default_executor();
    assert!(!ran.load(Ordering::SeqCst), "the abandoned job was skipped");
    drop(blockers);
    event_loop.close().unwrap();
}

#[test]
fn closing_the_loop_does_not_wait_for_running_jobs() {
    let event_loop = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let job = event_loop.run_in_executor(move || g.wait());
    let started = Instant::now();
    event_loop.close().unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    gate.open(); // the worker finishes, finds the loop closed, and exits
    drop(job);
    let refused = event_loop.run_in_executor(|| 1);
    let outcome = EventLoop::new().unwrap().run_until_complete(refused).unwrap();
    assert_eq!(outcome, Err(ExecutorError::LoopClosed));
}

// ---------------------------------------------------------------------------------------
// getaddrinfo
// ---------------------------------------------------------------------------------------

#[test]
fn localhost_resolves_on_the_pool() {
    let addresses = evloop::run(async { get_running_loop().unwrap().getaddrinfo("localhost", 80).await })
        .unwrap()
        .unwrap();
    let loopbacks = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    assert!(addresses.iter().any(|a| loopbacks.contains(&a.ip())), "{addresses:?}");
    assert!(addresses.iter().all(|a| a.port() == 80));
}

#[test]
fn a_name_that_does_not_resolve_is_not_found() {
    // `.invalid` never resolves (RFC 6761 section 6.4). std gives getaddrinfo's failure no
    // kind a caller can match; getaddrinfo makes it NotFound, as asyncio's gaierror is its own.
    let outcome =
        evloop::run(async { get_running_loop().unwrap().getaddrinfo("no-such-host.invalid", 80).await })
            .unwrap();
    let error = outcome.expect_err("a .invalid name resolved");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
}

#[test]
fn ip_literals_resolve_without_a_thread() {
    let event_loop = EventLoop::new().unwrap();
    // With the pool shut down, only what needs no thread can succeed.
    event_loop.shutdown_default_executor();
    let outcome = event_loop
        .run_until_complete(async {
            let event_loop = get_running_loop().unwrap();
            let mut found = Vec::new();
            for host in ["127.0.0.1", "::1", "[::1]", "[fe80::1]"] {
                found.push(event_loop.getaddrinfo(host, 8080).await.unwrap());
            }
            let name = event_loop.getaddrinfo("localhost", 8080).await;
            (found, name)
        })
        .unwrap();
    let v6 = |ip: Ipv6Addr| vec![SocketAddr::new(IpAddr::V6(ip), 8080)];
    assert_eq!(
        outcome.0,
        [
            vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            v6(Ipv6Addr::LOCALHOST),
            v6(Ipv6Addr::LOCALHOST),
            v6("fe80::1".parse().unwrap()),
        ]
    );
    assert!(outcome.1.is_err(), "a name needs the pool, which is shut down");
    event_loop.close().unwrap();
}

#[test]
fn an_unknown_host_is_an_error() {
    let outcome =
        evloop::run(async { get_running_loop().unwrap().getaddrinfo("no-such-host.invalid", 80).await });
    assert!(outcome.unwrap().is_err());
}

// ---------------------------------------------------------------------------------------
// run_coroutine_threadsafe
// ---------------------------------------------------------------------------------------

/// A loop running forever on its own thread, and a way to stop it.
struct BackgroundLoop {
    remote: RemoteLoop,
    thread: Option<thread::JoinHandle<()>>,
}

impl BackgroundLoop {
    fn start() -> BackgroundLoop {
        let (sender, receiver) = mpsc::channel();
        let thread = thread::spawn(move || {
            let event_loop = EventLoop::new().unwrap();
            sender.send(event_loop.remote()).unwrap();
            event_loop.run_forever().unwrap();
            event_loop.close().unwrap();
        });
        BackgroundLoop { remote: receiver.recv().unwrap(), thread: Some(thread) }
    }
}

impl Drop for BackgroundLoop {
    fn drop(&mut self) {
        let _ = self.remote.call_soon_threadsafe(|| get_running_loop().unwrap().stop());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

#[test]
fn a_coroutine_sent_from_another_thread_returns_its_value() {
    let background = BackgroundLoop::start();
    let answer = run_coroutine_threadsafe(
        async {
            sleep(Duration::from_millis(5)).await;
            thread::current().id()
        },
        &background.remote,
    );
    let ran_on = answer.result(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(Some(ran_on), background.thread.as_ref().map(|t| t.thread().id()));
    assert!(answer.done());
    assert_eq!(answer.result(None), Err(ConcurrentError::AlreadyTaken));
}

#[test]
fn result_times_out_and_cancel_stops_the_coroutine() {
    let background = BackgroundLoop::start();
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let slow = run_coroutine_threadsafe(
        async move {
            let _guard = guard;
            sleep(Duration::from_secs(60)).await;
            1
        },
        &background.remote,
    );
    assert_eq!(slow.result(Some(Duration::from_millis(20))), Err(ConcurrentError::Timeout));
    assert!(!slow.done());
    assert!(slow.cancel());
    assert!(!slow.cancel(), "already done");
    assert_eq!(slow.result(Some(Duration::ZERO)), Err(ConcurrentError::Cancelled));
    // The loop thread drops the coroutine at its next step.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(dropped.load(Ordering::SeqCst), "the coroutine's clean-up ran");
}

#[test]
fn cancelling_on_the_loop_is_reported() {
    let background = BackgroundLoop::start();
    let cancelled = run_coroutine_threadsafe(
        async {
            evloop::current_task().unwrap().cancel();
            sleep(Duration::ZERO).await;
            1
        },
        &background.remote,
    );
    assert_eq!(cancelled.result(Some(Duration::from_secs(5))), Err(ConcurrentError::Cancelled));
}

#[test]
fn a_panicking_coroutine_reports_the_panic() {
    quiet_expected_panics();
    let background = BackgroundLoop::start();
    let failed = run_coroutine_threadsafe(
        async {
            sleep(Duration::ZERO).await;
            panic!("{EXPECTED}: bad coroutine");
        },
        &background.remote,
    );
    let outcome: Result<(), _> = failed.result(Some(Duration::from_secs(5)));
    assert_eq!(outcome, Err(ConcurrentError::Panicked(format!("{EXPECTED}: bad coroutine"))));
    // The loop carries on.
    let next = run_coroutine_threadsafe(async { 2 }, &background.remote);
    assert_eq!(next.result(Some(Duration::from_secs(5))), Ok(2));
}

#[test]
fn a_closed_loop_is_reported() {
    let event_loop = EventLoop::new().unwrap();
    let remote = event_loop.remote();
    let queued = run_coroutine_threadsafe(async { 1 }, &remote);
    event_loop.close().unwrap(); // drops the queued call unrun
    assert_eq!(queued.result(Some(Duration::ZERO)), Err(ConcurrentError::LoopClosed));
    let refused = run_coroutine_threadsafe(async { 1 }, &remote);
    assert_eq!(refused.result(None), Err(ConcurrentError::LoopClosed));
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<evloop::ConcurrentFuture<String>>();
    send::<evloop::ExecutorFuture<String>>();
    send_sync::<RemoteLoop>();
}
