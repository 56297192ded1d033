//! eventfd(2): a kernel counter that is readable while non-zero. Another thread writes to it
//! to wake the loop out of `epoll_wait`; the loop reads it to reset it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, check_size};

/// A non-blocking, close-on-exec eventfd, closed on drop. `Sync`: any thread may `notify`.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a fresh descriptor.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just created and is owned by nothing else.
        Ok(EventFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Adds one to the counter, making the fd readable. Never blocks: if the counter is
    /// (absurdly) full, it is readable already and EAGAIN is treated as success.
    pub fn notify(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: we pass a pointer to 8 initialised bytes that live across the call.
        let ret = unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), std::mem::size_of::<u64>())
        };
        match check_size(ret) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads and resets the counter; returns 0 if it was already zero.
    pub fn drain(&self) -> io::Result<u64> {
        let mut value: u64 = 0;
        // SAFETY: we pass a pointer to 8 writable bytes that live across the call.
        let ret = unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), std::mem::size_of::<u64>())
        };
        match check_size(ret) {
            Ok(_) => Ok(value),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
