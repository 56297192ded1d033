//! A connected stream socket on the loop: asyncio's `_SelectorSocketTransport`.
//!
//! Reading: the socket is registered for reading once and stays registered while reading
//! is on, so a read costs one `recv` and no `epoll_ctl`. Each readable event does one
//! `recv` into a buffer shared by all transports of the thread and hands the bytes to the
//! protocol.
//!
//! Writing: `write` tries `send` at once; only what the kernel refuses is buffered, and
//! only then is a writer registered, to be removed again when the buffer drains. Above
//! the high-water mark (64 KiB by default, as asyncio) the protocol is told to pause;
//! below the low-water mark (16 KiB) to resume.
//!
//! Closing: `close` stops reading, flushes the buffer, then closes; `abort` closes at once.
//! Either way the fd is unregistered before it is closed, and `connection_lost` is called
//! once, from a callback of its own (as asyncio schedules it with `call_soon`).
//!
//! Memory: a server may hold many idle connections, so `Inner` keeps only what a
//! connection needs all the time. An idle transport owns no read buffer (reads share one
//! per thread), no write buffer (one is made when the kernel refuses bytes and dropped once
//! they are sent), and no addresses until someone asks for them.

use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use bytes::{Buf, BytesMut};

use super::protocol::Protocol;
use super::read_buffer::with_read_buffer;
use super::server::Server;
use crate::event_loop::EventLoop;
use crate::sys::socket::{SockAddr, Socket};

/// asyncio's default high-water mark for a transport's write buffer.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    /// `close()` was called; the write buffer is being flushed.
    Closing,
    Closed,
}

/// One connection's state. A server may hold many idle connections, so this stays small:
/// no fd beside the socket, and what most connections never need (a write buffer, the
/// addresses) behind boxes made when needed.
///
/// The fields every read and write touch come first, and `repr(C, align(64))` keeps them
/// in that order at the start of a cache line of their own (the `Rc` counts sit in the
/// line before, touched only when a handle is cloned or dropped). A streams connection
/// touches its transport twice per message (the read callback, then its task's `write`),
/// with the rest of the batch in between; the default layout spread these fields over
/// two or three lines and cost about two first-level cache misses more per echoed message
/// (callgrind's simulation, NOTES.md), for 82 bytes more per connection.
#[repr(C, align(64))]
struct Inner {
    /// The socket until the transport closes (its fd is what the loop watches).
    socket: RefCell<Option<Socket>>,
    /// The protocol until the transport closes.
    protocol: RefCell<Option<Rc<RefCell<dyn Protocol>>>>,
    /// What the kernel has not taken yet; `None` when nothing waits, so an idle
    /// connection keeps no buffer.
    write_buffer: RefCell<Option<Box<BytesMut>>>,
    state: Cell<State>,
    writer_registered: Cell<bool>,
    reading: Cell<bool>,
    read_paused: Cell<bool>,
    eof_requested: Cell<bool>,
    protocol_paused: Cell<bool>,
    event_loop: EventLoop,
    high_water: Cell<usize>,
    low_water: Cell<usize>,
    /// Looked up the first time they are asked for (most connections never ask).
    addresses: OnceCell<Box<Addresses>>,
    /// The server that accepted this connection, told when it closes (asyncio's
    /// `_server._detach()`).
    server: Option<Server>,
}

/// A connection's two addresses: asyncio's `sockname` and `peername` extra info.
struct Addresses {
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
}

/// A stream connection's transport (asyncio's `asyncio.Transport`): what a protocol
/// writes to and closes. Cloning gives another handle to the same connection.
#[derive(Clone)]
pub struct Transport {
    inner: Rc<Inner>,
}

impl Transport {
    /// Wraps a connected socket, calls the protocol's `connection_made` in the next
    /// iteration and starts reading right after (asyncio's `_SelectorSocketTransport`).
    /// A connection accepted by `server` counts as one of its connections until it
    /// closes (asyncio's `_server._attach()`).
    pub(crate) fn start(
        event_loop: &EventLoop,
        socket: Socket,
        protocol: Rc<RefCell<dyn Protocol>>,
        server: Option<Server>,
    ) -> Transport {
        if let Some(server) = &server {
            server.attach();
        }
        let transport = Transport {
            inner: Rc::new(Inner {
                event_loop: event_loop.clone(),
                addresses: OnceCell::new(),
                socket: RefCell::new(Some(socket)),
                protocol: RefCell::new(Some(protocol.clone())),
                state: Cell::new(State::Open),
                write_buffer: RefCell::new(None),
                writer_registered: Cell::new(false),
                reading: Cell::new(false),
                read_paused: Cell::new(false),
                eof_requested: Cell::new(false),
                protocol_paused: Cell::new(false),
                high_water: Cell::new(DEFAULT_HIGH_WATER),
                low_water: Cell::new(DEFAULT_HIGH_WATER / 4),
                server,
            }),
        };
        let starting = transport.clone();
        let scheduled = event_loop.call_soon(move || {
            protocol.borrow_mut().connection_made(&starting);
            if starting.inner.state.get() == State::Open && !starting.inner.read_paused.get() {
                starting.resume_reading();
            }
        });
        if scheduled.is_err() {
            transport.abort();
        }
        transport
    }

    /// Sends `data`, at once as far as the kernel takes it, buffering the rest (asyncio's
    /// `Transport.write`). Ignored once the transport is closing or after `write_eof`.
    pub fn write(&self, data: &[u8]) {
        let inner = &self.inner;
        if inner.state.get() != State::Open || inner.eof_requested.get() || data.is_empty() {
            return;
        }
        let mut sent = 0;
        if !self.has_buffered() {
            match self.send(data) {
                Ok(n) => sent = n,
                Err(error) => return self.fatal_error(error),
            }
            if sent == data.len() {
                return;
            }
        }
        inner.write_buffer.borrow_mut().get_or_insert_with(Box::default).extend_from_slice(&data[sent..]);
        self.register_writer();
        self.maybe_pause_protocol();
    }

    /// True while bytes wait in the write buffer.
    fn has_buffered(&self) -> bool {
        self.inner.write_buffer.borrow().is_some()
    }

    /// One `send`, with `EAGAIN` and `EINTR` meaning "nothing sent".
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        let socket = self.inner.socket.borrow();
        let Some(socket) = socket.as_ref() else { return Ok(0) };
        match socket.send(data) {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            result => result,
        }
    }

    fn register_writer(&self) {
        if self.inner.writer_registered.get() {
            return;
        }
        let Some(fd) = self.fd() else { return };
        self.inner.writer_registered.set(true);
        let transport = self.clone();
        if let Err(error) = self.inner.event_loop.add_writer(fd, move || transport.on_writable()) {
            self.inner.writer_registered.set(false);
            self.fatal_error(error);
        }
    }

    fn remove_writer(&self) {
        if self.inner.writer_registered.replace(false) {
            if let Some(fd) = self.fd() {
                let _ = self.inner.event_loop.remove_writer(fd);
            }
        }
    }

    /// The writer callback: flush what the kernel takes; when empty, drop the buffer and
    /// stop watching.
    fn on_writable(&self) {
        let inner = &self.inner;
        let result = {
            let mut slot = inner.write_buffer.borrow_mut();
            match slot.as_mut() {
                Some(buffer) => {
                    let result = self.send(buffer).map(|n| buffer.advance(n));
                    if buffer.is_empty() {
                        *slot = None;
                    }
                    result
                }
                None => Ok(()),
            }
        };
        if let Err(error) = result {
            return self.fatal_error(error);
        }
        self.maybe_resume_protocol();
        if self.has_buffered() {
            return;
        }
        self.remove_writer();
        if inner.eof_requested.get() {
            self.shutdown_write();
        }
        if inner.state.get() == State::Closing {
            self.finish_close(None);
        }
    }

    /// The reader callback: one `recv`, handed to the protocol.
    fn on_readable(&self) {
        let outcome = with_read_buffer(|buffer| self.read_into(buffer));
        match outcome {
            Ok(true) => {}
            Ok(false) => self.eof_received(),
            Err(error) => self.fatal_error(error),
        }
    }

    /// Reads once into `buffer` and delivers it; false at end of stream.
    fn read_into(&self, buffer: &mut [u8]) -> io::Result<bool> {
        let received = match self.inner.socket.borrow().as_ref() {
            Some(socket) => socket.recv(buffer),
            None => return Ok(true),
        };
        match received {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.with_protocol(|protocol| protocol.data_received(&buffer[..n]));
                Ok(true)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn eof_received(&self) {
        self.pause_reading();
        let keep_open = self.with_protocol(|protocol| protocol.eof_received()).unwrap_or(false);
        if !keep_open {
            self.close();
        }
    }

    /// Calls the protocol, unless it is gone or busy (re-entered from its own callback).
    fn with_protocol<R>(&self, f: impl FnOnce(&mut dyn Protocol) -> R) -> Option<R> {
        let protocol = self.inner.protocol.borrow().clone()?;
        let mut protocol = protocol.try_borrow_mut().ok()?;
        Some(f(&mut *protocol))
    }

    /// Calls the protocol now, or, if it is in the middle of one of its own callbacks
    /// (it wrote from `data_received`, say), right after that returns.
    fn notify_protocol(&self, f: fn(&mut dyn Protocol)) {
        if self.with_protocol(f).is_none() {
            let transport = self.clone();
            let _ = self.inner.event_loop.call_soon(move || {
                transport.with_protocol(f);
            });
        }
    }

    fn maybe_pause_protocol(&self) {
        let inner = &self.inner;
        if !inner.protocol_paused.get() && self.get_write_buffer_size() > inner.high_water.get() {
            inner.protocol_paused.set(true);
            self.notify_protocol(|protocol| protocol.pause_writing());
        }
    }

    fn maybe_resume_protocol(&self) {
        let inner = &self.inner;
        if inner.protocol_paused.get() && self.get_write_buffer_size() <= inner.low_water.get() {
            inner.protocol_paused.set(false);
            self.notify_protocol(|protocol| protocol.resume_writing());
        }
    }

    /// Closes the writing side once the buffer is flushed; reading goes on (asyncio's
    /// `Transport.write_eof`).
    pub fn write_eof(&self) {
        let inner = &self.inner;
        if inner.state.get() != State::Open || inner.eof_requested.replace(true) {
            return;
        }
        if !self.has_buffered() {
            self.shutdown_write();
        }
    }

    fn shutdown_write(&self) {
        if let Some(socket) = self.inner.socket.borrow().as_ref() {
            let _ = socket.shutdown(Shutdown::Write);
        }
    }

    /// True: this transport can `write_eof` (asyncio's `can_write_eof`).
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the connection after flushing what is buffered (asyncio's
    /// `Transport.close`); `connection_lost(None)` follows. Closing twice does nothing.
    pub fn close(&self) {
        let inner = &self.inner;
        if inner.state.get() != State::Open {
            return;
        }
        inner.state.set(State::Closing);
        self.pause_reading();
        if !self.has_buffered() {
            self.finish_close(None);
        }
    }

    /// Closes at once, dropping whatever is buffered (asyncio's `Transport.abort`).
    pub fn abort(&self) {
        self.finish_close(None);
    }

    fn fatal_error(&self, error: io::Error) {
        self.finish_close(Some(error));
    }

    /// Unregisters and closes the socket, then schedules `connection_lost`.
    fn finish_close(&self, error: Option<io::Error>) {
        let inner = &self.inner;
        if inner.state.replace(State::Closed) == State::Closed {
            return;
        }
        self.pause_reading();
        self.remove_writer();
        drop(inner.write_buffer.borrow_mut().take());
        let socket = inner.socket.borrow_mut().take();
        let protocol = inner.protocol.borrow_mut().take();
        let server = inner.server.clone();
        let lost = move || {
            drop(socket);
            if let Some(protocol) = protocol {
                protocol.borrow_mut().connection_lost(error);
            }
            if let Some(server) = server {
                server.detach();
            }
        };
        // The loop is closed: close here, without the protocol hearing of it.
        if let Err(e) = inner.event_loop.call_soon(lost) {
            drop(e);
        }
    }

    /// Stops reading until [`resume_reading`](Self::resume_reading) (asyncio's
    /// `Transport.pause_reading`): the reader is unregistered, so the kernel's buffer fills
    /// and the peer is slowed down.
    pub fn pause_reading(&self) {
        let inner = &self.inner;
        inner.read_paused.set(true);
        if inner.reading.replace(false) {
            if let Some(fd) = self.fd() {
                let _ = inner.event_loop.remove_reader(fd);
            }
        }
    }

    /// Starts reading again (asyncio's `Transport.resume_reading`).
    pub fn resume_reading(&self) {
        let inner = &self.inner;
        inner.read_paused.set(false);
        if inner.state.get() != State::Open || inner.reading.get() {
            return;
        }
        let Some(fd) = self.fd() else { return };
        inner.reading.set(true);
        let transport = self.clone();
        if let Err(error) = inner.event_loop.add_reader(fd, move || transport.on_readable()) {
            inner.reading.set(false);
            self.fatal_error(error);
        }
    }

    /// True while reading is on (asyncio's `Transport.is_reading`).
    pub fn is_reading(&self) -> bool {
        self.inner.reading.get()
    }

    /// True once `close` or `abort` was called (asyncio's `Transport.is_closing`).
    pub fn is_closing(&self) -> bool {
        self.inner.state.get() != State::Open
    }

    /// True once the socket is closed (aborted, failed, or flushed after `close`):
    /// `connection_lost` has run or is scheduled to.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.state.get() == State::Closed
    }

    /// Bytes buffered, waiting for the kernel (asyncio's `get_write_buffer_size`).
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.write_buffer.borrow().as_ref().map_or(0, |buffer| buffer.len())
    }

    /// Sets the flow-control marks (asyncio's `set_write_buffer_limits`): `high` defaults
    /// to 64 KiB, `low` to a quarter of `high`.
    pub fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) {
        let high = high.unwrap_or(DEFAULT_HIGH_WATER);
        let low = low.unwrap_or(high / 4).min(high);
        self.inner.high_water.set(high);
        self.inner.low_water.set(low);
        self.maybe_pause_protocol();
        self.maybe_resume_protocol();
    }

    /// The (high, low) flow-control marks (asyncio's `get_write_buffer_limits`).
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        (self.inner.high_water.get(), self.inner.low_water.get())
    }

    /// The remote address (asyncio's `get_extra_info("peername")`).
    ///
    /// asyncio calls `getpeername` and `getsockname` when the connection is made and keeps
    /// the answers. evloop makes both calls the first time either address is asked for,
    /// and keeps the answers from then on, so connections that never ask save the memory
    /// and the system calls. Asked for the first time once the peer has gone (a reset
    /// connection: `getpeername` fails with `ENOTCONN`), the peer address is `None`, as
    /// asyncio's is when `getpeername` fails; after the transport closed, both are `None`.
    pub fn peer_addr(&self) -> Option<&SockAddr> {
        self.addresses().peer.as_ref()
    }

    /// The local address (asyncio's `get_extra_info("sockname")`), looked up and kept as
    /// [`peer_addr`](Self::peer_addr) describes.
    pub fn local_addr(&self) -> Option<&SockAddr> {
        self.addresses().local.as_ref()
    }

    fn addresses(&self) -> &Addresses {
        self.inner.addresses.get_or_init(|| {
            let socket = self.inner.socket.borrow();
            Box::new(Addresses {
                local: socket.as_ref().and_then(|socket| socket.local_addr().ok()),
                peer: socket.as_ref().and_then(|socket| socket.peer_addr().ok()),
            })
        })
    }

    /// The socket's fd while it is open (asyncio's `get_extra_info("socket")`).
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.socket.borrow().as_ref().map(|s| s.as_raw_fd())
    }

    /// The loop this transport runs on.
    pub fn get_loop(&self) -> &EventLoop {
        &self.inner.event_loop
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("fd", &self.fd())
            .field("state", &self.inner.state.get())
            .field("peer", &self.inner.addresses.get().and_then(|a| a.peer.as_ref()))
            .field("buffered", &self.get_write_buffer_size())
            .finish()
    }
}
