//! UDP (and Unix datagram) endpoints: asyncio's `create_datagram_endpoint` and its
//! `_SelectorDatagramTransport`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use super::protocol::DatagramProtocol;
use super::read_buffer::with_read_buffer;
use crate::event_loop::EventLoop;
use crate::sys::socket::{Kind, SockAddr, Socket};

struct Inner {
    event_loop: EventLoop,
    fd: RawFd,
    socket: RefCell<Option<Socket>>,
    protocol: RefCell<Option<Rc<RefCell<dyn DatagramProtocol>>>>,
    remote: Option<SockAddr>,
    pending: RefCell<VecDeque<(Vec<u8>, Option<SockAddr>)>>,
    writer_registered: Cell<bool>,
    closed: Cell<bool>,
}

/// A datagram endpoint's transport (asyncio's `asyncio.DatagramTransport`).
#[derive(Clone)]
pub struct DatagramTransport {
    inner: Rc<Inner>,
}

impl EventLoop {
    /// Opens a datagram endpoint (asyncio's `loop.create_datagram_endpoint`): bound to
    /// `local` if given, connected to `remote` if given (then `sendto(data, None)` sends
    /// there and only its datagrams arrive). At least one of the two is needed to choose
    /// the address family.
    pub async fn create_datagram_endpoint<P: DatagramProtocol>(
        &self,
        protocol_factory: impl FnOnce() -> P,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) -> io::Result<(DatagramTransport, Rc<RefCell<P>>)> {
        let family_of = local.or(remote).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a datagram endpoint needs a local or a remote address",
            )
        })?;
        let socket = Socket::new(SockAddr::Inet(family_of).family(), Kind::Datagram)?;
        if let Some(local) = local {
            socket.bind(&SockAddr::Inet(local))?;
        }
        if let Some(remote) = remote {
            self.sock_connect(&socket, &SockAddr::Inet(remote)).await?;
        }
        let protocol = Rc::new(RefCell::new(protocol_factory()));
        let transport = DatagramTransport::start(self, socket, remote.map(SockAddr::Inet), protocol.clone());
        Ok((transport, protocol))
    }
}

impl DatagramTransport {
    fn start(
        event_loop: &EventLoop,
        socket: Socket,
        remote: Option<SockAddr>,
        protocol: Rc<RefCell<dyn DatagramProtocol>>,
    ) -> DatagramTransport {
        let transport = DatagramTransport {
            inner: Rc::new(Inner {
                event_loop: event_loop.clone(),
                fd: socket.as_raw_fd(),
                socket: RefCell::new(Some(socket)),
                protocol: RefCell::new(Some(protocol.clone())),
                remote,
                pending: RefCell::new(VecDeque::new()),
                writer_registered: Cell::new(false),
                closed: Cell::new(false),
            }),
        };
        let starting = transport.clone();
        let _ = event_loop.call_soon(move || {
            protocol.borrow_mut().connection_made(&starting);
            if starting.inner.closed.get() {
                return;
            }
            let reader = starting.clone();
            if let Err(error) =
                starting.inner.event_loop.add_reader(starting.inner.fd, move || reader.on_readable())
            {
                starting.close_with(Some(error));
            }
        });
        transport
    }

    fn on_readable(&self) {
        with_read_buffer(|buffer| {
            let received = match self.inner.socket.borrow().as_ref() {
                Some(socket) => socket.recv_from(buffer),
                None => return,
            };
            let protocol = self.inner.protocol.borrow().clone();
            let Some(protocol) = protocol else { return };
            match received {
                Ok((n, from)) => protocol.borrow_mut().datagram_received(&buffer[..n], from),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => protocol.borrow_mut().error_received(e),
            }
        });
    }

    /// Sends one datagram to `addr`, or to the connected remote for `None` (asyncio's
    /// `DatagramTransport.sendto`). If the kernel cannot take it now it is queued.
    pub fn sendto(&self, data: &[u8], addr: Option<SockAddr>) {
        if self.inner.closed.get() {
            return;
        }
        if self.inner.pending.borrow().is_empty() {
            match self.send_one(data, addr.as_ref()) {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => return self.report(error),
            }
        }
        self.inner.pending.borrow_mut().push_back((data.to_vec(), addr));
        self.register_writer();
    }

    /// One send; `Ok(false)` if the kernel had no room.
    fn send_one(&self, data: &[u8], addr: Option<&SockAddr>) -> io::Result<bool> {
        let socket = self.inner.socket.borrow();
        let Some(socket) = socket.as_ref() else { return Ok(true) };
        let sent = match addr {
            Some(addr) if self.inner.remote.is_none() => socket.send_to(data, addr),
            _ => socket.send_datagram(data),
        };
        match sent {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn register_writer(&self) {
        if self.inner.writer_registered.replace(true) {
            return;
        }
        let transport = self.clone();
        if let Err(error) = self.inner.event_loop.add_writer(self.inner.fd, move || transport.on_writable()) {
            self.inner.writer_registered.set(false);
            self.report(error);
        }
    }

    fn on_writable(&self) {
        loop {
            let next = self.inner.pending.borrow_mut().pop_front();
            let Some((data, addr)) = next else { break };
            match self.send_one(&data, addr.as_ref()) {
                Ok(true) => {}
                Ok(false) => {
                    self.inner.pending.borrow_mut().push_front((data, addr));
                    return;
                }
                Err(error) => self.report(error),
            }
        }
        self.inner.writer_registered.set(false);
        let _ = self.inner.event_loop.remove_writer(self.inner.fd);
    }

    /// A send error goes to `error_received`; the endpoint stays open, as in asyncio.
    fn report(&self, error: io::Error) {
        let protocol = self.inner.protocol.borrow().clone();
        if let Some(protocol) = protocol {
            if let Ok(mut protocol) = protocol.try_borrow_mut() {
                protocol.error_received(error);
            }
        }
    }

    /// Closes the endpoint; `connection_lost(None)` follows (asyncio's `close`).
    pub fn close(&self) {
        self.close_with(None);
    }

    /// Same as `close` here: queued datagrams are dropped (asyncio's `abort`).
    pub fn abort(&self) {
        self.close_with(None);
    }

    fn close_with(&self, error: Option<io::Error>) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        let _ = inner.event_loop.remove_reader(inner.fd);
        if inner.writer_registered.replace(false) {
            let _ = inner.event_loop.remove_writer(inner.fd);
        }
        inner.pending.borrow_mut().clear();
        let socket = inner.socket.borrow_mut().take();
        let protocol = inner.protocol.borrow_mut().take();
        let _ = inner.event_loop.call_soon(move || {
            drop(socket);
            if let Some(protocol) = protocol {
                protocol.borrow_mut().connection_lost(error);
            }
        });
    }

    /// True once closed (asyncio's `is_closing`).
    pub fn is_closing(&self) -> bool {
        self.inner.closed.get()
    }

    /// The local address (asyncio's `get_extra_info("sockname")`).
    pub fn local_addr(&self) -> Option<SockAddr> {
        self.inner.socket.borrow().as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The connected remote, if any (asyncio's `get_extra_info("peername")`).
    pub fn peer_addr(&self) -> Option<&SockAddr> {
        self.inner.remote.as_ref()
    }
}

impl fmt::Debug for DatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramTransport")
            .field("fd", &self.inner.fd)
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}
