//! `add_signal_handler` / `remove_signal_handler`, and `run`'s Ctrl-C.
//!
//! Signal dispositions belong to the whole process, so these tests take turns (one lock)
//! and raise signals only while a handler is installed: unhandled, SIGUSR1 and SIGINT
//! would end the test process.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use evloop::sys::signal::{disposition, raise, set_disposition, Disposition};
use evloop::{get_running_loop, sleep, EventLoop, RunError, TaskError};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `event_loop` until `done` says so, at most `limit` iterations.
fn run_until(event_loop: &EventLoop, limit: usize, done: impl Fn() -> bool) {
    for _ in 0..limit {
        if done() {
            return;
        }
        let stopper = event_loop.clone();
        event_loop.call_later(Duration::from_millis(50), move || stopper.stop()).unwrap();
        event_loop.run_once().unwrap();
    }
    assert!(done(), "not done after {limit} iterations");
}

#[test]
fn a_handler_runs_when_the_process_gets_the_signal() {
    let _turn = one_at_a_time();
    let event_loop = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    event_loop.add_signal_handler(libc::SIGUSR1, move || c.set(c.get() + 1)).unwrap();
    assert_eq!(disposition(libc::SIGUSR1).unwrap(), Disposition::Handler);

    raise(libc::SIGUSR1).unwrap();
    run_until(&event_loop, 10, || calls.get() == 1);
    raise(libc::SIGUSR1).unwrap();
    run_until(&event_loop, 10, || calls.get() == 2);

    assert!(event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
    assert!(!event_loop.remove_signal_handler(libc::SIGUSR1).unwrap(), "already removed");
    assert_eq!(disposition(libc::SIGUSR1).unwrap(), Disposition::Default, "the default is back");
    event_loop.close().unwrap();
}

#[test]
fn each_signal_runs_its_own_handler_and_a_new_handler_replaces_the_old() {
    let _turn = one_at_a_time();
    let event_loop = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    for (signal, name) in [(libc::SIGUSR1, "usr1"), (libc::SIGUSR2, "usr2")] {
        let seen = seen.clone();
        event_loop.add_signal_handler(signal, move || seen.borrow_mut().push(name)).unwrap();
    }
    let s = seen.clone();
    event_loop.add_signal_handler(libc::SIGUSR2, move || s.borrow_mut().push("usr2 again")).unwrap();

    raise(libc::SIGUSR2).unwrap();
    raise(libc::SIGUSR1).unwrap();
    run_until(&event_loop, 10, || seen.borrow().len() == 2);
    assert_eq!(*seen.borrow(), ["usr1", "usr2 again"], "in signal-number order, one call each");

    assert!(event_loop.remove_signal_handler(libc::SIGUSR2).unwrap());
    assert_eq!(disposition(libc::SIGUSR2).unwrap(), Disposition::Default);
    assert_eq!(disposition(libc::SIGUSR1).unwrap(), Disposition::Handler, "the other stays");
    raise(libc::SIGUSR1).unwrap();
    run_until(&event_loop, 10, || seen.borrow().len() == 3);
    event_loop.close().unwrap();
    assert_eq!(disposition(libc::SIGUSR1).unwrap(), Disposition::Default, "close restores it");
}

#[test]
fn a_handler_may_remove_itself() {
    let _turn = one_at_a_time();
    let event_loop = EventLoop::new().unwrap();
    let removed = Rc::new(Cell::new(None));
    let r = removed.clone();
    event_loop
        .add_signal_handler(libc::SIGUSR1, move || {
            r.set(Some(get_running_loop().unwrap().remove_signal_handler(libc::SIGUSR1).unwrap()));
        })
        .unwrap();
    raise(libc::SIGUSR1).unwrap();
    run_until(&event_loop, 10, || removed.get().is_some());
    assert_eq!(removed.get(), Some(true));
    assert_eq!(disposition(libc::SIGUSR1).unwrap(), Disposition::Default);
    event_loop.close().unwrap();
}

#[test]
fn invalid_signals_are_clear_errors() {
    let _turn = one_at_a_time();
    let event_loop = EventLoop::new().unwrap();
    for signal in [libc::SIGKILL, libc::SIGSTOP, 0, -1, 32, 65, 1000] {
        let error = event_loop.add_signal_handler(signal, || {}).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{signal}: {error}");
        assert!(error.to_string().contains(&signal.to_string()), "{error}");
    }
    assert!(event_loop.add_signal_handler(libc::SIGKILL, || {}).unwrap_err().to_string().contains("SIGKILL"));
    assert_eq!(event_loop.remove_signal_handler(0).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert!(!event_loop.remove_signal_handler(libc::SIGUSR1).unwrap());
    event_loop.close().unwrap();
    let closed = event_loop.add_signal_handler(libc::SIGUSR1, || {}).unwrap_err();
    assert!(closed.to_string().contains("closed"), "{closed}");
}

#[test]
fn one_loop_at_a_time_handles_signals() {
    let _turn = one_at_a_time();
    let first = EventLoop::new().unwrap();
    let second = EventLoop::new().unwrap();
    first.add_signal_handler(libc::SIGUSR1, || {}).unwrap();
    let busy = second.add_signal_handler(libc::SIGUSR2, || {}).unwrap_err();
    assert_eq!(busy.kind(), std::io::ErrorKind::AlreadyExists);
    first.close().unwrap();
    second.add_signal_handler(libc::SIGUSR2, || {}).unwrap();
    assert!(second.remove_signal_handler(libc::SIGUSR2).unwrap());
    second.close().unwrap();
}

#[test]
fn ctrl_c_cancels_the_main_task_and_its_clean_up_runs() {
    let _turn = one_at_a_time();
    let _sigint = SigintAt::new(Disposition::Default);
    let cleaned_up = Rc::new(Cell::new(false));
    let guard = SetOnDrop(cleaned_up.clone());
    let outcome = evloop::run(async move {
        let _guard = guard;
        assert_eq!(disposition(libc::SIGINT).unwrap(), Disposition::Handler, "run handles Ctrl-C");
        evloop::create_task(async {
            sleep(Duration::from_millis(1)).await;
            raise(libc::SIGINT).unwrap();
        });
        sleep(Duration::from_secs(60)).await;
        "finished"
    });
    assert!(matches!(outcome, Err(RunError::Task(TaskError::Cancelled))), "{outcome:?}");
    assert!(cleaned_up.get(), "main's drop guard ran");
    assert_eq!(disposition(libc::SIGINT).unwrap(), Disposition::Default, "SIGINT is restored");
}

#[test]
fn run_restores_sigint_when_main_returns() {
    let _turn = one_at_a_time();
    let _sigint = SigintAt::new(Disposition::Default);
    let inside = evloop::run(async { disposition(libc::SIGINT).unwrap() }).unwrap();
    assert_eq!(inside, Disposition::Handler);
    assert_eq!(disposition(libc::SIGINT).unwrap(), Disposition::Default);
}

/// Like asyncio's runner, `run` handles Ctrl-C only when SIGINT has its default action: a
/// process that inherited it ignored (started in the background by a non-interactive
/// shell, say) keeps ignoring it.
#[test]
fn run_leaves_an_ignored_sigint_alone() {
    let _turn = one_at_a_time();
    let _sigint = SigintAt::new(Disposition::Ignore);
    let inside = evloop::run(async { disposition(libc::SIGINT).unwrap() }).unwrap();
    assert_eq!(inside, Disposition::Ignore);
    assert_eq!(disposition(libc::SIGINT).unwrap(), Disposition::Ignore);
}

/// Sets SIGINT's disposition for one test, whatever the test process inherited, and puts
/// the inherited one back when dropped.
struct SigintAt(Disposition);

impl SigintAt {
    fn new(to: Disposition) -> SigintAt {
        let inherited = disposition(libc::SIGINT).unwrap();
        set_disposition(libc::SIGINT, to).unwrap();
        SigintAt(inherited)
    }
}

impl Drop for SigintAt {
    fn drop(&mut self) {
        if self.0 != Disposition::Handler {
            set_disposition(libc::SIGINT, self.0).unwrap();
        }
    }
}

struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn set_disposition_takes_only_default_or_ignore_on_catchable_signals() {
    let handler = set_disposition(libc::SIGUSR1, Disposition::Handler).unwrap_err();
    assert_eq!(handler.kind(), std::io::ErrorKind::InvalidInput);
    let kill = set_disposition(libc::SIGKILL, Disposition::Ignore).unwrap_err();
    assert_eq!(kill.kind(), std::io::ErrorKind::InvalidInput);
}
