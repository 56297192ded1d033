//! Unix signals as loop callbacks (asyncio's `loop.add_signal_handler` and
//! `loop.remove_signal_handler`).
//!
//! The self-pipe design asyncio uses, whichever thread the kernel delivers a signal to:
//! the signal handler (in [`sys::signal`](crate::sys::signal)) only notes the signal and
//! writes to an eventfd; the loop watches that eventfd with `add_reader`, and when it is
//! readable schedules the callbacks of the signals that arrived with `call_soon`. So a
//! callback is ordinary loop code: it may touch anything the loop owns.
//!
//! Signal dispositions belong to the whole process, so one loop at a time handles
//! signals: the first to add a handler, until it removes its last one or closes.
//!
//! ```no_run
//! let event_loop = evloop::EventLoop::new()?;
//! let stopper = event_loop.clone();
//! event_loop.add_signal_handler(libc::SIGTERM, move || stopper.stop())?;
//! event_loop.run_forever()?; // until SIGTERM
//! event_loop.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::event_loop::{get_running_loop, EventLoop, LoopError};
use crate::sys::signal::{self, SavedAction};

/// Set while some loop handles signals.
static CLAIMED: AtomicBool = AtomicBool::new(false);

struct Handler {
    callback: Rc<RefCell<dyn FnMut()>>,
    /// What the signal did before this loop handled it.
    previous: SavedAction,
}

/// A loop's signal handlers, kept as a loop extension. Non-empty exactly while this loop
/// holds [`CLAIMED`].
#[derive(Default)]
struct SignalHandlers {
    handlers: RefCell<HashMap<i32, Handler>>,
}

impl Drop for SignalHandlers {
    /// The loop closed: every signal goes back to what it did before, and another loop
    /// may handle signals.
    fn drop(&mut self) {
        let handlers = std::mem::take(self.handlers.get_mut());
        if handlers.is_empty() {
            return;
        }
        for (number, handler) in &handlers {
            let _ = signal::restore(*number, &handler.previous);
        }
        CLAIMED.store(false, Ordering::Release);
    }
}

impl EventLoop {
    /// Runs `callback` on this loop whenever `signal` arrives (asyncio's
    /// `loop.add_signal_handler`), replacing an earlier handler of that signal.
    ///
    /// The callback runs as an ordinary callback (scheduled with `call_soon`) in the
    /// iteration after the loop sees the signal; several arrivals in between run it once.
    /// Errors: `InvalidInput` for a number out of range or a signal that cannot be caught
    /// (SIGKILL, SIGSTOP); `AlreadyExists` if another loop handles signals; `Closed` loop.
    pub fn add_signal_handler(&self, signal: i32, callback: impl FnMut() + 'static) -> io::Result<()> {
        if self.is_closed() {
            return Err(LoopError::Closed.into());
        }
        signal::check_catchable(signal)?;
        let registry = self.extension::<SignalHandlers>();
        let callback: Rc<RefCell<dyn FnMut()>> = Rc::new(RefCell::new(callback));
        if registry.handlers.borrow().contains_key(&signal) {
            // Dropped outside the borrow: a callback's destructor may call back in here.
            let replaced = registry
                .handlers
                .borrow_mut()
                .get_mut(&signal)
                .map(|h| std::mem::replace(&mut h.callback, callback));
            drop(replaced);
            return Ok(());
        }
        let first = registry.handlers.borrow().is_empty();
        if first {
            self.start_watching()?;
        }
        match signal::install(signal) {
            Ok(previous) => {
                registry.handlers.borrow_mut().insert(signal, Handler { callback, previous });
                Ok(())
            }
            Err(e) => {
                if first {
                    self.stop_watching()?;
                }
                Err(e)
            }
        }
    }

    /// Stops handling `signal` and puts back what it did before (asyncio's
    /// `loop.remove_signal_handler`; for a program that had not touched it, its default
    /// action). True if there was a handler; an error for a number out of range.
    pub fn remove_signal_handler(&self, signal: i32) -> io::Result<bool> {
        signal::check_range(signal)?;
        let Some(registry) = self.existing_extension::<SignalHandlers>() else { return Ok(false) };
        let removed = registry.handlers.borrow_mut().remove(&signal);
        let Some(handler) = removed else { return Ok(false) };
        signal::restore(signal, &handler.previous)?;
        if registry.handlers.borrow().is_empty() {
            self.stop_watching()?;
        }
        Ok(true)
    }

    /// Claims signal handling for this loop and watches the wake-up eventfd.
    fn start_watching(&self) -> io::Result<()> {
        if CLAIMED.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "another event loop is handling signals",
            ));
        }
        signal::take_pending(|_| {}); // forget what arrived while no loop was watching
        let watched = signal::wakeup().and_then(|fd| self.add_reader(fd.as_raw_fd(), dispatch_signals));
        if watched.is_err() {
            CLAIMED.store(false, Ordering::Release);
        }
        watched
    }

    fn stop_watching(&self) -> io::Result<()> {
        let fd = signal::wakeup()?;
        self.remove_reader(fd.as_raw_fd())?;
        CLAIMED.store(false, Ordering::Release);
        Ok(())
    }
}

/// The reader of the wake-up eventfd: schedules the callback of each signal that arrived
/// (asyncio's `_process_self_data` and `_handle_signal`).
fn dispatch_signals() {
    let Ok(event_loop) = get_running_loop() else { return };
    let Some(registry) = event_loop.existing_extension::<SignalHandlers>() else { return };
    signal::take_pending(|number| {
        let callback = registry.handlers.borrow().get(&number).map(|h| h.callback.clone());
        if let Some(callback) = callback {
            let _ = event_loop.call_soon(move || (callback.borrow_mut())());
        }
    });
}
