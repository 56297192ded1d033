//! The timer queue behind `call_later` / `call_at` / `sleep`: asyncio's `_scheduled` heap.
//!
//! Timers come out in (deadline, sequence number) order: the sequence number makes timers
//! with equal deadlines fire in the order they were scheduled, which a bare heap would not
//! guarantee.
//!
//! The layout is a heap of millisecond buckets (a calendar queue) rather than a binary heap
//! of single entries: a `BTreeMap` from millisecond tick to the timers due in that
//! millisecond, each bucket sorted by (deadline, sequence) when it first comes due. The
//! order is the same as asyncio's heap; the cost is not. With a million timers a binary heap
//! pop walks twenty levels of a 48 MB array, most of them cache misses (about 600 ns per
//! timer measured here); a bucket is appended to in O(1) and sorted in cache once, so a
//! timer costs tens of nanoseconds. One millisecond is also the loop's resolution, since
//! `epoll_wait` timeouts are whole milliseconds. NOTES.md has the measurements.
//!
//! Cancelling is O(1) and lazy, as in asyncio: the caller names the timer by the key `push`
//! returned; the entry stays until it would fire and is dropped then. When more than half
//! of at least [`COMPACT_MIN_ENTRIES`] entries are cancelled the queue is rebuilt without
//! them, so a program that schedules and cancels many long timeouts does not grow without
//! bound.
//!
//! The queue never drops an item while it is borrowed: popped and compacted-away items
//! are handed back to the caller, whose drop may run arbitrary user code safely.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// Below this many entries the queue is never compacted (asyncio's
/// `_MIN_SCHEDULED_TIMER_HANDLES`).
pub const COMPACT_MIN_ENTRIES: usize = 100;

/// The instant deadlines are counted from: an hour before now if the monotonic clock goes
/// back that far (it starts at boot), else as far back as it goes.
fn origin() -> Instant {
    let now = Instant::now();
    [3600, 60, 1]
        .into_iter()
        .find_map(|secs| now.checked_sub(std::time::Duration::from_secs(secs)))
        .unwrap_or(now)
}

/// How many emptied bucket vectors are kept for reuse.
const SPARE_BUCKETS: usize = 4;

/// Names one scheduled timer, for [`TimerHeap::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey(u64);

/// A timer: its deadline in nanoseconds since the queue's origin (8 bytes where an
/// `Instant` takes 16), its sequence number and what it does.
struct Entry<T> {
    at: u64,
    seq: u64,
    item: T,
}

/// The timers due within one millisecond. Sorted newest-first (by descending (deadline,
/// seq)) once it starts to be drained, so the next timer is popped off the end.
struct Bucket<T> {
    entries: Vec<Entry<T>>,
    sorted: bool,
}

impl<T> Bucket<T> {
    fn sort(&mut self) {
        if !self.sorted {
            // (at, seq) is unique, so an unstable sort gives the same order, and unlike
            // std's stable sort it allocates no scratch buffer. That buffer, one per bucket,
            // made glibc search and consolidate its free lists: about a tenth of the CPU
            // time of a million timers (benches/timers.rs).
            self.entries.sort_unstable_by_key(|e| std::cmp::Reverse((e.at, e.seq)));
            self.sorted = true;
        }
    }
}

/// Hashes a sequence number with one multiplication. The keys are our own consecutive
/// counters, not attacker-chosen, so std's keyed SipHash buys nothing here; the set is
/// probed once per popped timer while any cancellation is pending.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, seq: u64) {
        self.0 = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SeqSet = HashSet<u64, BuildHasherDefault<SeqHasher>>;

/// Timers ordered by (deadline, scheduling order), with lazy O(1) cancellation.
///
/// Methods take `&self` (the state is in cells) so that a timer can be cancelled while the
/// loop is running without any borrow being held across user code.
pub struct TimerHeap<T> {
    origin: Instant,
    buckets: RefCell<BTreeMap<u64, Bucket<T>>>,
    spare: RefCell<Vec<Vec<Entry<T>>>>,
    cancelled: RefCell<SeqSet>,
    next_seq: Cell<u64>,
    len: Cell<usize>,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap::new()
    }
}

impl<T> TimerHeap<T> {
    /// An empty queue.
    pub fn new() -> TimerHeap<T> {
        TimerHeap {
            origin: origin(),
            buckets: RefCell::new(BTreeMap::new()),
            spare: RefCell::new(Vec::new()),
            cancelled: RefCell::new(SeqSet::default()),
            next_seq: Cell::new(0),
            len: Cell::new(0),
        }
    }

    /// `when` in nanoseconds since the origin. Deadlines before the origin (an hour before
    /// the queue was made, where the clock allows) all become 0 and keep scheduling order.
    fn nanos(&self, when: Instant) -> u64 {
        when.saturating_duration_since(self.origin).as_nanos().min(u64::MAX as u128) as u64
    }

    fn instant(&self, at: u64) -> Instant {
        self.origin + std::time::Duration::from_nanos(at)
    }

    /// Schedules `item` for `when`, after every item already scheduled for the same instant.
    pub fn push(&self, when: Instant, item: T) -> TimerKey {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let at = self.nanos(when);
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets
            .entry(at / 1_000_000)
            .or_insert_with(|| Bucket { entries: self.spare_vec(), sorted: true });
        bucket.sorted = bucket.entries.is_empty();
        bucket.entries.push(Entry { at, seq, item });
        self.len.set(self.len.get() + 1);
        TimerKey(seq)
    }

    /// An empty entry vector, recycled from a drained bucket when there is one. Freeing a
    /// large bucket makes glibc consolidate its free lists, which dominated a profile of a
    /// million timers; recycling a few vectors avoids both that and the re-growth.
    fn spare_vec(&self) -> Vec<Entry<T>> {
        self.spare.borrow_mut().pop().unwrap_or_default()
    }

    fn recycle(&self, entries: Vec<Entry<T>>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_BUCKETS && entries.is_empty() {
            spare.push(entries);
        }
    }

    /// Cancels the timer `key` (asyncio's `_timer_handle_cancelled`). O(1): the entry is
    /// dropped when it reaches the front, or by compaction.
    ///
    /// The caller must only cancel a timer that is still queued (not yet popped), once:
    /// a key that is not queued would be remembered for nothing.
    pub fn cancel(&self, key: TimerKey) {
        self.cancelled.borrow_mut().insert(key.0);
    }

    fn is_cancelled(&self, seq: u64) -> bool {
        let cancelled = self.cancelled.borrow();
        !cancelled.is_empty() && cancelled.contains(&seq)
    }

    /// Removes `seq` from the cancelled set; true if it was there.
    fn take_cancelled(&self, seq: u64) -> bool {
        let mut cancelled = self.cancelled.borrow_mut();
        !cancelled.is_empty() && cancelled.remove(&seq)
    }

    /// The earliest deadline of a live timer, discarding cancelled ones from the front.
    /// The discarded items are pushed onto `garbage` for the caller to drop.
    pub fn next_deadline(&self, garbage: &mut Vec<T>) -> Option<Instant> {
        self.front(None, garbage).err().flatten()
    }

    /// Pops the earliest live timer if its deadline is at or before `now`.
    /// Cancelled items met on the way are pushed onto `garbage`.
    pub fn pop_due(&self, now: Instant, garbage: &mut Vec<T>) -> Option<T> {
        self.pop_due_with_deadline(now, garbage).map(|(_, item)| item)
    }

    /// [`pop_due`](Self::pop_due), also giving the timer's deadline: how late it fires is
    /// what the flight recorder reports as the loop's lag.
    pub fn pop_due_with_deadline(&self, now: Instant, garbage: &mut Vec<T>) -> Option<(Instant, T)> {
        self.front(Some(now), garbage).ok()
    }

    /// Looks at the earliest live timer: pops it if it is due by `pop_due_by`, else
    /// returns its deadline (`Err(None)` when there is none). One bucket lookup per timer.
    fn front(
        &self,
        pop_due_by: Option<Instant>,
        garbage: &mut Vec<T>,
    ) -> Result<(Instant, T), Option<Instant>> {
        let mut buckets = self.buckets.borrow_mut();
        loop {
            let mut first = buckets.first_entry().ok_or(None)?;
            let bucket = first.get_mut();
            bucket.sort();
            let Some(entry) = bucket.entries.last() else {
                self.recycle(first.remove().entries);
                continue;
            };
            let due = pop_due_by.is_some_and(|now| entry.at <= self.nanos(now));
            if !due && !self.is_cancelled(entry.seq) {
                return Err(Some(self.instant(entry.at)));
            }
            let entry = bucket.entries.pop().expect("the bucket has a last entry");
            self.len.set(self.len.get() - 1);
            if !self.take_cancelled(entry.seq) {
                return Ok((self.instant(entry.at), entry.item));
            }
            garbage.push(entry.item);
        }
    }

    /// Rebuilds the queue without its cancelled items if they are more than half of at least
    /// [`COMPACT_MIN_ENTRIES`] entries (asyncio's rule); returns the removed items. O(n),
    /// but it runs at most once per n/2 cancellations, so each cancel costs O(1) amortised.
    pub fn compact_if_worthwhile(&self) -> Vec<T> {
        if !self.worth_compacting() {
            return Vec::new();
        }
        self.compact()
    }

    /// True if more than half of at least [`COMPACT_MIN_ENTRIES`] entries are cancelled.
    #[inline]
    pub fn worth_compacting(&self) -> bool {
        let len = self.len.get();
        len >= COMPACT_MIN_ENTRIES && self.cancelled_count() * 2 > len
    }

    /// Rebuilds the queue without its cancelled items; returns them.
    pub fn compact(&self) -> Vec<T> {
        let len = self.len.get();
        let cancelled = std::mem::take(&mut *self.cancelled.borrow_mut());
        let mut removed = Vec::with_capacity(cancelled.len());
        let mut buckets = self.buckets.borrow_mut();
        for bucket in buckets.values_mut() {
            let (live, dead): (Vec<_>, Vec<_>) =
                bucket.entries.drain(..).partition(|e| !cancelled.contains(&e.seq));
            bucket.entries = live;
            removed.extend(dead.into_iter().map(|e| e.item));
        }
        buckets.retain(|_, bucket| !bucket.entries.is_empty());
        self.len.set(len - removed.len());
        removed
    }

    /// Removes every item, cancelled or not (used when the loop closes).
    pub fn drain(&self) -> Vec<T> {
        self.cancelled.borrow_mut().clear();
        self.len.set(0);
        let buckets = std::mem::take(&mut *self.buckets.borrow_mut());
        buckets.into_values().flat_map(|bucket| bucket.entries).map(|e| e.item).collect()
    }

    /// Number of entries, cancelled ones included.
    pub fn len(&self) -> usize {
        self.len.get()
    }

    /// True if no entry is left, cancelled or not.
    pub fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    /// Entries cancelled but not yet removed.
    pub fn cancelled_count(&self) -> usize {
        self.cancelled.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pop_all(heap: &TimerHeap<u32>, now: Instant) -> Vec<u32> {
        let mut garbage = Vec::new();
        std::iter::from_fn(|| heap.pop_due(now, &mut garbage)).collect()
    }

    #[test]
    fn equal_deadlines_fire_in_scheduling_order() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        for name in 0..10 {
            heap.push(t, name);
        }
        assert_eq!(pop_all(&heap, t), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn earlier_deadline_first_and_future_ones_stay() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        heap.push(t + Duration::from_secs(2), 2);
        heap.push(t + Duration::from_secs(1), 1);
        heap.push(t + Duration::from_secs(3), 3);
        assert_eq!(pop_all(&heap, t + Duration::from_secs(2)), vec![1, 2]);
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn order_within_one_millisecond_and_before_the_origin() {
        let t = Instant::now();
        let heap = TimerHeap::new();
        let early = t.checked_sub(Duration::from_millis(5)).unwrap_or(t);
        heap.push(t + Duration::from_micros(700), 3);
        heap.push(t + Duration::from_micros(300), 2);
        heap.push(t, 1);
        heap.push(early, 0);
        assert_eq!(pop_all(&heap, t + Duration::from_millis(1)), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_timer_added_to_a_bucket_being_drained_keeps_its_place() {
        let heap = TimerHeap::new();
        let t = Instant::now() + Duration::from_millis(10);
        heap.push(t + Duration::from_micros(500), 3);
        heap.push(t, 1);
        let mut garbage = Vec::new();
        assert_eq!(heap.pop_due(t, &mut garbage), Some(1));
        heap.push(t + Duration::from_micros(100), 2);
        assert_eq!(pop_all(&heap, t + Duration::from_millis(1)), vec![2, 3]);
    }

    #[test]
    fn cancelled_items_are_skipped_and_compacted() {
        let heap = TimerHeap::new();
        let t = Instant::now();
        let keys: Vec<_> =
            (0..200).map(|name| heap.push(t + Duration::from_millis(name as u64), name)).collect();
        for key in keys.iter().step_by(2) {
            heap.cancel(*key);
        }
        assert!(heap.compact_if_worthwhile().is_empty(), "exactly half is not more than half");
        heap.cancel(keys[1]);
        assert_eq!(heap.compact_if_worthwhile().len(), 101);
        assert_eq!(heap.len(), 99);
        assert_eq!(heap.cancelled_count(), 0);
        let fired = pop_all(&heap, t + Duration::from_secs(1));
        assert_eq!(fired, (3..200).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn small_queues_are_not_compacted_and_cancelled_heads_are_dropped() {
        let heap = TimerHeap::new();
        let key = heap.push(Instant::now(), 0);
        heap.cancel(key);
        assert!(heap.compact_if_worthwhile().is_empty());
        let mut garbage = Vec::new();
        assert_eq!(heap.next_deadline(&mut garbage), None);
        assert_eq!(garbage, vec![0]);
        assert_eq!(heap.cancelled_count(), 0);
        assert!(heap.is_empty());
    }
}
