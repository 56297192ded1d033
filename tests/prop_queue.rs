//! Property tests for the queues.
//!
//! 1. `put_nowait` / `get_nowait` / `task_done` sequences against a `VecDeque` model (and
//!    `Vec` / sorted models for LifoQueue / PriorityQueue): same results, `QueueFull` and
//!    `QueueEmpty` at the same points, same sizes. These need no running loop.
//! 2. Random producers and consumers on one loop, some cancelled at random moments: every
//!    item whose `put` returned is gotten exactly once or still in the queue, nothing
//!    comes out twice or out of nowhere, and `join`'s count balances.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use evloop::sync::{LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull};
use evloop::{create_task, wait_for, Task};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;
use common::yield_now;

#[derive(Clone, Debug)]
enum Op {
    Put(u32),
    Get,
    TaskDone,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![5 => any::<u32>().prop_map(Op::Put), 4 => Just(Op::Get), 1 => Just(Op::TaskDone)]
}

/// The orders, as models: where the next `get` comes from.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Fifo,
    Lifo,
    Priority,
}

fn model_pop(kind: Kind, model: &mut VecDeque<u32>) -> Option<u32> {
    match kind {
        Kind::Fifo => model.pop_front(),
        Kind::Lifo => model.pop_back(),
        Kind::Priority => {
            let (at, _) = model.iter().enumerate().min_by_key(|&(_, item)| *item)?;
            model.remove(at)
        }
    }
}

/// The three queue kinds behind one interface.
trait NowaitQueue {
    fn put_nowait(&self, item: u32) -> Result<(), QueueFull<u32>>;
    fn get_nowait(&self) -> Result<u32, QueueEmpty>;
    fn task_done(&self) -> bool;
    fn sizes(&self) -> (usize, bool, bool);
}

macro_rules! impl_nowait {
    ($queue:ty) => {
        impl NowaitQueue for $queue {
            fn put_nowait(&self, item: u32) -> Result<(), QueueFull<u32>> {
                <$queue>::put_nowait(self, item)
            }
            fn get_nowait(&self) -> Result<u32, QueueEmpty> {
                <$queue>::get_nowait(self)
            }
            fn task_done(&self) -> bool {
                <$queue>::task_done(self).is_ok()
            }
            fn sizes(&self) -> (usize, bool, bool) {
                (self.qsize(), self.empty(), self.full())
            }
        }
    };
}

impl_nowait!(Queue<u32>);
impl_nowait!(LifoQueue<u32>);
impl_nowait!(PriorityQueue<u32>);

fn check_against_model(kind: Kind, maxsize: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let queue: Box<dyn NowaitQueue> = match kind {
        Kind::Fifo => Box::new(Queue::<u32>::new(maxsize)),
        Kind::Lifo => Box::new(LifoQueue::<u32>::new(maxsize)),
        Kind::Priority => Box::new(PriorityQueue::<u32>::new(maxsize)),
    };
    let mut model = VecDeque::new();
    let mut unfinished = 0usize;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Put(item) => {
                let expected =
                    if maxsize > 0 && model.len() >= maxsize { Err(QueueFull(item)) } else { Ok(()) };
                if expected.is_ok() {
                    model.push_back(item);
                    unfinished += 1;
                }
                prop_assert_eq!(queue.put_nowait(item), expected, "step {}", step);
            }
            Op::Get => {
                let expected = model_pop(kind, &mut model).ok_or(QueueEmpty);
                prop_assert_eq!(queue.get_nowait(), expected, "step {}", step);
            }
            Op::TaskDone => {
                let expected = unfinished > 0;
                unfinished = unfinished.saturating_sub(1);
                prop_assert_eq!(queue.task_done(), expected, "step {}", step);
            }
        }
        let full = maxsize > 0 && model.len() >= maxsize;
        prop_assert_eq!(queue.sizes(), (model.len(), model.is_empty(), full), "step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fifo_queue_matches_a_vecdeque(maxsize in 0..4usize, ops in prop::collection::vec(op(), 0..64)) {
        check_against_model(Kind::Fifo, maxsize, &ops)?;
    }

    #[test]
    fn lifo_queue_matches_a_stack(maxsize in 0..4usize, ops in prop::collection::vec(op(), 0..64)) {
        check_against_model(Kind::Lifo, maxsize, &ops)?;
    }

    #[test]
    fn priority_queue_matches_a_sorted_model(
        maxsize in 0..4usize,
        ops in prop::collection::vec(op(), 0..64),
    ) {
        check_against_model(Kind::Priority, maxsize, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent producers, consumers and cancellations.

#[derive(Clone, Debug)]
struct Producer {
    /// How many items it puts (its items are `id * 1000 + n`).
    items: usize,
    /// Yield after each put?
    yields: bool,
}

#[derive(Clone, Debug)]
struct Consumer {
    /// How many items it takes before it stops.
    wants: usize,
    yields: bool,
}

#[derive(Clone, Debug)]
struct Scenario {
    maxsize: usize,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
    /// (after this many main iterations, cancel this worker: producers first, then
    /// consumers, by index modulo their number).
    cancels: Vec<(usize, usize)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0..4usize,
        prop::collection::vec(
            (0..6usize, any::<bool>()).prop_map(|(items, yields)| Producer { items, yields }),
            1..4,
        ),
        prop::collection::vec(
            (0..8usize, any::<bool>()).prop_map(|(wants, yields)| Consumer { wants, yields }),
            1..4,
        ),
        prop_oneof![1 => Just(Vec::new()), 2 => prop::collection::vec((0..12usize, 0..8usize), 1..4)],
    )
        .prop_map(|(maxsize, producers, consumers, cancels)| Scenario {
            maxsize,
            producers,
            consumers,
            cancels,
        })
}

async fn run_scenario(scenario: Scenario) -> Result<(), TestCaseError> {
    let queue = Rc::new(Queue::<u32>::new(scenario.maxsize));
    let put_done = Rc::new(RefCell::new(Vec::new()));
    let offered = Rc::new(RefCell::new(BTreeSet::new()));
    let gotten = Rc::new(RefCell::new(Vec::new()));
    let mut workers: Vec<Task<()>> = Vec::new();
    for (id, producer) in scenario.producers.iter().cloned().enumerate() {
        let (queue, put_done, offered) = (queue.clone(), put_done.clone(), offered.clone());
        workers.push(create_task(async move {
            for n in 0..producer.items {
                let item = (id * 1000 + n) as u32;
                offered.borrow_mut().insert(item);
                queue.put(item).await;
                put_done.borrow_mut().push(item);
                if producer.yields {
                    yield_now().await;
                }
            }
        }));
    }
    for consumer in scenario.consumers.iter().cloned() {
        let (queue, gotten) = (queue.clone(), gotten.clone());
        workers.push(create_task(async move {
            for _ in 0..consumer.wants {
                let item = queue.get().await;
                gotten.borrow_mut().push(item);
                queue.task_done().unwrap();
                if consumer.yields {
                    yield_now().await;
                }
            }
        }));
    }
    let (producers, consumers) = (scenario.producers.len(), scenario.consumers.len());
    let mut cancels = scenario.cancels.clone();
    cancels.sort_unstable();
    let mut iteration = 0;
    for (at, target) in cancels {
        while iteration < at {
            yield_now().await;
            iteration += 1;
        }
        let index = if target % 2 == 0 { target / 2 % producers } else { producers + target / 2 % consumers };
        workers[index].cancel();
    }
    // Liveness, when nobody was cancelled: if the consumers want every item, every
    // producer gets all its items in; if there are items for every want, every consumer
    // is served. Give it ample iterations (each item needs only a few).
    let (items, wants): (usize, usize) =
        (scenario.producers.iter().map(|p| p.items).sum(), scenario.consumers.iter().map(|c| c.wants).sum());
    let (producer_tasks, consumer_tasks) = workers.split_at(producers);
    let settled = || {
        (wants < items || producer_tasks.iter().all(Task::done))
            && (items < wants || consumer_tasks.iter().all(Task::done))
    };
    for _ in 0..500 {
        if settled() {
            break;
        }
        yield_now().await;
    }
    if scenario.cancels.is_empty() {
        prop_assert!(settled(), "stuck with {} items for {} wants: {:?}", items, wants, queue);
    }
    // Then stop everyone still waiting.
    for worker in &workers {
        worker.cancel();
    }
    yield_now().await;
    prop_assert!(workers.iter().all(Task::done));

    let mut leftover = Vec::new();
    while let Ok(item) = queue.get_nowait() {
        leftover.push(item);
        queue.task_done().unwrap();
    }
    let out: Vec<u32> = gotten.borrow().iter().copied().chain(leftover.iter().copied()).collect();
    let unique: BTreeSet<u32> = out.iter().copied().collect();
    prop_assert_eq!(unique.len(), out.len(), "an item came out twice: {:?}", out);
    prop_assert!(unique.is_subset(&offered.borrow()), "an item came out of nowhere: {:?}", out);
    for item in put_done.borrow().iter() {
        prop_assert!(unique.contains(item), "item {} was put, then lost", item);
    }
    // Every item that went in was marked done once: join returns, one more is too many.
    let joined = wait_for(queue.join(), Duration::from_secs(5)).await;
    prop_assert!(joined.is_ok(), "join is still waiting: the unfinished count is off");
    prop_assert!(queue.task_done().is_err());
    prop_assert!(format!("{queue:?}").contains("getters: 0, putters: 0"), "{:?}", queue);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_producers_and_consumers_lose_and_duplicate_nothing(scenario in scenario()) {
        evloop::run(run_scenario(scenario)).map_err(|e| TestCaseError::fail(e.to_string()))??;
    }
}
