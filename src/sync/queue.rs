//! `Queue`, `LifoQueue` and `PriorityQueue`: asyncio's queues for coroutines.
//!
//! Waiters are served in order and nobody can take what was granted to another:
//! - a `put` with getters waiting stores the item and grants the longest-waiting getter
//!   the right to take one; the getter takes the front item when it runs (as in asyncio,
//!   where a woken getter calls `get_nowait`), so items come out in put order whatever
//!   order the woken getters run in; a getter cancelled meanwhile passes its right on;
//! - a `get` that frees room reserves it for the longest-waiting putter, which puts its
//!   own item when it runs; a putter cancelled meanwhile passes the room on, and its item
//!   is not put (as in asyncio).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;

use super::event::Event;
use super::semaphore::ValueError;
use super::waiters::{WaitQueue, Waiter};

/// The order in which a queue hands out its items.
pub trait Order<T> {
    /// Where the items wait.
    type Buffer: Default;
    /// Adds an item.
    fn push(buffer: &mut Self::Buffer, item: T);
    /// Takes the next item.
    fn pop(buffer: &mut Self::Buffer) -> Option<T>;
    /// Number of items.
    fn len(buffer: &Self::Buffer) -> usize;
}

/// First in, first out (asyncio's `Queue`).
#[derive(Debug)]
pub struct Fifo;
/// Last in, first out (asyncio's `LifoQueue`).
#[derive(Debug)]
pub struct Lifo;
/// Smallest first (asyncio's `PriorityQueue`).
#[derive(Debug)]
pub struct Priority;

impl<T> Order<T> for Fifo {
    type Buffer = VecDeque<T>;
    fn push(buffer: &mut VecDeque<T>, item: T) {
        buffer.push_back(item)
    }
    fn pop(buffer: &mut VecDeque<T>) -> Option<T> {
        buffer.pop_front()
    }
    fn len(buffer: &VecDeque<T>) -> usize {
        buffer.len()
    }
}

impl<T> Order<T> for Lifo {
    type Buffer = Vec<T>;
    fn push(buffer: &mut Vec<T>, item: T) {
        buffer.push(item)
    }
    fn pop(buffer: &mut Vec<T>) -> Option<T> {
        buffer.pop()
    }
    fn len(buffer: &Vec<T>) -> usize {
        buffer.len()
    }
}

impl<T: Ord> Order<T> for Priority {
    type Buffer = BinaryHeap<Reverse<T>>;
    fn push(buffer: &mut BinaryHeap<Reverse<T>>, item: T) {
        buffer.push(Reverse(item))
    }
    fn pop(buffer: &mut BinaryHeap<Reverse<T>>) -> Option<T> {
        buffer.pop().map(|Reverse(item)| item)
    }
    fn len(buffer: &BinaryHeap<Reverse<T>>) -> usize {
        buffer.len()
    }
}

/// `put_nowait` on a full queue; the item comes back (asyncio's `QueueFull`).
#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T: fmt::Debug> std::error::Error for QueueFull<T> {}

/// `get_nowait` on an empty queue (asyncio's `QueueEmpty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEmpty;

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is empty")
    }
}

impl std::error::Error for QueueEmpty {}

/// Where a parked `get` or `put` stands: still waiting, or granted the right to take an
/// item (a getter) or the room for one (a putter).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Granted,
}

/// A queue for coroutines (asyncio's `asyncio.Queue`); `O` picks the order:
/// [`Fifo`] (the default), [`Lifo`] ([`LifoQueue`]) or [`Priority`] ([`PriorityQueue`]).
///
/// Name the type when making one (`Queue<T>` is FIFO): Rust does not infer the order
/// from the default.
///
/// ```
/// use evloop::sync::{LifoQueue, Queue};
/// let queue: Queue<i32> = Queue::new(0);
/// let stack = LifoQueue::new(0);
/// stack.put_nowait("first").unwrap();
/// stack.put_nowait("last").unwrap();
/// assert_eq!(stack.get_nowait(), Ok("last"));
/// evloop::run(async move {
///     queue.put(1).await;
///     queue.put_nowait(2).unwrap();
///     assert_eq!(queue.get().await, 1);
///     assert_eq!(queue.get_nowait(), Ok(2));
/// })?;
/// # Ok::<(), evloop::RunError>(())
/// ```
pub struct Queue<T, O: Order<T> = Fifo> {
    maxsize: usize,
    buffer: std::cell::RefCell<O::Buffer>,
    getters: WaitQueue<Slot>,
    putters: WaitQueue<Slot>,
    /// Items promised to woken getters that have not run yet; never more than are stored.
    promised: Cell<usize>,
    /// Room reserved for putters that have not run yet.
    reserved: Cell<usize>,
    unfinished: Cell<usize>,
    finished: Event,
}

/// Last in, first out (asyncio's `asyncio.LifoQueue`).
pub type LifoQueue<T> = Queue<T, Lifo>;

/// Smallest item first (asyncio's `asyncio.PriorityQueue`); use `(priority, item)` tuples
/// to attach priorities.
pub type PriorityQueue<T> = Queue<T, Priority>;

impl<T: 'static, O: Order<T>> Queue<T, O> {
    /// A queue holding at most `maxsize` items; 0 means no limit, as in asyncio.
    pub fn new(maxsize: usize) -> Queue<T, O> {
        let finished = Event::new();
        finished.set();
        Queue {
            maxsize,
            buffer: Default::default(),
            getters: WaitQueue::default(),
            putters: WaitQueue::default(),
            promised: Cell::new(0),
            reserved: Cell::new(0),
            unfinished: Cell::new(0),
            finished,
        }
    }

    /// The size limit, 0 for none (asyncio's `Queue.maxsize`).
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// Items in the queue (asyncio's `Queue.qsize`), those promised to a getter that has
    /// not run yet included.
    pub fn qsize(&self) -> usize {
        O::len(&self.buffer.borrow())
    }

    /// True if there are no items (asyncio's `Queue.empty`).
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// True if `put` would wait (asyncio's `Queue.full`). Room reserved for a woken
    /// putter counts as taken.
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() + self.reserved.get() >= self.maxsize
    }

    /// Puts `item` without waiting, or gives it back if the queue is full (asyncio's
    /// `Queue.put_nowait`).
    pub fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>> {
        if self.full() || !self.putters.is_empty() {
            return Err(QueueFull(item));
        }
        self.add_item(item);
        Ok(())
    }

    /// Puts `item`, waiting for room if the queue is full (asyncio's `Queue.put`).
    /// Cancelled while waiting, the item is not put.
    pub async fn put(&self, item: T) {
        let item = match self.put_nowait(item) {
            Ok(()) => return,
            Err(QueueFull(item)) => item,
        };
        let mut parked = ParkedPut { queue: self, waiter: self.putters.push(Slot::Waiting), done: false };
        poll_fn(|cx| {
            if *parked.waiter.state.borrow() == Slot::Granted {
                return Poll::Ready(());
            }
            parked.waiter.register(cx);
            Poll::Pending
        })
        .await;
        parked.done = true;
        self.reserved.set(self.reserved.get() - 1);
        self.add_item(item);
    }

    /// Takes an item without waiting (asyncio's `Queue.get_nowait`); items promised to
    /// woken getters are theirs.
    pub fn get_nowait(&self) -> Result<T, QueueEmpty> {
        if self.qsize() <= self.promised.get() {
            return Err(QueueEmpty);
        }
        Ok(self.take_front())
    }

    /// Takes an item, waiting for one if the queue is empty (asyncio's `Queue.get`).
    pub fn get(&self) -> impl Future<Output = T> + '_ {
        let mut parked: Option<ParkedGet<'_, T, O>> = None;
        poll_fn(move |cx| {
            if parked.is_none() {
                if let Ok(item) = self.get_nowait() {
                    return Poll::Ready(item);
                }
                parked =
                    Some(ParkedGet { queue: self, waiter: self.getters.push(Slot::Waiting), done: false });
            }
            let waiter = &parked.as_ref().expect("parked above").waiter;
            if *waiter.state.borrow() == Slot::Waiting {
                waiter.register(cx);
                return Poll::Pending;
            }
            Poll::Ready(parked.take().expect("parked above").take_promised_item())
        })
    }

    /// Marks one item taken earlier as processed (asyncio's `Queue.task_done`); an error
    /// if called more times than items were put.
    pub fn task_done(&self) -> Result<(), ValueError> {
        match self.unfinished.get() {
            0 => Err(ValueError("task_done() called too many times")),
            1 => {
                self.unfinished.set(0);
                self.finished.set();
                Ok(())
            }
            n => {
                self.unfinished.set(n - 1);
                Ok(())
            }
        }
    }

    /// Waits until every item put has been marked done (asyncio's `Queue.join`).
    pub async fn join(&self) {
        if self.unfinished.get() > 0 {
            self.finished.wait().await;
        }
    }

    /// A new item: counted as unfinished work, stored, and promised to a waiting getter.
    fn add_item(&self, item: T) {
        self.unfinished.set(self.unfinished.get() + 1);
        self.finished.clear();
        self.offer(item);
    }

    /// Stores `item` and promises one item to the longest-waiting getter, if any.
    fn offer(&self, item: T) {
        O::push(&mut self.buffer.borrow_mut(), item);
        self.promise_to_next_getter();
    }

    /// Wakes the longest-waiting getter with the right to take one item.
    fn promise_to_next_getter(&self) {
        if let Some(getter) = self.getters.pop_front() {
            self.promised.set(self.promised.get() + 1);
            getter.grant(Slot::Granted);
        }
    }

    /// Takes the next item in the queue's order; the caller checked there is one for it.
    fn take_front(&self) -> T {
        let item = O::pop(&mut self.buffer.borrow_mut()).expect("an item is stored for this taker");
        self.reserve_room_for_putter();
        item
    }

    /// Room freed: reserve it for the longest-waiting putter and wake it.
    fn reserve_room_for_putter(&self) {
        if self.maxsize > 0 && self.qsize() + self.reserved.get() >= self.maxsize {
            return;
        }
        if let Some(putter) = self.putters.pop_front() {
            self.reserved.set(self.reserved.get() + 1);
            putter.grant(Slot::Granted);
        }
    }
}

/// A `get` waiting in the queue; dropped before it took its item, it leaves the queue, or
/// passes on the item promised to it.
struct ParkedGet<'a, T: 'static, O: Order<T>> {
    queue: &'a Queue<T, O>,
    waiter: Rc<Waiter<Slot>>,
    done: bool,
}

impl<T: 'static, O: Order<T>> ParkedGet<'_, T, O> {
    /// The woken getter runs: it takes the front item, which was promised to it.
    fn take_promised_item(mut self) -> T {
        self.done = true;
        self.queue.promised.set(self.queue.promised.get() - 1);
        self.queue.take_front()
    }
}

impl<T: 'static, O: Order<T>> Drop for ParkedGet<'_, T, O> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let queue = self.queue;
        if *self.waiter.state.borrow() == Slot::Granted {
            queue.promised.set(queue.promised.get() - 1);
            queue.promise_to_next_getter();
        } else {
            queue.getters.remove(&self.waiter);
        }
    }
}

/// A `put` waiting for room; dropped before it put its item, it leaves the queue, or
/// passes on the room reserved for it. The item is not put.
struct ParkedPut<'a, T: 'static, O: Order<T>> {
    queue: &'a Queue<T, O>,
    waiter: Rc<Waiter<Slot>>,
    done: bool,
}

impl<T: 'static, O: Order<T>> Drop for ParkedPut<'_, T, O> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let queue = self.queue;
        if *self.waiter.state.borrow() == Slot::Granted {
            queue.reserved.set(queue.reserved.get() - 1);
            queue.reserve_room_for_putter();
        } else {
            queue.putters.remove(&self.waiter);
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for Queue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &O::len(&self.buffer.borrow()))
            .field("maxsize", &self.maxsize)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .finish()
    }
}
