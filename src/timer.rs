//! The timer heap behind `call_later` / `call_at`: asyncio's `_scheduled` list.
//!
//! A binary min-heap ordered by (deadline, sequence number). The sequence number makes
//! timers with equal deadlines fire in the order they were scheduled, which a bare heap
//! would not guarantee.
//!
//! Cancelling is O(1) and lazy, as in asyncio: the entry stays in the heap, marked through
//! its own handle, and is discarded when it reaches the top. When more than half of at
//! least [`COMPACT_MIN_ENTRIES`] entries are cancelled the heap is rebuilt without them,
//! so a program that schedules and cancels many long timeouts does not grow without bound.
//!
//! The heap never drops an item while it is borrowed: popped and compacted-away items are
//! handed back to the caller, whose drop may run arbitrary user code safely.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Below this many entries the heap is never compacted (asyncio's
/// `_MIN_SCHEDULED_TIMER_HANDLES`).
pub const COMPACT_MIN_ENTRIES: usize = 100;

/// What the heap needs to know about what it holds: whether it was cancelled.
pub trait TimerItem {
    /// True once the timer was cancelled; the heap then drops it instead of returning it.
    fn is_cancelled(&self) -> bool;
}

struct Entry<T> {
    when: Instant,
    seq: u64,
    item: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (Instant, u64) {
        (self.when, self.seq)
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that std's max-heap pops the earliest (deadline, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A min-heap of timers keyed by (deadline, scheduling order), with lazy cancellation.
///
/// Methods take `&self` (the heap keeps its state in cells) so that a timer handle can
/// report a cancellation while the loop is running without any borrow being held.
pub struct TimerHeap<T> {
    heap: RefCell<BinaryHeap<Entry<T>>>,
    next_seq: Cell<u64>,
    cancelled: Cell<usize>,
}

impl<T: TimerItem> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap::new()
    }
}

impl<T: TimerItem> TimerHeap<T> {
    /// An empty heap.
    pub fn new() -> TimerHeap<T> {
        TimerHeap { heap: RefCell::new(BinaryHeap::new()), next_seq: Cell::new(0), cancelled: Cell::new(0) }
    }

    /// Schedules `item` for `when`, after every item already scheduled for the same instant.
    pub fn push(&self, when: Instant, item: T) {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.heap.borrow_mut().push(Entry { when, seq, item });
    }

    /// Records that one item still in the heap was cancelled (asyncio's
    /// `_timer_handle_cancelled`). The caller must call this once per cancelled item.
    pub fn note_cancelled(&self) {
        self.cancelled.set(self.cancelled.get() + 1);
    }

    /// The earliest deadline of a live timer, discarding cancelled ones from the top.
    /// The discarded items are pushed onto `garbage` for the caller to drop.
    pub fn next_deadline(&self, garbage: &mut Vec<T>) -> Option<Instant> {
        let mut heap = self.heap.borrow_mut();
        while let Some(top) = heap.peek() {
            if !top.item.is_cancelled() {
                return Some(top.when);
            }
            garbage.extend(heap.pop().map(|e| e.item));
            self.cancelled.set(self.cancelled.get().saturating_sub(1));
        }
        None
    }

    /// Pops the earliest live timer if its deadline is at or before `now`.
    /// Cancelled items met on the way are pushed onto `garbage`.
    pub fn pop_due(&self, now: Instant, garbage: &mut Vec<T>) -> Option<T> {
        let when = self.next_deadline(garbage)?;
        if when > now {
            return None;
        }
        self.heap.borrow_mut().pop().map(|e| e.item)
    }

    /// Rebuilds the heap without its cancelled items if they are more than half of at least
    /// [`COMPACT_MIN_ENTRIES`] entries (asyncio's rule); returns the removed items. O(n),
    /// but it runs at most once per n/2 cancellations, so each cancel costs O(1) amortised.
    pub fn compact_if_worthwhile(&self) -> Vec<T> {
        let len = self.len();
        if len < COMPACT_MIN_ENTRIES || self.cancelled.get() * 2 <= len {
            return Vec::new();
        }
        let entries = std::mem::take(&mut *self.heap.borrow_mut()).into_vec();
        let (live, cancelled): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| !e.item.is_cancelled());
        *self.heap.borrow_mut() = BinaryHeap::from(live);
        self.cancelled.set(0);
        cancelled.into_iter().map(|e| e.item).collect()
    }

    /// Removes every item, cancelled or not (used when the loop closes).
    pub fn drain(&self) -> Vec<T> {
        self.cancelled.set(0);
        std::mem::take(&mut *self.heap.borrow_mut()).into_vec().into_iter().map(|e| e.item).collect()
    }

    /// Number of entries, cancelled ones included.
    pub fn len(&self) -> usize {
        self.heap.borrow().len()
    }

    /// True if no entry is left, cancelled or not.
    pub fn is_empty(&self) -> bool {
        self.heap.borrow().is_empty()
    }

    /// Entries cancelled but not yet removed.
    pub fn cancelled_count(&self) -> usize {
        self.cancelled.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::Duration;

    struct Item {
        name: u32,
        cancelled: Rc<Cell<bool>>,
    }

    impl TimerItem for Item {
        fn is_cancelled(&self) -> bool {
            self.cancelled.get()
        }
    }

    fn item(name: u32) -> (Item, Rc<Cell<bool>>) {
        let flag = Rc::new(Cell::new(false));
        (Item { name, cancelled: flag.clone() }, flag)
    }

    fn pop_all(heap: &TimerHeap<Item>, now: Instant) -> Vec<u32> {
        let mut garbage = Vec::new();
        std::iter::from_fn(|| heap.pop_due(now, &mut garbage).map(|i| i.name)).collect()
    }

    #[test]
    fn equal_deadlines_fire_in_scheduling_order() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        for name in 0..10 {
            heap.push(t, item(name).0);
        }
        assert_eq!(pop_all(&heap, t), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn earlier_deadline_first_and_future_ones_stay() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        heap.push(t + Duration::from_secs(2), item(2).0);
        heap.push(t + Duration::from_secs(1), item(1).0);
        heap.push(t + Duration::from_secs(3), item(3).0);
        assert_eq!(pop_all(&heap, t + Duration::from_secs(2)), vec![1, 2]);
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn cancelled_items_are_skipped_and_compacted() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        let flags: Vec<_> = (0..200)
            .map(|name| {
                let (it, flag) = item(name);
                heap.push(t + Duration::from_millis(name as u64), it);
                flag
            })
            .collect();
        for flag in flags.iter().step_by(2) {
            flag.set(true);
            heap.note_cancelled();
        }
        assert!(heap.compact_if_worthwhile().is_empty(), "exactly half is not more than half");
        flags[1].set(true);
        heap.note_cancelled();
        assert_eq!(heap.compact_if_worthwhile().len(), 101);
        assert_eq!(heap.len(), 99);
        assert_eq!(heap.cancelled_count(), 0);
        let fired = pop_all(&heap, t + Duration::from_secs(1));
        assert_eq!(fired, (3..200).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn small_heaps_are_not_compacted() {
        let heap = TimerHeap::new();
        let (it, flag) = item(0);
        heap.push(Instant::now(), it);
        flag.set(true);
        heap.note_cancelled();
        assert!(heap.compact_if_worthwhile().is_empty());
        let mut garbage = Vec::new();
        assert_eq!(heap.next_deadline(&mut garbage), None);
        assert_eq!(garbage.len(), 1);
        assert_eq!(heap.cancelled_count(), 0);
    }
}
