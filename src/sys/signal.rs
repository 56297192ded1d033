//! Signals, the self-pipe way (what asyncio builds on `signal.set_wakeup_fd`).
//!
//! A signal can arrive on any thread, between any two instructions, so its handler may do
//! almost nothing: here it sets the signal's pending flag (an atomic store) and writes to
//! a process-wide eventfd, both async-signal-safe. The loop that handles signals watches
//! that eventfd with `add_reader`; when it becomes readable, [`take_pending`] says which
//! signals arrived and the loop runs their callbacks as ordinary callbacks.
//!
//! The eventfd is created once and never closed, so a late signal can never write into a
//! file that has reused its number.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

use super::check;
use super::eventfd::EventFd;

/// One more than the highest signal number on Linux (64, the real-time signals included),
/// like Python's `signal.NSIG`.
pub const NSIG: i32 = 65;

/// The eventfd the handler writes to; [`WAKEUP_FD`] is its number, for the handler.
static WAKEUP: OnceLock<EventFd> = OnceLock::new();
static WAKEUP_FD: AtomicI32 = AtomicI32::new(-1);
/// One flag per signal number: set by the handler, cleared by [`take_pending`].
static PENDING: [AtomicBool; NSIG as usize] = [const { AtomicBool::new(false) }; NSIG as usize];

/// The process-wide eventfd that becomes readable when a handled signal arrives (created
/// on first use, never closed).
pub fn wakeup() -> io::Result<&'static EventFd> {
    if let Some(fd) = WAKEUP.get() {
        return Ok(fd);
    }
    let created = EventFd::new()?;
    // If another thread got there first, its eventfd wins and ours is closed.
    let fd = WAKEUP.get_or_init(|| created);
    WAKEUP_FD.store(fd.as_raw_fd(), Ordering::Release);
    Ok(fd)
}

/// Calls `f` with each signal number that arrived since the last call, lowest first, and
/// resets the wake-up eventfd. A signal that arrives twice in between is reported once, as
/// the kernel itself merges pending signals.
pub fn take_pending(mut f: impl FnMut(i32)) {
    // Drain first: a signal arriving after this leaves the eventfd readable again.
    if let Some(fd) = WAKEUP.get() {
        let _ = fd.drain();
    }
    for (signal, flag) in PENDING.iter().enumerate() {
        if flag.swap(false, Ordering::AcqRel) {
            f(signal as i32);
        }
    }
}

/// The handler installed for every handled signal. Only async-signal-safe work: atomic
/// operations and one `write(2)`.
extern "C" fn on_signal(signal: libc::c_int) {
    if let Some(flag) = usize::try_from(signal).ok().and_then(|i| PENDING.get(i)) {
        flag.store(true, Ordering::Release);
    }
    let fd = WAKEUP_FD.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    // SAFETY: `__errno_location` returns this thread's errno, valid for the thread's life;
    // we restore it so the interrupted code never sees errno change under it. `write` is
    // async-signal-safe and gets a pointer to 8 initialised bytes on the stack; `fd` is
    // the eventfd, which is never closed. A full counter (EAGAIN) means it is readable
    // already, so the result can be ignored.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        let one: u64 = 1;
        libc::write(fd, (&one as *const u64).cast(), std::mem::size_of::<u64>());
        *errno = saved;
    }
}

/// A signal's disposition before [`install`] replaced it, to put back with [`restore`].
pub struct SavedAction(libc::sigaction);

/// What the process does now when `signal` arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The default action (`SIG_DFL`): terminate, ignore, stop... depending on the signal.
    Default,
    /// Ignored (`SIG_IGN`).
    Ignore,
    /// A handler runs (this module's or someone else's).
    Handler,
}

/// An error unless `signal` is a signal number (1 to [`NSIG`] - 1).
pub fn check_range(signal: i32) -> io::Result<()> {
    if (1..NSIG).contains(&signal) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} is out of range (1 to {})", NSIG - 1),
        ))
    }
}

/// An error unless a handler can be installed for `signal`: in range, and not SIGKILL or
/// SIGSTOP, which no process can catch.
pub fn check_catchable(signal: i32) -> io::Result<()> {
    check_range(signal)?;
    let name = match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSTOP => "SIGSTOP",
        _ => return Ok(()),
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("signal {signal} ({name}) cannot be caught")))
}

/// Makes `signal` set its pending flag and wake the [`wakeup`] eventfd (`sigaction` with
/// `SA_RESTART`, so interrupted system calls resume). Returns the disposition it replaced.
pub fn install(signal: i32) -> io::Result<SavedAction> {
    check_catchable(signal)?;
    wakeup()?;
    // SAFETY: an all-zero sigaction is valid: no handler (SIG_DFL), no flags, and a null
    // `sa_restorer`; we then set the handler, the flags and an empty mask.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t we own.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: as above, all-zero is a valid sigaction; the kernel overwrites it.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers point to sigaction structs that live across the call, and the
    // handler does only async-signal-safe work.
    check(unsafe { libc::sigaction(signal, &action, &mut previous) }).map_err(|e| explain(signal, e))?;
    Ok(SavedAction(previous))
}

/// Puts back the disposition `signal` had before [`install`].
pub fn restore(signal: i32, saved: &SavedAction) -> io::Result<()> {
    // SAFETY: `saved` holds a sigaction the kernel gave us for this signal; the old-action
    // pointer may be null.
    check(unsafe { libc::sigaction(signal, &saved.0, std::ptr::null_mut()) })?;
    Ok(())
}

/// What `signal` does now (asyncio checks this as `signal.getsignal`).
pub fn disposition(signal: i32) -> io::Result<Disposition> {
    check_range(signal)?;
    // SAFETY: all-zero is a valid sigaction; the kernel overwrites it.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `current`, which lives
    // across the call.
    check(unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) })?;
    Ok(match current.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// Sets `signal` back to its default action or to ignored (Python's `signal.signal(sig,
/// SIG_DFL)` / `SIG_IGN`). A process started in the background by a non-interactive shell
/// inherits SIGINT ignored, for instance; tests use this to start from a known state.
/// `Disposition::Handler` is refused: handlers are installed with [`install`].
pub fn set_disposition(signal: i32, to: Disposition) -> io::Result<()> {
    check_catchable(signal)?;
    let handler = match to {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Handler => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a handler is installed with install()"))
        }
    };
    // SAFETY: an all-zero sigaction is valid (SIG_DFL, no flags, empty mask, null restorer);
    // only its handler is set, to SIG_DFL or SIG_IGN, which run no code of ours.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    // SAFETY: `action` lives across the call; the old-action pointer may be null.
    check(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })
        .map_err(|e| explain(signal, e))?;
    Ok(())
}

/// Sends `signal` to the calling thread (`raise(3)`), e.g. to test a handler.
pub fn raise(signal: i32) -> io::Result<()> {
    check_range(signal)?;
    // SAFETY: raise takes no pointers. The signal's handler, if any, runs before it returns.
    if unsafe { libc::raise(signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A clearer error for the signals glibc keeps for itself (32 and 33), which `sigaction`
/// refuses with EINVAL.
fn explain(signal: i32, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EINVAL) {
        io::Error::new(io::ErrorKind::InvalidInput, format!("signal {signal} cannot be caught"))
    } else {
        e
    }
}
