//! Property test: random sets of tasks acquire a `Semaphore(k)`, hold it for a random
//! time and release it, while some are cancelled at random moments, including the moment
//! a releasing holder has just handed them its permit. At every moment there are at most
//! `k` holders; at the end every permit is back (`available_permits() == k`), nobody is
//! left waiting, and every task that was not cancelled held a permit exactly once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use evloop::sync::Semaphore;
use evloop::{create_task, sleep, wait_for, Task, TaskError, TaskRef};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;
use common::yield_now;

#[derive(Clone, Copy, Debug)]
enum Cancel {
    Never,
    /// Main cancels it after this many iterations.
    AtIteration(usize),
    /// The holder that next releases a permit to it cancels it in the same step.
    WhenGranted {
        cancel_first: bool,
    },
}

#[derive(Clone, Debug)]
struct Worker {
    /// Iterations to wait before asking for a permit.
    delay: usize,
    /// Milliseconds to hold the permit (0 = one iteration).
    hold_ms: u64,
    cancel: Cancel,
}

fn worker() -> impl Strategy<Value = Worker> {
    let cancel = prop_oneof![
        3 => Just(Cancel::Never),
        1 => (0..8usize).prop_map(Cancel::AtIteration),
        2 => any::<bool>().prop_map(|cancel_first| Cancel::WhenGranted { cancel_first }),
    ];
    (0..3usize, prop_oneof![2 => Just(0u64), 1 => 1..3u64], cancel)
        .prop_map(|(delay, hold_ms, cancel)| Worker { delay, hold_ms, cancel })
}

/// Shared bookkeeping of one run.
#[derive(Default)]
struct World {
    holders: Cell<usize>,
    most: Cell<usize>,
    /// Per worker: how many times it held a permit.
    held: RefCell<Vec<usize>>,
    /// Workers parked in `acquire`, in arrival order, with whether a release was already
    /// aimed at them (so the next release is aimed at the next one).
    waiting: RefCell<VecDeque<(usize, bool)>>,
    tasks: RefCell<Vec<Option<TaskRef>>>,
    /// Workers cancelled at the moment of their grant.
    cancelled_at_grant: RefCell<Vec<usize>>,
    /// Each worker's cancellation plan.
    plans: Vec<Cancel>,
}

impl World {
    fn leave_waiting(&self, id: usize) {
        self.waiting.borrow_mut().retain(|&(w, _)| w != id);
    }

    /// `Some(cancel_first)` if worker `id` is to be cancelled at its grant.
    fn cancel_at_grant(&self, id: usize) -> Option<bool> {
        match self.plans[id] {
            Cancel::WhenGranted { cancel_first } => Some(cancel_first),
            _ => None,
        }
    }

    /// The worker the next release goes to, if any is waiting, marked as aimed at.
    fn next_grantee(&self) -> Option<usize> {
        let mut waiting = self.waiting.borrow_mut();
        let entry = waiting.iter_mut().find(|(_, aimed)| !aimed)?;
        entry.1 = true;
        Some(entry.0)
    }
}

/// One holder of a permit, counted while it lives (drop it before the permit).
struct Holding(Rc<World>);

impl Holding {
    fn new(world: Rc<World>) -> Holding {
        world.holders.set(world.holders.get() + 1);
        world.most.set(world.most.get().max(world.holders.get()));
        Holding(world)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.holders.set(self.0.holders.get() - 1);
    }
}

/// Removes the worker from the waiting list however its acquire ends.
struct LeaveOnDrop(Rc<World>, usize);

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        self.0.leave_waiting(self.1);
    }
}

/// Runs the workers and checks the invariants; returns how many were cancelled at the
/// moment of their grant.
async fn run_workers(k: usize, workers: Vec<Worker>) -> Result<usize, TestCaseError> {
    let semaphore = Rc::new(Semaphore::new(k));
    let world = Rc::new(World { plans: workers.iter().map(|w| w.cancel).collect(), ..World::default() });
    world.held.borrow_mut().resize(workers.len(), 0);
    world.tasks.borrow_mut().resize(workers.len(), None);
    let mut tasks: Vec<Task<()>> = Vec::new();
    for (id, spec) in workers.iter().cloned().enumerate() {
        let (semaphore, shared) = (semaphore.clone(), world.clone());
        let task = create_task(async move {
            let world = shared;
            for _ in 0..spec.delay {
                yield_now().await;
            }
            let permit = {
                world.waiting.borrow_mut().push_back((id, false));
                let _leave = LeaveOnDrop(world.clone(), id);
                semaphore.acquire().await
            };
            // Counted as a holder until the permit goes, however the coroutine ends.
            let holding = Holding::new(world.clone());
            world.held.borrow_mut()[id] += 1;
            assert!(world.holders.get() <= k, "{} holders of {k} permits", world.holders.get());
            assert!(world.holders.get() + semaphore.available_permits() <= k, "more permits than {k}");
            sleep(Duration::from_millis(spec.hold_ms)).await;
            drop(holding);
            // Release, and cancel the waiter the permit goes to if it asked for that.
            let grantee = if semaphore.waiting() > 0 { world.next_grantee() } else { None };
            let victim = grantee.and_then(|g| world.cancel_at_grant(g).map(|cancel_first| (g, cancel_first)));
            match victim {
                Some((g, cancel_first)) => {
                    let target = world.tasks.borrow()[g].clone().expect("registered");
                    world.cancelled_at_grant.borrow_mut().push(g);
                    if cancel_first {
                        target.cancel();
                        drop(permit);
                    } else {
                        drop(permit);
                        target.cancel();
                    }
                }
                None => drop(permit),
            }
        });
        world.tasks.borrow_mut()[id] = Some(task.as_ref());
        tasks.push(task);
    }

    // Main cancels on schedule.
    for iteration in 0..8 {
        for (id, spec) in workers.iter().enumerate() {
            if matches!(spec.cancel, Cancel::AtIteration(at) if at == iteration) {
                tasks[id].cancel();
            }
        }
        yield_now().await;
    }
    let mut outcomes = Vec::new();
    let all_done = wait_for(
        async {
            for task in tasks {
                outcomes.push(task.await);
            }
        },
        Duration::from_secs(5),
    )
    .await;
    prop_assert!(all_done.is_ok(), "workers still waiting: a permit was lost");

    prop_assert!(world.most.get() <= k);
    prop_assert_eq!(semaphore.available_permits(), k, "permits leaked or were created");
    prop_assert_eq!(semaphore.waiting(), 0);
    let held = world.held.borrow();
    for (id, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(()) => prop_assert_eq!(held[id], 1, "worker {} finished without holding once", id),
            Err(TaskError::Cancelled) => prop_assert!(held[id] <= 1),
            Err(error) => return Err(TestCaseError::fail(format!("worker {id}: {error}"))),
        }
    }
    for &id in world.cancelled_at_grant.borrow().iter() {
        prop_assert_eq!(&outcomes[id], &Err(TaskError::Cancelled));
        prop_assert_eq!(held[id], 0, "worker {} used a permit it was cancelled at", id);
    }
    let cancelled_at_grant = world.cancelled_at_grant.borrow().len();
    Ok(cancelled_at_grant)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn holders_never_exceed_k_and_no_permit_leaks(
        k in 1..=3usize,
        workers in prop::collection::vec(worker(), 1..=8),
    ) {
        evloop::run(run_workers(k, workers)).map_err(|e| TestCaseError::fail(e.to_string()))??;
    }
}

#[test]
fn a_fixed_case_with_every_kind_of_cancellation() {
    let workers = vec![
        Worker { delay: 0, hold_ms: 1, cancel: Cancel::Never },
        // Granted by worker 0's release and cancelled right after it: passes to worker 2.
        Worker { delay: 0, hold_ms: 0, cancel: Cancel::WhenGranted { cancel_first: false } },
        Worker { delay: 0, hold_ms: 0, cancel: Cancel::Never },
        // Cancelled by worker 2 just before it releases: still granted, passes it on.
        Worker { delay: 0, hold_ms: 0, cancel: Cancel::WhenGranted { cancel_first: true } },
        Worker { delay: 0, hold_ms: 0, cancel: Cancel::AtIteration(1) },
        Worker { delay: 1, hold_ms: 0, cancel: Cancel::Never },
    ];
    let cancelled_at_grant = evloop::run(run_workers(1, workers)).unwrap().unwrap();
    assert_eq!(cancelled_at_grant, 2, "both WhenGranted workers were cancelled at their grant");
}
