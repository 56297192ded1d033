//! gather, gather!, wait, wait_for, timeout, as_completed and shield (asyncio's
//! `tasks.py` and `timeouts.py`).
//!
//! Completion order is made deterministic by having children await `Future`s that the
//! test completes in a chosen order, one loop iteration apart; wall-clock sleeps appear
//! only where a time limit itself is under test, with generous bounds.

use std::cell::RefCell;
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use evloop::{
    as_completed, create_task, gather, gather_return_exceptions, get_running_loop, shield, sleep, timeout,
    timeout_at, wait, wait_for, ReturnWhen, Task, TaskError, TaskRef, TimeoutError,
};

mod common;
use common::{flag, quiet_expected_panics, yield_now, DropGuard, EXPECTED};

/// `n` pending futures of the running loop.
fn futures(n: usize) -> Vec<evloop::Future<u32>> {
    let event_loop = get_running_loop().unwrap();
    (0..n).map(|_| event_loop.create_future()).collect()
}

/// Completes `futures[i]` with `values[i]` in the given order, one iteration apart.
async fn complete_in_order(futures: &[evloop::Future<u32>], order: &[usize], values: &[u32]) {
    for &i in order {
        futures[i].set_result(values[i]).unwrap();
        yield_now().await;
    }
}

/// A child that returns its future's value.
fn child(future: &evloop::Future<u32>) -> impl Future<Output = u32> + 'static {
    let future = future.clone();
    async move { future.await.unwrap() }
}

/// A child that panics with `message` once its future completes.
fn panicking_child(
    future: &evloop::Future<u32>,
    message: &'static str,
) -> Pin<Box<dyn Future<Output = u32>>> {
    let future = future.clone();
    Box::pin(async move {
        future.await.unwrap();
        panic!("{EXPECTED}: {message}")
    })
}

// ---------------------------------------------------------------------------------------
// gather

#[test]
fn gather_returns_outputs_in_input_order_whatever_the_completion_order() {
    let outputs = evloop::run(async {
        let fs = futures(4);
        let gathered = create_task(gather(fs.iter().map(child).collect::<Vec<_>>()));
        yield_now().await;
        complete_in_order(&fs, &[2, 0, 3, 1], &[10, 11, 12, 13]).await;
        gathered.await.unwrap()
    })
    .unwrap();
    assert_eq!(outputs, Ok(vec![10, 11, 12, 13]));
}

#[test]
fn gather_of_nothing_is_empty() {
    let outputs = evloop::run(gather(Vec::<std::future::Ready<u8>>::new())).unwrap();
    assert_eq!(outputs, Ok(vec![]));
}

#[test]
fn gather_returns_the_first_failure_at_once_and_the_others_keep_running() {
    quiet_expected_panics();
    let finished_later = flag();
    let f = finished_later.clone();
    evloop::run(async move {
        let fs = futures(3);
        let children: Vec<Pin<Box<dyn Future<Output = u32>>>> = vec![
            panicking_child(&fs[0], "first in input order"),
            panicking_child(&fs[1], "first to fail"),
            Box::pin({
                let future = fs[2].clone();
                async move {
                    let value = future.await.unwrap();
                    f.set(true);
                    value
                }
            }),
        ];
        let gathered = create_task(gather(children));
        let handle = gathered.as_ref();
        yield_now().await;
        // Fails first in completion order, though second in input order.
        fs[1].set_result(0).unwrap();
        yield_now().await; // child 1 panics
        yield_now().await; // the gather sees it
        assert!(handle.done(), "gather returned at once, with children still running");
        let outcome = gathered.await.unwrap();
        assert_eq!(outcome, Err(TaskError::Panicked(format!("{EXPECTED}: first to fail"))));
        // The other children were not cancelled.
        fs[2].set_result(5).unwrap();
        fs[0].set_result(5).unwrap();
        for _ in 0..3 {
            yield_now().await;
        }
    })
    .unwrap();
    assert!(finished_later.get());
}

#[test]
fn gather_reports_a_cancelled_child() {
    let outcome = evloop::run(async {
        let fs = futures(2);
        let children: Vec<Pin<Box<dyn Future<Output = u32>>>> = vec![
            Box::pin(child(&fs[0])),
            Box::pin(async {
                evloop::current_task().unwrap().cancel();
                yield_now().await;
                0
            }),
        ];
        gather(children).await
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
}

#[test]
fn dropping_a_gather_cancels_its_unfinished_children() {
    let guards: Vec<_> = (0..3).map(|_| flag()).collect();
    let g = guards.clone();
    evloop::run(async move {
        let refs: Rc<RefCell<Vec<TaskRef>>> = Rc::new(RefCell::new(Vec::new()));
        let children: Vec<_> = (0..3)
            .map(|i| {
                let (guard, refs) = (DropGuard(g[i].clone()), refs.clone());
                async move {
                    let _guard = guard;
                    refs.borrow_mut().push(evloop::current_task().unwrap());
                    if i > 0 {
                        pending::<()>().await;
                    }
                    i
                }
            })
            .collect();
        let result = wait_for(gather(children), Duration::from_millis(2)).await;
        assert_eq!(result, Err(TimeoutError));
        // The cancellations take effect at the children's next step.
        yield_now().await;
        let refs = refs.borrow();
        assert!(!refs[0].cancelled(), "the finished child keeps its result");
        assert!(refs[1].cancelled() && refs[2].cancelled());
        assert!(g.iter().all(|g| g.get()));
        // Checked before run's final sweep, which would cancel them anyway.
        assert_eq!(evloop::all_tasks().len(), 1, "only main is left");
    })
    .unwrap();
    assert!(guards.iter().all(|g| g.get()));
}

#[test]
fn cancelling_the_task_awaiting_a_gather_cancels_the_children() {
    let guard = flag();
    let g = guard.clone();
    evloop::run(async move {
        let child_guard = DropGuard(g);
        let outer = create_task(gather(vec![async move {
            let _guard = child_guard;
            pending::<()>().await
        }]));
        yield_now().await;
        yield_now().await;
        assert!(outer.cancel());
        assert_eq!(outer.await, Err(TaskError::Cancelled));
        yield_now().await;
        assert_eq!(evloop::all_tasks().len(), 1, "the child is gone too");
    })
    .unwrap();
    assert!(guard.get());
}

#[test]
fn gather_return_exceptions_collects_every_outcome_in_input_order() {
    quiet_expected_panics();
    let outcomes = evloop::run(async {
        let fs = futures(4);
        let children: Vec<Pin<Box<dyn Future<Output = u32>>>> = vec![
            Box::pin(child(&fs[0])),
            panicking_child(&fs[1], "two"),
            Box::pin({
                let future = fs[2].clone();
                async move {
                    let _ = future.await;
                    evloop::current_task().unwrap().cancel();
                    yield_now().await;
                    3
                }
            }),
            Box::pin(child(&fs[3])),
        ];
        let gathered = create_task(gather_return_exceptions(children));
        yield_now().await;
        complete_in_order(&fs, &[3, 1, 2, 0], &[1, 2, 3, 4]).await;
        gathered.await.unwrap()
    })
    .unwrap();
    assert_eq!(
        outcomes,
        vec![Ok(1), Err(TaskError::Panicked(format!("{EXPECTED}: two"))), Err(TaskError::Cancelled), Ok(4)]
    );
}

#[test]
fn gather_macro_with_heterogeneous_types() {
    let (a, b, c, d) = evloop::run(async {
        evloop::gather!(
            async {
                yield_now().await;
                1u8
            },
            async { "two" },
            async {
                sleep(Duration::from_millis(1)).await;
                String::from("three")
            },
            async { vec![4.0f64] },
        )
        .await
        .unwrap()
    })
    .unwrap();
    assert_eq!((a, b, c.as_str(), d), (1, "two", "three", vec![4.0]));
}

#[test]
fn gather_macro_children_run_concurrently() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    evloop::run(async move {
        evloop::gather!(
            async move {
                for i in 0..2 {
                    l1.borrow_mut().push(format!("a{i}"));
                    yield_now().await;
                }
            },
            async move {
                for i in 0..2 {
                    l2.borrow_mut().push(format!("b{i}"));
                    yield_now().await;
                }
            },
        )
        .await
        .unwrap()
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1"]);
}

#[test]
fn gather_macro_returns_the_first_failure_in_completion_order() {
    quiet_expected_panics();
    let outcome = evloop::run(async {
        let fs = futures(3);
        let gathered = create_task(evloop::gather!(
            child(&fs[0]),
            panicking_child(&fs[1], "b"),
            panicking_child(&fs[2], "c"),
        ));
        yield_now().await;
        complete_in_order(&fs, &[2, 1, 0], &[0, 0, 0]).await;
        gathered.await.unwrap()
    })
    .unwrap();
    assert_eq!(outcome, Err(TaskError::Panicked(format!("{EXPECTED}: c"))));
}

// ---------------------------------------------------------------------------------------
// wait

fn names<T: 'static>(tasks: &[Task<T>]) -> Vec<String> {
    tasks.iter().map(Task::get_name).collect()
}

/// Tasks named "0".."n-1", each returning its future's value.
fn named_children(fs: &[evloop::Future<u32>]) -> Vec<Task<u32>> {
    fs.iter()
        .enumerate()
        .map(|(i, f)| {
            let task = create_task(child(f));
            task.set_name(i.to_string());
            task
        })
        .collect()
}

#[test]
fn wait_first_completed() {
    evloop::run(async {
        let fs = futures(4);
        let tasks = named_children(&fs);
        let waiter = create_task(wait(tasks, None, ReturnWhen::FirstCompleted));
        yield_now().await;
        // Two finish in the same iteration; both are reported done.
        fs[3].set_result(3).unwrap();
        fs[1].set_result(1).unwrap();
        let (done, pending) = waiter.await.unwrap();
        assert_eq!(names(&done), ["1", "3"], "input order");
        assert_eq!(names(&pending), ["0", "2"]);
        // Pending tasks were not cancelled and can still be awaited.
        fs[0].set_result(0).unwrap();
        fs[2].set_result(2).unwrap();
        let mut values = Vec::new();
        for task in done.into_iter().chain(pending) {
            values.push(task.await.unwrap());
        }
        assert_eq!(values, [1, 3, 0, 2]);
    })
    .unwrap();
}

#[test]
fn wait_first_exception_ignores_cancellations() {
    quiet_expected_panics();
    evloop::run(async {
        let fs = futures(4);
        let mut tasks = named_children(&fs[..2]);
        let cancelled = create_task(pending::<u32>());
        cancelled.set_name("cancelled");
        let panicking = create_task(panicking_child(&fs[2], "exception"));
        panicking.set_name("panics");
        let cancelled_ref = cancelled.as_ref();
        tasks.push(cancelled);
        tasks.push(panicking);
        let waiter = create_task(wait(tasks, None, ReturnWhen::FirstException));
        let waiter_ref = waiter.as_ref();
        yield_now().await;
        fs[0].set_result(0).unwrap();
        cancelled_ref.cancel();
        for _ in 0..3 {
            yield_now().await;
        }
        assert!(!waiter_ref.done(), "a completion and a cancellation are not exceptions");
        fs[2].set_result(0).unwrap();
        let (done, pending) = waiter.await.unwrap();
        assert_eq!(names(&done), ["0", "cancelled", "panics"]);
        assert_eq!(names(&pending), ["1"]);
    })
    .unwrap();
}

#[test]
fn wait_first_exception_without_exceptions_waits_for_all() {
    evloop::run(async {
        let fs = futures(3);
        let waiter = create_task(wait(named_children(&fs), None, ReturnWhen::FirstException));
        yield_now().await;
        complete_in_order(&fs, &[1, 2, 0], &[0, 1, 2]).await;
        let (done, pending) = waiter.await.unwrap();
        assert_eq!(names(&done), ["0", "1", "2"]);
        assert!(pending.is_empty());
    })
    .unwrap();
}

#[test]
fn wait_all_completed() {
    evloop::run(async {
        let fs = futures(3);
        let waiter = create_task(wait(named_children(&fs), None, ReturnWhen::AllCompleted));
        let waiter_ref = waiter.as_ref();
        yield_now().await;
        fs[2].set_result(0).unwrap();
        fs[0].set_result(0).unwrap();
        yield_now().await;
        yield_now().await;
        assert!(!waiter_ref.done());
        fs[1].set_result(0).unwrap();
        let (done, pending) = waiter.await.unwrap();
        assert_eq!(names(&done), ["0", "1", "2"]);
        assert!(pending.is_empty());
    })
    .unwrap();
}

#[test]
fn wait_with_a_timeout_returns_the_pending_ones_uncancelled() {
    evloop::run(async {
        let fs = futures(3);
        let tasks = named_children(&fs);
        fs[1].set_result(1).unwrap();
        let start = Instant::now();
        let (done, pending) = wait(tasks, Some(Duration::from_millis(5)), ReturnWhen::AllCompleted).await;
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert_eq!(names(&done), ["1"]);
        assert_eq!(names(&pending), ["0", "2"]);
        assert!(pending.iter().all(|t| !t.done()));
        fs[0].set_result(0).unwrap();
        fs[2].set_result(2).unwrap();
        let mut values = Vec::new();
        for task in pending {
            values.push(task.await.unwrap());
        }
        assert_eq!(values, [0, 2]);
    })
    .unwrap();
}

#[test]
fn wait_on_done_tasks_returns_at_once() {
    evloop::run(async {
        let tasks: Vec<_> = (0..3).map(|i| create_task(async move { i })).collect();
        yield_now().await;
        let (done, pending) = wait(tasks, None, ReturnWhen::AllCompleted).await;
        assert_eq!(done.len(), 3);
        assert!(pending.is_empty());
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// wait_for and timeout

#[test]
fn wait_for_returns_the_output_within_the_limit() {
    let value = evloop::run(async {
        wait_for(
            async {
                sleep(Duration::from_millis(1)).await;
                "in time"
            },
            Duration::from_secs(10),
        )
        .await
    })
    .unwrap();
    assert_eq!(value, Ok("in time"));
}

#[test]
fn wait_for_a_ready_future_fires_no_timer() {
    let event_loop = evloop::EventLoop::new().unwrap();
    let value = event_loop.run_until_complete(wait_for(async { 3 }, Duration::from_secs(3600))).unwrap();
    assert_eq!(value, Ok(3));
    assert_eq!(event_loop.stats().timers_fired, 0);
    event_loop.close().unwrap();
}

#[test]
fn wait_for_times_out_and_drops_the_inner_coroutine() {
    let (dropped, after) = (flag(), flag());
    let (d, a) = (dropped.clone(), after.clone());
    let (result, elapsed, dropped_at_return) = evloop::run(async move {
        let start = Instant::now();
        let result = wait_for(
            async move {
                let _guard = DropGuard(d.clone());
                sleep(Duration::from_secs(3600)).await;
                a.set(true);
            },
            Duration::from_millis(10),
        )
        .await;
        (result, start.elapsed(), dropped.get())
    })
    .unwrap();
    assert_eq!(result, Err(TimeoutError));
    assert!(dropped_at_return, "dropped by the time wait_for returns");
    assert!(!after.get());
    assert!(elapsed >= Duration::from_millis(10), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// Pending on its first poll (without arranging a wake-up), ready on every later one: it
/// is ready exactly when something else (the time limit) wakes its task.
fn ready_when_polled_again(value: u32) -> impl Future<Output = u32> {
    let mut polled = false;
    poll_fn(move |_| {
        if polled {
            Poll::Ready(value)
        } else {
            polled = true;
            Poll::Pending
        }
    })
}

#[test]
fn wait_for_a_future_ready_at_the_limit_wins() {
    let value = evloop::run(wait_for(ready_when_polled_again(8), Duration::from_millis(2))).unwrap();
    assert_eq!(value, Ok(8));
}

#[test]
fn timeout_run_gives_the_output_within_the_deadline() {
    let (value, expired) = evloop::run(async {
        let scope = timeout(Duration::from_secs(10));
        let value = scope.run(async { 5 }).await;
        (value, scope.expired())
    })
    .unwrap();
    assert_eq!(value, Ok(5));
    assert!(!expired);
}

#[test]
fn timeout_run_expires_and_drops_the_block() {
    let dropped = flag();
    let d = dropped.clone();
    let (value, expired, elapsed) = evloop::run(async move {
        let start = Instant::now();
        let scope = timeout(Duration::from_millis(10));
        let value = scope
            .run(async move {
                let _guard = DropGuard(d);
                sleep(Duration::from_secs(3600)).await;
            })
            .await;
        (value, scope.expired(), start.elapsed())
    })
    .unwrap();
    assert_eq!(value, Err(TimeoutError));
    assert!(expired);
    assert!(dropped.get());
    assert!(elapsed >= Duration::from_millis(10), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn timeout_when_and_a_block_ready_at_the_deadline_wins() {
    evloop::run(async {
        let now = get_running_loop().unwrap().time();
        let scope = timeout(Duration::from_millis(2));
        let when = scope.when().unwrap();
        assert!(when >= now + Duration::from_millis(2));
        assert!(when < now + Duration::from_secs(1));
        assert_eq!(scope.run(ready_when_polled_again(4)).await, Ok(4));
        assert!(!scope.expired());
    })
    .unwrap();
}

#[test]
fn timeout_rescheduled_later_by_the_block_lets_it_finish() {
    let (value, expired, elapsed) = evloop::run(async {
        let start = Instant::now();
        let scope = timeout(Duration::from_millis(5));
        let inner = scope.clone();
        let value = scope
            .run(async move {
                let later = get_running_loop().unwrap().time() + Duration::from_secs(10);
                inner.reschedule(Some(later));
                assert_eq!(inner.when(), Some(later));
                sleep(Duration::from_millis(30)).await;
                "finished"
            })
            .await;
        (value, scope.expired(), start.elapsed())
    })
    .unwrap();
    assert_eq!(value, Ok("finished"));
    assert!(!expired);
    assert!(elapsed >= Duration::from_millis(30));
}

#[test]
fn timeout_rescheduled_to_none_never_expires() {
    let value = evloop::run(async {
        let scope = timeout(Duration::from_millis(2));
        let inner = scope.clone();
        scope
            .run(async move {
                inner.reschedule(None);
                sleep(Duration::from_millis(20)).await;
                7
            })
            .await
    })
    .unwrap();
    assert_eq!(value, Ok(7));
}

#[test]
fn timeout_rescheduled_earlier_by_the_block_expires_earlier() {
    let (value, elapsed) = evloop::run(async {
        let start = Instant::now();
        let scope = timeout(Duration::from_secs(3600));
        let inner = scope.clone();
        let value = scope
            .run(async move {
                let soon = get_running_loop().unwrap().time() + Duration::from_millis(5);
                inner.reschedule(Some(soon));
                sleep(Duration::from_secs(3600)).await;
            })
            .await;
        (value, start.elapsed())
    })
    .unwrap();
    assert_eq!(value, Err(TimeoutError));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn timeout_at_none_has_no_deadline() {
    let value = evloop::run(async {
        let scope = timeout_at(None);
        assert_eq!(scope.when(), None);
        scope
            .run(async {
                sleep(Duration::from_millis(2)).await;
                1
            })
            .await
    })
    .unwrap();
    assert_eq!(value, Ok(1));
}

#[test]
fn timeout_at_a_past_instant_expires_at_once() {
    let value = evloop::run(async {
        let past = get_running_loop().unwrap().time();
        timeout_at(Some(past)).run(pending::<()>()).await
    })
    .unwrap();
    assert_eq!(value, Err(TimeoutError));
}

// ---------------------------------------------------------------------------------------
// as_completed

#[test]
fn as_completed_yields_in_completion_order_then_none() {
    let order = evloop::run(async {
        let fs = futures(4);
        let tasks: Vec<_> = fs.iter().map(|f| create_task(child(f))).collect();
        let mut completed = as_completed(tasks);
        let feeder = {
            let fs = fs.clone();
            create_task(async move { complete_in_order(&fs, &[2, 0, 3, 1], &[10, 11, 12, 13]).await })
        };
        let mut order = Vec::new();
        while let Some(outcome) = completed.next().await {
            order.push(outcome.unwrap());
        }
        assert_eq!(completed.next().await, None, "stays exhausted");
        feeder.await.unwrap();
        order
    })
    .unwrap();
    assert_eq!(order, [12, 10, 13, 11]);
}

#[test]
fn as_completed_is_a_futures_stream() {
    use futures_core::Stream;
    evloop::run(async {
        let fs = futures(3);
        let tasks: Vec<_> = fs.iter().map(|f| create_task(child(f))).collect();
        let mut stream = as_completed(tasks);
        assert_eq!(stream.size_hint(), (3, Some(3)));
        complete_in_order(&fs, &[1, 0, 2], &[0, 1, 2]).await;
        let mut pinned = Pin::new(&mut stream);
        let mut got = Vec::new();
        while let Some(outcome) = poll_fn(|cx| pinned.as_mut().poll_next(cx)).await {
            got.push(outcome.unwrap());
        }
        assert_eq!(got, [1, 0, 2]);
        assert_eq!(stream.size_hint(), (0, Some(0)));
    })
    .unwrap();
}

#[test]
fn as_completed_reports_failures_as_they_come() {
    quiet_expected_panics();
    evloop::run(async {
        let fs = futures(2);
        let tasks: Vec<Task<u32>> =
            vec![create_task(child(&fs[0])), create_task(panicking_child(&fs[1], "x"))];
        let mut completed = as_completed(tasks);
        fs[1].set_result(0).unwrap();
        assert_eq!(completed.next().await, Some(Err(TaskError::Panicked(format!("{EXPECTED}: x")))));
        fs[0].set_result(3).unwrap();
        assert_eq!(completed.next().await, Some(Ok(3)));
        assert_eq!(completed.next().await, None);
    })
    .unwrap();
}

#[test]
fn dropping_as_completed_leaves_the_tasks_running() {
    let finished = flag();
    let f = finished.clone();
    evloop::run(async move {
        let task = create_task(async move {
            yield_now().await;
            f.set(true);
        });
        let handle = task.as_ref();
        drop(as_completed(vec![task]));
        while !handle.done() {
            yield_now().await;
        }
        assert!(!handle.cancelled());
    })
    .unwrap();
    assert!(finished.get());
}

// ---------------------------------------------------------------------------------------
// shield

#[test]
fn shield_passes_the_output_through() {
    let value = evloop::run(async { shield(async { 9 }).await }).unwrap();
    assert_eq!(value, Ok(9));
}

#[test]
fn cancelling_the_awaiting_task_leaves_the_shielded_one_running() {
    let (outer_after, inner_done) = (flag(), flag());
    let (oa, id) = (outer_after.clone(), inner_done.clone());
    let shielded: Rc<RefCell<Option<TaskRef>>> = Rc::new(RefCell::new(None));
    let slot = shielded.clone();
    evloop::run(async move {
        let fs = futures(1);
        let inner_future = fs[0].clone();
        let outer = create_task(async move {
            let guarded = shield(async move {
                let value = inner_future.await.unwrap();
                id.set(true);
                value
            });
            *slot.borrow_mut() = Some(guarded.task().as_ref());
            let _ = guarded.await;
            oa.set(true);
        });
        yield_now().await;
        yield_now().await;
        assert!(outer.cancel());
        assert_eq!(outer.await, Err(TaskError::Cancelled));
        let inner = slot_value(&shielded);
        yield_now().await;
        assert!(!inner.done(), "the shielded task was not cancelled");
        fs[0].set_result(1).unwrap();
        while !inner.done() {
            yield_now().await;
        }
        assert!(!inner.cancelled());
    })
    .unwrap();
    assert!(inner_done.get());
    assert!(!outer_after.get());
}

fn slot_value(slot: &Rc<RefCell<Option<TaskRef>>>) -> TaskRef {
    slot.borrow().clone().expect("set by the outer task")
}

#[test]
fn the_shielded_task_can_still_be_cancelled_on_purpose() {
    let value = evloop::run(async {
        let guarded = shield(pending::<u32>());
        assert!(guarded.task().cancel());
        guarded.await
    })
    .unwrap();
    assert_eq!(value, Err(TaskError::Cancelled));
}

#[test]
fn timeout_rescheduled_earlier_from_another_task_expires_earlier() {
    let (value, elapsed) = evloop::run(async {
        let start = Instant::now();
        let scope = timeout(Duration::from_secs(3));
        let remote = scope.clone();
        create_task(async move {
            yield_now().await;
            remote.reschedule(Some(get_running_loop().unwrap().time() + Duration::from_millis(5)));
        });
        let value = scope.run(sleep(Duration::from_secs(3600))).await;
        (value, start.elapsed())
    })
    .unwrap();
    assert_eq!(value, Err(TimeoutError));
    assert!(elapsed < Duration::from_secs(2), "expired only at the old deadline: {elapsed:?}");
}

#[test]
fn dropping_a_wait_leaves_its_tasks_running() {
    evloop::run(async {
        let fs = futures(2);
        let tasks = named_children(&fs);
        let refs: Vec<TaskRef> = tasks.iter().map(Task::as_ref).collect();
        let gave_up = wait_for(wait(tasks, None, ReturnWhen::AllCompleted), Duration::from_millis(1)).await;
        assert!(gave_up.is_err());
        yield_now().await;
        assert!(refs.iter().all(|t| !t.done()), "asyncio's wait never cancels its tasks");
        fs[0].set_result(0).unwrap();
        fs[1].set_result(1).unwrap();
        while !refs.iter().all(TaskRef::done) {
            yield_now().await;
        }
        assert!(refs.iter().all(|t| !t.cancelled()));
    })
    .unwrap();
}

#[test]
fn wait_for_with_a_zero_limit() {
    evloop::run(async {
        assert_eq!(wait_for(async { 1 }, Duration::ZERO).await, Ok(1));
        assert_eq!(wait_for(pending::<()>(), Duration::ZERO).await, Err(TimeoutError));
    })
    .unwrap();
}
