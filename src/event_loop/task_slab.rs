//! Where the loop keeps its tasks: a slab indexed by [`TaskId`]. Waking a task puts its
//! id, a plain 8-byte value, on the ready queue; the loop looks the task up here when the
//! id comes round.
//!
//! A slot is reused after its task finishes, with its generation bumped, so a stale id or
//! waker for the old task finds nothing to wake. A `queued` flag keeps a task on the ready
//! queue at most once however often it is woken.

use std::any::Any;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A task as the loop drives it. The task layer implements it; the loop only steps it.
pub(crate) trait Schedulable {
    /// Runs one step of the task's coroutine; `Ready` once the task is finished.
    /// Must not panic (the task layer catches its coroutine's panics).
    fn step(self: Pin<&Self>, cx: &mut Context<'_>) -> Poll<()>;
    /// Drops the coroutine without running it (the loop is closing).
    fn abandon(self: Pin<&Self>);
    /// The task layer's record of this task (name, state), for `current_task` and
    /// `all_tasks`.
    fn header(&self) -> &dyn Any;
    /// Where the task was created, for debug-mode reports.
    fn created_at(&self) -> &'static std::panic::Location<'static>;
}

/// Identifies a task of one loop: a slab slot and the generation of its current occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    slot: u32,
    generation: u32,
}

/// `slot.generation`, as the flight recorder prints it.
impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
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
    queued: bool,
    task: Option<Pin<Rc<dyn Schedulable>>>,
}

/// The tasks of one loop.
#[derive(Default)]
pub(crate) struct TaskSlab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl TaskSlab {
    /// The id that the next [`insert`](Self::insert) will return.
    pub(crate) fn next_id(&self) -> TaskId {
        match self.free.last() {
            Some(&slot) => TaskId { slot, generation: self.slots[slot as usize].generation },
            None => TaskId { slot: self.slots.len() as u32, generation: 0 },
        }
    }

    /// Stores a new task; it is not queued yet.
    pub(crate) fn insert(&mut self, task: Pin<Rc<dyn Schedulable>>) -> TaskId {
        self.live += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot { generation: 0, queued: false, task: None });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.queued = false;
        entry.task = Some(task);
        TaskId { slot, generation: entry.generation }
    }

    fn slot_mut(&mut self, id: TaskId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.task.is_some() && (s.generation & 0xFFFF) == (id.generation & 0xFFFF))
    }

    /// Marks the task queued; returns its full id if the caller should put it on the
    /// ready queue (it is alive and was not queued already).
    pub(crate) fn mark_queued(&mut self, id: TaskId) -> Option<TaskId> {
        let slot = self.slot_mut(id)?;
        if slot.queued {
            return None;
        }
        slot.queued = true;
        Some(TaskId { slot: id.slot, generation: slot.generation })
    }

    /// The task to step now, with its `queued` flag cleared so that a wake during the
    /// step queues it again. `None` if it is gone.
    pub(crate) fn take_for_step(&mut self, id: TaskId) -> Option<Pin<Rc<dyn Schedulable>>> {
        let slot = self.slot_mut(id)?;
        slot.queued = false;
        slot.task.clone()
    }

    /// Frees a finished task's slot; returns the task for the caller to drop.
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Pin<Rc<dyn Schedulable>>> {
        let slot = self.slot_mut(id)?;
        slot.queued = false;
        slot.generation = slot.generation.wrapping_add(1);
        let task = slot.task.take();
        self.free.push(id.slot);
        self.live -= 1;
        task
    }

    /// The task with this id, if it is alive.
    pub(crate) fn get(&self, id: TaskId) -> Option<Pin<Rc<dyn Schedulable>>> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.generation == id.generation).then(|| slot.task.clone()).flatten()
    }

    /// All live tasks.
    pub(crate) fn all(&self) -> Vec<Pin<Rc<dyn Schedulable>>> {
        self.slots.iter().filter_map(|s| s.task.clone()).collect()
    }

    /// The id of some live task, if any.
    pub(crate) fn any_id(&self) -> Option<TaskId> {
        let slot = self.slots.iter().position(|s| s.task.is_some())?;
        Some(TaskId { slot: slot as u32, generation: self.slots[slot].generation })
    }

    /// Number of live tasks.
    pub(crate) fn len(&self) -> usize {
        self.live
    }
}
