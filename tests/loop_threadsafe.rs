//! `call_soon_threadsafe` / `RemoteLoop`: nothing lost, per-thread order kept, and a call
//! from another thread wakes a loop that is blocked in `epoll_wait`.

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use evloop::{get_running_loop, EventLoop, LoopError, RemoteLoop};

const THREADS: usize = 8;
const CALLS: usize = 10_000;

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

// Static assertion: this only compiles if RemoteLoop is Send + Sync + Clone.
const _: fn() = assert_send_sync_clone::<RemoteLoop>;

/// What the loop thread saw: how many calls, the next index expected from each thread,
/// and the first out-of-order call if any.
struct Seen {
    total: usize,
    next: [usize; THREADS],
    out_of_order: Option<(usize, usize, usize)>,
}

#[test]
fn many_threads_lose_nothing_and_keep_their_order() {
    let event_loop = EventLoop::new().unwrap();
    let seen = Arc::new(Mutex::new(Seen { total: 0, next: [0; THREADS], out_of_order: None }));
    let timed_out = Rc::new(Cell::new(false));
    {
        let (l, timed_out) = (event_loop.clone(), timed_out.clone());
        event_loop
            .call_later(Duration::from_secs(30), move || {
                timed_out.set(true);
                l.stop();
            })
            .unwrap();
    }
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (remote, seen, start) = (event_loop.remote(), seen.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..CALLS {
                    let seen = seen.clone();
                    remote
                        .call_soon_threadsafe(move || {
                            let mut seen = seen.lock().unwrap();
                            if seen.next[thread] != i && seen.out_of_order.is_none() {
                                seen.out_of_order = Some((thread, seen.next[thread], i));
                            }
                            seen.next[thread] = i + 1;
                            seen.total += 1;
                            if seen.total == THREADS * CALLS {
                                get_running_loop().unwrap().stop();
                            }
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    event_loop.run_forever().unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(!timed_out.get(), "watchdog fired: only {} calls arrived", seen.lock().unwrap().total);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.total, THREADS * CALLS);
    assert_eq!(seen.out_of_order, None, "(thread, expected index, got index)");
    assert!(seen.next.iter().all(|&n| n == CALLS));
    assert_eq!(event_loop.stats().callbacks_run, (THREADS * CALLS) as u64);
    drop(seen);
    event_loop.close().unwrap();
}

/// The loop thread's kernel state from /proc ('S' while it sleeps in epoll_wait), if
/// /proc is there to ask.
fn thread_state(task: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{task}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may contain spaces.
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Nothing to do at all: no callbacks, no timers, only a watchdog socket that stays silent
/// unless the test is failing. The loop blocks in epoll_wait with no timeout; the call
/// from the other thread must wake it.
#[test]
fn a_call_from_another_thread_wakes_a_blocked_loop() {
    let event_loop = EventLoop::new().unwrap();
    let remote = event_loop.remote();
    let (watchdog_rx, mut watchdog_tx) = UnixStream::pair().unwrap();
    watchdog_rx.set_nonblocking(true).unwrap();
    let timed_out = Rc::new(Cell::new(false));
    {
        let (l, timed_out) = (event_loop.clone(), timed_out.clone());
        let mut rx = watchdog_rx.try_clone().unwrap();
        event_loop
            .add_reader(watchdog_rx.as_raw_fd(), move || {
                let _ = rx.read(&mut [0u8; 16]);
                timed_out.set(true);
                l.stop();
            })
            .unwrap();
    }
    let ran_on_loop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    // "pid/task/tid" of the loop thread, so the other thread can watch it fall asleep.
    let me =
        std::fs::read_link("/proc/thread-self").ok().and_then(|p| Some(p.file_name()?.to_str()?.to_owned()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let caller = {
        let (barrier, ran_on_loop) = (barrier.clone(), ran_on_loop.clone());
        std::thread::spawn(move || {
            barrier.wait();
            // Wait (bounded) until the loop thread is asleep, i.e. in epoll_wait.
            if let Some(task) = &me {
                let give_up = Instant::now() + Duration::from_secs(5);
                while thread_state(task) != Some('S') && Instant::now() < give_up {
                    std::thread::yield_now();
                }
            }
            remote
                .call_soon_threadsafe(move || {
                    ran_on_loop.store(true, Ordering::SeqCst);
                    get_running_loop().unwrap().stop();
                })
                .unwrap();
            // Watchdog: if the loop has not returned in 10 s, wake it through the socket.
            if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                let _ = watchdog_tx.write_all(b"!");
            }
        })
    };
    barrier.wait();
    let started = Instant::now();
    event_loop.run_forever().unwrap();
    let took = started.elapsed();
    done_tx.send(()).unwrap();
    caller.join().unwrap();
    assert!(!timed_out.get(), "the call did not wake the loop; the watchdog did after {took:?}");
    assert!(ran_on_loop.load(Ordering::SeqCst));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(event_loop.stats().selects >= 1);
    event_loop.close().unwrap();
}

#[test]
fn a_call_from_another_thread_wakes_a_loop_waiting_for_a_far_timer() {
    let event_loop = EventLoop::new().unwrap();
    let timed_out = Rc::new(Cell::new(false));
    {
        let (l, timed_out) = (event_loop.clone(), timed_out.clone());
        event_loop
            .call_later(Duration::from_secs(30), move || {
                timed_out.set(true);
                l.stop();
            })
            .unwrap();
    }
    let remote = event_loop.remote();
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let caller = std::thread::spawn(move || {
        b.wait();
        remote.call_soon_threadsafe(|| get_running_loop().unwrap().stop()).unwrap();
    });
    barrier.wait();
    event_loop.run_forever().unwrap();
    caller.join().unwrap();
    assert!(!timed_out.get());
    event_loop.close().unwrap();
}

#[test]
fn threadsafe_calls_from_the_loop_thread_run_in_order() {
    let event_loop = EventLoop::new().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let order = order.clone();
        event_loop.call_soon_threadsafe(move || order.lock().unwrap().push(i)).unwrap();
    }
    let remote = event_loop.remote();
    for i in 10..20 {
        let order = order.clone();
        remote.call_soon_threadsafe(move || order.lock().unwrap().push(i)).unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    event_loop.close().unwrap();
}

#[test]
fn calls_after_close_fail_from_any_thread() {
    let event_loop = EventLoop::new().unwrap();
    let remote = event_loop.remote();
    let clone = remote.clone();
    assert!(!remote.is_closed());
    event_loop.close().unwrap();
    assert!(remote.is_closed());
    assert!(matches!(remote.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
    assert!(matches!(event_loop.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
    let from_thread =
        std::thread::spawn(move || matches!(clone.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
    assert!(from_thread.join().unwrap());
}

#[test]
fn a_remote_outliving_its_loop_fails_cleanly() {
    let event_loop = EventLoop::new().unwrap();
    let remote = event_loop.remote();
    event_loop.close().unwrap();
    drop(event_loop);
    assert!(remote.is_closed());
    assert!(matches!(remote.call_soon_threadsafe(|| {}), Err(LoopError::Closed)));
}
