//! Coroutines on the loop: tasks and the functions that combine them (asyncio's
//! `tasks.py` and `runners.py`).

mod as_completed;
mod completion;
mod gather;
mod run;
mod shield;
mod sleep;
mod task;
mod timeout;
mod wait;

pub use as_completed::{as_completed, AsCompleted};
pub use gather::{gather, gather_return_exceptions, gather_tuple, TaskTuple};
pub use run::run;
pub use shield::{shield, Shield};
pub use sleep::{sleep, Sleep};
pub use task::{all_tasks, create_task, current_task, RunError, Task, TaskError, TaskRef};
pub use timeout::{timeout, timeout_at, wait_for, Timeout, TimeoutError};
pub use wait::{wait, ReturnWhen};
