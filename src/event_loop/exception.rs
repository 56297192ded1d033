//! What the loop does with a panic it caught: asyncio's exception handler and its context.

use std::any::Any;
use std::fmt;
use std::panic::Location;

/// What went wrong in a callback or task, handed to the loop's exception handler
/// (asyncio's `context` dict: `message`, `exception`, `source_traceback`).
#[derive(Clone, Debug)]
pub struct ExceptionContext {
    /// What failed, e.g. "callback panicked" or "task 'fetch-3' panicked".
    pub message: String,
    /// The panic's own message, if a panic caused this.
    pub exception: Option<String>,
    /// Where the failing callback was scheduled or the task was created.
    pub scheduled_at: Option<&'static Location<'static>>,
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(exception) = &self.exception {
            write!(f, ": {exception}")?;
        }
        if let Some(location) = self.scheduled_at {
            write!(f, " (scheduled at {location})")?;
        }
        Ok(())
    }
}

/// The text of a panic payload: the `&str` or `String` given to `panic!`, if it was one.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Prints the context to stderr (asyncio's `default_exception_handler` logs it).
pub fn default_exception_handler(context: &ExceptionContext) {
    eprintln!("evloop: {context}");
}
