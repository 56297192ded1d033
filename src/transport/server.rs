//! A listening server: asyncio's `Server`, and the accept loop behind `create_server`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use super::protocol::Protocol;
use super::stream_transport::Transport;
use crate::event_loop::{EventLoop, ExceptionContext};
use crate::sync::Event;
use crate::sys::socket::{SockAddr, Socket};

/// How long accepting pauses when the process or system is out of file descriptors
/// (asyncio's `ACCEPT_RETRY_DELAY`): retrying at once would spin the CPU.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_secs(1);

type ProtocolFactory = Rc<dyn Fn() -> Rc<RefCell<dyn Protocol>>>;

struct Inner {
    event_loop: EventLoop,
    listeners: RefCell<Vec<Socket>>,
    addresses: Vec<SockAddr>,
    factory: ProtocolFactory,
    backlog: usize,
    active: Cell<usize>,
    closed: Cell<bool>,
    all_closed: Event,
}

/// A server accepting connections, each given a fresh protocol (asyncio's
/// `asyncio.Server`). Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct Server {
    inner: Rc<Inner>,
}

impl Server {
    /// Starts accepting on `listeners` (already listening).
    pub(crate) fn start(
        event_loop: &EventLoop,
        listeners: Vec<Socket>,
        factory: ProtocolFactory,
        backlog: usize,
    ) -> io::Result<Server> {
        let addresses = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
        let server = Server {
            inner: Rc::new(Inner {
                event_loop: event_loop.clone(),
                listeners: RefCell::new(listeners),
                addresses,
                factory,
                backlog,
                active: Cell::new(0),
                closed: Cell::new(false),
                all_closed: Event::new(),
            }),
        };
        let fds: Vec<RawFd> = server.inner.listeners.borrow().iter().map(|l| l.as_raw_fd()).collect();
        for fd in fds {
            server.start_accepting(fd)?;
        }
        Ok(server)
    }

    fn start_accepting(&self, fd: RawFd) -> io::Result<()> {
        let server = self.clone();
        self.inner.event_loop.add_reader(fd, move || server.accept_connections(fd))
    }

    /// The reader of a listening socket: accept up to `backlog` connections per readiness,
    /// as asyncio does, so one busy listener cannot hog an iteration.
    fn accept_connections(&self, fd: RawFd) {
        for _ in 0..self.inner.backlog {
            let accepted = {
                let listeners = self.inner.listeners.borrow();
                match listeners.iter().find(|l| l.as_raw_fd() == fd) {
                    Some(listener) => listener.accept(),
                    None => return,
                }
            };
            match accepted {
                // The peer's address is not kept: the transport looks it up if asked.
                Ok((socket, _peer)) => self.serve(socket),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    return
                }
                Err(e) if is_out_of_descriptors(&e) => return self.back_off(fd, e),
                // The peer gave up before we accepted (ECONNABORTED and the like): next.
                Err(_) => {}
            }
        }
    }

    fn serve(&self, socket: Socket) {
        let _ = socket.set_nodelay(true);
        let protocol = (self.inner.factory)();
        Transport::start(&self.inner.event_loop, socket, protocol, Some(self.clone()));
    }

    /// A transport of ours started (asyncio's `Server._attach`).
    pub(crate) fn attach(&self) {
        self.inner.active.set(self.inner.active.get() + 1);
    }

    /// A transport of ours closed (asyncio's `Server._detach`).
    pub(crate) fn detach(&self) {
        self.inner.active.set(self.inner.active.get() - 1);
        self.wake_if_all_closed();
    }

    /// Out of fds: stop accepting for a while instead of spinning on a listener that
    /// stays readable, and tell the exception handler (asyncio logs it).
    fn back_off(&self, fd: RawFd, error: io::Error) {
        let event_loop = &self.inner.event_loop;
        event_loop.call_exception_handler(&ExceptionContext {
            message: format!("accept failed, retrying in {ACCEPT_RETRY_DELAY:?}"),
            exception: Some(error.to_string()),
            scheduled_at: None,
        });
        let _ = event_loop.remove_reader(fd);
        let server = self.clone();
        let _ = event_loop.call_later(ACCEPT_RETRY_DELAY, move || {
            if !server.inner.closed.get() {
                let _ = server.start_accepting(fd);
            }
        });
    }

    /// Stops listening and closes the listening sockets; connections already accepted go
    /// on (asyncio's `Server.close`).
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        let listeners = std::mem::take(&mut *self.inner.listeners.borrow_mut());
        for listener in &listeners {
            let _ = self.inner.event_loop.remove_reader(listener.as_raw_fd());
        }
        drop(listeners);
        self.wake_if_all_closed();
    }

    fn wake_if_all_closed(&self) {
        if self.inner.closed.get() && self.inner.active.get() == 0 {
            self.inner.all_closed.set();
        }
    }

    /// Waits until the server is closed and its last connection has closed (asyncio's
    /// `Server.wait_closed`).
    pub async fn wait_closed(&self) {
        self.inner.all_closed.wait().await;
    }

    /// True until `close` (asyncio's `Server.is_serving`).
    pub fn is_serving(&self) -> bool {
        !self.inner.closed.get()
    }

    /// The addresses it listens on (asyncio's `Server.sockets`' names).
    pub fn addresses(&self) -> &[SockAddr] {
        &self.inner.addresses
    }

    /// Connections accepted and not yet closed.
    pub fn active_connections(&self) -> usize {
        self.inner.active.get()
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addresses", &self.inner.addresses)
            .field("active", &self.inner.active.get())
            .field("serving", &self.is_serving())
            .finish()
    }
}
