//! The selector: which file descriptors the loop watches, and which of them are ready.
//!
//! It mirrors Python's `selectors.EpollSelector`: `register(fd, events, data)`, `modify`,
//! `unregister`, `select(timeout)`. Like Python's, it keeps its own table of registrations,
//! so registering an fd twice or touching an unknown fd is a clear error instead of whatever
//! the kernel happens to say. Registration is level-triggered and persists across reads:
//! the loop calls `epoll_ctl` only when an fd's interest set really changes.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::BitOr;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::sys::epoll::{self, Epoll, RawEvent};

/// What a registration waits for: readable, writable, or both (Python's `EVENT_READ` and
/// `EVENT_WRITE`). Combine with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// Nothing: not a valid registration, but the neutral value for `|`.
    pub const NONE: Interest = Interest(0);
    /// Wait until the fd is readable (`selectors.EVENT_READ`).
    pub const READ: Interest = Interest(1);
    /// Wait until the fd is writable (`selectors.EVENT_WRITE`).
    pub const WRITE: Interest = Interest(2);
    /// Both.
    pub const READ_WRITE: Interest = Interest(3);

    /// True if this includes readability.
    pub fn is_readable(self) -> bool {
        self.0 & Interest::READ.0 != 0
    }

    /// True if this includes writability.
    pub fn is_writable(self) -> bool {
        self.0 & Interest::WRITE.0 != 0
    }

    /// True if this is [`Interest::NONE`].
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// This interest without the parts in `other`.
    pub fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    fn to_epoll(self) -> u32 {
        let mut bits = 0;
        if self.is_readable() {
            bits |= epoll::EPOLLIN;
        }
        if self.is_writable() {
            bits |= epoll::EPOLLOUT;
        }
        bits
    }

    /// EPOLLHUP and EPOLLERR wake both sides: a reader must see EOF or the error, and a
    /// writer blocked on a dead peer must see its send fail rather than wait forever.
    fn from_epoll(bits: u32) -> Interest {
        let mut ready = Interest::NONE;
        if bits & (epoll::EPOLLIN | epoll::EPOLLHUP | epoll::EPOLLERR | epoll::EPOLLRDHUP) != 0 {
            ready = ready | Interest::READ;
        }
        if bits & (epoll::EPOLLOUT | epoll::EPOLLHUP | epoll::EPOLLERR) != 0 {
            ready = ready | Interest::WRITE;
        }
        ready
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE"),
            (true, false) => f.write_str("READ"),
            (false, true) => f.write_str("WRITE"),
            (true, true) => f.write_str("READ | WRITE"),
        }
    }
}

/// One ready fd, as `select` reports it: the token it was registered with and what it is
/// ready for (Python's `(key, events)` pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The token given to `register` / `modify`.
    pub token: u64,
    /// What the fd is ready for; may include more than was asked (see `Interest`).
    pub ready: Interest,
}

/// An epoll-backed selector with its own registration table (Python's `EpollSelector`).
pub struct Selector {
    epoll: Epoll,
    registered: HashMap<RawFd, Interest>,
    buffer: Vec<RawEvent>,
}

impl Selector {
    /// A new selector with nothing registered (`selectors.EpollSelector()`).
    pub fn new() -> io::Result<Selector> {
        Ok(Selector { epoll: Epoll::new()?, registered: HashMap::new(), buffer: Vec::new() })
    }

    /// Starts watching `fd` for `interest`; `select` reports it with `token`.
    /// Registering an fd that is already registered is an `AlreadyExists` error.
    pub fn register(&mut self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        check_interest(interest)?;
        if self.registered.contains_key(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("fd {fd} is already registered with the selector"),
            ));
        }
        self.epoll.add(fd, interest.to_epoll(), token)?;
        self.registered.insert(fd, interest);
        Ok(())
    }

    /// Changes what a registered `fd` is watched for, and its token.
    /// An fd that is not registered is a `NotFound` error.
    pub fn modify(&mut self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        check_interest(interest)?;
        let current = self.registered.get_mut(&fd).ok_or_else(|| not_registered(fd))?;
        match self.epoll.modify(fd, interest.to_epoll(), token) {
            // The fd was closed and its number reused since it was registered: the kernel
            // forgot the old one, so this is a fresh registration of the new file.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.epoll.add(fd, interest.to_epoll(), token)?
            }
            other => other?,
        }
        *current = interest;
        Ok(())
    }

    /// Stops watching `fd`. An fd that is not registered is a `NotFound` error.
    ///
    /// If the fd was already closed, the kernel has dropped it from the epoll set by itself;
    /// the table entry is removed all the same and no error is reported, so a caller that
    /// closed first and unregistered second is not punished for the order.
    pub fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.registered.remove(&fd).ok_or_else(|| not_registered(fd))?;
        match self.epoll.delete(fd) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOENT)) => Ok(()),
            other => other,
        }
    }

    /// What `fd` is registered for, if it is registered (Python's `get_key`).
    pub fn interest(&self, fd: RawFd) -> Option<Interest> {
        self.registered.get(&fd).copied()
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.registered.len()
    }

    /// True if no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// Waits until at least one registered fd is ready or `timeout` passes (`None`: no
    /// limit; zero: just poll), then returns the ready ones.
    ///
    /// The event buffer is reused between calls and grows with the number of registrations,
    /// so one call can report every ready fd without allocating.
    pub fn select(&mut self, timeout: Option<Duration>) -> io::Result<impl Iterator<Item = Event> + '_> {
        let wanted = self.registered.len().max(1);
        if self.buffer.len() < wanted {
            self.buffer.resize(wanted, epoll::empty_event());
        }
        let n = self.epoll.wait(&mut self.buffer, timeout)?;
        Ok(self.buffer[..n].iter().map(|raw| {
            // Copy out of the (packed) kernel struct before using the fields.
            let (bits, token) = (raw.events, raw.u64);
            Event { token, ready: Interest::from_epoll(bits) }
        }))
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector").field("registered", &self.registered).finish()
    }
}

fn check_interest(interest: Interest) -> io::Result<()> {
    if interest.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interest must be READ, WRITE or both"));
    }
    Ok(())
}

fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("fd {fd} is not registered with the selector"))
}
