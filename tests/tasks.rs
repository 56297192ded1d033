//! `Task<T>`: coroutines driven by the loop (asyncio's `asyncio.Task`), `run` and
//! `run_until_complete`, and what cancellation does at each kind of await point.
//!
//! Progress is measured in loop iterations (`run_once`, `stats()`, `sleep(ZERO)`, which
//! yields exactly one), never in wall-clock time, except where time itself is under test.

use std::cell::{Cell, RefCell};
use std::future::{pending, Future};
use std::panic::catch_unwind;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::sync::{Event, Lock, Queue};
use evloop::{
    all_tasks, create_task, current_task, gather, get_running_loop, sleep, wait_for, EventLoop, LoopError,
    RunError, TaskError, TaskRef,
};

mod common;
use common::{entries, flag, log, push, quiet_expected_panics, yield_now, DropGuard, EXPECTED};

// ---------------------------------------------------------------------------------------
// Creating and running tasks.

#[test]
fn run_until_complete_returns_the_output() {
    let event_loop = EventLoop::new().unwrap();
    let value = event_loop.run_until_complete(async { 6 * 7 }).unwrap();
    assert_eq!(value, 42);
    // The loop can run again afterwards.
    let value = event_loop.run_until_complete(async { "again" }).unwrap();
    assert_eq!(value, "again");
    assert!(!event_loop.is_running());
    event_loop.close().unwrap();
}

#[test]
fn first_step_runs_in_the_next_iteration_in_call_soon_order() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let before = order.clone();
    event_loop.call_soon(move || push(&before, "call_soon before")).unwrap();
    let task = {
        let order = order.clone();
        event_loop
            .create_task(async move {
                push(&order, "task step 1");
                yield_now().await;
                push(&order, "task step 2");
                5
            })
            .unwrap()
    };
    let after = order.clone();
    event_loop.call_soon(move || push(&after, "call_soon after")).unwrap();
    // create_task does not poll inline.
    assert!(entries(&order).is_empty());
    assert_eq!(event_loop.stats().tasks_spawned, 1);
    assert_eq!(event_loop.stats().task_polls, 0);

    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["call_soon before", "task step 1", "call_soon after"]);
    assert_eq!(event_loop.stats().task_polls, 1);
    assert!(!task.done());

    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["call_soon before", "task step 1", "call_soon after", "task step 2"]);
    assert_eq!(event_loop.stats().task_polls, 2);
    assert_eq!(event_loop.stats().tasks_finished, 1);
    assert!(task.done());
    let mut task = task;
    assert_eq!(task.try_take(), Some(Ok(5)));
    event_loop.close().unwrap();
}

#[test]
fn free_create_task_inside_a_running_loop() {
    let value = evloop::run(async {
        let task = create_task(async { "child" });
        task.await
    })
    .unwrap();
    assert_eq!(value, Ok("child"));
}

#[test]
fn free_create_task_outside_a_running_loop_panics() {
    let result = catch_unwind(|| drop(create_task(async {})));
    let payload = result.expect_err("create_task outside a loop must panic");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("outside a running event loop"), "{message}");
}

#[test]
fn create_task_on_a_closed_loop_is_an_error() {
    let event_loop = EventLoop::new().unwrap();
    event_loop.close().unwrap();
    assert!(matches!(event_loop.create_task(async {}), Err(LoopError::Closed)));
}

#[test]
fn try_take_is_none_while_running_and_the_outcome_once_done() {
    let event_loop = EventLoop::new().unwrap();
    let mut task = event_loop
        .create_task(async {
            yield_now().await;
            3
        })
        .unwrap();
    assert_eq!(task.try_take(), None);
    event_loop.run_once().unwrap();
    assert_eq!(task.try_take(), None);
    event_loop.run_once().unwrap();
    assert_eq!(task.try_take(), Some(Ok(3)));
    event_loop.close().unwrap();
}

#[test]
fn awaiting_a_task_that_is_already_done_gives_its_output() {
    let value = evloop::run(async {
        let task = create_task(async { 10 });
        yield_now().await;
        assert!(task.done());
        task.await
    })
    .unwrap();
    assert_eq!(value, Ok(10));
}

// ---------------------------------------------------------------------------------------
// Cancellation.

#[test]
fn cancel_drops_the_coroutine_at_its_await_point() {
    let event_loop = EventLoop::new().unwrap();
    let (dropped, after) = (flag(), flag());
    let future = event_loop.create_future::<u32>();
    let task = {
        let (dropped, after, future) = (dropped.clone(), after.clone(), future.clone());
        event_loop
            .create_task(async move {
                let _guard = DropGuard(dropped);
                let _ = future.await;
                after.set(true);
            })
            .unwrap()
    };
    event_loop.run_once().unwrap();
    assert!(!task.done());
    assert!(task.cancel());
    // Nothing happens until the task's next step...
    assert!(!dropped.get());
    assert!(!task.done());
    event_loop.run_once().unwrap();
    // ...which drops the coroutine where it stood.
    assert!(dropped.get());
    assert!(!after.get());
    assert!(task.done());
    assert!(task.cancelled());
    // Completing what it awaited changes nothing now.
    future.set_result(1).unwrap();
    assert!(!after.get());
    let mut task = task;
    assert_eq!(task.try_take(), Some(Err(TaskError::Cancelled)));
    event_loop.close().unwrap();
}

#[test]
fn cancel_before_the_first_step_never_runs_the_coroutine() {
    let event_loop = EventLoop::new().unwrap();
    let (started, dropped) = (flag(), flag());
    let task = {
        let (started, guard) = (started.clone(), DropGuard(dropped.clone()));
        event_loop
            .create_task(async move {
                let _guard = guard;
                started.set(true);
            })
            .unwrap()
    };
    assert!(task.cancel());
    let outcome = event_loop.run_until_complete(task).unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert!(!started.get());
    assert!(dropped.get());
    event_loop.close().unwrap();
}

#[test]
fn cancel_of_a_done_task_returns_false() {
    evloop::run(async {
        let task = create_task(async { 1 });
        yield_now().await;
        assert!(task.done());
        assert!(!task.cancel());
        assert!(!task.cancelled());
        assert_eq!(task.await, Ok(1));

        let cancelled = create_task(pending::<()>());
        assert!(cancelled.cancel());
        // Cancel requested but not yet carried out: it still says true.
        assert!(cancelled.cancel());
        yield_now().await;
        assert!(cancelled.cancelled());
        assert!(!cancelled.cancel());
    })
    .unwrap();
}

#[test]
fn cancelled_task_awaited_by_another_gives_cancelled() {
    let outcome = evloop::run(async {
        let victim = create_task(pending::<u32>());
        let canceller = victim.as_ref();
        create_task(async move {
            yield_now().await;
            canceller.cancel();
        });
        victim.await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
}

/// Starts `make()` in a task between a drop guard and a flag set after it, cancels the
/// task once it is parked there, and checks it ends `Cancelled` exactly at that point.
fn assert_cancelled_while_awaiting<F, Fut>(what: &str, make: F)
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future + 'static,
{
    let (reached, dropped, after) = (flag(), flag(), flag());
    let (r, d, a) = (reached.clone(), dropped.clone(), after.clone());
    let (reached_now, label) = (reached.clone(), what.to_string());
    let outcome = evloop::run(async move {
        let task = create_task(async move {
            let _guard = DropGuard(d);
            let future = make();
            r.set(true);
            future.await;
            a.set(true);
        });
        for _ in 0..3 {
            yield_now().await;
        }
        assert!(reached_now.get(), "{label}: the task should have reached its await point");
        assert!(!task.done(), "{label}: the await should be pending");
        assert!(task.cancel());
        task.await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled), "{what}");
    assert!(reached.get(), "{what}");
    assert!(dropped.get(), "{what}: the coroutine should be dropped");
    assert!(!after.get(), "{what}: code after the await must not run");
}

#[test]
fn cancel_while_sleeping() {
    let cancelled_timers = Rc::new(Cell::new(0));
    let c = cancelled_timers.clone();
    assert_cancelled_while_awaiting("sleep", move || async move {
        let event_loop = get_running_loop().unwrap();
        let before = event_loop.stats().timers_cancelled;
        struct Count(EventLoop, u64, Rc<Cell<u64>>);
        impl Drop for Count {
            fn drop(&mut self) {
                // Runs after the Sleep below is dropped (locals drop in reverse order).
                self.2.set(self.0.stats().timers_cancelled - self.1);
            }
        }
        let _count = Count(event_loop, before, c);
        sleep(Duration::from_secs(3600)).await;
    });
    assert_eq!(cancelled_timers.get(), 1, "dropping the sleep cancels its timer");
}

#[test]
fn cancel_while_awaiting_a_future() {
    assert_cancelled_while_awaiting("Future", || get_running_loop().unwrap().create_future::<u32>());
}

#[test]
fn cancel_while_waiting_for_an_event() {
    let event = Rc::new(Event::new());
    let e = event.clone();
    assert_cancelled_while_awaiting("Event.wait", move || async move { e.wait().await });
    assert!(format!("{event:?}").contains("waiters: 0"), "{event:?}");
}

#[test]
fn cancel_while_acquiring_a_lock() {
    let lock = Rc::new(Lock::new());
    let l = lock.clone();
    assert_cancelled_while_awaiting("Lock.acquire", move || async move {
        let holder = l.clone();
        create_task(async move {
            let _guard = holder.acquire().await;
            pending::<()>().await;
        });
        yield_now().await; // the holder takes the lock first
        let _guard = l.acquire().await;
    });
}

#[test]
fn cancel_while_getting_from_an_empty_queue() {
    let queue = Rc::new(Queue::<u32>::new(0));
    let q = queue.clone();
    assert_cancelled_while_awaiting("Queue.get", move || async move {
        q.get().await;
    });
    // The cancelled getter left no trace: a new item stays in the queue.
    queue.put_nowait(1).unwrap();
    assert_eq!(queue.qsize(), 1);
}

#[test]
fn cancel_while_putting_into_a_full_queue() {
    let queue = Rc::new(Queue::<u32>::new(1));
    queue.put_nowait(1).unwrap();
    let q = queue.clone();
    assert_cancelled_while_awaiting("Queue.put", move || async move { q.put(2).await });
    // The cancelled put's item was not put, and no putter is left behind.
    assert_eq!(queue.get_nowait(), Ok(1));
    assert_eq!(queue.qsize(), 0);
    assert!(format!("{queue:?}").contains("putters: 0"), "{queue:?}");
}

#[test]
fn cancel_while_awaiting_another_task_cancels_that_task_too() {
    let (inner_dropped, inner_after) = (flag(), flag());
    let (d, a) = (inner_dropped.clone(), inner_after.clone());
    let inner_ref: Rc<RefCell<Option<TaskRef>>> = Rc::new(RefCell::new(None));
    let slot = inner_ref.clone();
    assert_cancelled_while_awaiting("another Task", move || {
        let inner = create_task(async move {
            let _guard = DropGuard(d);
            pending::<()>().await;
            a.set(true);
        });
        *slot.borrow_mut() = Some(inner.as_ref());
        inner
    });
    // As in asyncio, cancelling a coroutine cancels the task it awaits.
    let inner = inner_ref.borrow().clone().unwrap();
    assert!(inner.cancelled());
    assert!(inner_dropped.get());
    assert!(!inner_after.get());
}

#[test]
fn cancel_while_in_wait_for() {
    let (inner_dropped, inner_after) = (flag(), flag());
    let (d, a) = (inner_dropped.clone(), inner_after.clone());
    assert_cancelled_while_awaiting("wait_for", move || {
        wait_for(
            async move {
                let _guard = DropGuard(d);
                pending::<()>().await;
                a.set(true);
            },
            Duration::from_secs(3600),
        )
    });
    assert!(inner_dropped.get());
    assert!(!inner_after.get());
}

#[test]
fn cancel_while_in_gather_cancels_the_children() {
    let dropped: Vec<_> = (0..3).map(|_| flag()).collect();
    let children: Vec<_> = dropped
        .iter()
        .map(|d| {
            let guard = DropGuard(d.clone());
            async move {
                let _guard = guard;
                pending::<()>().await;
            }
        })
        .collect();
    assert_cancelled_while_awaiting("gather", move || gather(children));
    // evloop::run let the children finish their cancellation before returning; they were
    // cancelled by the gather, not only by run's final sweep (checked in combinators.rs).
    assert!(dropped.iter().all(|d| d.get()));
}

#[test]
fn a_task_cancelling_itself_ends_cancelled_at_its_next_await() {
    let order = log();
    let o = order.clone();
    let outcome = evloop::run(async move {
        let task = create_task(async move {
            push(&o, "before");
            assert!(current_task().unwrap().cancel());
            push(&o, "after cancel, same step");
            yield_now().await;
            push(&o, "never");
        });
        task.await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert_eq!(entries(&order), ["before", "after cancel, same step"]);
}

#[test]
fn a_task_cancelling_itself_then_returning_ends_cancelled() {
    let outcome = evloop::run(async {
        create_task(async {
            current_task().unwrap().cancel();
            99
        })
        .await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
}

#[test]
fn a_task_cancelling_itself_runs_on_through_awaits_that_are_ready() {
    let order = log();
    let o = order.clone();
    let outcome = evloop::run(async move {
        let ready = get_running_loop().unwrap().create_future::<u32>();
        ready.set_result(1).unwrap();
        create_task(async move {
            current_task().unwrap().cancel();
            // Ready at once: no suspension, so the cancellation has no point to act at.
            let value = ready.await.unwrap();
            push(&o, format!("got {value}"));
            yield_now().await;
            push(&o, "never");
        })
        .await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert_eq!(entries(&order), ["got 1"]);
}

// ---------------------------------------------------------------------------------------
// Names, current_task, all_tasks.

fn task_number(name: &str) -> u64 {
    let number = name.strip_prefix("Task-").unwrap_or_else(|| panic!("default name {name:?}"));
    number.parse().unwrap_or_else(|_| panic!("default name {name:?}"))
}

#[test]
fn default_names_are_task_n_and_set_name_renames() {
    evloop::run(async {
        let first = create_task(async {});
        let second = create_task(async {});
        let (a, b) = (task_number(&first.get_name()), task_number(&second.get_name()));
        assert_eq!(b, a + 1, "consecutive tasks get consecutive numbers");

        second.set_name("worker");
        assert_eq!(second.get_name(), "worker");
        // A TaskRef names the same task, both ways.
        let second_ref = second.as_ref();
        assert_eq!(second_ref.get_name(), "worker");
        second_ref.set_name("renamed");
        assert_eq!(second.get_name(), "renamed");
        assert!(format!("{second:?}").contains("renamed"));
    })
    .unwrap();
}

#[test]
fn current_task_inside_a_task_and_none_outside() {
    assert!(current_task().is_none(), "no loop running");
    let event_loop = EventLoop::new().unwrap();
    let in_callback = Rc::new(Cell::new(true));
    let c = in_callback.clone();
    event_loop.call_soon(move || c.set(current_task().is_some())).unwrap();
    let (same, name) = event_loop
        .run_until_complete(async {
            let task = create_task(async {
                let me = current_task().expect("inside a task");
                me.set_name("me");
                me
            });
            let handle = task.as_ref();
            let me = task.await.unwrap();
            (me == handle, me.get_name())
        })
        .unwrap();
    assert!(same, "current_task() is the running task");
    assert_eq!(name, "me");
    assert!(!in_callback.get(), "a plain callback runs outside any task");
    assert!(current_task().is_none());
    event_loop.close().unwrap();
}

#[test]
fn all_tasks_lists_the_unfinished_ones() {
    assert!(all_tasks().is_empty(), "no loop running");
    evloop::run(async {
        let me = current_task().unwrap();
        let finished = create_task(async {});
        let parked = create_task(pending::<()>());
        yield_now().await;
        assert!(finished.done());
        let tasks = all_tasks();
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert!(tasks.contains(&me));
        assert!(tasks.contains(&parked.as_ref()));
        assert!(!tasks.contains(&finished.as_ref()));
        parked.cancel();
        yield_now().await;
        assert_eq!(all_tasks(), [me]);
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Panics.

#[test]
fn a_panic_is_isolated_to_its_task() {
    quiet_expected_panics();
    let event_loop = EventLoop::new().unwrap();
    let reports = log();
    let r = reports.clone();
    event_loop.set_exception_handler(move |context| push(&r, context.to_string()));
    let (survivor_done, after_panic) = (flag(), flag());
    let (s, a) = (survivor_done.clone(), after_panic.clone());
    let outcome = event_loop
        .run_until_complete(async move {
            let victim = create_task(async move {
                yield_now().await;
                if !a.get() {
                    panic!("{EXPECTED}: boom {}", 42);
                }
                a.set(true);
                0
            });
            let survivor = create_task(async move {
                for _ in 0..3 {
                    yield_now().await;
                }
                s.set(true);
                7
            });
            (victim.await, survivor.await)
        })
        .unwrap();
    assert_eq!(outcome.0, Err(TaskError::Panicked(format!("{EXPECTED}: boom 42"))));
    assert_eq!(outcome.1, Ok(7));
    assert!(survivor_done.get());
    assert!(!after_panic.get());
    // The panic was handed over by the await: nothing reported as never retrieved.
    assert!(entries(&reports).is_empty(), "{:?}", entries(&reports));
    event_loop.close().unwrap();
}

#[test]
fn a_panic_nobody_retrieves_goes_to_the_exception_handler() {
    quiet_expected_panics();
    let event_loop = EventLoop::new().unwrap();
    let reports = log();
    let r = reports.clone();
    event_loop.set_exception_handler(move |context| push(&r, context.to_string()));
    event_loop
        .run_until_complete(async {
            let task = create_task(async { panic!("{EXPECTED}: lost") });
            task.set_name("orphan");
            drop(task);
            yield_now().await;
        })
        .unwrap();
    let reports = entries(&reports);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("orphan"), "{reports:?}");
    assert!(reports[0].contains("lost"), "{reports:?}");
    event_loop.close().unwrap();
}

#[test]
fn a_panicking_main_coroutine_is_a_task_error() {
    quiet_expected_panics();
    let result = evloop::run(async {
        if get_running_loop().is_ok() {
            panic!("{EXPECTED}: main");
        }
    });
    match result {
        Err(RunError::Task(TaskError::Panicked(message))) => assert!(message.contains("main")),
        other => panic!("unexpected {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Dropping handles.

#[test]
fn dropping_a_never_awaited_handle_leaves_the_task_running() {
    let finished = flag();
    let f = finished.clone();
    evloop::run(async move {
        let task = create_task(async move {
            for _ in 0..3 {
                yield_now().await;
            }
            f.set(true);
        });
        let handle = task.as_ref();
        drop(task);
        while !handle.done() {
            yield_now().await;
        }
        assert!(!handle.cancelled());
    })
    .unwrap();
    assert!(finished.get());
}

#[test]
fn dropping_a_handle_while_awaiting_it_cancels_the_task() {
    let (dropped, after) = (flag(), flag());
    let (d, a) = (dropped.clone(), after.clone());
    evloop::run(async move {
        let task = create_task(async move {
            let _guard = DropGuard(d);
            pending::<()>().await;
            a.set(true);
        });
        let handle = task.as_ref();
        let result = wait_for(task, Duration::from_millis(1)).await;
        assert!(result.is_err(), "the task never finishes");
        // The cancel was requested as the handle dropped; it takes effect at the task's
        // next step, which is queued before us.
        assert!(!handle.done());
        yield_now().await;
        assert!(handle.cancelled());
    })
    .unwrap();
    assert!(dropped.get());
    assert!(!after.get());
}

#[test]
fn dropping_an_awaited_handle_after_the_task_finished_changes_nothing() {
    evloop::run(async {
        let task = create_task(async { 1 });
        let handle = task.as_ref();
        // Awaited (through a reference, so the handle survives), finished, then dropped.
        let mut task = task;
        let value = (&mut task).await;
        assert_eq!(value, Ok(1));
        drop(task);
        assert!(handle.done());
        assert!(!handle.cancelled());
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// run_until_complete, run and close.

#[test]
fn run_until_complete_inside_the_running_loop_is_an_error() {
    let event_loop = EventLoop::new().unwrap();
    let inner = event_loop.clone();
    let nested = event_loop.run_until_complete(async move { inner.run_until_complete(async { 1 }) }).unwrap();
    assert!(matches!(nested, Err(RunError::Loop(LoopError::AlreadyRunning))), "{nested:?}");
    event_loop.close().unwrap();
}

#[test]
fn run_until_complete_of_another_loop_inside_a_running_loop_is_an_error() {
    let event_loop = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let o = other.clone();
    let nested = event_loop.run_until_complete(async move { o.run_until_complete(async { 1 }) }).unwrap();
    assert!(matches!(nested, Err(RunError::Loop(LoopError::AnotherLoopRunning))), "{nested:?}");
    other.close().unwrap();
    event_loop.close().unwrap();

    let nested = evloop::run(async { evloop::run(async { 1 }) }).unwrap();
    assert!(matches!(nested, Err(RunError::Loop(LoopError::AnotherLoopRunning))), "{nested:?}");
}

#[test]
fn run_returns_the_output_and_closes_its_loop() {
    let seen: Rc<RefCell<Option<EventLoop>>> = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let value = evloop::run(async move {
        *s.borrow_mut() = Some(get_running_loop().unwrap());
        String::from("main's output")
    })
    .unwrap();
    assert_eq!(value, "main's output");
    assert!(seen.borrow().as_ref().unwrap().is_closed());
}

/// Makes the future a task parks on.
type MakeAwait = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()>>>>;

#[test]
fn run_cancels_the_tasks_still_alive_at_the_end() {
    let guards: Vec<_> = (0..3).map(|_| flag()).collect();
    let after = flag();
    let refs: Rc<RefCell<Vec<TaskRef>>> = Rc::new(RefCell::new(Vec::new()));
    let (g, a, r) = (guards.clone(), after.clone(), refs.clone());
    evloop::run(async move {
        let event = Rc::new(Event::new());
        let awaits: Vec<MakeAwait> = vec![
            Box::new(|| Box::pin(sleep(Duration::from_secs(3600)))),
            Box::new(|| Box::pin(pending::<()>())),
            Box::new(move || Box::pin(async move { event.wait().await })),
        ];
        for (guard, make) in g.into_iter().zip(awaits) {
            let a = a.clone();
            let task = create_task(async move {
                let _guard = DropGuard(guard);
                make().await;
                a.set(true);
            });
            r.borrow_mut().push(task.as_ref());
        }
        yield_now().await;
    })
    .unwrap();
    assert!(guards.iter().all(|g| g.get()), "every leftover task was dropped");
    assert!(!after.get());
    assert!(refs.borrow().iter().all(TaskRef::cancelled));
}

#[test]
fn stop_before_main_completes_is_stopped_before_complete() {
    let dropped = flag();
    let d = dropped.clone();
    let result = evloop::run(async move {
        let _guard = DropGuard(d);
        create_task(async {
            yield_now().await;
            get_running_loop().unwrap().stop();
        });
        pending::<()>().await;
    });
    assert!(matches!(result, Err(RunError::StoppedBeforeComplete)), "{result:?}");
    assert!(dropped.get(), "run cancelled the unfinished main coroutine");
}

#[test]
fn run_until_complete_stopped_early_leaves_main_alive_until_close() {
    let event_loop = EventLoop::new().unwrap();
    let stopper = event_loop.clone();
    event_loop.call_soon(move || stopper.stop()).unwrap();
    let (done, dropped) = (flag(), flag());
    let (d, g) = (done.clone(), DropGuard(dropped.clone()));
    let result = event_loop.run_until_complete(async move {
        let _guard = g;
        for _ in 0..3 {
            yield_now().await;
        }
        d.set(true);
    });
    assert!(matches!(result, Err(RunError::StoppedBeforeComplete)), "{result:?}");
    assert!(!done.get());
    assert_eq!(event_loop.task_count(), 1, "the main task is still there");
    event_loop.close().unwrap();
    assert!(dropped.get());
    assert!(!done.get());
}

#[test]
fn a_leftover_main_from_a_stopped_run_does_not_stop_a_later_run() {
    let event_loop = EventLoop::new().unwrap();
    let stopper = event_loop.clone();
    event_loop.call_soon(move || stopper.stop()).unwrap();
    let done = flag();
    let d = done.clone();
    let result = event_loop.run_until_complete(async move {
        yield_now().await;
        d.set(true);
    });
    assert!(matches!(result, Err(RunError::StoppedBeforeComplete)), "{result:?}");
    // asyncio removes its stop callback from the future when run_until_complete returns:
    // the leftover coroutine finishing later must not stop this unrelated run.
    let later = event_loop.run_until_complete(async {
        for _ in 0..5 {
            yield_now().await;
        }
        "later run finished"
    });
    assert!(done.get(), "the leftover main ran on");
    assert_eq!(later.unwrap(), "later run finished");
    event_loop.close().unwrap();
}

#[test]
fn closing_a_loop_with_live_tasks_cancels_them() {
    let event_loop = EventLoop::new().unwrap();
    let dropped = flag();
    let d = dropped.clone();
    let task = event_loop
        .create_task(async move {
            let _guard = DropGuard(d);
            pending::<()>().await;
        })
        .unwrap();
    event_loop.run_once().unwrap();
    assert!(!dropped.get());
    event_loop.close().unwrap();
    assert!(dropped.get());
    assert!(task.done());
    assert!(task.cancelled());
    assert!(!task.cancel());
}

// ---------------------------------------------------------------------------------------
// sleep.

#[test]
fn sleep_zero_yields_exactly_one_iteration_in_asyncio_order() {
    let event_loop = EventLoop::new().unwrap();
    let order = log();
    let o = order.clone();
    event_loop.call_soon(move || push(&o, "A")).unwrap();
    let task = {
        let order = order.clone();
        event_loop
            .create_task(async move {
                push(&order, "T1");
                let o = order.clone();
                get_running_loop().unwrap().call_soon(move || push(&o, "C (from T1)")).unwrap();
                sleep(Duration::ZERO).await;
                push(&order, "T2");
                sleep(Duration::ZERO).await;
                push(&order, "T3");
            })
            .unwrap()
    };
    let o = order.clone();
    event_loop.call_soon(move || push(&o, "B")).unwrap();

    let start = event_loop.stats();
    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["A", "T1", "B"]);
    let one = event_loop.stats();
    assert_eq!((one.callbacks_run - start.callbacks_run, one.task_polls - start.task_polls), (2, 1));

    event_loop.run_once().unwrap();
    // asyncio: the callback T1 scheduled runs before T1's own resumption.
    assert_eq!(entries(&order), ["A", "T1", "B", "C (from T1)", "T2"]);
    let two = event_loop.stats();
    assert_eq!((two.callbacks_run - one.callbacks_run, two.task_polls - one.task_polls), (1, 1));

    event_loop.run_once().unwrap();
    assert_eq!(entries(&order), ["A", "T1", "B", "C (from T1)", "T2", "T3"]);
    let three = event_loop.stats();
    assert_eq!((three.callbacks_run - two.callbacks_run, three.task_polls - two.task_polls), (0, 1));
    assert_eq!(three.tasks_finished - start.tasks_finished, 1);
    assert_eq!(three.timers_scheduled, start.timers_scheduled, "sleep(0) uses no timer");
    assert!(task.done());
    event_loop.close().unwrap();
}

#[test]
fn n_zero_sleeps_take_n_iterations() {
    let event_loop = EventLoop::new().unwrap();
    let before = event_loop.stats();
    event_loop
        .run_until_complete(async {
            for _ in 0..10 {
                sleep(Duration::ZERO).await;
            }
        })
        .unwrap();
    let after = event_loop.stats();
    assert_eq!(after.task_polls - before.task_polls, 11);
    assert_eq!(after.iterations - before.iterations, 11);
    event_loop.close().unwrap();
}

#[test]
fn two_tasks_yielding_alternate() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let o = o.clone();
                create_task(async move {
                    for i in 0..3 {
                        push(&o, format!("{name}{i}"));
                        yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(entries(&order), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[test]
fn sleep_waits_at_least_its_delay() {
    let elapsed = evloop::run(async {
        let start = Instant::now();
        sleep(Duration::from_millis(20)).await;
        start.elapsed()
    })
    .unwrap();
    assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn shorter_sleeps_finish_first() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let tasks: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                let o = o.clone();
                create_task(async move {
                    sleep(Duration::from_millis(ms)).await;
                    push(&o, ms.to_string());
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(entries(&order), ["10", "20", "30"]);
}
