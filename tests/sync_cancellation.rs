//! The hard case of every sync primitive: a waiter cancelled at the very moment it is
//! granted what it waited for (a lock, a permit, a notification, an item, room in a queue)
//! must hand the grant on, so nothing is lost and nobody waits forever.
//!
//! Each test builds that interleaving deterministically: the waiters park (one or two
//! `sleep(ZERO)` iterations), then a single step or callback grants and cancels before the
//! cancelled waiter can run. Both orders are covered: grant then cancel, cancel then grant.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use evloop::sync::{Condition, Event, LifoQueue, Lock, Queue, QueueFull, Semaphore};
use evloop::{create_task, get_running_loop, wait_for, Task, TaskError, TaskRef};

mod common;
use common::{entries, log, push, yield_now, yields, Log};

/// Which happens first within the single step.
#[derive(Clone, Copy, Debug)]
enum Order {
    GrantThenCancel,
    CancelThenGrant,
}

const BOTH: [Order; 2] = [Order::GrantThenCancel, Order::CancelThenGrant];

/// Grants (with `grant`) and cancels `victim` in one go, in `order`.
fn grant_and_cancel(order: Order, victim: &TaskRef, grant: impl FnOnce()) {
    match order {
        Order::GrantThenCancel => {
            grant();
            assert!(victim.cancel());
        }
        Order::CancelThenGrant => {
            assert!(victim.cancel());
            grant();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lock

/// Tasks "A" and "B" wait for `lock`, logging when they get it.
fn lock_waiters(lock: &Rc<Lock>, got: &Log) -> (Task<()>, Task<()>) {
    let spawn = |name: &'static str| {
        let (lock, got) = (lock.clone(), got.clone());
        create_task(async move {
            let _guard = lock.acquire().await;
            push(&got, name);
            yield_now().await;
        })
    };
    (spawn("A"), spawn("B"))
}

#[test]
fn lock_granted_to_a_cancelled_waiter_passes_to_the_next() {
    for order in BOTH {
        let got = log();
        let g = got.clone();
        evloop::run(async move {
            let lock = Rc::new(Lock::new());
            let guard = lock.acquire().await;
            let (a, b) = lock_waiters(&lock, &g);
            yield_now().await;
            grant_and_cancel(order, &a.as_ref(), || drop(guard));
            assert_eq!(a.await, Err(TaskError::Cancelled));
            b.await.unwrap();
            assert!(!lock.locked(), "{order:?}: the lock leaked");
            assert!(lock.try_acquire().is_some());
        })
        .unwrap();
        assert_eq!(entries(&got), ["B"], "{order:?}");
    }
}

#[test]
fn lock_granted_to_a_cancelled_sole_waiter_becomes_free() {
    evloop::run(async {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await;
        let l = lock.clone();
        let a = create_task(async move {
            let _guard = l.acquire().await;
            unreachable!("cancelled before it could run");
        });
        yield_now().await;
        drop(guard);
        a.cancel();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        assert!(!lock.locked());
    })
    .unwrap();
}

#[test]
fn lock_waiter_cancelled_before_any_grant_leaves_the_queue() {
    let got = log();
    let g = got.clone();
    evloop::run(async move {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await;
        let (a, b) = lock_waiters(&lock, &g);
        yield_now().await;
        b.cancel();
        yield_now().await;
        drop(guard);
        a.await.unwrap();
        assert_eq!(b.await, Err(TaskError::Cancelled));
        assert!(!lock.locked());
    })
    .unwrap();
    assert_eq!(entries(&got), ["A"]);
}

// ---------------------------------------------------------------------------------------
// Semaphore

#[test]
fn semaphore_permit_granted_in_a_callback_to_a_task_cancelled_in_it_goes_to_the_next() {
    for order in BOTH {
        let got = log();
        let g = got.clone();
        let semaphore = Rc::new(Semaphore::new(2));
        let s = semaphore.clone();
        evloop::run(async move {
            // Both permits taken; A then B wait.
            s.acquire().await.forget();
            let other = s.acquire().await;
            let spawn = |name: &'static str| {
                let (semaphore, got) = (s.clone(), g.clone());
                create_task(async move {
                    let _permit = semaphore.acquire().await;
                    push(&got, name);
                })
            };
            let (a, b) = (spawn("A"), spawn("B"));
            yield_now().await;
            assert_eq!(s.waiting(), 2);
            // One callback releases the forgotten permit (granting A) and cancels A.
            let (releaser, victim) = (s.clone(), a.as_ref());
            get_running_loop()
                .unwrap()
                .call_soon(move || grant_and_cancel(order, &victim, || releaser.release()))
                .unwrap();
            assert_eq!(a.await, Err(TaskError::Cancelled));
            b.await.unwrap();
            drop(other);
        })
        .unwrap();
        assert_eq!(entries(&got), ["B"], "{order:?}");
        assert_eq!(semaphore.available_permits(), 2, "{order:?}: total permits changed");
        assert_eq!(semaphore.waiting(), 0);
    }
}

#[test]
fn semaphore_permit_granted_to_a_cancelled_sole_waiter_returns_to_the_pool() {
    let semaphore = Rc::new(Semaphore::new(1));
    let s = semaphore.clone();
    evloop::run(async move {
        let permit = s.acquire().await;
        let waiter = s.clone();
        let a = create_task(async move {
            let _permit = waiter.acquire().await;
            unreachable!("cancelled before it could run");
        });
        yield_now().await;
        drop(permit);
        assert_eq!(s.available_permits(), 0, "handed to A, not to the pool");
        a.cancel();
        assert_eq!(a.await, Err(TaskError::Cancelled));
    })
    .unwrap();
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn semaphore_chain_of_cancelled_grantees_reaches_the_first_live_waiter() {
    let got = log();
    let g = got.clone();
    let semaphore = Rc::new(Semaphore::new(1));
    let s = semaphore.clone();
    evloop::run(async move {
        let permit = s.acquire().await;
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (semaphore, got) = (s.clone(), g.clone());
                create_task(async move {
                    let _permit = semaphore.acquire().await;
                    push(&got, i.to_string());
                })
            })
            .collect();
        yield_now().await;
        // The first three are cancelled in the same step the permit is released.
        drop(permit);
        for task in &tasks[..3] {
            task.cancel();
        }
        let outcomes: Vec<_> = {
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await);
            }
            outcomes
        };
        assert_eq!(
            outcomes,
            [Err(TaskError::Cancelled), Err(TaskError::Cancelled), Err(TaskError::Cancelled), Ok(())]
        );
    })
    .unwrap();
    assert_eq!(entries(&got), ["3"]);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn semaphore_waiter_cancelled_while_waiting_leaves_the_queue() {
    evloop::run(async {
        let semaphore = Rc::new(Semaphore::new(1));
        let permit = semaphore.acquire().await;
        let s = semaphore.clone();
        let a = create_task(async move { drop(s.acquire().await) });
        yield_now().await;
        assert_eq!(semaphore.waiting(), 1);
        a.cancel();
        yield_now().await;
        assert_eq!(semaphore.waiting(), 0);
        drop(permit);
        assert_eq!(semaphore.available_permits(), 1);
    })
    .unwrap();
}

#[test]
fn semaphore_permit_granted_around_a_wait_for_timeout_is_neither_lost_nor_doubled() {
    // The release and the time limit fall due together (which wins is a race of timers),
    // but either way the permit ends back in the pool exactly once.
    let semaphore = Rc::new(Semaphore::new(1));
    let s = semaphore.clone();
    evloop::run(async move {
        let permit = s.acquire().await;
        let waiter = s.clone();
        let a = create_task(async move {
            let result = wait_for(waiter.acquire(), Duration::from_millis(1)).await;
            result.map(drop).is_ok()
        });
        yield_now().await;
        // Release from a timer due with the time limit.
        let event_loop = get_running_loop().unwrap();
        let releaser = s.clone();
        permit.forget();
        event_loop.call_later(Duration::from_millis(1), move || releaser.release()).unwrap();
        let _ = a.await.unwrap();
    })
    .unwrap();
    assert_eq!(semaphore.available_permits(), 1);
    assert_eq!(semaphore.waiting(), 0);
}

// ---------------------------------------------------------------------------------------
// Condition

/// Tasks "A" and "B" wait on `condition`, logging when they are woken (lock held).
fn condition_waiters(condition: &Rc<Condition>, got: &Log) -> (Task<()>, Task<()>) {
    let spawn = |name: &'static str| {
        let (condition, got) = (condition.clone(), got.clone());
        create_task(async move {
            let guard = condition.acquire().await;
            let _guard = condition.wait(guard).await;
            push(&got, name);
        })
    };
    (spawn("A"), spawn("B"))
}

#[test]
fn condition_notify_one_to_a_cancelled_waiter_passes_to_the_next() {
    for order in BOTH {
        let got = log();
        let g = got.clone();
        evloop::run(async move {
            let condition = Rc::new(Condition::new());
            let (a, b) = condition_waiters(&condition, &g);
            yields(2).await;
            grant_and_cancel(order, &a.as_ref(), || condition.notify(1));
            assert_eq!(a.await, Err(TaskError::Cancelled));
            b.await.unwrap();
            assert!(!condition.locked());
        })
        .unwrap();
        assert_eq!(entries(&got), ["B"], "{order:?}");
    }
}

#[test]
fn condition_notify_one_with_the_lock_held_to_a_cancelled_waiter_passes_to_the_next() {
    let got = log();
    let g = got.clone();
    evloop::run(async move {
        let condition = Rc::new(Condition::new());
        let (a, b) = condition_waiters(&condition, &g);
        yields(2).await;
        let guard = condition.acquire().await;
        condition.notify(1);
        a.cancel();
        yield_now().await;
        drop(guard);
        assert_eq!(a.await, Err(TaskError::Cancelled));
        b.await.unwrap();
    })
    .unwrap();
    assert_eq!(entries(&got), ["B"]);
}

#[test]
fn condition_waiter_cancelled_while_retaking_the_lock_does_not_leak_it() {
    let got = log();
    let g = got.clone();
    evloop::run(async move {
        let condition = Rc::new(Condition::new());
        let (a, b) = condition_waiters(&condition, &g);
        yields(2).await;
        let guard = condition.acquire().await;
        condition.notify_all();
        yields(2).await; // both notified, both now waiting for the lock we hold
        a.cancel();
        yield_now().await;
        drop(guard);
        assert_eq!(a.await, Err(TaskError::Cancelled));
        b.await.unwrap();
        assert!(!condition.locked());
    })
    .unwrap();
    assert_eq!(entries(&got), ["B"]);
}

// ---------------------------------------------------------------------------------------
// Event

#[test]
fn event_waiter_cancelled_as_the_event_is_set_does_not_affect_the_others() {
    evloop::run(async {
        let event = Rc::new(Event::new());
        let spawn = || {
            let event = event.clone();
            create_task(async move { event.wait().await })
        };
        let (a, b) = (spawn(), spawn());
        yield_now().await;
        event.set();
        a.cancel();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        b.await.unwrap();
        assert!(format!("{event:?}").contains("waiters: 0"));
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Queue.get

/// Getters "A" and "B" on `queue`, logging what they get.
fn getters<O: evloop::sync::Order<u32> + 'static>(
    queue: &Rc<Queue<u32, O>>,
    got: &Log,
) -> (Task<()>, Task<()>) {
    let spawn = |name: &'static str| {
        let (queue, got) = (queue.clone(), got.clone());
        create_task(async move {
            let item = queue.get().await;
            push(&got, format!("{name} got {item}"));
        })
    };
    (spawn("A"), spawn("B"))
}

#[test]
fn queue_item_handed_to_a_cancelled_getter_goes_to_the_next_getter() {
    for order in BOTH {
        let got = log();
        let g = got.clone();
        evloop::run(async move {
            let queue = Rc::new(Queue::<u32>::new(0));
            let (a, b) = getters(&queue, &g);
            yield_now().await;
            grant_and_cancel(order, &a.as_ref(), || queue.put_nowait(1).unwrap());
            assert_eq!(a.await, Err(TaskError::Cancelled));
            b.await.unwrap();
            assert!(queue.empty());
        })
        .unwrap();
        assert_eq!(entries(&got), ["B got 1"], "{order:?}");
    }
}

#[test]
fn queue_item_handed_to_a_cancelled_sole_getter_returns_to_the_front() {
    for order in BOTH {
        evloop::run(async move {
            let queue = Rc::new(Queue::<u32>::new(0));
            let q = queue.clone();
            let a = create_task(async move { q.get().await });
            yield_now().await;
            grant_and_cancel(order, &a.as_ref(), || queue.put_nowait(1).unwrap());
            queue.put_nowait(2).unwrap();
            assert_eq!(a.await, Err(TaskError::Cancelled));
            assert_eq!(queue.qsize(), 2, "{order:?}: an item was lost");
            assert_eq!(queue.get_nowait(), Ok(1), "{order:?}: the returned item goes first");
            assert_eq!(queue.get_nowait(), Ok(2));
        })
        .unwrap();
    }
}

#[test]
fn lifo_getter_cancelled_after_being_woken_leaves_the_items_in_lifo_order() {
    // As in asyncio: a woken getter is promised an item, not a particular one.
    evloop::run(async {
        let queue = Rc::new(LifoQueue::<u32>::new(0));
        let q = queue.clone();
        let a = create_task(async move { q.get().await });
        yield_now().await;
        queue.put_nowait(1).unwrap();
        queue.put_nowait(2).unwrap();
        a.cancel();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        assert_eq!(queue.get_nowait(), Ok(2));
        assert_eq!(queue.get_nowait(), Ok(1));
    })
    .unwrap();
}

#[test]
fn queue_never_holds_more_than_maxsize_after_a_cancelled_getter() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(1));
        let q = queue.clone();
        let a = create_task(async move { q.get().await });
        yield_now().await;
        // Handed to A, who has not run yet. As in asyncio, the item counts as in the queue
        // until its getter runs: the queue is full.
        queue.put_nowait(1).unwrap();
        assert!(queue.full());
        assert_eq!(queue.put_nowait(2), Err(QueueFull(2)));
        a.cancel();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        assert!(queue.qsize() <= queue.maxsize(), "qsize {} > maxsize {}", queue.qsize(), queue.maxsize());
        // The item came back; nothing lost.
        assert_eq!(queue.get_nowait(), Ok(1));
        assert!(queue.empty());
    })
    .unwrap();
}

#[test]
fn getter_cancelled_while_waiting_takes_nothing() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(0));
        let got = log();
        let (a, b) = getters(&queue, &got);
        yield_now().await;
        a.cancel();
        yield_now().await;
        queue.put_nowait(7).unwrap();
        b.await.unwrap();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        assert_eq!(entries(&got), ["B got 7"]);
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Queue.put on a full queue

/// Putters "A" (item 100) and "B" (item 200) on a full `queue`, logging when their put
/// returns.
fn putters(queue: &Rc<Queue<u32>>, done: &Log) -> (Task<()>, Task<()>) {
    let spawn = |name: &'static str, item: u32| {
        let (queue, done) = (queue.clone(), done.clone());
        create_task(async move {
            queue.put(item).await;
            push(&done, name);
        })
    };
    (spawn("A", 100), spawn("B", 200))
}

/// Drains `queue` without waiting.
fn drain(queue: &Queue<u32>) -> Vec<u32> {
    std::iter::from_fn(|| queue.get_nowait().ok()).collect()
}

#[test]
fn room_freed_for_a_cancelled_putter_is_not_lost() {
    // Whatever the hand-off policy, after a get frees the room of a cancelled putter the
    // queue is full again (no slot lost), no item appears twice and B's put completes.
    for order in BOTH {
        let done = log();
        let d = done.clone();
        evloop::run(async move {
            let queue = Rc::new(Queue::<u32>::new(1));
            queue.put_nowait(1).unwrap();
            let (a, b) = putters(&queue, &d);
            yield_now().await;
            let mut gotten = Vec::new();
            grant_and_cancel(order, &a.as_ref(), || gotten.push(queue.get_nowait().unwrap()));
            assert_eq!(a.await, Err(TaskError::Cancelled));
            assert!(queue.full(), "{order:?}: the freed slot was lost");
            // Free room once more: B's put can complete now whichever item took the slot.
            gotten.push(queue.get().await);
            b.await.unwrap();
            gotten.extend(drain(&queue));
            let unique: BTreeSet<_> = gotten.iter().copied().collect();
            assert_eq!(unique.len(), gotten.len(), "{order:?}: an item came out twice: {gotten:?}");
            assert!(gotten.contains(&1) && gotten.contains(&200), "{order:?}: {gotten:?}");
        })
        .unwrap();
        assert_eq!(entries(&done), ["B"], "{order:?}");
    }
}

#[test]
fn room_freed_for_a_cancelled_putter_passes_to_the_next_putter() {
    for order in BOTH {
        let done = log();
        let d = done.clone();
        evloop::run(async move {
            let queue = Rc::new(Queue::<u32>::new(1));
            queue.put_nowait(1).unwrap();
            let (a, b) = putters(&queue, &d);
            yield_now().await;
            grant_and_cancel(order, &a.as_ref(), || assert_eq!(queue.get_nowait(), Ok(1)));
            assert_eq!(a.await, Err(TaskError::Cancelled));
            yields(2).await;
            // asyncio: a cancelled put() did not put its item; the room went to B.
            assert!(b.done(), "{order:?}: B never got the room");
            b.await.unwrap();
            assert_eq!(drain(&queue), [200], "{order:?}");
        })
        .unwrap();
        assert_eq!(entries(&done), ["B"], "{order:?}");
    }
}

#[test]
fn putter_cancelled_while_waiting_puts_nothing() {
    let done = log();
    let d = done.clone();
    evloop::run(async move {
        let queue = Rc::new(Queue::<u32>::new(1));
        queue.put_nowait(1).unwrap();
        let (a, b) = putters(&queue, &d);
        yield_now().await;
        a.cancel();
        yield_now().await;
        assert_eq!(queue.get_nowait(), Ok(1));
        b.await.unwrap();
        assert_eq!(a.await, Err(TaskError::Cancelled));
        assert_eq!(drain(&queue), [200]);
    })
    .unwrap();
    assert_eq!(entries(&done), ["B"]);
}

#[test]
fn join_is_not_fooled_by_a_cancelled_putter() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(1));
        queue.put_nowait(1).unwrap();
        let q = queue.clone();
        let putter = create_task(async move { q.put(2).await });
        yield_now().await;
        putter.cancel();
        yield_now().await;
        assert_eq!(queue.get_nowait(), Ok(1));
        queue.task_done().unwrap();
        // The cancelled put never counted: nothing is unfinished.
        wait_for(queue.join(), Duration::from_secs(5)).await.expect("join returns");
        assert!(queue.task_done().is_err());
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Everything at once: a busy pipeline with cancellations, checked for conservation.

#[test]
fn pipeline_with_cancellations_conserves_items_and_permits() {
    evloop::run(async {
        let queue = Rc::new(Queue::<u32>::new(2));
        let semaphore = Rc::new(Semaphore::new(2));
        let gotten = Rc::new(RefCell::new(Vec::new()));
        let put_ok = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for p in 0..4u32 {
            let (queue, semaphore, put_ok) = (queue.clone(), semaphore.clone(), put_ok.clone());
            tasks.push(create_task(async move {
                for i in 0..5 {
                    let item = p * 100 + i;
                    let _permit = semaphore.acquire().await;
                    queue.put(item).await;
                    put_ok.borrow_mut().push(item);
                    yield_now().await;
                }
            }));
        }
        for _ in 0..3 {
            let (queue, gotten) = (queue.clone(), gotten.clone());
            tasks.push(create_task(async move {
                loop {
                    let item = queue.get().await;
                    gotten.borrow_mut().push(item);
                    yield_now().await;
                }
            }));
        }
        // Cancel a producer and a consumer mid-flight, then everyone a little later.
        yields(3).await;
        tasks[1].cancel();
        tasks[5].cancel();
        yields(12).await;
        for task in &tasks {
            task.cancel();
        }
        yield_now().await;
        assert!(tasks.iter().all(Task::done));
        let leftover = drain(&queue);
        let all: Vec<u32> = gotten.borrow().iter().copied().chain(leftover).collect();
        let unique: BTreeSet<_> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "an item came out twice: {all:?}");
        for item in put_ok.borrow().iter() {
            assert!(unique.contains(item), "item {item} was put and lost");
        }
        assert!(!put_ok.borrow().is_empty());
        assert_eq!(semaphore.available_permits(), 2, "a permit leaked");
        assert_eq!(semaphore.waiting(), 0);
    })
    .unwrap();
}
