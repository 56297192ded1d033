//! A panic in a callback is caught, handed to the exception handler, and the loop carries on.
//!
//! These tests panic on purpose; the panic messages printed by the default panic hook
//! are expected noise.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{default_exception_handler, EventLoop, ExceptionContext};

mod common;
use common::{bump, counter};

/// What a handler saw: (message, exception, file, line) of each context.
type Contexts = Rc<RefCell<Vec<(String, Option<String>, Option<(String, u32)>)>>>;

fn recording_handler(event_loop: &EventLoop) -> Contexts {
    let seen: Contexts = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    event_loop.set_exception_handler(move |context: &ExceptionContext| {
        let at = context.scheduled_at.map(|l| (l.file().to_string(), l.line()));
        s.borrow_mut().push((context.message.clone(), context.exception.clone(), at));
    });
    seen
}

#[test]
fn a_panicking_callback_leaves_the_loop_running() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    let (same_iteration, next_iteration) = (counter(), counter());
    event_loop.call_soon(|| panic!("callback boom")).unwrap();
    event_loop.call_soon(bump(&same_iteration)).unwrap();
    {
        let (l, next_iteration) = (event_loop.clone(), next_iteration.clone());
        event_loop
            .call_soon(move || {
                l.call_soon(move || {
                    next_iteration.set(1);
                    get_loop().stop();
                })
                .unwrap();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    assert_eq!((same_iteration.get(), next_iteration.get()), (1, 1));
    assert_eq!(seen.borrow().len(), 1);
    assert_eq!(seen.borrow()[0].1.as_deref(), Some("callback boom"));
    assert!(!event_loop.is_running());
    event_loop.close().unwrap();
}

fn get_loop() -> EventLoop {
    evloop::get_running_loop().unwrap()
}

#[test]
fn the_exception_handler_gets_the_message_and_where_the_callback_was_scheduled() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    let (line, _) = (line!(), event_loop.call_soon(|| panic!("formatted {}", 42)).unwrap());
    let l = event_loop.clone();
    event_loop.call_soon(move || l.stop()).unwrap();
    event_loop.run_forever().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    let (message, exception, at) = &seen[0];
    assert!(message.contains("panicked"), "{message}");
    assert_eq!(exception.as_deref(), Some("formatted 42"));
    assert_eq!(at.as_ref(), Some(&(file!().to_string(), line)));
    drop(seen);
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_timer_callback_leaves_the_loop_running() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    let after = counter();
    let base = Instant::now();
    let (line, _) = (line!(), event_loop.call_at(base, || panic!("timer boom")).unwrap());
    event_loop.call_at(base, bump(&after)).unwrap();
    let l = event_loop.clone();
    event_loop.call_at(base + Duration::from_millis(1), move || l.stop()).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(after.get(), 1);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1.as_deref(), Some("timer boom"));
    assert_eq!(seen[0].2, Some((file!().to_string(), line)));
    drop(seen);
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_reader_leaves_the_loop_running_and_stays_registered() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.write_all(b"data").unwrap();
    let fd = a.as_raw_fd();
    let calls = counter();
    let after = counter();
    let got = Rc::new(RefCell::new(Vec::new()));
    let (c, g, l, after2) = (calls.clone(), got.clone(), event_loop.clone(), after.clone());
    let reader = move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            // Scheduled just before the panic: must still run.
            l.call_soon(bump(&after2)).unwrap();
            panic!("reader boom");
        }
        let mut buf = [0u8; 16];
        let n = a.read(&mut buf).unwrap();
        g.borrow_mut().extend_from_slice(&buf[..n]);
        l.remove_reader(fd).unwrap();
        l.stop();
    };
    let (line, _) = (line!(), event_loop.add_reader(fd, reader).unwrap());
    let l = event_loop.clone();
    event_loop
        .call_later(Duration::from_secs(5), move || {
            l.stop();
            panic!("watchdog: the reader was not called again");
        })
        .unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(*got.borrow(), b"data");
    assert_eq!(after.get(), 1);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some("reader boom"));
    assert_eq!(seen[0].2, Some((file!().to_string(), line)));
    drop(seen);
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_exception_handler_does_not_kill_the_loop() {
    let event_loop = EventLoop::new().unwrap();
    let handled = counter();
    {
        let handled = handled.clone();
        event_loop.set_exception_handler(move |_| {
            handled.set(handled.get() + 1);
            panic!("handler boom");
        });
    }
    let after = counter();
    event_loop.call_soon(|| panic!("first")).unwrap();
    event_loop.call_soon(bump(&after)).unwrap();
    event_loop.call_soon(|| panic!("second")).unwrap();
    event_loop.call_soon(bump(&after)).unwrap();
    let l = event_loop.clone();
    event_loop.call_soon(move || l.stop()).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(handled.get(), 2);
    assert_eq!(after.get(), 2);
    // Back to the default handler (prints to stderr): still fine.
    event_loop.set_exception_handler(default_exception_handler);
    event_loop.call_soon(|| panic!("third")).unwrap();
    event_loop.call_soon(bump(&after)).unwrap();
    event_loop.run_once().unwrap();
    assert_eq!(after.get(), 3);
    assert_eq!(handled.get(), 2);
    event_loop.close().unwrap();
}

#[test]
fn a_panic_with_a_non_string_payload_is_reported() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    event_loop.call_soon(|| std::panic::panic_any(17u32)).unwrap();
    event_loop.run_once().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].1.is_some());
    drop(seen);
    event_loop.close().unwrap();
}

#[test]
fn call_exception_handler_reaches_the_custom_handler() {
    let event_loop = EventLoop::new().unwrap();
    let seen = recording_handler(&event_loop);
    let context = ExceptionContext { message: "by hand".to_string(), exception: None, scheduled_at: None };
    assert_eq!(context.to_string(), "by hand");
    event_loop.call_exception_handler(&context);
    assert_eq!(*seen.borrow(), [("by hand".to_string(), None, None)]);
    event_loop.close().unwrap();
}

#[test]
fn debug_mode_with_a_slow_callback_breaks_nothing() {
    let event_loop = EventLoop::new().unwrap();
    event_loop.set_debug(true);
    assert!(event_loop.get_debug());
    event_loop.set_slow_callback_duration(Duration::from_millis(1));
    let seen = recording_handler(&event_loop);
    let order = Rc::new(RefCell::new(Vec::new()));
    {
        let order = order.clone();
        event_loop
            .call_soon(move || {
                // The slow callback under test: busy for 5 ms.
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(5) {
                    std::hint::spin_loop();
                }
                order.borrow_mut().push("slow");
            })
            .unwrap();
    }
    {
        let order = order.clone();
        event_loop.call_soon(move || order.borrow_mut().push("next")).unwrap();
    }
    {
        let order = order.clone();
        event_loop.call_later(Duration::ZERO, move || order.borrow_mut().push("timer")).unwrap();
    }
    event_loop.call_soon(|| panic!("slow mode panic")).unwrap();
    event_loop.run_once().unwrap();
    let l = event_loop.clone();
    event_loop.call_soon(move || l.stop()).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["slow", "next", "timer"]);
    assert_eq!(seen.borrow().len(), 1, "slowness is not an exception");
    event_loop.set_debug(false);
    assert!(!event_loop.get_debug());
    event_loop.close().unwrap();
}
