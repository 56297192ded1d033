//! Lock, Semaphore, BoundedSemaphore, Event, Condition and the queues (asyncio's
//! `locks.py` and `queues.py`): what each guarantees, and that every one serves its
//! waiters first come, first served. Cancellation is in sync_cancellation.rs.
//!
//! Steps are counted in loop iterations (`sleep(ZERO)` yields exactly one), never in time.

use std::cell::Cell;
use std::rc::Rc;

use evloop::sync::{
    BoundedSemaphore, Condition, Event, LifoQueue, Lock, PriorityQueue, Queue, QueueEmpty, QueueFull,
    Semaphore, ValueError,
};
use evloop::{create_task, Task, TaskError};

mod common;
use common::{entries, log, push, quiet_panics_containing, yield_now, yields, Log, EXPECTED};

async fn join_all<T: 'static>(tasks: Vec<Task<T>>) -> Vec<T> {
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    outputs
}

/// Counts how many are inside a critical section, remembering the most at once.
#[derive(Default)]
struct Occupancy {
    inside: Cell<usize>,
    most: Cell<usize>,
}

impl Occupancy {
    fn enter(&self) {
        self.inside.set(self.inside.get() + 1);
        self.most.set(self.most.get().max(self.inside.get()));
    }

    fn leave(&self) {
        self.inside.set(self.inside.get() - 1);
    }
}

// ---------------------------------------------------------------------------------------
// Lock

#[test]
fn lock_gives_mutual_exclusion() {
    let lock = Rc::new(Lock::new());
    let occupancy = Rc::new(Occupancy::default());
    let (l, o) = (lock.clone(), occupancy.clone());
    evloop::run(async move {
        let tasks = (0..5)
            .map(|_| {
                let (lock, occupancy) = (l.clone(), o.clone());
                create_task(async move {
                    let _guard = lock.acquire().await;
                    occupancy.enter();
                    yields(2).await;
                    occupancy.leave();
                })
            })
            .collect();
        join_all(tasks).await;
    })
    .unwrap();
    assert_eq!(occupancy.most.get(), 1);
    assert!(!lock.locked());
}

#[test]
fn lock_is_acquired_in_fifo_order_and_newcomers_cannot_jump_the_queue() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let lock = Rc::new(Lock::new());
        assert!(!lock.locked());
        let guard = lock.acquire().await;
        assert!(lock.locked());
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (lock, order) = (lock.clone(), o.clone());
                create_task(async move {
                    let _guard = lock.acquire().await;
                    push(&order, i.to_string());
                    yield_now().await;
                })
            })
            .collect();
        yield_now().await; // all four queue up
        drop(guard);
        // The lock went straight to the first waiter: it stays locked for a newcomer.
        assert!(lock.locked());
        join_all(tasks).await;
        assert!(!lock.locked());
        let guard = lock.try_acquire().expect("free now");
        assert!(std::ptr::eq(guard.lock(), &*lock));
    })
    .unwrap();
    assert_eq!(entries(&order), ["0", "1", "2", "3"]);
}

// ---------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore

#[test]
fn semaphore_never_has_more_than_n_holders() {
    let occupancy = Rc::new(Occupancy::default());
    let semaphore = Rc::new(Semaphore::new(3));
    let (s, o) = (semaphore.clone(), occupancy.clone());
    evloop::run(async move {
        let tasks = (0..10)
            .map(|i| {
                let (semaphore, occupancy) = (s.clone(), o.clone());
                create_task(async move {
                    let _permit = semaphore.acquire().await;
                    occupancy.enter();
                    assert!(semaphore.available_permits() + occupancy.inside.get() <= 3);
                    yields(1 + i % 3).await;
                    occupancy.leave();
                })
            })
            .collect();
        join_all(tasks).await;
    })
    .unwrap();
    assert_eq!(occupancy.most.get(), 3, "three at once, never more");
    assert_eq!(semaphore.available_permits(), 3);
    assert_eq!(semaphore.waiting(), 0);
}

#[test]
fn semaphore_serves_waiters_in_fifo_order() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let semaphore = Rc::new(Semaphore::new(2));
        let first = semaphore.acquire().await;
        let second = semaphore.acquire().await;
        assert!(semaphore.locked());
        assert_eq!(semaphore.available_permits(), 0);
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (semaphore, order) = (semaphore.clone(), o.clone());
                create_task(async move {
                    let _permit = semaphore.acquire().await;
                    push(&order, i.to_string());
                    yield_now().await;
                })
            })
            .collect();
        yield_now().await;
        assert_eq!(semaphore.waiting(), 4);
        drop(first);
        assert_eq!(semaphore.waiting(), 3);
        // The permit went straight to the first waiter, not back to the pool.
        assert_eq!(semaphore.available_permits(), 0);
        assert!(semaphore.locked());
        drop(second);
        join_all(tasks).await;
        assert_eq!(semaphore.available_permits(), 2);
        assert!(!semaphore.locked());
    })
    .unwrap();
    assert_eq!(entries(&order), ["0", "1", "2", "3"]);
}

#[test]
fn semaphore_with_zero_permits_waits_for_a_release() {
    let value = evloop::run(async {
        let semaphore = Rc::new(Semaphore::new(0));
        let s = semaphore.clone();
        let waiter = create_task(async move {
            let permit = s.acquire().await;
            permit.forget();
            "got it"
        });
        yields(3).await;
        assert!(!waiter.done());
        semaphore.release();
        let value = waiter.await.unwrap();
        assert_eq!(semaphore.available_permits(), 0, "the permit was forgotten");
        value
    })
    .unwrap();
    assert_eq!(value, "got it");
}

#[test]
fn plain_semaphore_release_may_go_above_the_initial_value() {
    let semaphore = Semaphore::new(1);
    semaphore.release();
    assert_eq!(semaphore.available_permits(), 2);
    let a = semaphore.try_acquire().unwrap();
    let b = semaphore.try_acquire().unwrap();
    assert_eq!(semaphore.available_permits(), 0);
    drop((a, b));
    assert_eq!(semaphore.available_permits(), 2);
}

#[test]
fn a_failed_try_acquire_adds_no_permit() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.try_acquire().unwrap();
    for _ in 0..3 {
        assert!(semaphore.try_acquire().is_none());
    }
    assert_eq!(semaphore.available_permits(), 0, "failed try_acquire calls created permits");
    drop(held);
    assert_eq!(semaphore.available_permits(), 1);

    let bounded = BoundedSemaphore::new(1);
    let held = bounded.try_acquire().unwrap();
    assert!(bounded.try_acquire().is_none());
    assert_eq!(bounded.available_permits(), 0);
    drop(held);
    assert_eq!(bounded.available_permits(), 1);
}

#[test]
fn try_acquire_on_a_held_lock_leaves_it_held() {
    let occupancy = Rc::new(Occupancy::default());
    let o = occupancy.clone();
    evloop::run(async move {
        let lock = Rc::new(Lock::new());
        let guard = lock.try_acquire().expect("free");
        assert!(lock.try_acquire().is_none());
        assert!(lock.locked(), "a failed try_acquire unlocked the lock");
        // With waiters: a failed try_acquire must not hand the lock to one of them.
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (lock, occupancy) = (lock.clone(), o.clone());
                create_task(async move {
                    let _guard = lock.acquire().await;
                    occupancy.enter();
                    yields(2).await;
                    occupancy.leave();
                })
            })
            .collect();
        yield_now().await;
        drop(guard);
        assert!(lock.try_acquire().is_none());
        join_all(tasks).await;
        assert!(!lock.locked());
    })
    .unwrap();
    assert_eq!(occupancy.most.get(), 1, "two tasks held the lock at once");
}

#[test]
fn forgotten_permit_stays_taken() {
    let semaphore = Semaphore::new(2);
    semaphore.try_acquire().unwrap().forget();
    assert_eq!(semaphore.available_permits(), 1);
    semaphore.release();
    assert_eq!(semaphore.available_permits(), 2);
}

#[test]
fn bounded_semaphore_refuses_a_release_above_its_initial_value() {
    let semaphore = BoundedSemaphore::new(2);
    assert_eq!(semaphore.release(), Err(ValueError("BoundedSemaphore released too many times")));
    assert_eq!(semaphore.available_permits(), 2);

    semaphore.try_acquire().unwrap().forget();
    assert_eq!(semaphore.available_permits(), 1);
    assert_eq!(semaphore.release(), Ok(()));
    assert!(semaphore.release().is_err());
    assert_eq!(semaphore.available_permits(), 2);
    assert!(!semaphore.locked());

    // A permit dropped normally returns without any check.
    let permit = semaphore.try_acquire().unwrap();
    drop(permit);
    assert_eq!(semaphore.available_permits(), 2);
}

#[test]
fn bounded_semaphore_release_hands_a_forgotten_permit_to_a_waiter() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let semaphore = Rc::new(BoundedSemaphore::new(1));
        semaphore.acquire().await.forget();
        assert!(semaphore.locked());
        let s = semaphore.clone();
        let waiter = create_task(async move {
            let _permit = s.acquire().await;
            push(&o, "waiter");
        });
        yield_now().await;
        assert_eq!(semaphore.release(), Ok(()));
        waiter.await.unwrap();
        assert_eq!(semaphore.available_permits(), 1);
        assert!(semaphore.release().is_err());
    })
    .unwrap();
    assert_eq!(entries(&order), ["waiter"]);
}

// ---------------------------------------------------------------------------------------
// Event

#[test]
fn event_set_wakes_every_waiter() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let event = Rc::new(Event::new());
        assert!(!event.is_set());
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (event, order) = (event.clone(), o.clone());
                create_task(async move {
                    event.wait().await;
                    push(&order, i.to_string());
                })
            })
            .collect();
        yields(2).await;
        assert!(entries(&o).is_empty());
        event.set();
        assert!(event.is_set());
        event.set(); // a second set is harmless
        join_all(tasks).await;
        // Already set: wait returns at once.
        event.wait().await;
    })
    .unwrap();
    assert_eq!(entries(&order), ["0", "1", "2"]);
}

#[test]
fn a_waiter_woken_by_set_returns_even_if_the_event_is_cleared_before_it_runs() {
    let woke = evloop::run(async {
        let event = Rc::new(Event::new());
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                create_task(async move { event.wait().await })
            })
            .collect();
        yield_now().await;
        event.set();
        event.clear();
        assert!(!event.is_set());
        join_all(tasks).await.len()
    })
    .unwrap();
    assert_eq!(woke, 2);
}

#[test]
fn after_clear_wait_blocks_again() {
    evloop::run(async {
        let event = Rc::new(Event::new());
        event.set();
        event.wait().await;
        event.clear();
        let e = event.clone();
        let waiter = create_task(async move { e.wait().await });
        yields(3).await;
        assert!(!waiter.done());
        event.set();
        waiter.await.unwrap();
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Condition

/// Starts `n` tasks that each wait on `condition` once and log their index when woken,
/// holding the lock as they log it.
fn condition_waiters(condition: &Rc<Condition>, order: &Log, n: usize) -> Vec<Task<()>> {
    (0..n)
        .map(|i| {
            let (condition, order) = (condition.clone(), order.clone());
            create_task(async move {
                let guard = condition.acquire().await;
                let _guard = condition.wait(guard).await;
                assert!(condition.locked(), "wait returns with the lock held");
                push(&order, i.to_string());
            })
        })
        .collect()
}

#[test]
fn condition_notify_n_wakes_the_n_longest_waiting() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let condition = Rc::new(Condition::new());
        let tasks = condition_waiters(&condition, &o, 4);
        yields(2).await;
        assert!(!condition.locked(), "waiting releases the lock");
        condition.notify(2);
        yields(3).await;
        assert_eq!(entries(&o), ["0", "1"]);
        condition.notify(1);
        yields(3).await;
        assert_eq!(entries(&o), ["0", "1", "2"]);
        condition.notify_all();
        join_all(tasks).await;
    })
    .unwrap();
    assert_eq!(entries(&order), ["0", "1", "2", "3"]);
}

#[test]
fn condition_notify_while_holding_the_lock_wakes_after_release() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let condition = Rc::new(Condition::new());
        let tasks = condition_waiters(&condition, &o, 2);
        yields(2).await;
        let guard = condition.acquire().await;
        condition.notify_all();
        yields(3).await;
        assert!(entries(&o).is_empty(), "the woken waiters need the lock back first");
        push(&o, "notifier releases");
        drop(guard);
        join_all(tasks).await;
    })
    .unwrap();
    assert_eq!(entries(&order), ["notifier releases", "0", "1"]);
}

#[test]
fn condition_notify_without_waiters_is_not_remembered() {
    evloop::run(async {
        let condition = Rc::new(Condition::new());
        condition.notify(5);
        condition.notify_all();
        let c = condition.clone();
        let waiter = create_task(async move {
            let guard = c.acquire().await;
            drop(c.wait(guard).await);
        });
        yields(3).await;
        assert!(!waiter.done());
        condition.notify(1);
        waiter.await.unwrap();
    })
    .unwrap();
}

#[test]
fn condition_wait_for_checks_the_predicate_first_and_after_each_notify() {
    let checks = Rc::new(Cell::new(0));
    let c = checks.clone();
    evloop::run(async move {
        let condition = Rc::new(Condition::new());
        let value = Rc::new(Cell::new(0));
        // True at once: no waiting.
        let guard = condition.acquire().await;
        drop(condition.wait_for(guard, || true).await);

        let (cond, v, checks) = (condition.clone(), value.clone(), c.clone());
        let waiter = create_task(async move {
            let guard = cond.acquire().await;
            let _guard = cond
                .wait_for(guard, || {
                    checks.set(checks.get() + 1);
                    v.get() >= 3
                })
                .await;
            v.get()
        });
        for i in 1..=3 {
            yields(2).await;
            let _guard = condition.acquire().await;
            value.set(i);
            condition.notify_all();
        }
        assert_eq!(waiter.await, Ok(3));
    })
    .unwrap();
    assert_eq!(checks.get(), 4, "once at first, then after each of three notifications");
}

#[test]
fn condition_wait_with_the_guard_of_another_lock_panics() {
    quiet_panics_containing(&[EXPECTED, "another lock"]);
    let outcome = evloop::run(async {
        create_task(async {
            let condition = Condition::new();
            let other = Lock::new();
            let guard = other.acquire().await;
            drop(condition.wait(guard).await);
        })
        .await
    })
    .unwrap();
    match outcome {
        Err(TaskError::Panicked(message)) => assert!(message.contains("another lock"), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Queues

#[test]
fn queue_nowait_operations_and_sizes() {
    let queue = Queue::<u32>::new(2);
    assert_eq!(queue.maxsize(), 2);
    assert!(queue.empty());
    assert!(!queue.full());
    assert_eq!(queue.get_nowait(), Err(QueueEmpty));
    queue.put_nowait(1).unwrap();
    queue.put_nowait(2).unwrap();
    assert!(queue.full());
    assert_eq!(queue.qsize(), 2);
    // The refused item comes back.
    assert_eq!(queue.put_nowait(3), Err(QueueFull(3)));
    assert_eq!(queue.get_nowait(), Ok(1));
    assert!(!queue.full());
    assert_eq!(queue.get_nowait(), Ok(2));
    assert!(queue.empty());
    assert_eq!(queue.get_nowait(), Err(QueueEmpty));
}

#[test]
fn queue_with_maxsize_zero_is_unbounded() {
    let queue = Queue::<u32>::new(0);
    for i in 0..1000 {
        queue.put_nowait(i).unwrap();
    }
    assert!(!queue.full());
    assert_eq!(queue.qsize(), 1000);
    assert_eq!(
        (0..1000).map(|_| queue.get_nowait().unwrap()).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
}

#[test]
fn lifo_and_priority_queue_orders() {
    let lifo = LifoQueue::<u32>::new(0);
    for i in [1, 2, 3] {
        lifo.put_nowait(i).unwrap();
    }
    assert_eq!([lifo.get_nowait(), lifo.get_nowait(), lifo.get_nowait()], [Ok(3), Ok(2), Ok(1)]);

    let priority = PriorityQueue::<(u8, &str)>::new(0);
    for item in [(2, "b"), (0, "urgent"), (9, "later"), (1, "a")] {
        priority.put_nowait(item).unwrap();
    }
    let drained: Vec<_> = std::iter::from_fn(|| priority.get_nowait().ok()).collect();
    assert_eq!(drained, [(0, "urgent"), (1, "a"), (2, "b"), (9, "later")]);

    let bounded = PriorityQueue::<u8>::new(1);
    bounded.put_nowait(5).unwrap();
    assert_eq!(bounded.put_nowait(1), Err(QueueFull(1)));
}

#[test]
fn queue_getters_wait_and_are_served_in_fifo_order() {
    let got = log();
    let g = got.clone();
    evloop::run(async move {
        let queue = Rc::new(Queue::<u32>::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (queue, got) = (queue.clone(), g.clone());
                create_task(async move {
                    let item = queue.get().await;
                    push(&got, format!("getter {i} got {item}"));
                })
            })
            .collect();
        yields(2).await;
        for item in [10, 11, 12] {
            queue.put_nowait(item).unwrap();
        }
        // Handed straight to the waiting getters: a newcomer cannot take them.
        assert_eq!(queue.get_nowait(), Err(QueueEmpty));
        join_all(tasks).await;
    })
    .unwrap();
    assert_eq!(entries(&got), ["getter 0 got 10", "getter 1 got 11", "getter 2 got 12"]);
}

#[test]
fn queue_putters_wait_for_room_and_are_served_in_fifo_order() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(1));
        queue.put(0).await;
        assert!(queue.full());
        let tasks: Vec<_> = (1..=3)
            .map(|i| {
                let queue = queue.clone();
                create_task(async move { queue.put(i).await })
            })
            .collect();
        yields(2).await;
        assert!(tasks.iter().all(|t| !t.done()));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(queue.get().await);
            assert!(queue.qsize() <= 1);
        }
        assert_eq!(got, [0, 1, 2, 3]);
        join_all(tasks).await;
        assert!(queue.empty());
    })
    .unwrap();
}

#[test]
fn queue_get_waits_for_a_put() {
    let value = evloop::run(async {
        let queue = Rc::new(Queue::<&str>::new(0));
        let q = queue.clone();
        let getter = create_task(async move { q.get().await });
        yields(3).await;
        assert!(!getter.done());
        queue.put("hello").await;
        getter.await.unwrap()
    })
    .unwrap();
    assert_eq!(value, "hello");
}

#[test]
fn task_done_too_many_times_is_an_error() {
    let queue = Queue::<u32>::new(0);
    assert!(queue.task_done().is_err());
    queue.put_nowait(1).unwrap();
    queue.get_nowait().unwrap();
    assert_eq!(queue.task_done(), Ok(()));
    assert_eq!(queue.task_done(), Err(ValueError("task_done() called too many times")));
}

#[test]
fn join_waits_until_every_item_is_marked_done() {
    let order = log();
    let o = order.clone();
    evloop::run(async move {
        let queue = Rc::new(Queue::<u32>::new(0));
        // Nothing put yet: join returns at once.
        queue.join().await;
        for item in 0..3 {
            queue.put_nowait(item).unwrap();
        }
        let joiners: Vec<_> = (0..2)
            .map(|i| {
                let (queue, order) = (queue.clone(), o.clone());
                create_task(async move {
                    queue.join().await;
                    push(&order, format!("joiner {i}"));
                })
            })
            .collect();
        let (q, order) = (queue.clone(), o.clone());
        let worker = create_task(async move {
            for _ in 0..3 {
                let item = q.get().await;
                yield_now().await;
                push(&order, format!("done {item}"));
                q.task_done().unwrap();
            }
        });
        worker.await.unwrap();
        join_all(joiners).await;
        queue.join().await;
    })
    .unwrap();
    assert_eq!(entries(&order), ["done 0", "done 1", "done 2", "joiner 0", "joiner 1"]);
}

#[test]
fn queue_debug_reports_waiters() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(1));
        let q = queue.clone();
        let getter = create_task(async move { q.get().await });
        yield_now().await;
        assert!(format!("{queue:?}").contains("getters: 1"), "{queue:?}");
        queue.put_nowait(1).unwrap();
        getter.await.unwrap();
        assert!(format!("{queue:?}").contains("getters: 0"), "{queue:?}");
    })
    .unwrap();
}
