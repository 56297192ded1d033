//! The order in which the loop runs callbacks and timers, cancellation, and the counters.
//!
//! Deadlines are put in the past (relative to an `Instant` taken at the start of the test)
//! wherever a test only cares about order, so that every timer is due at the first
//! iteration and nothing waits on the clock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{EventLoop, TimerHandle};

/// An instant safely in the past, so timers at or after it (by less than 50 ms) are due now.
fn past() -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_millis(50)).unwrap_or(now)
}

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, name: &'static str) -> impl FnOnce() + 'static {
    let log = log.clone();
    move || log.borrow_mut().push(name)
}

#[test]
fn call_soon_runs_fifo() {
    let event_loop = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..100 {
        let order = order.clone();
        event_loop.call_soon(move || order.borrow_mut().push(i)).unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), (0..100).collect::<Vec<_>>());
    assert_eq!(event_loop.stats().iterations, 1);
    event_loop.close().unwrap();
}

#[test]
fn call_soon_runs_before_due_timers_even_if_scheduled_after_them() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    event_loop.call_at(past(), push(&order, "timer at past")).unwrap();
    event_loop.call_later(Duration::ZERO, push(&order, "timer in 0")).unwrap();
    event_loop.call_soon(push(&order, "soon 1")).unwrap();
    event_loop.call_soon(push(&order, "soon 2")).unwrap();
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), ["soon 1", "soon 2", "timer at past", "timer in 0"]);
    event_loop.close().unwrap();
}

#[test]
fn equal_deadlines_fire_in_scheduling_order() {
    let event_loop = EventLoop::new().unwrap();
    let when = past();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..50 {
        let order = order.clone();
        event_loop.call_at(when, move || order.borrow_mut().push(i)).unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), (0..50).collect::<Vec<_>>());
    event_loop.close().unwrap();
}

#[test]
fn equal_future_deadlines_fire_in_scheduling_order() {
    let event_loop = EventLoop::new().unwrap();
    let when = Instant::now() + Duration::from_millis(2);
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..20 {
        let order = order.clone();
        event_loop.call_at(when, move || order.borrow_mut().push(i)).unwrap();
    }
    let stopper = event_loop.clone();
    event_loop.call_at(when, move || stopper.stop()).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(*order.borrow(), (0..20).collect::<Vec<_>>());
    assert!(Instant::now() >= when);
    event_loop.close().unwrap();
}

#[test]
fn earlier_deadlines_fire_first_whatever_the_scheduling_order() {
    let event_loop = EventLoop::new().unwrap();
    let base = past();
    let order = Rc::new(RefCell::new(Vec::new()));
    // Scheduled in a scrambled order; all due at once, so one iteration runs them all.
    for micros in [7u64, 3, 9, 0, 5, 1, 8, 2, 6, 4] {
        let order = order.clone();
        event_loop
            .call_at(base + Duration::from_micros(micros), move || order.borrow_mut().push(micros))
            .unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
    event_loop.close().unwrap();
}

#[test]
fn future_deadlines_fire_in_deadline_order() {
    let event_loop = EventLoop::new().unwrap();
    let base = Instant::now();
    let order = log();
    event_loop.call_at(base + Duration::from_millis(3), push(&order, "3 ms")).unwrap();
    event_loop.call_at(base + Duration::from_millis(1), push(&order, "1 ms")).unwrap();
    event_loop.call_at(base + Duration::from_millis(2), push(&order, "2 ms")).unwrap();
    event_loop.call_soon(push(&order, "soon")).unwrap();
    let stopper = event_loop.clone();
    event_loop.call_at(base + Duration::from_millis(4), move || stopper.stop()).unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["soon", "1 ms", "2 ms", "3 ms"]);
    assert!(Instant::now() >= base + Duration::from_millis(4));
    event_loop.close().unwrap();
}

#[test]
fn callback_scheduled_by_a_callback_runs_in_the_next_iteration() {
    let event_loop = EventLoop::new().unwrap();
    let first = Rc::new(Cell::new(0));
    let second = Rc::new(Cell::new(0));
    let timer = Rc::new(Cell::new(0));
    {
        let (l, first, second, timer) = (event_loop.clone(), first.clone(), second.clone(), timer.clone());
        event_loop
            .call_soon(move || {
                first.set(first.get() + 1);
                l.call_soon(move || second.set(second.get() + 1)).unwrap();
                // Due at once, but the timers of this iteration were collected already.
                l.call_later(Duration::ZERO, move || timer.set(timer.get() + 1)).unwrap();
            })
            .unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!((first.get(), second.get(), timer.get()), (1, 0, 0));
    event_loop.run_once().unwrap();
    assert_eq!((first.get(), second.get(), timer.get()), (1, 1, 1));
    assert_eq!(event_loop.stats().iterations, 2);
    event_loop.close().unwrap();
}

#[test]
fn a_self_rescheduling_callback_runs_once_per_iteration() {
    fn again(event_loop: EventLoop, count: Rc<Cell<u32>>) {
        count.set(count.get() + 1);
        let l = event_loop.clone();
        event_loop.call_soon(move || again(l, count)).unwrap();
    }
    let event_loop = EventLoop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let (l, c) = (event_loop.clone(), count.clone());
    event_loop.call_soon(move || again(l, c)).unwrap();
    for iteration in 1..=5 {
        event_loop.run_once().unwrap();
        assert_eq!(count.get(), iteration);
    }
    event_loop.close().unwrap();
}

#[test]
fn cancelled_handle_does_not_run() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    event_loop.call_soon(push(&order, "a")).unwrap();
    let handle = event_loop.call_soon(push(&order, "b")).unwrap();
    event_loop.call_soon(push(&order, "c")).unwrap();
    assert!(!handle.cancelled());
    handle.cancel();
    assert!(handle.cancelled());
    handle.cancel(); // twice is fine
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), ["a", "c"]);
    assert_eq!(event_loop.stats().callbacks_run, 2);
    event_loop.close().unwrap();
}

#[test]
fn handle_cancelled_by_an_earlier_callback_in_the_same_iteration_does_not_run() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let victim = Rc::new(RefCell::new(None::<evloop::Handle>));
    {
        let victim = victim.clone();
        let order = order.clone();
        event_loop
            .call_soon(move || {
                order.borrow_mut().push("canceller");
                victim.borrow().as_ref().unwrap().cancel();
            })
            .unwrap();
    }
    *victim.borrow_mut() = Some(event_loop.call_soon(push(&order, "victim")).unwrap());
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), ["canceller"]);
    victim.borrow_mut().take();
    event_loop.close().unwrap();
}

#[test]
fn timer_cancelled_before_it_is_due_does_not_fire() {
    let event_loop = EventLoop::new().unwrap();
    let base = Instant::now();
    let order = log();
    let handle = event_loop.call_at(base + Duration::from_millis(1), push(&order, "cancelled")).unwrap();
    event_loop.call_at(base + Duration::from_millis(2), push(&order, "kept")).unwrap();
    let stopper = event_loop.clone();
    event_loop.call_at(base + Duration::from_millis(3), move || stopper.stop()).unwrap();
    handle.cancel();
    assert!(handle.cancelled());
    assert_eq!(handle.when(), base + Duration::from_millis(1));
    event_loop.run_forever().unwrap();
    assert_eq!(*order.borrow(), ["kept"]);
    let stats = event_loop.stats();
    assert_eq!(stats.timers_scheduled, 3);
    assert_eq!(stats.timers_fired, 2);
    assert_eq!(stats.timers_cancelled, 1);
    assert_eq!(stats.callbacks_run, 2);
    event_loop.close().unwrap();
}

#[test]
fn timer_cancelled_twice_is_counted_once() {
    let event_loop = EventLoop::new().unwrap();
    let handle = event_loop.call_at(past(), || panic!("cancelled timer ran")).unwrap();
    handle.cancel();
    handle.cancel();
    event_loop.call_soon(|| {}).unwrap();
    event_loop.run_once().unwrap();
    let stats = event_loop.stats();
    assert_eq!(stats.timers_cancelled, 1);
    assert_eq!(stats.timers_fired, 0);
    assert_eq!(stats.callbacks_run, 1);
    event_loop.close().unwrap();
}

#[test]
fn due_timer_cancelled_by_an_earlier_callback_in_the_same_iteration_does_not_run() {
    let event_loop = EventLoop::new().unwrap();
    let base = past();
    let order = log();
    let victim: Rc<RefCell<Option<TimerHandle>>> = Rc::new(RefCell::new(None));
    {
        let (victim, order) = (victim.clone(), order.clone());
        event_loop
            .call_at(base, move || {
                order.borrow_mut().push("canceller");
                victim.borrow().as_ref().unwrap().cancel();
            })
            .unwrap();
    }
    *victim.borrow_mut() =
        Some(event_loop.call_at(base + Duration::from_micros(1), push(&order, "victim")).unwrap());
    event_loop.call_at(base + Duration::from_micros(2), push(&order, "after")).unwrap();
    // Both are due: one iteration moves all three to the ready queue, then runs them.
    event_loop.run_once().unwrap();
    assert_eq!(*order.borrow(), ["canceller", "after"]);
    assert!(victim.borrow().as_ref().unwrap().cancelled());
    let stats = event_loop.stats();
    assert_eq!(stats.iterations, 1);
    assert_eq!(stats.timers_scheduled, 3);
    // The victim had already left the heap ("fired") when it was cancelled, so it counts
    // as fired and not as a heap cancellation; it did not run.
    assert_eq!(stats.timers_fired, 3);
    assert_eq!(stats.timers_cancelled, 0);
    assert_eq!(stats.callbacks_run, 2);
    victim.borrow_mut().take();
    event_loop.close().unwrap();
}

#[test]
fn cancelling_a_timer_after_it_ran_changes_nothing() {
    let event_loop = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let handle = event_loop.call_at(past(), move || r.set(true)).unwrap();
    event_loop.run_once().unwrap();
    assert!(ran.get());
    handle.cancel();
    assert_eq!(event_loop.stats().timers_cancelled, 0);
    event_loop.close().unwrap();
}

#[test]
fn stats_count_what_happened() {
    let event_loop = EventLoop::new().unwrap();
    let base = past();
    let ran = Rc::new(Cell::new(0u32));
    let bump = |ran: &Rc<Cell<u32>>| {
        let ran = ran.clone();
        move || ran.set(ran.get() + 1)
    };
    for _ in 0..3 {
        event_loop.call_soon(bump(&ran)).unwrap();
    }
    event_loop.call_soon(bump(&ran)).unwrap().cancel();
    event_loop.call_at(base, bump(&ran)).unwrap();
    event_loop.call_at(base + Duration::from_micros(1), bump(&ran)).unwrap();
    let far = event_loop.call_later(Duration::from_secs(3600), bump(&ran)).unwrap();
    let far2 = event_loop.call_later(Duration::from_secs(3600), bump(&ran)).unwrap();
    far.cancel();
    assert_eq!(
        event_loop.stats(),
        evloop::LoopStats { timers_scheduled: 4, timers_cancelled: 1, ..Default::default() }
    );

    event_loop.run_once().unwrap();
    assert_eq!(ran.get(), 5);
    let stats = event_loop.stats();
    assert_eq!(stats.iterations, 1);
    assert_eq!(stats.callbacks_run, 5);
    assert_eq!(stats.timers_scheduled, 4);
    assert_eq!(stats.timers_fired, 2);
    assert_eq!(stats.timers_cancelled, 1);
    assert_eq!(stats.tasks_spawned, 0);

    // A second iteration with one more callback: only the right counters move.
    event_loop.call_soon(bump(&ran)).unwrap();
    event_loop.run_once().unwrap();
    far2.cancel();
    let stats = event_loop.stats();
    assert_eq!(stats.iterations, 2);
    assert_eq!(stats.callbacks_run, 6);
    assert_eq!(stats.timers_fired, 2);
    assert_eq!(stats.timers_cancelled, 2);
    assert_eq!(ran.get(), 6);
    event_loop.close().unwrap();
}

#[test]
fn many_cancelled_timers_are_compacted_and_the_rest_still_fire_in_order() {
    let event_loop = EventLoop::new().unwrap();
    let base = past();
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..300u64 {
        let order = order.clone();
        handles.push(
            event_loop
                .call_at(base + Duration::from_micros(i % 7), move || order.borrow_mut().push(i))
                .unwrap(),
        );
    }
    for (i, handle) in handles.iter().enumerate() {
        if i % 3 != 0 {
            handle.cancel();
        }
    }
    event_loop.run_once().unwrap();
    let mut expected: Vec<u64> = (0..300).filter(|i| i % 3 == 0).collect();
    expected.sort_by_key(|i| (i % 7, *i));
    assert_eq!(*order.borrow(), expected);
    let stats = event_loop.stats();
    assert_eq!(stats.timers_cancelled, 200);
    assert_eq!(stats.timers_fired, 100);
    assert!(format!("{event_loop:?}").contains("timers: 0"), "{event_loop:?}");
    event_loop.close().unwrap();
}
