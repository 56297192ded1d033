//! Task wakers used from other threads: the slow path through the loop's injection queue
//! and eventfd. Every handshake is a channel or an atomic, never a sleep; a watchdog stops
//! the loop (failing the test) instead of letting a lost wake-up hang it.

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use evloop::{EventLoop, RemoteLoop, RunError};

/// How long a handshake may take before the test gives up (only reached on a bug).
const PATIENCE: Duration = Duration::from_secs(20);

/// Stops the loop from another thread if the test has not finished within `PATIENCE`,
/// so that a lost wake-up fails the test instead of hanging it. Drop it to disarm.
struct Watchdog {
    done: Option<Sender<()>>,
    thread: Option<thread::JoinHandle<bool>>,
}

impl Watchdog {
    fn arm(remote: RemoteLoop) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || match rx.recv_timeout(PATIENCE) {
            Err(RecvTimeoutError::Timeout) => {
                let _ = remote.call_soon_threadsafe(|| evloop::get_running_loop().unwrap().stop());
                true
            }
            _ => false,
        });
        Watchdog { done: Some(done), thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        let fired = self.thread.take().unwrap().join().unwrap();
        if !thread::panicking() {
            assert!(!fired, "the watchdog had to stop the loop: a wake-up was lost");
        }
    }
}

/// `/proc/<pid>/task/<tid>` of the calling thread, if /proc is there.
fn this_thread_proc_dir() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(format!("/proc/{}", link.display()))
}

/// The syscall numbers a thread blocked in `epoll_wait` shows in /proc.
fn epoll_wait_syscalls() -> Vec<i64> {
    #[allow(unused_mut)]
    let mut numbers = vec![libc::SYS_epoll_pwait];
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    numbers.push(libc::SYS_epoll_wait);
    numbers
}

/// Waits until the thread at `dir` is asleep inside `epoll_wait`, as /proc reports it:
/// `Some(true)` once seen, `Some(false)` if never seen in time, `None` if /proc cannot
/// tell (then the caller goes ahead anyway).
fn wait_until_blocked_in_epoll_wait(dir: &str) -> Option<bool> {
    let numbers = epoll_wait_syscalls();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let syscall = std::fs::read_to_string(format!("{dir}/syscall")).ok()?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        let number = syscall.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
        // The state is the field after the parenthesised command name.
        let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
        if number.is_some_and(|n| numbers.contains(&n)) && state == Some("S") {
            return Some(true);
        }
        thread::yield_now();
    }
    Some(false)
}

/// On its first poll, sends its waker over `waker_tx`; ready once `woken` is set.
struct SendWakerThenWait {
    waker_tx: Option<Sender<Waker>>,
    woken: Arc<AtomicBool>,
    polls: usize,
}

impl Future for SendWakerThenWait {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        if let Some(tx) = self.waker_tx.take() {
            tx.send(cx.waker().clone()).unwrap();
            return Poll::Pending;
        }
        if self.woken.load(SeqCst) {
            Poll::Ready(self.polls)
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn a_wake_from_another_thread_reaches_a_loop_blocked_in_epoll_wait() {
    let event_loop = EventLoop::new().unwrap();
    let _watchdog = Watchdog::arm(event_loop.remote());
    let loop_thread = this_thread_proc_dir();
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let woken = Arc::new(AtomicBool::new(false));
    let waker_thread = {
        let (woken, loop_thread) = (woken.clone(), loop_thread.clone());
        thread::spawn(move || {
            let waker = waker_rx.recv().unwrap();
            let seen_blocked = loop_thread.and_then(|dir| wait_until_blocked_in_epoll_wait(&dir));
            woken.store(true, SeqCst);
            waker.wake();
            seen_blocked
        })
    };
    let before = event_loop.stats();
    let polls = event_loop
        .run_until_complete(SendWakerThenWait { waker_tx: Some(waker_tx), woken: woken.clone(), polls: 0 })
        .unwrap();
    let seen_blocked = waker_thread.join().unwrap();
    assert_ne!(seen_blocked, Some(false), "the loop thread was never seen blocked in epoll_wait");
    assert_eq!(polls, 2, "one poll to park, one after the wake");
    let after = event_loop.stats();
    assert!(after.selects > before.selects);
    assert!(after.events > before.events, "the eventfd woke the loop");
    event_loop.close().unwrap();
}

#[test]
fn a_wake_from_another_thread_while_the_loop_is_idle_is_kept_for_the_next_run() {
    let event_loop = EventLoop::new().unwrap();
    let polls = Rc::new(Cell::new(0));
    let stash: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let task = {
        let (polls, stash) = (polls.clone(), stash.clone());
        event_loop
            .create_task(poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if polls.get() == 1 {
                    *stash.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }))
            .unwrap()
    };
    event_loop.run_once().unwrap();
    assert_eq!(polls.get(), 1);
    let waker = stash.borrow_mut().take().unwrap();
    thread::spawn(move || waker.wake()).join().unwrap();
    // The loop was not running; the wake-up waits in its injection queue.
    assert_eq!(polls.get(), 1);
    event_loop.run_once().unwrap();
    assert_eq!(polls.get(), 2);
    assert!(task.done());
    event_loop.close().unwrap();
}

/// The slab slot of a task id, from its Debug form (`TaskId { slot: 0, generation: 1 }`).
fn slot_of(id: evloop::TaskId) -> Option<String> {
    let text = format!("{id:?}");
    let start = text.find("slot: ")? + "slot: ".len();
    let rest = &text[start..];
    Some(rest[..rest.find(|c: char| !c.is_ascii_digit())?].to_string())
}

#[test]
fn a_stale_waker_of_a_finished_task_does_not_disturb_the_task_reusing_its_slot() {
    let event_loop = EventLoop::new().unwrap();
    let stash: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let old = {
        let stash = stash.clone();
        event_loop
            .create_task(poll_fn(move |cx| {
                *stash.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            }))
            .unwrap()
    };
    event_loop.run_once().unwrap();
    assert!(old.done());
    let stale = stash.borrow_mut().take().unwrap();

    let polls = Rc::new(Cell::new(0));
    let future = event_loop.create_future::<u32>();
    let new = {
        let (polls, future) = (polls.clone(), future.clone());
        event_loop
            .create_task(async move {
                poll_fn(|_| {
                    polls.set(polls.get() + 1);
                    Poll::Ready(())
                })
                .await;
                let value = future.await.unwrap();
                polls.set(polls.get() + 1);
                value
            })
            .unwrap()
    };
    if let (Some(a), Some(b)) = (slot_of(old.id()), slot_of(new.id())) {
        assert_eq!(a, b, "the new task reuses the old task's slot");
    }
    assert_ne!(old.id(), new.id(), "but with a new generation");
    event_loop.run_once().unwrap();
    assert_eq!(polls.get(), 1);
    let new_polls_before = event_loop.stats().task_polls;

    // From this thread with the loop idle, from a callback on the running loop, and from
    // another thread: none may reach the new task, nor panic.
    stale.wake_by_ref();
    let in_callback = stale.clone();
    event_loop.call_soon(move || in_callback.wake()).unwrap();
    event_loop.run_once().unwrap();
    let from_thread = stale.clone();
    thread::spawn(move || from_thread.wake()).join().unwrap();
    event_loop.call_soon(|| {}).unwrap();
    event_loop.run_once().unwrap();
    let spurious = event_loop.stats().task_polls - new_polls_before;
    assert!(spurious <= 1, "the new task was polled {spurious} times by a stale waker");
    assert!(!new.done());

    future.set_result(6).unwrap();
    let value = event_loop.run_until_complete(new).unwrap();
    assert_eq!(value, Ok(6));
    assert_eq!(polls.get(), 2);
    event_loop.close().unwrap();
    // A waker that outlives its loop is harmless too.
    stale.wake_by_ref();
    thread::spawn(move || stale.wake()).join().unwrap();
}

#[test]
fn a_waker_that_outlives_its_dropped_loop_is_harmless() {
    let stash: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    {
        let event_loop = EventLoop::new().unwrap();
        let s = stash.clone();
        event_loop
            .create_task(poll_fn(move |cx| {
                *s.borrow_mut() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }))
            .unwrap();
        event_loop.run_once().unwrap();
        event_loop.close().unwrap();
    }
    let waker = stash.borrow_mut().take().unwrap();
    // Another loop may now have the dropped loop's id: at most a spurious wake there.
    let other = EventLoop::new().unwrap();
    let value = other
        .run_until_complete(async move {
            waker.wake_by_ref();
            thread::spawn(move || waker.wake()).join().unwrap();
            evloop::sleep(Duration::ZERO).await;
            "still fine"
        })
        .unwrap();
    assert_eq!(value, "still fine");
    other.close().unwrap();
}

/// The task side of the ping-pong: each poll acknowledges the latest number sent, and the
/// task is done once `rounds` has been sent.
struct PingPong {
    sent: Arc<AtomicUsize>,
    acks: Sender<usize>,
    waker_tx: Option<Sender<Waker>>,
    acknowledged: usize,
    rounds: usize,
    polls: usize,
}

impl Future for PingPong {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        if let Some(tx) = self.waker_tx.take() {
            // The first poll only hands out the waker. Were it to read `sent` too, it could
            // see round 1 already stored and acknowledge it, and the next poll would then
            // answer two wake-ups at once: one poll fewer, though nothing was lost.
            tx.send(cx.waker().clone()).unwrap();
            return Poll::Pending;
        }
        let sent = self.sent.load(SeqCst);
        if sent == self.rounds {
            return Poll::Ready(self.polls);
        }
        if sent > self.acknowledged {
            self.acknowledged = sent;
            let _ = self.acks.send(sent);
        }
        Poll::Pending
    }
}

#[test]
fn ten_thousand_wakes_in_lockstep_are_never_lost() {
    const ROUNDS: usize = 10_000;
    let event_loop = EventLoop::new().unwrap();
    let _watchdog = Watchdog::arm(event_loop.remote());
    let sent = Arc::new(AtomicUsize::new(0));
    let (acks_tx, acks_rx) = mpsc::channel::<usize>();
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let waker_thread = {
        let sent = sent.clone();
        thread::spawn(move || {
            let waker = waker_rx.recv().unwrap();
            for round in 1..=ROUNDS {
                sent.store(round, SeqCst);
                waker.wake_by_ref();
                if round < ROUNDS {
                    // Each wake-up must produce a poll that acknowledges it before the next.
                    assert_eq!(acks_rx.recv_timeout(PATIENCE), Ok(round), "wake-up {round} was lost");
                }
            }
        })
    };
    let task =
        PingPong { sent, acks: acks_tx, waker_tx: Some(waker_tx), acknowledged: 0, rounds: ROUNDS, polls: 0 };
    let polls = event_loop.run_until_complete(task);
    waker_thread.join().unwrap();
    // One poll to start, then exactly one per wake-up.
    assert_eq!(polls.unwrap(), ROUNDS + 1);
    event_loop.close().unwrap();
}

#[test]
fn ten_thousand_wakes_from_four_threads_at_once_are_not_lost() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 2_500;
    let event_loop = EventLoop::new().unwrap();
    let _watchdog = Watchdog::arm(event_loop.remote());
    let count = Arc::new(AtomicUsize::new(0));
    let mut waker_txs = Vec::new();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
            waker_txs.push(waker_tx);
            let count = count.clone();
            thread::spawn(move || {
                let waker = waker_rx.recv().unwrap();
                for _ in 0..PER_THREAD {
                    count.fetch_add(1, SeqCst);
                    waker.wake_by_ref();
                }
            })
        })
        .collect();
    let polls = Rc::new(Cell::new(0usize));
    let p = polls.clone();
    let result = event_loop.run_until_complete(poll_fn(move |cx| {
        p.set(p.get() + 1);
        for waker_tx in waker_txs.drain(..) {
            waker_tx.send(cx.waker().clone()).unwrap();
        }
        if count.load(SeqCst) == THREADS * PER_THREAD {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(!matches!(result, Err(RunError::StoppedBeforeComplete)), "the last wake-up was lost");
    result.unwrap();
    // Wake-ups coalesce (a queued task is queued once), but never exceed one poll each.
    assert!(polls.get() >= 2);
    assert!(polls.get() <= THREADS * PER_THREAD + 1, "{} polls", polls.get());
    event_loop.close().unwrap();
}

#[test]
fn a_task_parked_forever_is_still_cancelled_by_close_after_cross_thread_wakes() {
    let event_loop = EventLoop::new().unwrap();
    let stash: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let s = stash.clone();
    let task = event_loop
        .create_task(async move {
            poll_fn(|cx| {
                *s.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            })
            .await;
            pending::<()>().await
        })
        .unwrap();
    event_loop.run_once().unwrap();
    let waker = stash.borrow_mut().take().unwrap();
    let thread_waker = waker.clone();
    thread::spawn(move || thread_waker.wake()).join().unwrap();
    event_loop.close().unwrap();
    assert!(task.cancelled());
    // Waking after close: refused quietly.
    thread::spawn(move || waker.wake()).join().unwrap();
}
