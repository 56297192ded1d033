//! `Future<T>`: the result cell behind every coroutine (asyncio's `asyncio.Future`).
//!
//! Each test drives its own loop with `run_once` where the iteration in which something
//! happens matters (done-callbacks go through `call_soon`, never inline), and with
//! `run_until_complete` where only the outcome does. `run_once` is only called when
//! something is ready, so it never blocks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use evloop::{EventLoop, FutureError};

mod common;
use common::{entries, log};

#[test]
fn set_result_then_result_done_and_not_cancelled() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    assert!(!future.done());
    assert!(!future.cancelled());
    assert!(matches!(future.result(), Err(FutureError::InvalidState(_))));

    future.set_result(7).unwrap();
    assert!(future.done());
    assert!(!future.cancelled());
    // `result` reads the value without taking it: it can be read again.
    assert_eq!(future.result(), Ok(7));
    assert_eq!(future.result(), Ok(7));
    event_loop.close().unwrap();
}

#[test]
fn set_result_twice_is_invalid_state_not_a_panic() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<&str>();
    future.set_result("first").unwrap();
    let second = future.set_result("second");
    assert!(matches!(second, Err(FutureError::InvalidState(_))), "{second:?}");
    // A done future cannot be cancelled either, and the first value stays.
    assert!(!future.cancel());
    assert!(!future.cancelled());
    assert_eq!(future.result(), Ok("first"));
    event_loop.close().unwrap();
}

#[test]
fn cancel_a_pending_future() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    assert!(future.cancel());
    assert!(future.done());
    assert!(future.cancelled());
    assert_eq!(future.result(), Err(FutureError::Cancelled));
    // Cancelling again or setting a result afterwards changes nothing.
    assert!(!future.cancel());
    assert!(matches!(future.set_result(1), Err(FutureError::InvalidState(_))));
    assert!(future.cancelled());
    event_loop.close().unwrap();
}

#[test]
fn clones_share_one_cell() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<String>();
    let other = future.clone();
    other.set_result("shared".to_string()).unwrap();
    assert!(future.done());
    assert_eq!(future.result(), Ok("shared".to_string()));
    assert!(!future.get_loop().is_closed());
    event_loop.close().unwrap();
    assert!(future.get_loop().is_closed());
}

#[test]
fn done_callback_runs_in_a_later_iteration_not_inline() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<u32>();
    {
        let order = order.clone();
        future.add_done_callback(move |f| order.borrow_mut().push(format!("callback saw {:?}", f.result())));
    }
    {
        let (order, future) = (order.clone(), future.clone());
        event_loop
            .call_soon(move || {
                future.set_result(3).unwrap();
                order.borrow_mut().push("set_result returned".to_string());
            })
            .unwrap();
    }
    let before = event_loop.stats();
    event_loop.run_once().unwrap();
    // Not run inline by set_result, and not in the iteration that set the result.
    assert_eq!(entries(&order), ["set_result returned"]);
    assert_eq!(event_loop.stats().callbacks_run - before.callbacks_run, 1);

    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["set_result returned", "callback saw Ok(3)"]);
    assert_eq!(event_loop.stats().callbacks_run - before.callbacks_run, 2);
    assert_eq!(event_loop.stats().iterations - before.iterations, 2);
    event_loop.close().unwrap();
}

#[test]
fn done_callbacks_run_in_registration_order_after_earlier_call_soon() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<()>();
    let early = order.clone();
    event_loop.call_soon(move || early.borrow_mut().push("call_soon before".to_string())).unwrap();
    for name in ["first", "second", "third"] {
        let order = order.clone();
        future.add_done_callback(move |_| order.borrow_mut().push(name.to_string()));
    }
    // Set outside a running loop: the callbacks queue behind the call_soon above.
    future.set_result(()).unwrap();
    assert!(entries(&order).is_empty());
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["call_soon before", "first", "second", "third"]);
    event_loop.close().unwrap();
}

#[test]
fn done_callback_on_cancel() {
    let event_loop = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(None));
    let future = event_loop.create_future::<u32>();
    {
        let seen = seen.clone();
        future.add_done_callback(move |f| *seen.borrow_mut() = Some((f.cancelled(), f.result())));
    }
    assert!(future.cancel());
    assert_eq!(*seen.borrow(), None);
    event_loop.run_once().unwrap();
    assert_eq!(*seen.borrow(), Some((true, Err(FutureError::Cancelled))));
    event_loop.close().unwrap();
}

#[test]
fn done_callback_added_to_a_done_future_still_goes_through_call_soon() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<u32>();
    future.set_result(9).unwrap();
    let queued_first = order.clone();
    event_loop.call_soon(move || queued_first.borrow_mut().push("queued first".to_string())).unwrap();
    {
        let order = order.clone();
        future.add_done_callback(move |f| order.borrow_mut().push(format!("late callback {:?}", f.result())));
    }
    // Not inline, even though the future is done...
    assert!(entries(&order).is_empty());
    event_loop.run_once().unwrap();
    // ...but behind what was already scheduled.
    assert_eq!(entries(&order), ["queued first", "late callback Ok(9)"]);
    event_loop.close().unwrap();
}

#[test]
fn done_callback_added_from_inside_a_callback_to_a_done_future_runs_next_iteration() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<u32>();
    future.set_result(1).unwrap();
    {
        let (order, future) = (order.clone(), future.clone());
        event_loop
            .call_soon(move || {
                let inner = order.clone();
                future.add_done_callback(move |_| inner.borrow_mut().push("done callback".to_string()));
                order.borrow_mut().push("adder".to_string());
            })
            .unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["adder"]);
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["adder", "done callback"]);
    event_loop.close().unwrap();
}

#[test]
fn remove_done_callback_returns_one_then_zero() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<u32>();
    let ids: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let order = order.clone();
            future.add_done_callback(move |_| order.borrow_mut().push(name.to_string()))
        })
        .collect();
    assert_eq!(future.remove_done_callback(ids[1]), 1);
    assert_eq!(future.remove_done_callback(ids[1]), 0);
    future.set_result(0).unwrap();
    // Once scheduled, a callback can no longer be removed.
    assert_eq!(future.remove_done_callback(ids[0]), 0);
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["a", "c"]);
    event_loop.close().unwrap();
}

#[test]
fn callback_ids_are_distinct() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    let first = future.add_done_callback(|_| {});
    let second = future.add_done_callback(|_| {});
    assert_ne!(first, second);
    assert_eq!(future.remove_done_callback(second), 1);
    assert_eq!(future.remove_done_callback(first), 1);
    event_loop.close().unwrap();
}

#[test]
fn awaiting_gives_the_value_set_by_a_call_later_callback() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<String>();
    let setter = future.clone();
    event_loop
        .call_later(Duration::from_millis(1), move || {
            setter.set_result("from the timer".to_string()).unwrap()
        })
        .unwrap();
    let awaited = future.clone();
    let value = event_loop.run_until_complete(awaited).unwrap();
    assert_eq!(value, Ok("from the timer".to_string()));
    // The await moved the value out: the future is done, its value taken.
    assert!(future.done());
    assert!(!future.cancelled());
    assert!(matches!(future.result(), Err(FutureError::InvalidState(_))));
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_cancelled_future_gives_cancelled() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    let canceller = future.clone();
    event_loop.call_later(Duration::from_millis(1), move || assert!(canceller.cancel())).unwrap();
    let value = event_loop.run_until_complete(future).unwrap();
    assert_eq!(value, Err(FutureError::Cancelled));
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_future_that_is_already_done_does_not_wait() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    future.set_result(5).unwrap();
    let before = event_loop.stats();
    let value = event_loop.run_until_complete(future).unwrap();
    assert_eq!(value, Ok(5));
    // One step of the main task: it finished in the first iteration.
    assert_eq!(event_loop.stats().task_polls - before.task_polls, 1);
    event_loop.close().unwrap();
}

#[test]
fn a_second_await_of_a_taken_value_is_invalid_state() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<Vec<u8>>();
    future.set_result(vec![1, 2, 3]).unwrap();
    let (first, second) = (future.clone(), future.clone());
    let (a, b) = event_loop.run_until_complete(async move { (first.await, second.await) }).unwrap();
    assert_eq!(a, Ok(vec![1, 2, 3]));
    assert!(matches!(b, Err(FutureError::InvalidState(_))), "{b:?}");
    event_loop.close().unwrap();
}

#[test]
fn every_coroutine_awaiting_one_future_is_woken() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    let results = log();
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (future, results) = (future.clone(), results.clone());
            event_loop
                .create_task(async move {
                    let outcome = future.await;
                    results.borrow_mut().push(format!("{i}: {outcome:?}"));
                })
                .unwrap()
        })
        .collect();
    let setter = future.clone();
    event_loop
        .run_until_complete(async move {
            evloop::sleep(Duration::ZERO).await; // let all three park on the future
            setter.set_result(11).unwrap();
            for task in tasks {
                task.await.unwrap();
            }
        })
        .unwrap();
    // Nobody hangs; the first to run takes the value, the others learn it was taken.
    let results = entries(&results);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], "0: Ok(11)");
    for later in &results[1..] {
        assert!(later.contains("InvalidState"), "{later}");
    }
    event_loop.close().unwrap();
}

#[test]
fn coroutine_resumes_in_the_iteration_after_the_callback_that_completes_its_future() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let future = event_loop.create_future::<u32>();
    let task = {
        let (order, future) = (order.clone(), future.clone());
        event_loop
            .create_task(async move {
                order.borrow_mut().push("waiting".to_string());
                let value = future.await.unwrap();
                order.borrow_mut().push(format!("resumed with {value}"));
                value
            })
            .unwrap()
    };
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["waiting"]);
    {
        let (order, future) = (order.clone(), future.clone());
        event_loop
            .call_soon(move || {
                future.set_result(4).unwrap();
                order.borrow_mut().push("set".to_string());
            })
            .unwrap();
    }
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["waiting", "set"]);
    assert!(!task.done());
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["waiting", "set", "resumed with 4"]);
    assert!(task.done());
    event_loop.close().unwrap();
}

#[test]
fn setting_a_result_after_the_loop_closed_neither_panics_nor_runs_callbacks() {
    let event_loop = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let future = event_loop.create_future::<u32>();
    {
        let ran = ran.clone();
        future.add_done_callback(move |_| ran.set(true));
    }
    event_loop.close().unwrap();
    future.set_result(1).unwrap();
    assert_eq!(future.result(), Ok(1));
    future.add_done_callback(|_| unreachable!("a closed loop runs nothing"));
    assert!(!ran.get());
}

#[test]
fn debug_shows_the_state() {
    let event_loop = EventLoop::new().unwrap();
    let future = event_loop.create_future::<u32>();
    assert!(format!("{future:?}").contains("pending"));
    future.set_result(1).unwrap();
    assert!(format!("{future:?}").contains("done"));
    let cancelled = event_loop.create_future::<u32>();
    cancelled.cancel();
    assert!(format!("{cancelled:?}").contains("cancelled"));
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_done_callback_goes_to_the_exception_handler_and_the_others_still_run() {
    let event_loop = EventLoop::new().unwrap();
    let reports = log();
    let r = reports.clone();
    event_loop.set_exception_handler(move |context| r.borrow_mut().push(context.to_string()));
    let ran = Rc::new(Cell::new(false));
    let future = event_loop.create_future::<u32>();
    future.add_done_callback(|_| std::panic::resume_unwind(Box::new("done callback failed")));
    {
        let ran = ran.clone();
        future.add_done_callback(move |_| ran.set(true));
    }
    future.set_result(1).unwrap();
    event_loop.run_once().unwrap();
    assert!(ran.get());
    let reports = entries(&reports);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("done callback failed"), "{reports:?}");
    event_loop.close().unwrap();
}
