//! Waking a task from its waker: the fast path on the loop's own thread, and the slow
//! path from anywhere else.
//!
//! A waker is the 64-bit value (loop id << 48 | task id). Waking it on the thread that is
//! running that loop pushes the task id on the ready queue: no allocation, no lock, no
//! atomic. From any other thread (or when the loop is not running) the id goes through the
//! loop's injection queue and eventfd, found through a global table of loop ids.
//! A waker whose loop or task is gone does nothing.

use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use super::remote::{Injected, RemoteShared};
use super::task_slab::TaskId;
use crate::sys::waker::{waker, WakeById};

/// Loop id → that loop's remote state, for wakes from other threads.
struct Registry {
    loops: Vec<Option<Weak<RemoteShared>>>,
    free: Vec<u16>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { loops: Vec::new(), free: Vec::new() });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Gives a new loop an id for its wakers (at most 65,536 loops alive at once).
pub(crate) fn register_loop(remote: &Arc<RemoteShared>) -> io::Result<u16> {
    let mut registry = registry();
    let id = match registry.free.pop() {
        Some(id) => id,
        None if registry.loops.len() <= u16::MAX as usize => {
            registry.loops.push(None);
            (registry.loops.len() - 1) as u16
        }
        None => return Err(io::Error::other("too many event loops alive at once (65,536)")),
    };
    registry.loops[id as usize] = Some(Arc::downgrade(remote));
    Ok(id)
}

/// Frees a dropped loop's id. A stale waker that later names the id's next owner can only
/// cause a spurious wake there, which futures tolerate by contract.
pub(crate) fn unregister_loop(id: u16) {
    let mut registry = registry();
    registry.loops[id as usize] = None;
    registry.free.push(id);
}

/// A waker for task `task` of loop `loop_id`.
pub(crate) fn task_waker(loop_id: u16, task: TaskId) -> Waker {
    waker::<LoopWaker>(((loop_id as u64) << 48) | task.pack())
}

struct LoopWaker;

impl WakeById for LoopWaker {
    fn wake(bits: u64) {
        let loop_id = (bits >> 48) as u16;
        let task = TaskId::unpack(bits & 0xFFFF_FFFF_FFFF);
        if super::wake_on_running_loop(loop_id, task) {
            return;
        }
        let remote =
            registry().loops.get(loop_id as usize).cloned().flatten().and_then(|weak| weak.upgrade());
        if let Some(remote) = remote {
            let _ = remote.push(Injected::Wake(task));
        }
    }
}
