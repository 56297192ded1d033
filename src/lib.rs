//! evloop: Python's asyncio rebuilt in Rust, from scratch, on raw Linux epoll.
//!
//! One thread; a hand-written [`Selector`](selector::Selector) over epoll; a
//! [`TimerHeap`](timer::TimerHeap) behind `call_at` / `call_later`; a ready queue of
//! callbacks behind `call_soon`; all turned by [`EventLoop::run_once`], which reads like
//! asyncio's `_run_once`. Names follow asyncio wherever asyncio has the concept; see
//! NOTES.md for the one-to-one table and a traced iteration of the loop.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let event_loop = evloop::EventLoop::new()?;
//! let order = Rc::new(RefCell::new(Vec::new()));
//! for (delay, name) in [(20, "second"), (10, "first")] {
//!     let order = order.clone();
//!     event_loop.call_later(Duration::from_millis(delay), move || order.borrow_mut().push(name))?;
//! }
//! let stopper = event_loop.clone();
//! event_loop.call_later(Duration::from_millis(30), move || stopper.stop())?;
//! event_loop.run_forever()?;
//! assert_eq!(*order.borrow(), ["first", "second"]);
//! event_loop.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod deterministic;
pub mod event_loop;
pub mod executor;
pub mod future;
pub mod http;
pub mod rng;
pub mod selector;
pub mod signals;
pub mod streams;
pub mod sync;
pub mod sys;
pub mod tasks;
pub mod timer;
pub mod transport;

pub use event_loop::{
    default_exception_handler, first_divergence, get_running_loop, ClockHold, ClockJump, EventLoop,
    EventLoopBuilder, ExceptionContext, Handle, IterationRecord, LoopError, LoopHealth, LoopStats,
    NotQuiescent, RemoteLoop, TaskId, TimerHandle, POLL_IO_EVERY,
};
pub use executor::{
    run_coroutine_threadsafe, ConcurrentError, ConcurrentFuture, ExecutorError, ExecutorFuture,
};
pub use future::{DoneCallbackId, Future, FutureError};
pub use selector::Interest;
pub use sys::faults::{FaultCounts, FaultPlan};
pub use tasks::{
    all_tasks, as_completed, create_task, current_task, gather, gather_return_exceptions, run, shield, sleep,
    timeout, timeout_at, wait, wait_for, ReturnWhen, RunError, Task, TaskError, TaskRef, TimeoutError,
};
