//! epoll(7): the kernel's readiness queue, wrapped as an owned object.
//!
//! The selector above uses it level-triggered: a ready fd is reported on every wait until
//! the condition is consumed, which is what `selectors.EpollSelector` does in Python.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::check;

/// The event record the kernel fills in; re-exported so callers can size a buffer of them.
pub use libc::epoll_event as RawEvent;

/// Readable (`EPOLLIN`), as the kernel reports it.
pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
/// Writable (`EPOLLOUT`).
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
/// The peer hung up (`EPOLLHUP`); always reported, never requested.
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
/// An error is pending on the fd (`EPOLLERR`); always reported, never requested.
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
/// The peer shut down its writing half (`EPOLLRDHUP`).
pub const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;

/// An epoll instance, closed on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`: a new, empty interest list.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a fresh fd that
        // nothing else owns, so handing it to OwnedFd gives it exactly one owner.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: see above: `fd` is a valid, newly created descriptor owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// `EPOLL_CTL_ADD`: start watching `fd` for `events`, reporting `token` with them.
    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    /// `EPOLL_CTL_MOD`: change what `fd` is watched for, and its token.
    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    /// `EPOLL_CTL_DEL`: stop watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a valid, initialised epoll_event that lives across the call; the
        // kernel only reads it (DEL ignores it). A bad `fd` is reported as EBADF, not UB.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    /// `epoll_wait`: fills `events` with ready fds and returns how many it filled.
    ///
    /// `timeout` of `None` blocks until an event; otherwise it is rounded *up* to whole
    /// milliseconds, so a caller waiting for a timer never wakes a hair too early and spins.
    /// A signal interrupting the wait (`EINTR`) restarts it with the time that is left.
    pub fn wait(&self, events: &mut [RawEvent], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let capacity = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        loop {
            let millis = match deadline {
                None => -1,
                Some(deadline) => ceil_millis(deadline.saturating_duration_since(Instant::now())),
            };
            // SAFETY: `events` is a live, writable buffer of `capacity` epoll_event records;
            // the kernel writes at most `capacity` of them and returns how many it wrote.
            let ret = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), capacity, millis) };
            match check(ret) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A zeroed event record, to fill a buffer before the kernel writes into it.
pub fn empty_event() -> RawEvent {
    libc::epoll_event { events: 0, u64: 0 }
}

/// Whole milliseconds, rounded up, saturating at the largest timeout epoll accepts.
fn ceil_millis(d: Duration) -> libc::c_int {
    let millis = d.as_nanos().div_ceil(1_000_000);
    millis.min(libc::c_int::MAX as u128) as libc::c_int
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up() {
        assert_eq!(ceil_millis(Duration::ZERO), 0);
        assert_eq!(ceil_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::from_secs(u64::MAX)), libc::c_int::MAX);
    }
}
