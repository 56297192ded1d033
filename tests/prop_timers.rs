//! Property tests: the loop's timers and the TimerHeap against a sorted-list model keyed by
//! (deadline, scheduling sequence).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use evloop::timer::{TimerHeap, TimerKey, COMPACT_MIN_ENTRIES};
use evloop::{EventLoop, TimerHandle};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

// ---------------------------------------------------------------------------------------
// The loop: call_at / call_later / cancel against the model.

#[derive(Clone, Debug)]
enum LoopOp {
    /// `call_at(base + ms)`.
    CallAt(u64),
    /// `call_later(ms)`.
    CallLater(u64),
    /// Cancel one of the timers scheduled so far, now.
    Cancel(Index),
    /// When one timer scheduled so far fires, it cancels another (or itself).
    CancelWhenFired { canceller: Index, target: Index },
}

/// Offsets in milliseconds, with a few favourites so that many deadlines are equal.
fn offset_ms() -> impl Strategy<Value = u64> {
    prop_oneof![3 => prop::sample::select(vec![0u64, 1, 10, 25, 49]), 2 => 0..50u64]
}

fn loop_op() -> impl Strategy<Value = LoopOp> {
    prop_oneof![
        4 => offset_ms().prop_map(LoopOp::CallAt),
        3 => offset_ms().prop_map(LoopOp::CallLater),
        2 => any::<Index>().prop_map(LoopOp::Cancel),
        2 => (any::<Index>(), any::<Index>())
            .prop_map(|(canceller, target)| LoopOp::CancelWhenFired { canceller, target }),
    ]
}

/// What the model predicts: the ids that fire, in order, and the ids cancel() was called on.
fn model(
    whens: &[Instant],
    cancelled_first: &HashSet<usize>,
    plan: &[Vec<usize>],
) -> (Vec<usize>, HashSet<usize>) {
    let mut order: Vec<usize> = (0..whens.len()).collect();
    // The id is the scheduling sequence: sort by (deadline, sequence).
    order.sort_by_key(|&id| (whens[id], id));
    let mut cancelled = cancelled_first.clone();
    let mut fired = Vec::new();
    for id in order {
        if cancelled.contains(&id) {
            continue;
        }
        fired.push(id);
        cancelled.extend(plan[id].iter().copied());
    }
    (fired, cancelled)
}

fn run_loop_program(ops: &[LoopOp]) -> Result<(), TestCaseError> {
    let event_loop = EventLoop::new().unwrap();
    let base = event_loop.time();
    let handles: Rc<RefCell<Vec<TimerHandle>>> = Rc::new(RefCell::new(Vec::new()));
    let plan: Rc<RefCell<Vec<Vec<usize>>>> = Rc::new(RefCell::new(Vec::new()));
    let fired: Rc<RefCell<Vec<(usize, Instant)>>> = Rc::new(RefCell::new(Vec::new()));
    let mut cancelled_first = HashSet::new();

    for op in ops {
        let id = handles.borrow().len();
        let callback = {
            let (handles, plan, fired) = (handles.clone(), plan.clone(), fired.clone());
            move || {
                fired.borrow_mut().push((id, Instant::now()));
                for &target in &plan.borrow()[id] {
                    handles.borrow()[target].cancel();
                }
            }
        };
        match *op {
            LoopOp::CallAt(ms) => {
                let handle = event_loop.call_at(base + Duration::from_millis(ms), callback).unwrap();
                prop_assert_eq!(handle.when(), base + Duration::from_millis(ms));
                handles.borrow_mut().push(handle);
                plan.borrow_mut().push(Vec::new());
            }
            LoopOp::CallLater(ms) => {
                let before = event_loop.time();
                let handle = event_loop.call_later(Duration::from_millis(ms), callback).unwrap();
                prop_assert!(handle.when() >= before + Duration::from_millis(ms));
                handles.borrow_mut().push(handle);
                plan.borrow_mut().push(Vec::new());
            }
            LoopOp::Cancel(index) if id > 0 => {
                let target = index.index(id);
                handles.borrow()[target].cancel();
                cancelled_first.insert(target);
            }
            LoopOp::CancelWhenFired { canceller, target } if id > 0 => {
                let (canceller, target) = (canceller.index(id), target.index(id));
                plan.borrow_mut()[canceller].push(target);
            }
            _ => {}
        }
    }

    let whens: Vec<Instant> = handles.borrow().iter().map(|h| h.when()).collect();
    let scheduled = whens.len();
    // The final timer: at base + 60 ms, and in any case not before the last deadline (it is
    // scheduled last, so an equal deadline still puts it last).
    let stop_at = whens.iter().copied().fold(base + Duration::from_millis(60), Instant::max);
    let stopper = event_loop.clone();
    event_loop.call_at(stop_at, move || stopper.stop()).unwrap();
    let watchdog_fired = Rc::new(Cell::new(false));
    {
        let (l, w) = (event_loop.clone(), watchdog_fired.clone());
        event_loop
            .call_later(Duration::from_secs(10), move || {
                w.set(true);
                l.stop();
            })
            .unwrap();
    }
    event_loop.run_forever().unwrap();
    prop_assert!(!watchdog_fired.get());
    prop_assert!(Instant::now() >= stop_at);

    let (expected, expected_cancelled) = model(&whens, &cancelled_first, &plan.borrow());
    let got: Vec<usize> = fired.borrow().iter().map(|&(id, _)| id).collect();
    prop_assert_eq!(&got, &expected);
    for &(id, at) in fired.borrow().iter() {
        prop_assert!(at >= whens[id], "timer {} ran before its deadline", id);
    }
    for (id, handle) in handles.borrow().iter().enumerate() {
        prop_assert_eq!(handle.cancelled(), expected_cancelled.contains(&id), "cancelled() of timer {}", id);
    }
    let stats = event_loop.stats();
    prop_assert_eq!(stats.timers_scheduled, scheduled as u64 + 2);
    prop_assert_eq!(stats.callbacks_run, expected.len() as u64 + 1);

    // Break the handle → callback → handles cycle, then close.
    handles.borrow_mut().clear();
    event_loop.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn loop_timers_fire_like_the_model(ops in prop::collection::vec(loop_op(), 1..40)) {
        run_loop_program(&ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// The TimerHeap on its own.

#[derive(Clone, Debug)]
enum HeapOp {
    /// Push a timer at base + µs.
    Push(u64),
    /// Cancel this many consecutive timers, starting at one picked among all pushed so far
    /// (those no longer queued, or cancelled already, are skipped: `cancel`'s contract).
    Cancel(Index, usize),
    /// `pop_due(base + µs)` until it returns None.
    PopDue(u64),
    /// Cancel the timer with this id (for fixed programs).
    CancelId(usize),
    NextDeadline,
    Compact,
}

/// Microseconds after `base`, spread over a few millisecond buckets, with favourites so that
/// many deadlines are equal. `base` is 2 ms before the heap is made, so some deadlines also
/// fall before its origin.
fn offset_us() -> impl Strategy<Value = u64> {
    prop_oneof![2 => prop::sample::select(vec![0u64, 1, 999, 1000, 2000, 2500, 4999]), 3 => 0..5000u64]
}

fn heap_op() -> impl Strategy<Value = HeapOp> {
    prop_oneof![
        3 => offset_us().prop_map(HeapOp::Push),
        4 => (any::<Index>(), 1..30usize).prop_map(|(i, n)| HeapOp::Cancel(i, n)),
        1 => (0..6000u64).prop_map(HeapOp::PopDue),
        1 => Just(HeapOp::NextDeadline),
        2 => Just(HeapOp::Compact),
    ]
}

/// A prefix of pushes big enough for compaction to be possible, then anything.
fn heap_program() -> impl Strategy<Value = Vec<HeapOp>> {
    (
        prop::collection::vec(
            offset_us().prop_map(HeapOp::Push),
            COMPACT_MIN_ENTRIES..COMPACT_MIN_ENTRIES + 60,
        ),
        prop::collection::vec(heap_op(), 0..120),
    )
        .prop_map(|(mut prefix, rest)| {
            prefix.extend(rest);
            prefix
        })
}

/// One entry of the model: (deadline, sequence, id), the heap's own order.
type ModelEntry = (Instant, u64, usize);

struct HeapModel {
    /// Entries still in the heap (cancelled or not), sorted by (deadline, sequence).
    entries: Vec<ModelEntry>,
    /// The key `push` returned for each id.
    keys: Vec<TimerKey>,
    /// Ids cancelled while queued.
    cancelled: HashSet<usize>,
    /// Ids still in the heap.
    in_heap: HashSet<usize>,
    next_seq: u64,
}

impl HeapModel {
    /// Cancels `id` the way the loop does: once, and only while it is still queued.
    fn cancel(&mut self, heap: &TimerHeap<usize>, id: usize) {
        if self.in_heap.contains(&id) && self.cancelled.insert(id) {
            heap.cancel(self.keys[id]);
        }
    }

    fn cancelled_in_heap(&self) -> usize {
        self.entries.iter().filter(|e| self.cancelled.contains(&e.2)).count()
    }

    /// Drops cancelled entries from the front, as the heap does lazily; returns their ids.
    fn discard_cancelled_front(&mut self) -> Vec<usize> {
        let mut garbage = Vec::new();
        while let Some(&(_, _, id)) = self.entries.first() {
            if !self.cancelled.contains(&id) {
                break;
            }
            self.entries.remove(0);
            self.in_heap.remove(&id);
            garbage.push(id);
        }
        garbage
    }
}

static COMPACTIONS: AtomicUsize = AtomicUsize::new(0);

fn run_heap_program(ops: &[HeapOp]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let base = now.checked_sub(Duration::from_millis(2)).unwrap_or(now);
    let heap: TimerHeap<usize> = TimerHeap::new();
    let mut model = HeapModel {
        entries: Vec::new(),
        keys: Vec::new(),
        cancelled: HashSet::new(),
        in_heap: HashSet::new(),
        next_seq: 0,
    };

    for op in ops {
        match *op {
            HeapOp::Push(us) => {
                let when = base + Duration::from_micros(us);
                let id = model.keys.len();
                model.keys.push(heap.push(when, id));
                let entry = (when, model.next_seq, id);
                model.next_seq += 1;
                let at = model.entries.partition_point(|e| *e < entry);
                model.entries.insert(at, entry);
                model.in_heap.insert(id);
            }
            HeapOp::Cancel(start, count) if !model.keys.is_empty() => {
                let start = start.index(model.keys.len());
                for id in start..(start + count).min(model.keys.len()) {
                    model.cancel(&heap, id);
                }
            }
            HeapOp::CancelId(id) => model.cancel(&heap, id),
            HeapOp::PopDue(us) => {
                let now = base + Duration::from_micros(us);
                loop {
                    let mut garbage = Vec::new();
                    let popped = heap.pop_due(now, &mut garbage);
                    let expected_garbage = model.discard_cancelled_front();
                    prop_assert_eq!(garbage, expected_garbage);
                    let expected = match model.entries.first() {
                        Some(&(when, _, id)) if when <= now => {
                            model.entries.remove(0);
                            model.in_heap.remove(&id);
                            Some(id)
                        }
                        _ => None,
                    };
                    prop_assert_eq!(popped, expected);
                    if popped.is_none() {
                        break;
                    }
                }
            }
            HeapOp::NextDeadline => {
                let mut garbage = Vec::new();
                let deadline = heap.next_deadline(&mut garbage);
                prop_assert_eq!(garbage, model.discard_cancelled_front());
                prop_assert_eq!(deadline, model.entries.first().map(|e| e.0));
            }
            HeapOp::Compact => {
                let len = model.entries.len();
                let cancelled = model.cancelled_in_heap();
                let mut removed = heap.compact_if_worthwhile();
                removed.sort_unstable();
                if len >= COMPACT_MIN_ENTRIES && cancelled * 2 > len {
                    COMPACTIONS.fetch_add(1, Ordering::Relaxed);
                    let mut expected: Vec<usize> =
                        model.entries.iter().map(|e| e.2).filter(|id| model.cancelled.contains(id)).collect();
                    expected.sort_unstable();
                    prop_assert_eq!(&removed, &expected);
                    model.entries.retain(|e| !model.cancelled.contains(&e.2));
                    for id in expected {
                        model.in_heap.remove(&id);
                    }
                    prop_assert!(heap.len() < len, "compaction shrank the heap");
                } else {
                    prop_assert!(
                        removed.is_empty(),
                        "compacted {} of {} with {} cancelled",
                        removed.len(),
                        len,
                        cancelled
                    );
                }
            }
            _ => {}
        }
        prop_assert_eq!(heap.len(), model.entries.len());
        prop_assert_eq!(heap.is_empty(), model.entries.is_empty());
        prop_assert_eq!(heap.cancelled_count(), model.cancelled_in_heap());
    }

    // Whatever is left comes out in (deadline, sequence) order, cancelled ones skipped.
    let far = base + Duration::from_secs(1);
    let mut rest = Vec::new();
    let mut garbage = Vec::new();
    while let Some(id) = heap.pop_due(far, &mut garbage) {
        rest.push(id);
    }
    let expected: Vec<usize> =
        model.entries.iter().map(|e| e.2).filter(|id| !model.cancelled.contains(id)).collect();
    prop_assert_eq!(rest, expected);
    prop_assert!(heap.is_empty());
    prop_assert_eq!(heap.cancelled_count(), 0);
    Ok(())
}

#[test]
fn timer_heap_behaves_like_a_sorted_list() {
    let mut runner = TestRunner::new(Config { cases: 256, ..Config::default() });
    runner.run(&heap_program(), |ops| run_heap_program(&ops)).unwrap();
    assert!(COMPACTIONS.load(Ordering::Relaxed) > 0, "no generated program compacted the heap");
}

#[test]
fn timer_heap_compaction_keeps_order_and_shrinks() {
    // A fixed program: 150 timers on 5 deadlines in 3 buckets, 2 of 3 cancelled, compacted,
    // then more pushed into the same buckets and everything popped.
    let ops: Vec<HeapOp> = (0..150u64)
        .map(|i| HeapOp::Push([0, 1, 1000, 1001, 2000][i as usize % 5]))
        .chain((0..150).filter(|i| i % 3 != 0).map(HeapOp::CancelId))
        .chain([HeapOp::Compact, HeapOp::Push(1000), HeapOp::Push(0), HeapOp::NextDeadline])
        .chain([HeapOp::PopDue(1000), HeapOp::Compact, HeapOp::Push(2000), HeapOp::NextDeadline])
        .collect();
    let before = COMPACTIONS.load(Ordering::Relaxed);
    run_heap_program(&ops).unwrap();
    assert!(COMPACTIONS.load(Ordering::Relaxed) > before);
}

#[test]
fn timer_heap_compaction_that_empties_whole_buckets() {
    // Every timer of the earliest bucket cancelled: after compaction the heap must neither
    // lose track of the later buckets nor trip over the emptied one.
    let ops: Vec<HeapOp> = (0..120u64)
        .map(|i| HeapOp::Push(if i < 80 { 0 } else { 3000 }))
        .chain((0..80).map(HeapOp::CancelId))
        .chain([HeapOp::Compact, HeapOp::NextDeadline, HeapOp::Push(0), HeapOp::PopDue(5000)])
        .collect();
    run_heap_program(&ops).unwrap();
}
