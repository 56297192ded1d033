//! The reader and writer callbacks of each watched fd (asyncio keeps them as the
//! `(reader, writer)` pair in each selector key's data).
//!
//! This table owns the selector and is the one place that decides when to call
//! `epoll_ctl`: only when an fd's interest set really changes. An fd stays registered
//! across reads for as long as it has a callback.
//!
//! Each registration gets a generation, carried in the epoll token next to the fd number,
//! so an event that belongs to an earlier registration of a reused fd number is ignored.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use super::handle::Callback;
use crate::selector::{Interest, Selector};

/// The token of the loop's own wake-up eventfd; no user fd can produce it.
pub(crate) const WAKEUP_TOKEN: u64 = u64::MAX;

/// Which of an fd's two callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Reader,
    Writer,
}

impl Side {
    fn interest(self) -> Interest {
        match self {
            Side::Reader => Interest::READ,
            Side::Writer => Interest::WRITE,
        }
    }
}

/// What `set` returns: the replaced callback, or the error and the refused callback.
pub(crate) type SetResult = Result<Option<Rc<dyn Callback>>, (io::Error, Rc<dyn Callback>)>;

#[derive(Default)]
struct FdEntry {
    generation: u32,
    reader: Option<Rc<dyn Callback>>,
    writer: Option<Rc<dyn Callback>>,
}

impl FdEntry {
    fn interest(&self) -> Interest {
        let mut interest = Interest::NONE;
        if self.reader.is_some() {
            interest = interest | Interest::READ;
        }
        if self.writer.is_some() {
            interest = interest | Interest::WRITE;
        }
        interest
    }

    fn side(&mut self, side: Side) -> &mut Option<Rc<dyn Callback>> {
        match side {
            Side::Reader => &mut self.reader,
            Side::Writer => &mut self.writer,
        }
    }
}

/// What one `select` call found.
pub(crate) struct Polled {
    /// Events the kernel reported, the wake-up eventfd's included.
    pub events: usize,
    /// True if the wake-up eventfd was among them.
    pub woken: bool,
}

/// The fd → (reader, writer) table and the selector behind it.
pub(crate) struct FdCallbacks {
    selector: Selector,
    entries: Vec<FdEntry>,
    next_generation: u32,
    watched: usize,
}

impl FdCallbacks {
    pub(crate) fn new() -> io::Result<FdCallbacks> {
        Ok(FdCallbacks { selector: Selector::new()?, entries: Vec::new(), next_generation: 1, watched: 0 })
    }

    /// Registers the loop's own eventfd, reported as [`WAKEUP_TOKEN`].
    pub(crate) fn register_wakeup(&mut self, fd: RawFd) -> io::Result<()> {
        self.selector.register(fd, Interest::READ, WAKEUP_TOKEN)
    }

    /// Installs `callback` as `fd`'s reader or writer; returns the one it replaces.
    ///
    /// The selector is asked first, so an fd the kernel refuses (closed, a huge number)
    /// leaves no trace; the refused callback comes back with the error, for the caller to
    /// drop outside any borrow of the loop.
    pub(crate) fn set(&mut self, fd: RawFd, side: Side, callback: Rc<dyn Callback>) -> SetResult {
        let index = match fd_index(fd) {
            Ok(index) => index,
            Err(error) => return Err((error, callback)),
        };
        let before = self.entries.get(index).map_or(Interest::NONE, FdEntry::interest);
        let generation = match self.entries.get(index) {
            Some(entry) if !before.is_empty() => entry.generation,
            _ => self.next_generation,
        };
        if let Err(error) = self.update_selector(fd, before, before | side.interest(), generation) {
            return Err((error, callback));
        }
        if before.is_empty() {
            self.next_generation = self.next_generation.wrapping_add(1).max(1);
        }
        if index >= self.entries.len() {
            self.entries.resize_with(index + 1, FdEntry::default);
        }
        let entry = &mut self.entries[index];
        entry.generation = generation;
        Ok(entry.side(side).replace(callback))
    }

    /// Removes `fd`'s reader or writer. Returns the removed callback (for the caller to
    /// drop outside any borrow) and whether the selector agreed; the table entry is gone
    /// either way.
    pub(crate) fn remove(&mut self, fd: RawFd, side: Side) -> (Option<Rc<dyn Callback>>, io::Result<()>) {
        let Some(entry) = usize::try_from(fd).ok().and_then(|i| self.entries.get_mut(i)) else {
            return (None, Ok(()));
        };
        let before = entry.interest();
        let removed = entry.side(side).take();
        let (after, generation) = (entry.interest(), entry.generation);
        let updated = self.update_selector(fd, before, after, generation);
        (removed, updated)
    }

    /// Tells the selector that `fd`'s interest goes from `before` to `after`, if it changes.
    fn update_selector(
        &mut self,
        fd: RawFd,
        before: Interest,
        after: Interest,
        generation: u32,
    ) -> io::Result<()> {
        if after == before {
            return Ok(());
        }
        if before.is_empty() {
            self.selector.register(fd, after, token(fd, generation))?;
            self.watched += 1;
        } else if after.is_empty() {
            self.watched -= 1;
            self.selector.unregister(fd)?;
        } else {
            self.selector.modify(fd, after, token(fd, generation))?;
        }
        Ok(())
    }

    /// Waits for readiness (see [`Selector::select`]) and hands every callback of a ready
    /// fd to `on_ready`: the reader if it is readable, the writer if it is writable.
    /// If `seen` is given, each user fd's event is also appended to it (for the flight
    /// recorder).
    pub(crate) fn select(
        &mut self,
        timeout: Option<Duration>,
        mut on_ready: impl FnMut(&Rc<dyn Callback>),
        mut seen: Option<&mut Vec<(RawFd, Interest)>>,
    ) -> io::Result<Polled> {
        let mut polled = Polled { events: 0, woken: false };
        for event in self.selector.select(timeout)? {
            polled.events += 1;
            if event.token == WAKEUP_TOKEN {
                polled.woken = true;
                continue;
            }
            let (fd, generation) = (event.token as u32 as usize, (event.token >> 32) as u32);
            let Some(entry) = self.entries.get(fd).filter(|e| e.generation == generation) else {
                continue;
            };
            if let Some(seen) = seen.as_deref_mut() {
                seen.push((fd as RawFd, event.ready));
            }
            if event.ready.is_readable() {
                entry.reader.iter().for_each(&mut on_ready);
            }
            if event.ready.is_writable() {
                entry.writer.iter().for_each(&mut on_ready);
            }
        }
        Ok(polled)
    }

    /// How many user fds are registered (the wake-up eventfd not counted).
    pub(crate) fn watched(&self) -> usize {
        self.watched
    }

    /// The user fds registered, in increasing order.
    pub(crate) fn watched_fds(&self) -> Vec<RawFd> {
        let registered = self.entries.iter().enumerate().filter(|(_, entry)| !entry.interest().is_empty());
        registered.map(|(fd, _)| fd as RawFd).collect()
    }

    /// What `fd` is registered for, if anything.
    pub(crate) fn interest(&self, fd: RawFd) -> Option<Interest> {
        let entry = self.entries.get(usize::try_from(fd).ok()?)?;
        Some(entry.interest()).filter(|interest| !interest.is_empty())
    }

    /// Unregisters every user fd and returns all their callbacks (for `close`).
    pub(crate) fn clear(&mut self) -> Vec<Rc<dyn Callback>> {
        let mut callbacks = Vec::new();
        for (fd, entry) in self.entries.iter_mut().enumerate() {
            if entry.interest().is_empty() {
                continue;
            }
            let _ = self.selector.unregister(fd as RawFd);
            callbacks.extend(entry.reader.take());
            callbacks.extend(entry.writer.take());
        }
        self.watched = 0;
        callbacks
    }
}

fn token(fd: RawFd, generation: u32) -> u64 {
    (fd as u32 as u64) | ((generation as u64) << 32)
}

fn fd_index(fd: RawFd) -> io::Result<usize> {
    usize::try_from(fd).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid fd {fd}")))
}
