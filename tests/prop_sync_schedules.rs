//! Property suite of issue 7 (deterministic mode, point 6): the sync primitives and queues
//! (`src/sync/`) under random schedules.
//!
//! proptest generates a program (how many producers, consumers or waiters; when each
//! starts, how long it holds or pauses, in virtual milliseconds; who is cancelled when, or
//! gives up after a time limit) and a seed for the loop's order of the tasks woken in one
//! iteration. Times are small and often equal, so many tasks wake in the same iteration and
//! the seed decides their order; the virtual clock makes every sleep free. Checked:
//! - `Lock` and `Semaphore(k)`: never more than `k` holders; no permit lost or created
//!   (all `k` free at the end, nobody left waiting); every worker that did not give up held
//!   a permit exactly once; first come, first served: each released permit goes to the
//!   longest waiter still waiting (checked against a model of the waiters' queue; a
//!   newcomer never takes a permit while others wait);
//! - `Queue`, `LifoQueue`, `PriorityQueue`, several producers and consumers, some cancelled
//!   or giving up: no item lost, duplicated or made up (what comes out, leftovers included,
//!   is exactly what was put); nobody stuck in `get` while items wait, or in `put` while
//!   there is room; `join` balances; with one consumer, a `PriorityQueue` filled first
//!   gives its items in order;
//! - `Queue` with one producer: the items come out in the order they were put (asyncio's
//!   promise, since its getters take the front item when they resume) with one consumer
//!   at a time, some cancelled while waiting; with several at once, each consumer gets its
//!   items in put order, and all together do, under any seed, and with a getter cancelled
//!   after it was woken for an item.
//! - `Event`: every waiter returns exactly when (in virtual time) the first `set` after it
//!   started waiting happened, even if `clear` followed at once; cancelled waiters disturb
//!   nobody;
//! - `Condition`: `notify(n)` / `notify_all` lose no wake-up, even when the waiter notified
//!   is cancelled before it runs: no consumer is left waiting while an item is there.
//!
//! And after every case: no panic in a callback or task, and `assert_quiescent` holds. A
//! seed replays its run: the flight recorder's traces of two runs agree event for event.
//!
//! Seeds: cases are generated from [`CASES_SEED`] (override with `PROPTEST_RNG_SEED`);
//! each case's loop seed is part of its input, printed by proptest on failure and by
//! `deterministic::report_seed` (replay with `EVLOOP_SEED=0x...`). No socket faults (no
//! sockets). [`CASES`] cases per property; the file runs in about a second.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::sync::{
    Condition, Event, Fifo, Lifo, Lock, LockGuard, Order, Priority, Queue, Semaphore, SemaphorePermit,
};
use evloop::{
    create_task, deterministic, first_divergence, get_running_loop, sleep, wait_for, EventLoop,
    IterationRecord, Task, TaskError, TaskRef, TimerHandle,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;
use common::{proptest_config, Watchdog};

/// The seed proptest generates this file's cases from.
const CASES_SEED: u64 = 0x7379_6e63_0000_0007;
/// Cases per property.
const CASES: u32 = 256;
/// Virtual time a program is given to settle; whoever still waits then is stuck (a lost
/// item, permit or wake-up) unless the program left it nothing to wait for.
const SETTLE: Duration = Duration::from_secs(3600);
/// Virtual time a whole case may take, settling and cleaning up included.
const CASE_LIMIT: Duration = Duration::from_secs(4 * 3600);
/// Real time one case may take before the watchdog aborts the run (it takes milliseconds).
const CASE_WATCHDOG: Duration = Duration::from_secs(60);

/// Virtual milliseconds, mostly a few favourites so that many events coincide.
fn ms() -> impl Strategy<Value = u64> {
    prop_oneof![3 => prop::sample::select(vec![0u64, 1, 2, 5]), 1 => 0..20u64]
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn now() -> Instant {
    get_running_loop().expect("inside the loop").time()
}

/// What went wrong inside the loop, checked once the case is over.
#[derive(Default)]
struct Violations(RefCell<Vec<String>>);

impl Violations {
    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.borrow_mut().push(what());
        }
    }

    fn result(&self) -> Result<(), TestCaseError> {
        let violations = self.0.borrow();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(TestCaseError::fail(violations.join("\n")))
        }
    }
}

/// Runs `body` as the main coroutine of a virtual-clock loop seeded with `seed` (if
/// any), bounded by [`CASE_LIMIT`] of virtual time; then checks that nothing panicked and
/// nothing is left on the loop.
fn run_case<Fut>(seed: Option<u64>, what: &str, body: impl FnOnce() -> Fut) -> Result<(), TestCaseError>
where
    Fut: Future<Output = Result<(), TestCaseError>> + 'static,
{
    let _watchdog = Watchdog::start(CASE_WATCHDOG, format!("{what} with seed {seed:#x?}"));
    let run = |seed: Option<u64>| {
        let builder = EventLoop::builder().virtual_clock();
        let event_loop = match seed {
            Some(seed) => builder.seed(seed),
            None => builder,
        }
        .build()
        .unwrap();
        let panics = Rc::new(RefCell::new(Vec::new()));
        let seen = panics.clone();
        event_loop.set_exception_handler(move |context| seen.borrow_mut().push(context.to_string()));
        let outcome = event_loop.run_until_complete(wait_for(body(), CASE_LIMIT));
        prop_assert!(panics.borrow().is_empty(), "panics: {:?}", panics.borrow());
        match outcome {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                return Err(TestCaseError::fail(format!("{what}: still running after {CASE_LIMIT:?}")))
            }
            Err(error) => return Err(TestCaseError::fail(format!("{what}: {error}"))),
        }
        let quiescent = event_loop.check_quiescent();
        prop_assert!(quiescent.is_ok(), "{}", quiescent.unwrap_err());
        Ok(())
    };
    match seed {
        Some(seed) => deterministic::report_seed(seed, |seed| run(Some(seed))),
        None => run(None),
    }
}

/// Waits up to [`SETTLE`] for every task to end; `stuck` is then called if some have not,
/// before they are cancelled. Returns every task's outcome.
async fn settle(mut tasks: Vec<Task<()>>, stuck: impl FnOnce()) -> Vec<Result<(), TaskError>> {
    let mut outcomes: Vec<Option<Result<(), TaskError>>> = tasks.iter().map(|_| None).collect();
    let all = wait_for(
        async {
            for (task, outcome) in tasks.iter_mut().zip(outcomes.iter_mut()) {
                *outcome = Some(task.await);
            }
        },
        SETTLE,
    )
    .await;
    if all.is_err() {
        stuck();
    }
    for (task, outcome) in tasks.iter_mut().zip(outcomes.iter_mut()) {
        if outcome.is_none() {
            task.cancel();
            *outcome = Some(task.await);
        }
    }
    outcomes.into_iter().map(|outcome| outcome.expect("every task awaited")).collect()
}

/// Cancels `task` at virtual time `at` from the start, from a callback; cancel the
/// handle once the task is over, or the loop is not quiescent.
fn cancel_at(task: &Task<()>, start: Instant, at: u64) -> TimerHandle {
    let task = task.as_ref();
    get_running_loop()
        .unwrap()
        .call_at(start + millis(at), move || {
            task.cancel();
        })
        .unwrap()
}

/// Waits until every task in `tasks` is done (a cancelled one ends at its next step).
async fn until_done(tasks: &[TaskRef]) {
    while !tasks.iter().all(TaskRef::done) {
        sleep(Duration::ZERO).await;
    }
}

// ---------------------------------------------------------------------------------------
// Lock and Semaphore

#[derive(Clone, Copy, Debug)]
enum GiveUp {
    Never,
    /// Main cancels the worker's task at this virtual time.
    CancelledAt(u64),
    /// The worker waits at most this long for a permit (`wait_for(acquire(), ..)`).
    Patience(u64),
}

#[derive(Clone, Debug)]
struct Worker {
    start: u64,
    hold: u64,
    give_up: GiveUp,
}

fn worker() -> impl Strategy<Value = Worker> {
    let give_up = prop_oneof![
        4 => Just(GiveUp::Never),
        1 => ms().prop_map(GiveUp::CancelledAt),
        1 => ms().prop_map(GiveUp::Patience),
    ];
    (ms(), ms(), give_up).prop_map(|(start, hold, give_up)| Worker { start, hold, give_up })
}

/// A `Lock` or a `Semaphore(k)`, behind one interface.
enum Primitive {
    Lock(Lock),
    Semaphore(Semaphore, usize),
}

/// A held `Lock` or permit, released when dropped.
#[allow(dead_code)] // held for its drop
enum Held<'a> {
    Lock(LockGuard<'a>),
    Semaphore(SemaphorePermit<'a>),
}

impl Primitive {
    fn permits(&self) -> usize {
        match self {
            Primitive::Lock(_) => 1,
            Primitive::Semaphore(_, k) => *k,
        }
    }

    /// True if `acquire` would wait.
    fn locked(&self) -> bool {
        match self {
            Primitive::Lock(lock) => lock.locked(),
            Primitive::Semaphore(semaphore, _) => semaphore.locked(),
        }
    }

    fn available(&self) -> usize {
        match self {
            Primitive::Lock(lock) => usize::from(!lock.locked()),
            Primitive::Semaphore(semaphore, _) => semaphore.available_permits(),
        }
    }

    fn waiting(&self) -> usize {
        match self {
            Primitive::Lock(_) => 0,
            Primitive::Semaphore(semaphore, _) => semaphore.waiting(),
        }
    }

    async fn acquire(&self) -> Held<'_> {
        match self {
            Primitive::Lock(lock) => Held::Lock(lock.acquire().await),
            Primitive::Semaphore(semaphore, _) => Held::Semaphore(semaphore.acquire().await),
        }
    }
}

/// The run's bookkeeping, with a model of the waiters' queue: a released permit goes to
/// the longest waiter, and the waiter whose `acquire` returns must be the one the model
/// gave it to. (The order in which `acquire`s *return* may differ: a waiter granted later
/// may already be queued to run, woken by its own time limit, say.)
#[derive(Default)]
struct Permits {
    holders: Rc<Cell<usize>>,
    /// The model: waiters in arrival order, neither granted a permit nor gone.
    queue: RefCell<VecDeque<usize>>,
    /// Waiters the model handed a permit to, whose `acquire` has not returned yet.
    granted: RefCell<BTreeSet<usize>>,
    /// Workers in the order they got a permit.
    held: RefCell<Vec<usize>>,
    gave_up: RefCell<BTreeSet<usize>>,
    violations: Violations,
}

impl Permits {
    /// A permit went back; `handed` if the primitive gave it straight to a waiter. The
    /// model gives it to its longest waiter.
    fn released(&self, handed: bool) {
        let next = self.queue.borrow_mut().pop_front();
        self.violations.check(handed == next.is_some(), || {
            format!("a release handed to a waiter: {handed}; the model's longest waiter: {next:?}")
        });
        if let Some(next) = next {
            self.granted.borrow_mut().insert(next);
        }
    }

    /// Waiter `id` stopped waiting without taking a permit: it leaves the queue, or
    /// passes on the permit it was handed (the primitive does the same).
    fn left(&self, id: usize) {
        if self.granted.borrow_mut().remove(&id) {
            let next = self.queue.borrow_mut().pop_front();
            if let Some(next) = next {
                self.granted.borrow_mut().insert(next);
            }
        } else {
            self.queue.borrow_mut().retain(|&waiter| waiter != id);
        }
    }
}

/// A waiter in the model's queue until it takes its permit; dropped before, it leaves.
struct Waiting(Rc<Permits>, usize, bool);

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.2 {
            self.0.left(self.1);
        }
    }
}

/// A held permit; dropping it releases it and tells the model where it went.
struct Holding<'a> {
    held: Option<Held<'a>>,
    primitive: &'a Primitive,
    state: Rc<Permits>,
    _counted: Parked,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let before = self.primitive.available();
        drop(self.held.take());
        self.state.released(self.primitive.available() == before);
    }
}

async fn run_workers(primitive: Primitive, workers: Vec<Worker>) -> Result<(), TestCaseError> {
    let primitive = Rc::new(primitive);
    let k = primitive.permits();
    let state = Rc::new(Permits::default());
    let start = now();
    let mut tasks = Vec::new();
    let mut cancels = Vec::new();
    for (id, spec) in workers.iter().cloned().enumerate() {
        let (primitive, state) = (primitive.clone(), state.clone());
        let task = create_task(async move {
            sleep(millis(spec.start)).await;
            let mut waiting = None;
            if primitive.locked() {
                state.queue.borrow_mut().push_back(id);
                waiting = Some(Waiting(state.clone(), id, false));
            }
            let held = match spec.give_up {
                GiveUp::Patience(patience) => match wait_for(primitive.acquire(), millis(patience)).await {
                    Ok(held) => held,
                    Err(_) => {
                        state.gave_up.borrow_mut().insert(id);
                        return;
                    }
                },
                _ => primitive.acquire().await,
            };
            if let Some(mut waiting) = waiting {
                waiting.2 = true;
                let granted = state.granted.borrow_mut().remove(&id);
                state.violations.check(granted, || {
                    format!("waiter {id} got a permit while longer waiters wait: {:?}", state.queue.borrow())
                });
            }
            state.held.borrow_mut().push(id);
            // Counted as a holder until the permit goes, however the coroutine ends.
            let holding = Holding {
                held: Some(held),
                primitive: &primitive,
                state: state.clone(),
                _counted: Parked::new(&state.holders),
            };
            let holders = state.holders.get();
            state.violations.check(holders <= k, || format!("{holders} holders of {k} permits"));
            let free = primitive.available();
            state
                .violations
                .check(holders + free <= k, || format!("{holders} holders and {free} free of {k}"));
            sleep(millis(spec.hold)).await;
            drop(holding);
        });
        if let GiveUp::CancelledAt(at) = spec.give_up {
            cancels.push(cancel_at(&task, start, at));
        }
        tasks.push(task);
    }
    let outcomes = settle(tasks, || {}).await;
    cancels.iter().for_each(TimerHandle::cancel);
    state.violations.result()?;

    prop_assert_eq!(primitive.available(), k, "permits lost or made up");
    prop_assert_eq!(primitive.waiting(), 0);
    prop_assert!(state.queue.borrow().is_empty() && state.granted.borrow().is_empty());
    let held = state.held.borrow();
    for (id, outcome) in outcomes.iter().enumerate() {
        let times = held.iter().filter(|&&worker| worker == id).count();
        match (workers[id].give_up, outcome) {
            (GiveUp::Never, _) => {
                prop_assert_eq!(outcome, &Ok(()), "worker {} did not finish", id);
                prop_assert_eq!(times, 1, "worker {} held {} times", id, times);
            }
            (GiveUp::Patience(_), Ok(())) => {
                let gave_up = state.gave_up.borrow().contains(&id);
                prop_assert_eq!(times, usize::from(!gave_up), "worker {}", id);
            }
            (GiveUp::CancelledAt(_), Ok(())) => prop_assert_eq!(times, 1, "worker {}", id),
            (GiveUp::CancelledAt(_), Err(TaskError::Cancelled)) => prop_assert!(times <= 1),
            (_, Err(error)) => return Err(TestCaseError::fail(format!("worker {id}: {error}"))),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    #[test]
    fn lock_one_holder_fifo_no_lost_permit(
        workers in prop::collection::vec(worker(), 1..12),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "lock", || run_workers(Primitive::Lock(Lock::new()), workers))?;
    }

    #[test]
    fn semaphore_at_most_k_holders_fifo_no_lost_permit(
        k in 1usize..4,
        workers in prop::collection::vec(worker(), 1..16),
        seed in prop::option::weighted(0.8, any::<u64>()),
    ) {
        let primitive = Primitive::Semaphore(Semaphore::new(k), k);
        run_case(seed, "semaphore", || run_workers(primitive, workers))?;
    }
}

// ---------------------------------------------------------------------------------------
// Queues: nothing lost, duplicated or made up

#[derive(Clone, Debug)]
struct Producer {
    /// Pauses before each put; one put per entry.
    pauses: Vec<u64>,
    give_up: GiveUp,
}

#[derive(Clone, Debug)]
struct Consumer {
    start: u64,
    wants: usize,
    pause: u64,
    give_up: GiveUp,
}

fn producer() -> impl Strategy<Value = Producer> {
    let give_up = prop_oneof![
        4 => Just(GiveUp::Never),
        1 => ms().prop_map(GiveUp::CancelledAt),
        1 => ms().prop_map(GiveUp::Patience),
    ];
    (prop::collection::vec(ms(), 0..10), give_up).prop_map(|(pauses, give_up)| Producer { pauses, give_up })
}

fn consumer() -> impl Strategy<Value = Consumer> {
    let give_up = prop_oneof![
        4 => Just(GiveUp::Never),
        1 => ms().prop_map(GiveUp::CancelledAt),
        1 => ms().prop_map(GiveUp::Patience),
    ];
    (ms(), 0..12usize, ms(), give_up).prop_map(|(start, wants, pause, give_up)| Consumer {
        start,
        wants,
        pause,
        give_up,
    })
}

#[derive(Clone, Copy, Debug)]
enum QueueKind {
    Fifo,
    Lifo,
    Priority,
}

/// Counts one more in `count` while it lives (a coroutine parked in a call, a holder).
struct Parked(Rc<Cell<usize>>);

impl Parked {
    fn new(count: &Rc<Cell<usize>>) -> Parked {
        count.set(count.get() + 1);
        Parked(count.clone())
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// (consumer, item) in the order `get` returned.
type Gotten = Vec<(usize, u32)>;

#[derive(Default)]
struct Flow {
    put_done: RefCell<Vec<u32>>,
    gotten: RefCell<Gotten>,
    in_get: Rc<Cell<usize>>,
    in_put: Rc<Cell<usize>>,
    violations: Violations,
}

async fn run_queue<O: Order<u32> + 'static>(
    maxsize: usize,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
) -> Result<(Gotten, Vec<u32>, Vec<u32>), TestCaseError> {
    let queue = Rc::new(Queue::<u32, O>::new(maxsize));
    let flow = Rc::new(Flow::default());
    let start = now();
    let mut tasks = Vec::new();
    let mut cancels = Vec::new();
    for (p, spec) in producers.iter().cloned().enumerate() {
        let (queue, flow) = (queue.clone(), flow.clone());
        let task = create_task(async move {
            for (n, pause) in spec.pauses.iter().enumerate() {
                sleep(millis(*pause)).await;
                // Items of producer p are p * 1000 + n, so each producer's own order shows.
                let item = (p * 1000 + n) as u32;
                let parked = Parked::new(&flow.in_put);
                let put = match spec.give_up {
                    GiveUp::Patience(patience) => wait_for(queue.put(item), millis(patience)).await.is_ok(),
                    _ => {
                        queue.put(item).await;
                        true
                    }
                };
                drop(parked);
                if !put {
                    return;
                }
                flow.put_done.borrow_mut().push(item);
                let size = queue.qsize();
                flow.violations
                    .check(maxsize == 0 || size <= maxsize, || format!("{size} items, maxsize {maxsize}"));
            }
        });
        if let GiveUp::CancelledAt(at) = spec.give_up {
            cancels.push(cancel_at(&task, start, at));
        }
        tasks.push(task);
    }
    for (c, spec) in consumers.iter().cloned().enumerate() {
        let (queue, flow) = (queue.clone(), flow.clone());
        let task = create_task(async move {
            sleep(millis(spec.start)).await;
            for _ in 0..spec.wants {
                let parked = Parked::new(&flow.in_get);
                let item = match spec.give_up {
                    GiveUp::Patience(patience) => match wait_for(queue.get(), millis(patience)).await {
                        Ok(item) => item,
                        Err(_) => return,
                    },
                    _ => queue.get().await,
                };
                drop(parked);
                flow.gotten.borrow_mut().push((c, item));
                queue.task_done().unwrap();
                sleep(millis(spec.pause)).await;
            }
        });
        if let GiveUp::CancelledAt(at) = spec.give_up {
            cancels.push(cancel_at(&task, start, at));
        }
        tasks.push(task);
    }
    let stuck_state = Rc::new(Cell::new(None));
    let outcomes = settle(tasks, {
        let (queue, flow, stuck_state) = (queue.clone(), flow.clone(), stuck_state.clone());
        move || stuck_state.set(Some((queue.qsize(), queue.full(), flow.in_get.get(), flow.in_put.get())))
    })
    .await;
    cancels.iter().for_each(TimerHandle::cancel);
    flow.violations.result()?;
    for (id, outcome) in outcomes.iter().enumerate() {
        prop_assert!(matches!(outcome, Ok(()) | Err(TaskError::Cancelled)), "task {}: {:?}", id, outcome);
    }
    if let Some((size, full, getters, putters)) = stuck_state.get() {
        // Someone still waits after an hour: only if there is nothing to wait for.
        prop_assert!(getters == 0 || size == 0, "{} getters stuck beside {} items", getters, size);
        prop_assert!(putters == 0 || full, "{} putters stuck with room in the queue", putters);
    }
    let mut leftover = Vec::new();
    while let Ok(item) = queue.get_nowait() {
        leftover.push(item);
        queue.task_done().unwrap();
    }
    let gotten = flow.gotten.borrow().clone();
    let put_done = flow.put_done.borrow().clone();
    let out: Vec<u32> = gotten.iter().map(|&(_, item)| item).chain(leftover.iter().copied()).collect();
    let out_set: BTreeSet<u32> = out.iter().copied().collect();
    prop_assert_eq!(out_set.len(), out.len(), "an item came out twice: {:?}", out);
    let put_set: BTreeSet<u32> = put_done.iter().copied().collect();
    prop_assert_eq!(&out_set, &put_set, "out {:?} but put {:?}", out, put_done);
    prop_assert!(wait_for(queue.join(), Duration::ZERO).await.is_ok(), "join waits: unfinished count off");
    prop_assert!(queue.task_done().is_err());
    Ok((gotten, leftover, put_done))
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    #[test]
    fn queues_lose_duplicate_and_invent_nothing(
        kind in prop_oneof![Just(QueueKind::Fifo), Just(QueueKind::Lifo), Just(QueueKind::Priority)],
        maxsize in 0usize..4,
        producers in prop::collection::vec(producer(), 1..4),
        consumers in prop::collection::vec(consumer(), 1..5),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "queue", move || async move {
            match kind {
                QueueKind::Fifo => run_queue::<Fifo>(maxsize, producers, consumers).await?,
                QueueKind::Lifo => run_queue::<Lifo>(maxsize, producers, consumers).await?,
                QueueKind::Priority => run_queue::<Priority>(maxsize, producers, consumers).await?,
            };
            Ok(())
        })?;
    }

    /// A PriorityQueue filled first, then emptied by one consumer: smallest first.
    #[test]
    fn a_priority_queue_filled_first_gives_its_items_in_order(
        items in prop::collection::vec(any::<u32>(), 0..40),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "priority queue", move || async move {
            let queue = Rc::new(evloop::sync::PriorityQueue::<u32>::new(0));
            for &item in &items {
                queue.put(item).await;
            }
            let consumer = {
                let (queue, n) = (queue.clone(), items.len());
                create_task(async move {
                    let mut out = Vec::new();
                    for _ in 0..n {
                        out.push(queue.get().await);
                        sleep(Duration::ZERO).await;
                    }
                    out
                })
            };
            let out = consumer.await.unwrap();
            let mut sorted = items.clone();
            sorted.sort_unstable();
            prop_assert_eq!(out, sorted);
            Ok(())
        })?;
    }
}

/// The queue program on a loop with `seed` and a flight recorder: what came out, in
/// order, and the trace.
fn recorded_queue_run(
    seed: u64,
    maxsize: usize,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
) -> Result<(Gotten, Vec<IterationRecord>), TestCaseError> {
    let event_loop =
        EventLoop::builder().virtual_clock().seed(seed).flight_recorder(1_000_000).build().unwrap();
    let (gotten, _, _) = event_loop
        .run_until_complete(wait_for(run_queue::<Fifo>(maxsize, producers, consumers), CASE_LIMIT))
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .map_err(|_| TestCaseError::fail("still running"))??;
    let trace = event_loop.trace().expect("recording");
    Ok((gotten, trace))
}

proptest! {
    #![proptest_config(proptest_config(CASES / 4, CASES_SEED))]

    /// The same seed gives the same run, event for event (the flight recorder's traces
    /// agree throughout), and the same items to the same consumers in the same order.
    #[test]
    fn a_seed_replays_the_same_run(
        maxsize in 0usize..4,
        producers in prop::collection::vec(producer(), 1..4),
        consumers in prop::collection::vec(consumer(), 1..5),
        seed in any::<u64>(),
    ) {
        let _watchdog = Watchdog::start(CASE_WATCHDOG, format!("replay of seed {seed:#x}"));
        let first = recorded_queue_run(seed, maxsize, producers.clone(), consumers.clone())?;
        let again = recorded_queue_run(seed, maxsize, producers, consumers)?;
        prop_assert_eq!(first_divergence(&first.1, &again.1), None, "the traces part");
        prop_assert_eq!(first.0, again.0);
    }
}

// ---------------------------------------------------------------------------------------
// Queue FIFO with one producer

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    /// One producer; consumers one after another, each taking a few items and some
    /// cancelled while waiting (possibly right after an item was handed to them): the
    /// items come out in the order they were put, leftovers last.
    #[test]
    fn one_producer_one_consumer_at_a_time_items_come_out_in_put_order(
        maxsize in 0usize..4,
        producer in producer(),
        consumers in prop::collection::vec(consumer(), 1..6),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "fifo queue", move || consumers_in_turn(maxsize, producer, consumers))?;
    }
}

async fn consumers_in_turn(
    maxsize: usize,
    producer: Producer,
    consumers: Vec<Consumer>,
) -> Result<(), TestCaseError> {
    let queue = Rc::new(Queue::<u32>::new(maxsize));
    let gotten = Rc::new(RefCell::new(Vec::new()));
    let put_done = Rc::new(RefCell::new(Vec::new()));
    let turns = Rc::new(RefCell::new(Vec::new()));
    let start = now();
    let producing = {
        let (queue, put_done) = (queue.clone(), put_done.clone());
        create_task(async move {
            for (n, pause) in producer.pauses.iter().enumerate() {
                sleep(millis(*pause)).await;
                let put = match producer.give_up {
                    GiveUp::Patience(patience) => {
                        wait_for(queue.put(n as u32), millis(patience)).await.is_ok()
                    }
                    _ => {
                        queue.put(n as u32).await;
                        true
                    }
                };
                if !put {
                    return;
                }
                put_done.borrow_mut().push(n as u32);
            }
        })
    };
    let cancel_producer = match producer.give_up {
        GiveUp::CancelledAt(at) => Some(cancel_at(&producing, start, at)),
        _ => None,
    };
    // Consumers take turns: each starts when the one before has ended.
    let consuming = {
        let (queue, gotten, turns) = (queue.clone(), gotten.clone(), turns.clone());
        create_task(async move {
            for spec in consumers {
                let (queue, gotten) = (queue.clone(), gotten.clone());
                let turn = create_task(async move {
                    sleep(millis(spec.start)).await;
                    for _ in 0..spec.wants {
                        let item = match spec.give_up {
                            GiveUp::Patience(patience) => match wait_for(queue.get(), millis(patience)).await
                            {
                                Ok(item) => item,
                                Err(_) => return,
                            },
                            _ => queue.get().await,
                        };
                        gotten.borrow_mut().push(item);
                        sleep(millis(spec.pause)).await;
                    }
                });
                turns.borrow_mut().push((turn.as_ref(), None));
                if let GiveUp::CancelledAt(at) = spec.give_up {
                    turns.borrow_mut().last_mut().unwrap().1 = Some(cancel_at(&turn, now(), at));
                }
                // A turn wanting more than will ever come is cut short.
                let _ = wait_for(turn, SETTLE).await;
            }
        })
    };
    let outcomes = settle(vec![producing, consuming], || {}).await;
    cancel_producer.inspect(TimerHandle::cancel);
    // The last turn, cancelled with `consuming`, ends at its next step.
    let turns: Vec<(TaskRef, Option<TimerHandle>)> = turns.take();
    turns.iter().filter_map(|(_, cancel)| cancel.as_ref()).for_each(TimerHandle::cancel);
    until_done(&turns.into_iter().map(|(turn, _)| turn).collect::<Vec<_>>()).await;
    prop_assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(TaskError::Cancelled))), "{:?}", outcomes);
    let mut out = gotten.borrow().clone();
    while let Ok(item) = queue.get_nowait() {
        out.push(item);
    }
    prop_assert_eq!(&out, &*put_done.borrow(), "items out of put order");
    Ok(())
}

/// One producer, several consumers at once, none cancelled: each consumer gets its items
/// in put order; with `all_in_order`, so do all of them together, which asyncio promises
/// whatever the order its consumers resume in (a getter takes the front item when it
/// resumes).
async fn one_producer_many_consumers(
    maxsize: usize,
    pauses: Vec<u64>,
    consumers: Vec<Consumer>,
    all_in_order: bool,
) -> Result<(), TestCaseError> {
    let producer = Producer { pauses, give_up: GiveUp::Never };
    let n = consumers.len();
    let consumers = consumers.into_iter().map(|c| Consumer { give_up: GiveUp::Never, ..c }).collect();
    let (gotten, leftover, put_done) = run_queue::<Fifo>(maxsize, vec![producer], consumers).await?;
    for consumer in 0..n {
        let own: Vec<u32> = gotten.iter().filter(|got| got.0 == consumer).map(|got| got.1).collect();
        prop_assert!(own.windows(2).all(|pair| pair[0] < pair[1]), "consumer {} got {:?}", consumer, own);
    }
    if all_in_order {
        let out: Vec<u32> = gotten.iter().map(|&(_, item)| item).chain(leftover).collect();
        prop_assert_eq!(out, put_done, "items returned out of put order: {:?}", gotten);
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    /// With a seed in four cases of five; the strict order of all items without one.
    #[test]
    fn one_producer_many_consumers_each_consumer_gets_items_in_put_order(
        maxsize in 0usize..4,
        pauses in prop::collection::vec(ms(), 0..16),
        consumers in prop::collection::vec(consumer(), 2..5),
        seed in prop::option::weighted(0.8, any::<u64>()),
    ) {
        run_case(seed, "fifo queue, many consumers", move || {
            one_producer_many_consumers(maxsize, pauses, consumers, seed.is_none())
        })?;
    }

    /// asyncio's promise under every schedule the seeded mode explores: getters woken
    /// together take the front item in whatever order they resume (this found that
    /// `Queue` once handed each item to a getter at put time).
    #[test]
    fn one_producer_many_consumers_items_come_out_in_put_order_under_any_seed(
        maxsize in 0usize..4,
        pauses in prop::collection::vec(ms(), 0..16),
        consumers in prop::collection::vec(consumer(), 2..5),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "fifo queue, many consumers", move || {
            one_producer_many_consumers(maxsize, pauses, consumers, true)
        })?;
    }
}

/// Three getters park in order; then, in one step, either two items are put and the first
/// getter is cancelled before it runs, or three items are put. Returns the items in the
/// order the `get`s returned.
fn getters_take_items(seed: Option<u64>, cancel_first: bool) -> Vec<u32> {
    let builder = EventLoop::builder().virtual_clock();
    let event_loop = match seed {
        Some(seed) => builder.seed(seed),
        None => builder,
    }
    .build()
    .unwrap();
    let out = event_loop
        .run_until_complete(async move {
            let queue = Rc::new(Queue::<u32>::new(0));
            let out = Rc::new(RefCell::new(Vec::new()));
            let getters: Vec<Task<()>> = (0..3)
                .map(|_| {
                    let (queue, out) = (queue.clone(), out.clone());
                    create_task(async move {
                        let item = queue.get().await;
                        out.borrow_mut().push(item);
                    })
                })
                .collect();
            sleep(millis(1)).await;
            assert!(format!("{queue:?}").contains("getters: 3"), "{queue:?}");
            queue.put_nowait(0).unwrap();
            queue.put_nowait(1).unwrap();
            if cancel_first {
                getters[0].cancel();
            } else {
                queue.put_nowait(2).unwrap();
            }
            let _ = wait_for(gather_all(getters), SETTLE).await;
            out.take()
        })
        .unwrap();
    out
}

async fn gather_all(tasks: Vec<Task<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// The cancelled getter passes its right to an item on; whoever resumes first takes the
/// front item (a Queue that handed items out at put time once returned 1 first here).
#[test]
fn a_getter_cancelled_after_being_handed_an_item_does_not_reorder_the_items() {
    // asyncio: getter 1 resumes and takes the front item, 0; getter 2 then takes 1.
    assert_eq!(getters_take_items(None, true), [0, 1]);
}

/// Getters resume in the seeded order, and still return the items in put order.
#[test]
fn getters_woken_together_return_the_items_in_put_order_under_every_seed() {
    for seed in 0..16 {
        assert_eq!(getters_take_items(Some(seed), false), [0, 1, 2], "seed {seed}");
    }
}

// ---------------------------------------------------------------------------------------
// Event

#[derive(Clone, Copy, Debug)]
enum EventOp {
    Set,
    Clear,
}

#[derive(Clone, Debug)]
struct EventWaiter {
    start: u64,
    cancelled_at: Option<u64>,
}

async fn run_event(ops: Vec<(u64, EventOp)>, waiters: Vec<EventWaiter>) -> Result<(), TestCaseError> {
    let event = Rc::new(Event::new());
    let start = now();
    // Virtual times of the sets that changed the flag, in order.
    let set_times = Rc::new(RefCell::new(Vec::new()));
    let violations = Rc::new(Violations::default());
    let mut tasks = Vec::new();
    let mut cancels = Vec::new();
    for (id, spec) in waiters.iter().cloned().enumerate() {
        let (event, set_times, violations) = (event.clone(), set_times.clone(), violations.clone());
        let task = create_task(async move {
            sleep(millis(spec.start)).await;
            let (began, was_set, sets_before) = (now(), event.is_set(), set_times.borrow().len());
            event.wait().await;
            let returned = now();
            let expected = if was_set { Some(began) } else { set_times.borrow().get(sets_before).copied() };
            violations.check(Some(returned) == expected, || {
                format!(
                    "waiter {id} began at +{:?} (set: {was_set}) and returned at +{:?}, sets at {:?}",
                    began - start,
                    returned - start,
                    set_times.borrow().iter().map(|t| *t - start).collect::<Vec<_>>()
                )
            });
        });
        if let Some(at) = spec.cancelled_at {
            cancels.push(cancel_at(&task, start, at));
        }
        tasks.push(task);
    }
    let setter = {
        let (event, set_times) = (event.clone(), set_times.clone());
        create_task(async move {
            let mut ops = ops;
            // The last word is a set, so that every waiter can return.
            ops.push((ops.iter().map(|op| op.0).max().unwrap_or(0) + 25, EventOp::Set));
            ops.sort_by_key(|op| op.0);
            for (at, op) in ops {
                sleep((start + millis(at)).saturating_duration_since(now())).await;
                match op {
                    EventOp::Set => {
                        if !event.is_set() {
                            set_times.borrow_mut().push(now());
                        }
                        event.set();
                    }
                    EventOp::Clear => event.clear(),
                }
            }
        })
    };
    tasks.push(setter);
    let outcomes = settle(tasks, || {}).await;
    cancels.iter().for_each(TimerHandle::cancel);
    violations.result()?;
    for (id, outcome) in outcomes.iter().enumerate() {
        match waiters.get(id) {
            Some(EventWaiter { cancelled_at: Some(_), .. }) => {
                prop_assert!(matches!(outcome, Ok(()) | Err(TaskError::Cancelled)))
            }
            _ => prop_assert_eq!(outcome, &Ok(()), "task {} did not return", id),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    #[test]
    fn event_wakes_every_waiter_at_the_first_set_after_it_began(
        ops in prop::collection::vec(
            (0..20u64, prop_oneof![Just(EventOp::Set), Just(EventOp::Clear)]),
            0..12,
        ),
        waiters in prop::collection::vec(
            (ms(), prop::option::weighted(0.2, ms()))
                .prop_map(|(start, cancelled_at)| EventWaiter { start, cancelled_at }),
            1..12,
        ),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "event", move || run_event(ops, waiters))?;
    }
}

// ---------------------------------------------------------------------------------------
// Condition

#[derive(Clone, Copy, Debug)]
enum Notify {
    One,
    Two,
    All,
}

#[derive(Clone, Debug)]
struct CondProducer {
    pauses: Vec<u64>,
    notify: Notify,
}

async fn run_condition(producers: Vec<CondProducer>, consumers: Vec<Consumer>) -> Result<(), TestCaseError> {
    let condition = Rc::new(Condition::new());
    let items = Rc::new(Cell::new(0usize));
    let produced = Rc::new(Cell::new(0usize));
    let consumed = Rc::new(Cell::new(0usize));
    let waiting = Rc::new(Cell::new(0usize));
    let start = now();
    let mut tasks = Vec::new();
    let mut cancels = Vec::new();
    for spec in producers.iter().cloned() {
        let (condition, items, produced) = (condition.clone(), items.clone(), produced.clone());
        tasks.push(create_task(async move {
            for pause in spec.pauses {
                sleep(millis(pause)).await;
                // The lock is only ever held within one step: the re-acquire after a
                // notification never waits, so a notified waiter is never cancelled
                // between its wake-up and its check (asyncio loses that one too).
                let guard = condition.acquire().await;
                items.set(items.get() + 1);
                produced.set(produced.get() + 1);
                match spec.notify {
                    Notify::One => condition.notify(1),
                    Notify::Two => condition.notify(2),
                    Notify::All => condition.notify_all(),
                }
                drop(guard);
            }
        }));
    }
    for spec in consumers.iter().cloned() {
        let (condition, items, consumed, waiting) =
            (condition.clone(), items.clone(), consumed.clone(), waiting.clone());
        let task = create_task(async move {
            sleep(millis(spec.start)).await;
            for _ in 0..spec.wants {
                let guard = condition.acquire().await;
                let parked = Parked::new(&waiting);
                let wait = condition.wait_for(guard, || items.get() > 0);
                let guard = match spec.give_up {
                    GiveUp::Patience(patience) => match wait_for(wait, millis(patience)).await {
                        Ok(guard) => guard,
                        Err(_) => return,
                    },
                    _ => wait.await,
                };
                drop(parked);
                items.set(items.get() - 1);
                consumed.set(consumed.get() + 1);
                drop(guard);
                sleep(millis(spec.pause)).await;
            }
        });
        if let GiveUp::CancelledAt(at) = spec.give_up {
            cancels.push(cancel_at(&task, start, at));
        }
        tasks.push(task);
    }
    let stuck = Rc::new(Cell::new(None));
    let outcomes = settle(tasks, {
        let (stuck, items, waiting) = (stuck.clone(), items.clone(), waiting.clone());
        move || stuck.set(Some((items.get(), waiting.get())))
    })
    .await;
    cancels.iter().for_each(TimerHandle::cancel);
    for (id, outcome) in outcomes.iter().enumerate() {
        prop_assert!(matches!(outcome, Ok(()) | Err(TaskError::Cancelled)), "task {}: {:?}", id, outcome);
    }
    if let Some((items, waiting)) = stuck.get() {
        prop_assert!(
            items == 0 || waiting == 0,
            "lost wake-up: {} consumers wait beside {} items",
            waiting,
            items
        );
    }
    prop_assert_eq!(consumed.get() + items.get(), produced.get(), "items made up or lost");
    prop_assert!(!condition.locked());
    prop_assert!(format!("{condition:?}").contains("waiters: 0"), "{:?}", condition);
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    #[test]
    fn condition_loses_no_wake_up(
        producers in prop::collection::vec(
            (
                prop::collection::vec(ms(), 0..8),
                prop_oneof![3 => Just(Notify::One), 1 => Just(Notify::Two), 1 => Just(Notify::All)],
            )
                .prop_map(|(pauses, notify)| CondProducer { pauses, notify }),
            1..4,
        ),
        consumers in prop::collection::vec(consumer(), 1..6),
        seed in any::<u64>(),
    ) {
        run_case(Some(seed), "condition", move || run_condition(producers, consumers))?;
    }
}
