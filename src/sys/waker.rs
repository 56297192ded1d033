//! A `std::task::Waker` that is a plain 64-bit value: no allocation, no reference count.
//!
//! std builds wakers from a data pointer and a table of four functions. We never point at
//! anything: the "pointer" is the number itself (a loop id and a task id), so cloning is a
//! copy and dropping does nothing. The only `unsafe` is the conversion std requires.

use std::task::{RawWaker, RawWakerVTable, Waker};

/// What a plain-value waker does when woken: the loop layer implements it.
pub trait WakeById {
    /// Wakes whatever `id` names. Must be callable from any thread.
    fn wake(id: u64);
}

struct VTable<W>(std::marker::PhantomData<W>);

impl<W: WakeById> VTable<W> {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(clone::<W>, wake::<W>, wake::<W>, drop);
}

/// A waker that calls `W::wake(id)` when woken.
pub fn waker<W: WakeById>(id: u64) -> Waker {
    // SAFETY: the RawWaker contract asks that the vtable functions be thread-safe and treat
    // the data pointer consistently. Ours never dereference it: it is an integer carried in
    // pointer form, so any copy of it is valid for as long as anyone likes, on any thread.
    unsafe { Waker::from_raw(raw::<W>(id as usize as *const ())) }
}

fn raw<W: WakeById>(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTable::<W>::VTABLE)
}

fn clone<W: WakeById>(data: *const ()) -> RawWaker {
    raw::<W>(data)
}

fn wake<W: WakeById>(data: *const ()) {
    W::wake(data as usize as u64)
}

fn drop(_: *const ()) {}
