//! fd callbacks (`add_reader` / `add_writer` / `remove_*`) and the Selector under them.
//!
//! Most tests need the loop to go round several times with I/O polled each time; for that
//! they watch a "ticker": the writing end of a spare socket pair, always writable, whose
//! writer callback counts iterations and stops the loop after a fixed number of them.
//!
//! Tests hold a shared lock; the one test that needs an fd number to stay closed takes it
//! exclusively, so no other test of this file can reopen that number meanwhile.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use evloop::selector::{Event, Selector};
use evloop::{EventLoop, Interest};

mod common;
use common::{counter, drain};

static FD_NUMBERS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FD_NUMBERS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FD_NUMBERS.write().unwrap_or_else(|e| e.into_inner())
}

/// A connected, non-blocking socket pair.
fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Installs a ticker: a writer on an always-writable socket that counts iterations and
/// stops the loop at the `stop_at`-th. Returns the count and the sockets (keep them alive).
fn ticker(event_loop: &EventLoop, stop_at: u32) -> (Rc<Cell<u32>>, (UnixStream, UnixStream)) {
    let sockets = pair();
    let ticks = counter();
    let (l, t) = (event_loop.clone(), ticks.clone());
    event_loop
        .add_writer(sockets.0.as_raw_fd(), move || {
            t.set(t.get() + 1);
            if t.get() == stop_at {
                l.stop();
            }
        })
        .unwrap();
    (ticks, sockets)
}

/// Arms a watchdog: if the loop is still running after `secs`, it is stopped and the
/// returned flag set (the test then fails instead of hanging).
fn watchdog(event_loop: &EventLoop, secs: u64) -> Rc<Cell<bool>> {
    let fired = Rc::new(Cell::new(false));
    let (l, f) = (event_loop.clone(), fired.clone());
    event_loop
        .call_later(Duration::from_secs(secs), move || {
            f.set(true);
            l.stop();
        })
        .unwrap();
    fired
}

/// Writes into `socket` until the kernel refuses more: it is then not writable.
fn fill(socket: &mut UnixStream) {
    let chunk = [0u8; 65536];
    loop {
        match socket.write(&chunk) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
}

#[test]
fn reader_is_called_every_iteration_while_readable_and_not_after() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(b"ping").unwrap();
    let calls = counter();
    let read = Rc::new(Cell::new(0));
    let a = Rc::new(RefCell::new(a));
    {
        let (calls, read, a2) = (calls.clone(), read.clone(), a.clone());
        event_loop
            .add_reader(a.borrow().as_raw_fd(), move || {
                calls.set(calls.get() + 1);
                // Leave the data in place twice: level-triggered means we are called again.
                if calls.get() == 3 {
                    read.set(drain(&mut a2.borrow_mut()));
                }
            })
            .unwrap();
    }
    let (ticks, _t) = ticker(&event_loop, 6);
    event_loop.run_forever().unwrap();
    assert_eq!(ticks.get(), 6);
    assert_eq!(calls.get(), 3, "called on iterations 1, 2, 3 and not after the data was read");
    assert_eq!(read.get(), 4);
    assert_eq!(event_loop.stats().iterations, 6);
    assert!(event_loop.remove_reader(a.borrow().as_raw_fd()).unwrap());
    event_loop.close().unwrap();
}

#[test]
fn reader_is_called_again_when_new_data_arrives() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, b) = pair();
    let a = Rc::new(RefCell::new(a));
    let b = Rc::new(RefCell::new(b));
    let received = Rc::new(RefCell::new(Vec::new()));
    let fd = a.borrow().as_raw_fd();
    {
        let (a, b, received, l) = (a.clone(), b.clone(), received.clone(), event_loop.clone());
        event_loop
            .add_reader(fd, move || {
                let mut buf = [0u8; 16];
                let n = a.borrow_mut().read(&mut buf).unwrap();
                received.borrow_mut().push(buf[..n].to_vec());
                if received.borrow().len() < 3 {
                    // The next message, sent from inside the loop: the reader must wake for it.
                    b.borrow_mut().write_all(&[received.borrow().len() as u8]).unwrap();
                } else {
                    l.stop();
                }
            })
            .unwrap();
    }
    b.borrow_mut().write_all(&[0]).unwrap();
    let timed_out = watchdog(&event_loop, 5);
    event_loop.run_forever().unwrap();
    assert!(!timed_out.get());
    assert_eq!(*received.borrow(), [vec![0], vec![1], vec![2]]);
    event_loop.remove_reader(fd).unwrap();
    event_loop.close().unwrap();
}

#[test]
fn writer_is_called_while_writable_until_removed() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    let calls = counter();
    let removed = Rc::new(RefCell::new(Vec::new()));
    {
        let (calls, removed, l) = (calls.clone(), removed.clone(), event_loop.clone());
        event_loop
            .add_writer(fd, move || {
                calls.set(calls.get() + 1);
                if calls.get() == 3 {
                    removed.borrow_mut().push(l.remove_writer(fd).unwrap());
                    removed.borrow_mut().push(l.remove_writer(fd).unwrap());
                }
            })
            .unwrap();
    }
    let (ticks, _t) = ticker(&event_loop, 6);
    event_loop.run_forever().unwrap();
    assert_eq!(ticks.get(), 6);
    assert_eq!(calls.get(), 3);
    assert_eq!(*removed.borrow(), [true, false]);
    assert_eq!(event_loop.fd_interest(fd), None);
    event_loop.close().unwrap();
}

#[test]
fn writer_is_not_called_while_the_socket_is_full_and_is_called_once_drained() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (mut a, mut b) = pair();
    fill(&mut a);
    let fd = a.as_raw_fd();
    let calls = counter();
    {
        let (calls, l) = (calls.clone(), event_loop.clone());
        event_loop
            .add_writer(fd, move || {
                calls.set(calls.get() + 1);
                l.remove_writer(fd).unwrap();
                l.stop();
            })
            .unwrap();
    }
    let (ticks, _t) = ticker(&event_loop, 3);
    event_loop.run_forever().unwrap();
    assert_eq!((ticks.get(), calls.get()), (3, 0), "a full socket is not writable");
    assert!(drain(&mut b) > 0);
    let timed_out = watchdog(&event_loop, 5);
    event_loop.run_forever().unwrap();
    assert!(!timed_out.get());
    assert_eq!(calls.get(), 1);
    event_loop.close().unwrap();
}

#[test]
fn remove_reader_and_remove_writer_report_whether_there_was_one() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert!(!event_loop.remove_reader(fd).unwrap());
    assert!(!event_loop.remove_writer(fd).unwrap());
    assert!(!event_loop.remove_reader(-1).unwrap());
    event_loop.add_reader(fd, || {}).unwrap();
    assert!(!event_loop.remove_writer(fd).unwrap(), "a reader is not a writer");
    assert!(event_loop.remove_reader(fd).unwrap());
    assert!(!event_loop.remove_reader(fd).unwrap());
    event_loop.add_writer(fd, || {}).unwrap();
    assert!(!event_loop.remove_reader(fd).unwrap());
    assert!(event_loop.remove_writer(fd).unwrap());
    assert!(!event_loop.remove_writer(fd).unwrap());
    event_loop.close().unwrap();
}

#[test]
fn fd_interest_follows_readers_and_writers() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(event_loop.fd_interest(fd), None);
    event_loop.add_reader(fd, || {}).unwrap();
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ));
    event_loop.add_writer(fd, || {}).unwrap();
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ_WRITE));
    // Replacing a callback does not change the interest.
    event_loop.add_writer(fd, || {}).unwrap();
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ | Interest::WRITE));
    assert!(event_loop.remove_reader(fd).unwrap());
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::WRITE));
    assert!(event_loop.remove_writer(fd).unwrap());
    assert_eq!(event_loop.fd_interest(fd), None);
    // And back again: a fresh registration works.
    event_loop.add_writer(fd, || {}).unwrap();
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::WRITE));
    event_loop.close().unwrap();
    assert_eq!(event_loop.fd_interest(fd), None, "close unregisters every fd");
}

#[test]
fn replacing_a_reader_keeps_the_old_one_from_running() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    b.write_all(b"x").unwrap();
    let (old, new) = (counter(), counter());
    {
        let old = old.clone();
        event_loop.add_reader(fd, move || old.set(old.get() + 1)).unwrap();
    }
    {
        let new = new.clone();
        event_loop.add_reader(fd, move || new.set(new.get() + 1)).unwrap();
    }
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ));
    let (_ticks, _t) = ticker(&event_loop, 2);
    event_loop.run_forever().unwrap();
    assert_eq!((old.get(), new.get()), (0, 2));
    event_loop.close().unwrap();
}

/// Two readable sockets, each reader removing (or replacing) the other's reader. Whichever
/// epoll reports first runs; the other was queued in the same iteration and must not run.
#[test]
fn removing_a_queued_reader_from_an_earlier_callback_prevents_its_call() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a1, mut b1) = pair();
    let (a2, mut b2) = pair();
    b1.write_all(b"x").unwrap();
    b2.write_all(b"x").unwrap();
    let (fd1, fd2) = (a1.as_raw_fd(), a2.as_raw_fd());
    let calls = Rc::new(RefCell::new(Vec::new()));
    for (me, other) in [(fd1, fd2), (fd2, fd1)] {
        let (calls, l) = (calls.clone(), event_loop.clone());
        event_loop
            .add_reader(me, move || {
                calls.borrow_mut().push(me);
                assert!(l.remove_reader(other).unwrap());
                l.remove_reader(me).unwrap();
                l.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(event_loop.stats().iterations, 1);
    assert_eq!(calls.borrow().len(), 1, "only the first of the two queued readers ran: {calls:?}");
    assert_eq!(event_loop.fd_interest(fd1), None);
    assert_eq!(event_loop.fd_interest(fd2), None);
    event_loop.close().unwrap();
}

#[test]
fn replacing_a_queued_reader_from_an_earlier_callback_prevents_its_call() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a1, mut b1) = pair();
    let (a2, mut b2) = pair();
    b1.write_all(b"x").unwrap();
    b2.write_all(b"x").unwrap();
    let (fd1, fd2) = (a1.as_raw_fd(), a2.as_raw_fd());
    let calls = Rc::new(RefCell::new(Vec::new()));
    for (me, other) in [(fd1, fd2), (fd2, fd1)] {
        let (calls, l) = (calls.clone(), event_loop.clone());
        event_loop
            .add_reader(me, move || {
                calls.borrow_mut().push(("old", me));
                let calls2 = calls.clone();
                l.add_reader(other, move || calls2.borrow_mut().push(("new", other))).unwrap();
                l.remove_reader(me).unwrap();
                l.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(calls.borrow().len(), 1, "the replaced reader was queued but must not run: {calls:?}");
    // Next iteration only the replacement (its fd still readable) runs.
    event_loop.run_once().unwrap();
    let calls = calls.borrow();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].0, "new");
    assert_ne!(calls[0].1, calls[1].1);
    drop(calls);
    event_loop.close().unwrap();
}

/// The reader of an fd is queued before its writer, so this one is deterministic.
#[test]
fn reader_removing_the_writer_of_its_fd_prevents_the_queued_writer_call() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(b"x").unwrap();
    let fd = a.as_raw_fd();
    let log = Rc::new(RefCell::new(Vec::new()));
    {
        let (log, l) = (log.clone(), event_loop.clone());
        event_loop
            .add_reader(fd, move || {
                log.borrow_mut().push("reader");
                assert!(l.remove_writer(fd).unwrap());
                l.stop();
            })
            .unwrap();
    }
    {
        let log = log.clone();
        event_loop.add_writer(fd, move || log.borrow_mut().push("writer")).unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["reader"]);
    assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ));
    event_loop.close().unwrap();
}

#[test]
fn peer_hang_up_wakes_both_reader_and_writer() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let (mut a, b) = pair();
    // Nothing to read and no room to write: neither callback has a reason to run.
    fill(&mut a);
    let fd = a.as_raw_fd();
    let woken = Rc::new(RefCell::new(Vec::new()));
    for side in ["reader", "writer"] {
        let (woken, l) = (woken.clone(), event_loop.clone());
        let callback = move || {
            woken.borrow_mut().push(side);
            match side {
                "reader" => l.remove_reader(fd).unwrap(),
                _ => l.remove_writer(fd).unwrap(),
            };
            if woken.borrow().len() == 2 {
                l.stop();
            }
        };
        match side {
            "reader" => event_loop.add_reader(fd, callback).unwrap(),
            _ => event_loop.add_writer(fd, callback).unwrap(),
        }
    }
    let (ticks, _t) = ticker(&event_loop, 2);
    event_loop.run_forever().unwrap();
    assert_eq!(ticks.get(), 2);
    assert!(woken.borrow().is_empty(), "{woken:?}");

    drop(b);
    let timed_out = watchdog(&event_loop, 5);
    event_loop.run_forever().unwrap();
    assert!(!timed_out.get());
    let mut woken = woken.borrow().clone();
    woken.sort();
    assert_eq!(woken, ["reader", "writer"]);
    // The reader sees the end: EOF, or a reset as the peer closed with our data unread.
    let mut buf = [0u8; 1];
    match a.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
    }
    event_loop.close().unwrap();
}

/// A pipe whose writer is gone reports EPOLLHUP alone (no EPOLLIN, and EPOLLOUT never, as
/// this end is read-only): only the HUP rule can wake the reader and the writer here.
#[test]
fn pipe_hang_up_alone_wakes_both_reader_and_writer() {
    let _lock = shared();
    let mut child = Command::new("true").stdout(Stdio::piped()).spawn().expect("spawn `true`");
    let pipe = child.stdout.take().unwrap();
    child.wait().unwrap(); // the only writer has exited and closed its end
    let fd = pipe.as_raw_fd();
    let event_loop = EventLoop::new().unwrap();
    let woken = Rc::new(RefCell::new(Vec::new()));
    {
        let (woken, l) = (woken.clone(), event_loop.clone());
        event_loop
            .add_reader(fd, move || {
                woken.borrow_mut().push("reader");
                l.remove_reader(fd).unwrap();
                if woken.borrow().len() == 2 {
                    l.stop();
                }
            })
            .unwrap();
    }
    {
        let (woken, l) = (woken.clone(), event_loop.clone());
        event_loop
            .add_writer(fd, move || {
                woken.borrow_mut().push("writer");
                l.remove_writer(fd).unwrap();
                if woken.borrow().len() == 2 {
                    l.stop();
                }
            })
            .unwrap();
    }
    let timed_out = watchdog(&event_loop, 5);
    event_loop.run_forever().unwrap();
    assert!(!timed_out.get());
    assert_eq!(*woken.borrow(), ["reader", "writer"]);
    event_loop.close().unwrap();
    drop(pipe);
}

/// The loop must still work after a refused registration.
fn assert_loop_usable(event_loop: &EventLoop) {
    let (a, mut b) = pair();
    b.write_all(b"x").unwrap();
    let fd = a.as_raw_fd();
    let called = counter();
    let (c, l) = (called.clone(), event_loop.clone());
    event_loop
        .add_reader(fd, move || {
            c.set(c.get() + 1);
            l.stop();
        })
        .unwrap();
    let l = event_loop.clone();
    event_loop.call_soon(move || assert!(l.is_running())).unwrap();
    let timed_out = watchdog(event_loop, 5);
    event_loop.run_forever().unwrap();
    assert!(!timed_out.get());
    assert_eq!(called.get(), 1);
    assert!(event_loop.remove_reader(fd).unwrap());
}

#[test]
fn add_reader_on_a_negative_fd_is_an_error() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let error = event_loop.add_reader(-1, || panic!("must not run")).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(event_loop.add_writer(-1, || panic!("must not run")).is_err());
    assert_eq!(event_loop.fd_interest(-1), None);
    assert_loop_usable(&event_loop);
    event_loop.close().unwrap();
}

#[test]
fn add_reader_on_a_closed_fd_is_an_error() {
    let _lock = exclusive();
    let event_loop = EventLoop::new().unwrap();
    let (a, b) = pair();
    let fd: RawFd = a.as_raw_fd();
    drop(a);
    let error = event_loop.add_reader(fd, || panic!("must not run")).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc_ebadf()), "{error}");
    assert_eq!(event_loop.fd_interest(fd), None);
    assert!(event_loop.add_writer(fd, || panic!("must not run")).is_err());
    assert_eq!(event_loop.fd_interest(fd), None);
    assert!(!event_loop.remove_reader(fd).unwrap());
    drop(b);
    assert_loop_usable(&event_loop);
    event_loop.close().unwrap();
}

#[test]
fn add_reader_on_a_never_opened_fd_is_an_error() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    // Far above anything this test process opens.
    let fd: RawFd = 60_000;
    assert!(event_loop.add_reader(fd, || panic!("must not run")).is_err());
    assert!(event_loop.add_writer(fd, || panic!("must not run")).is_err());
    assert_eq!(event_loop.fd_interest(fd), None);
    assert_loop_usable(&event_loop);
    event_loop.close().unwrap();
}

/// EBADF, spelled out so that the tests need no libc dependency of their own.
fn libc_ebadf() -> i32 {
    9
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn add_reader_on_a_huge_invalid_fd_does_not_allocate_a_table_for_it() {
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let before = resident_kib();
    // Not a valid fd (above any fs.nr_open), but a table of 8M entries is 320 MB.
    assert!(event_loop.add_reader(8_000_000, || {}).is_err());
    let grown_mib = resident_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "a refused add_reader grew the process by {grown_mib} MiB");
    event_loop.close().unwrap();
}

#[test]
fn a_refused_callback_is_dropped_outside_the_loops_borrows() {
    struct TouchesLoop(EventLoop, Rc<Cell<Option<Interest>>>);
    impl Drop for TouchesLoop {
        fn drop(&mut self) {
            // A destructor may call back into the loop (DESIGN.md): it must not panic.
            let (a, _b) = pair();
            self.1.set(self.0.fd_interest(a.as_raw_fd()));
        }
    }
    let _lock = shared();
    let event_loop = EventLoop::new().unwrap();
    let seen = Rc::new(Cell::new(Some(Interest::READ)));
    let guard = TouchesLoop(event_loop.clone(), seen.clone());
    let result = event_loop.add_reader(60_000, move || {
        let _ = &guard;
    });
    assert!(result.is_err());
    assert_eq!(seen.get(), None, "the destructor ran and saw the loop");
    event_loop.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// The Selector on its own.

fn select_within(selector: &mut Selector, timeout: Duration) -> Vec<Event> {
    selector.select(Some(timeout)).unwrap().collect()
}

#[test]
fn selector_refuses_double_registration_and_unknown_fds() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert!(selector.is_empty());
    assert_eq!(selector.modify(fd, Interest::READ, 1).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(selector.unregister(fd).unwrap_err().kind(), io::ErrorKind::NotFound);
    selector.register(fd, Interest::READ, 1).unwrap();
    assert_eq!(selector.register(fd, Interest::WRITE, 2).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(selector.interest(fd), Some(Interest::READ), "the refused registration changed nothing");
    assert_eq!(selector.len(), 1);
    selector.modify(fd, Interest::READ_WRITE, 3).unwrap();
    assert_eq!(selector.interest(fd), Some(Interest::READ_WRITE));
    selector.unregister(fd).unwrap();
    assert_eq!(selector.unregister(fd).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(selector.interest(fd), None);
    assert!(selector.is_empty());
}

#[test]
fn selector_refuses_an_empty_interest() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(selector.register(fd, Interest::NONE, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert!(selector.is_empty());
    selector.register(fd, Interest::READ, 1).unwrap();
    assert_eq!(selector.modify(fd, Interest::NONE, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(selector.interest(fd), Some(Interest::READ));
}

#[test]
fn selector_reports_the_registered_token() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    selector.register(fd, Interest::READ, 0xdead_beef_0000_0007).unwrap();
    assert_eq!(select_within(&mut selector, Duration::ZERO), []);
    b.write_all(b"x").unwrap();
    let events = select_within(&mut selector, Duration::from_secs(5));
    assert_eq!(events, [Event { token: 0xdead_beef_0000_0007, ready: Interest::READ }]);
    // Level-triggered: reported again until read.
    assert_eq!(select_within(&mut selector, Duration::ZERO).len(), 1);
    // A new token through modify.
    selector.modify(fd, Interest::READ_WRITE, 42).unwrap();
    let events = select_within(&mut selector, Duration::ZERO);
    assert_eq!(events, [Event { token: 42, ready: Interest::READ_WRITE }]);
    selector.unregister(fd).unwrap();
    assert_eq!(select_within(&mut selector, Duration::ZERO), []);
}

#[test]
fn selector_select_times_out_with_nothing_ready() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, _b) = pair();
    selector.register(a.as_raw_fd(), Interest::READ, 1).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(select_within(&mut selector, Duration::from_millis(5)), []);
    assert!(start.elapsed() >= Duration::from_millis(5), "waited only {:?}", start.elapsed());
}

#[test]
fn selector_reports_hang_up_as_readable_and_writable() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, b) = pair();
    // Registered for reading only: writable can only come from the HUP rule.
    selector.register(a.as_raw_fd(), Interest::READ, 7).unwrap();
    assert_eq!(select_within(&mut selector, Duration::ZERO), []);
    drop(b);
    let events = select_within(&mut selector, Duration::from_secs(5));
    assert_eq!(events, [Event { token: 7, ready: Interest::READ_WRITE }]);
}

#[test]
fn selector_reports_pipe_hang_up_alone_as_readable_and_writable() {
    let _lock = shared();
    let mut child = Command::new("true").stdout(Stdio::piped()).spawn().expect("spawn `true`");
    let pipe = child.stdout.take().unwrap();
    child.wait().unwrap();
    let mut selector = Selector::new().unwrap();
    selector.register(pipe.as_raw_fd(), Interest::WRITE, 8).unwrap();
    let events = select_within(&mut selector, Duration::from_secs(5));
    assert_eq!(events, [Event { token: 8, ready: Interest::READ_WRITE }]);
}

#[test]
fn selector_tolerates_unregistering_an_fd_closed_first() {
    let _lock = shared();
    let mut selector = Selector::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    selector.register(fd, Interest::READ, 1).unwrap();
    drop(a);
    selector.unregister(fd).unwrap();
    assert!(selector.is_empty());
}

#[test]
fn interest_combines_and_prints() {
    assert_eq!(Interest::READ | Interest::WRITE, Interest::READ_WRITE);
    assert_eq!(Interest::READ_WRITE.remove(Interest::READ), Interest::WRITE);
    assert!(Interest::NONE.is_empty());
    assert!(Interest::READ.is_readable() && !Interest::READ.is_writable());
    assert_eq!(format!("{:?}", Interest::READ_WRITE), "READ | WRITE");
    assert_eq!(format!("{:?}", Interest::default()), "NONE");
}
