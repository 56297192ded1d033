//! run_forever / stop / close, re-entrancy, and the running-loop registry.

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evloop::{get_running_loop, EventLoop, LoopError};

mod common;
use common::{bump, counter};

/// Counts its drops, to prove a closure holding it was dropped.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// The `Send` version, for `call_soon_threadsafe`.
struct SendDropCounter(Arc<AtomicUsize>);

impl Drop for SendDropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn stop_takes_effect_after_the_current_iteration() {
    let event_loop = EventLoop::new().unwrap();
    let (before, after, later) = (counter(), counter(), counter());
    event_loop.call_soon(bump(&before)).unwrap();
    {
        let (l, later) = (event_loop.clone(), later.clone());
        event_loop
            .call_soon(move || {
                l.stop();
                // Scheduled after stop: must wait for the next run_forever.
                l.call_soon(bump(&later)).unwrap();
            })
            .unwrap();
    }
    // Already in this iteration: runs although stop was called before it.
    event_loop.call_soon(bump(&after)).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!((before.get(), after.get(), later.get()), (1, 1, 0));
    assert_eq!(event_loop.stats().iterations, 1);
    assert!(!event_loop.is_running());

    // The next run picks it up; stop is not sticky.
    let (l, later2) = (event_loop.clone(), later.clone());
    event_loop
        .call_soon(move || {
            assert_eq!(later2.get(), 1, "the leftover callback runs first");
            l.stop();
        })
        .unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(later.get(), 1);
    assert_eq!(event_loop.stats().iterations, 2);
    event_loop.close().unwrap();
}

#[test]
fn stop_from_a_timer_after_several_iterations() {
    let event_loop = EventLoop::new().unwrap();
    let ticks = counter();
    fn tick(l: EventLoop, ticks: Rc<Cell<u32>>) {
        ticks.set(ticks.get() + 1);
        if ticks.get() == 10 {
            l.stop();
        } else {
            let l2 = l.clone();
            l.call_soon(move || tick(l2, ticks)).unwrap();
        }
    }
    let (l, t) = (event_loop.clone(), ticks.clone());
    event_loop.call_soon(move || tick(l, t)).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(ticks.get(), 10);
    assert_eq!(event_loop.stats().iterations, 10);
    event_loop.close().unwrap();
}

#[test]
fn stop_before_run_forever_runs_exactly_one_iteration() {
    let event_loop = EventLoop::new().unwrap();
    let (first, second) = (counter(), counter());
    {
        let (l, second) = (event_loop.clone(), second.clone());
        let first = first.clone();
        event_loop
            .call_soon(move || {
                first.set(first.get() + 1);
                l.call_soon(bump(&second)).unwrap();
            })
            .unwrap();
    }
    event_loop.stop();
    event_loop.run_forever().unwrap();
    assert_eq!((first.get(), second.get()), (1, 0));
    assert_eq!(event_loop.stats().iterations, 1);
    event_loop.close().unwrap();
}

#[test]
fn stop_before_run_forever_with_nothing_to_do_does_not_block() {
    let event_loop = EventLoop::new().unwrap();
    // A far timer: without the stop the loop would sleep an hour.
    event_loop.call_later(Duration::from_secs(3600), || {}).unwrap();
    event_loop.stop();
    event_loop.run_forever().unwrap();
    assert_eq!(event_loop.stats().iterations, 1);
    event_loop.close().unwrap();
}

#[test]
fn run_forever_inside_a_callback_is_an_error_not_a_deadlock() {
    let event_loop = EventLoop::new().unwrap();
    let checked = counter();
    {
        let (l, checked) = (event_loop.clone(), checked.clone());
        event_loop
            .call_soon(move || {
                assert!(matches!(l.run_forever(), Err(LoopError::AlreadyRunning)));
                assert!(matches!(l.run_once(), Err(LoopError::AlreadyRunning)));
                assert!(l.is_running(), "a refused nested run must not end the outer one");
                checked.set(checked.get() + 1);
                l.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(checked.get(), 1);
    // Still usable afterwards.
    let l = event_loop.clone();
    event_loop.call_soon(move || l.stop()).unwrap();
    event_loop.run_forever().unwrap();
    event_loop.close().unwrap();
}

#[test]
fn another_loop_cannot_run_inside_a_running_loop() {
    let outer = EventLoop::new().unwrap();
    let inner = EventLoop::new().unwrap();
    let inner_ran = counter();
    inner.call_soon(bump(&inner_ran)).unwrap();
    let checked = counter();
    {
        let (l, inner, checked) = (outer.clone(), inner.clone(), checked.clone());
        outer
            .call_soon(move || {
                assert!(matches!(inner.run_forever(), Err(LoopError::AnotherLoopRunning)));
                assert!(matches!(inner.run_once(), Err(LoopError::AnotherLoopRunning)));
                assert!(!inner.is_running());
                assert!(l.is_running());
                checked.set(checked.get() + 1);
                l.stop();
            })
            .unwrap();
    }
    outer.run_forever().unwrap();
    assert_eq!(checked.get(), 1);
    assert_eq!(inner_ran.get(), 0);
    // Once the outer loop returned, the inner one runs normally.
    inner.run_once().unwrap();
    assert_eq!(inner_ran.get(), 1);
    inner.close().unwrap();
    outer.close().unwrap();
}

#[test]
fn close_on_a_running_loop_is_refused() {
    let event_loop = EventLoop::new().unwrap();
    let checked = counter();
    {
        let (l, checked) = (event_loop.clone(), checked.clone());
        event_loop
            .call_soon(move || {
                assert!(matches!(l.close(), Err(LoopError::AlreadyRunning)));
                assert!(!l.is_closed());
                checked.set(checked.get() + 1);
                l.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(checked.get(), 1);
    assert!(!event_loop.is_closed());
    event_loop.close().unwrap();
    assert!(event_loop.is_closed());
}

#[test]
fn everything_is_refused_after_close() {
    let event_loop = EventLoop::new().unwrap();
    let remote = event_loop.remote();
    let (a, _b) = UnixStream::pair().unwrap();
    event_loop.close().unwrap();
    assert!(event_loop.is_closed());
    assert!(matches!(event_loop.call_soon(|| {}), Err(LoopError::Closed)));
    assert!(matches!(event_loop.call_later(Duration::ZERO, || {}), Err(LoopError::Closed)));
    assert!(matches!(event_loop.call_at(event_loop.time(), || {}), Err(LoopError::Closed)));
    assert!(matches!(event_loop.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
    assert!(matches!(remote.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
    assert!(remote.is_closed());
    assert!(event_loop.add_reader(a.as_raw_fd(), || {}).is_err());
    assert!(event_loop.add_writer(a.as_raw_fd(), || {}).is_err());
    assert_eq!(event_loop.fd_interest(a.as_raw_fd()), None);
    assert!(matches!(event_loop.run_forever(), Err(LoopError::Closed)));
    assert!(matches!(event_loop.run_once(), Err(LoopError::Closed)));
    assert!(!event_loop.is_running());
}

#[test]
fn close_is_idempotent() {
    let event_loop = EventLoop::new().unwrap();
    event_loop.close().unwrap();
    event_loop.close().unwrap();
    event_loop.clone().close().unwrap();
    assert!(event_loop.is_closed());
}

#[test]
fn close_drops_pending_callbacks() {
    let event_loop = EventLoop::new().unwrap();
    let drops = counter();
    let remote_drops = Arc::new(AtomicUsize::new(0));
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    for _ in 0..3 {
        let guard = DropCounter(drops.clone());
        event_loop.call_soon(move || drop(guard)).unwrap();
    }
    for delay in [0, 3600] {
        let guard = DropCounter(drops.clone());
        event_loop.call_later(Duration::from_secs(delay), move || drop(guard)).unwrap();
    }
    let cancelled = DropCounter(drops.clone());
    event_loop.call_later(Duration::from_secs(1), move || drop(cancelled)).unwrap().cancel();
    let reader = DropCounter(drops.clone());
    event_loop.add_reader(a.as_raw_fd(), move || assert_eq!(reader.0.get(), 0)).unwrap();
    let writer = DropCounter(drops.clone());
    event_loop.add_writer(a.as_raw_fd(), move || assert_eq!(writer.0.get(), 0)).unwrap();
    let remote = SendDropCounter(remote_drops.clone());
    event_loop.remote().call_soon_threadsafe(move || drop(remote)).unwrap();

    assert_eq!(drops.get(), 0, "nothing dropped before close");
    assert_eq!(remote_drops.load(Ordering::SeqCst), 0);
    event_loop.close().unwrap();
    assert_eq!(drops.get(), 8, "every pending callback dropped by close");
    assert_eq!(remote_drops.load(Ordering::SeqCst), 1, "the threadsafe callback too");
    assert_eq!(event_loop.fd_interest(a.as_raw_fd()), None);
}

#[test]
fn a_destructor_run_by_close_finds_the_loop_closed() {
    struct CallsBack {
        event_loop: EventLoop,
        results: Rc<RefCell<Vec<bool>>>,
    }
    impl Drop for CallsBack {
        fn drop(&mut self) {
            let closed = matches!(self.event_loop.call_soon(|| {}), Err(LoopError::Closed));
            self.results.borrow_mut().push(closed);
        }
    }
    let event_loop = EventLoop::new().unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let (a, _b) = UnixStream::pair().unwrap();
    let make = || CallsBack { event_loop: event_loop.clone(), results: results.clone() };
    let guard = make();
    event_loop.call_soon(move || drop(guard)).unwrap();
    let guard = make();
    event_loop.call_later(Duration::from_secs(3600), move || drop(guard)).unwrap();
    let guard = make();
    event_loop.add_reader(a.as_raw_fd(), move || guard.results.borrow_mut().clear()).unwrap();
    event_loop.close().unwrap();
    assert_eq!(*results.borrow(), [true, true, true]);
}

#[test]
fn get_running_loop_inside_a_callback_and_not_outside() {
    assert!(matches!(get_running_loop(), Err(LoopError::NoRunningLoop)));
    let event_loop = EventLoop::new().unwrap();
    let seen = counter();
    {
        let seen = seen.clone();
        event_loop
            .call_soon(move || {
                let running = get_running_loop().expect("a running loop inside a callback");
                assert!(running.is_running());
                // It is the same loop: stopping it through this handle stops ours.
                running.call_soon(bump(&seen)).unwrap();
                running.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(seen.get(), 0, "scheduled after stop: not run yet");
    assert!(matches!(get_running_loop(), Err(LoopError::NoRunningLoop)));
    event_loop.run_once().unwrap();
    assert_eq!(seen.get(), 1);
    assert!(matches!(get_running_loop(), Err(LoopError::NoRunningLoop)));
    event_loop.close().unwrap();
}

#[test]
fn loop_errors_display_and_convert_to_io_errors() {
    for error in [
        LoopError::Closed,
        LoopError::AlreadyRunning,
        LoopError::AnotherLoopRunning,
        LoopError::NoRunningLoop,
    ] {
        assert!(!error.to_string().is_empty());
        let io: std::io::Error = error.into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
    }
}

#[test]
fn cancelling_a_timer_after_close_is_not_counted_as_a_heap_cancellation() {
    let event_loop = EventLoop::new().unwrap();
    let handle = event_loop.call_later(Duration::from_secs(3600), || {}).unwrap();
    event_loop.close().unwrap();
    handle.cancel();
    assert!(handle.cancelled());
    assert_eq!(event_loop.stats().timers_cancelled, 0, "the timer was no longer in the heap");
}
