//! Where the loop keeps the coroutines of its tasks: a slab of type-erased futures indexed
//! by [`TaskId`]. Waking a task puts its id, a plain 8-byte value, on the ready queue; the
//! loop looks the future up here when the id comes round.
//!
//! A slot is reused after its task finishes, with its generation bumped, so a stale id or
//! waker for the old task finds nothing to wake. A `queued` flag keeps a task on the ready
//! queue at most once however often it is woken.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// A task's coroutine as the loop sees it: something to poll until it returns `()`.
pub(crate) type ErasedFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Identifies a task of one loop: a slab slot and the generation of its current occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    slot: u32,
    generation: u32,
}

impl TaskId {
    /// Packs the id into 48 bits (slot, low 16 bits of the generation) for a waker.
    pub(crate) fn pack(self) -> u64 {
        (self.slot as u64) | (((self.generation & 0xFFFF) as u64) << 32)
    }

    /// The inverse of [`pack`](Self::pack). The generation comes back as its low 16 bits,
    /// which the slab compares the same way: a false match is a spurious wake, harmless.
    pub(crate) fn unpack(bits: u64) -> TaskId {
        TaskId { slot: bits as u32, generation: ((bits >> 32) & 0xFFFF) as u32 }
    }
}

struct Slot {
    generation: u32,
    live: bool,
    queued: bool,
    future: Option<ErasedFuture>,
    owner: Option<Rc<dyn Any>>,
}

/// The tasks of one loop.
#[derive(Default)]
pub(crate) struct TaskSlab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl TaskSlab {
    /// Stores a new task's coroutine and `owner` (the task layer's record of it).
    pub(crate) fn insert(&mut self, future: ErasedFuture, owner: Rc<dyn Any>) -> TaskId {
        self.live += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    live: false,
                    queued: false,
                    future: None,
                    owner: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.live = true;
        entry.queued = false;
        entry.future = Some(future);
        entry.owner = Some(owner);
        TaskId { slot, generation: entry.generation }
    }

    fn slot_mut(&mut self, id: TaskId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.live && (s.generation & 0xFFFF) == (id.generation & 0xFFFF))
    }

    /// Marks the task queued; true if the caller should put it on the ready queue (it is
    /// alive and not queued already).
    pub(crate) fn mark_queued(&mut self, id: TaskId) -> Option<TaskId> {
        let slot = self.slot_mut(id)?;
        if slot.queued {
            return None;
        }
        slot.queued = true;
        Some(TaskId { slot: id.slot, generation: slot.generation })
    }

    /// Takes the coroutine out for a poll (the slab is not borrowed while it runs).
    /// `None` if the task is gone or is being polled already.
    pub(crate) fn take_for_poll(&mut self, id: TaskId) -> Option<ErasedFuture> {
        let slot = self.slot_mut(id)?;
        slot.queued = false;
        slot.future.take()
    }

    /// Puts a coroutine back after a poll that returned `Pending`.
    pub(crate) fn put_back(&mut self, id: TaskId, future: ErasedFuture) {
        if let Some(slot) = self.slot_mut(id) {
            slot.future = Some(future);
        }
    }

    /// Frees the task's slot; returns its owner record for the caller to drop.
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Rc<dyn Any>> {
        let slot = self.slot_mut(id)?;
        slot.live = false;
        slot.queued = false;
        slot.generation = slot.generation.wrapping_add(1);
        let owner = slot.owner.take();
        self.free.push(id.slot);
        self.live -= 1;
        owner
    }

    /// The owner record of a live task.
    pub(crate) fn owner(&self, id: TaskId) -> Option<Rc<dyn Any>> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.live && slot.generation == id.generation).then(|| slot.owner.clone()).flatten()
    }

    /// The owner records of all live tasks.
    pub(crate) fn owners(&self) -> Vec<Rc<dyn Any>> {
        self.slots.iter().filter(|s| s.live).filter_map(|s| s.owner.clone()).collect()
    }

    /// The ids of all live tasks.
    pub(crate) fn ids(&self) -> Vec<TaskId> {
        (0..self.slots.len() as u32)
            .filter(|&slot| self.slots[slot as usize].live)
            .map(|slot| TaskId { slot, generation: self.slots[slot as usize].generation })
            .collect()
    }

    /// Number of live tasks.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}
