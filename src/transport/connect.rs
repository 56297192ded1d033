//! Making connections and servers: asyncio's `create_connection`, `create_server` and
//! their Unix-socket twins.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::rc::Rc;

use super::protocol::Protocol;
use super::server::Server;
use super::stream_transport::Transport;
use crate::event_loop::EventLoop;
use crate::sys::socket::{remove_stale_unix_socket, Kind, SockAddr, Socket};

/// Options of [`EventLoop::create_server`] (asyncio's keyword arguments).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The listen backlog, and how many connections one readable event accepts at most
    /// (asyncio's `backlog`, default 100).
    pub backlog: usize,
    /// Set `SO_REUSEPORT`, so several processes can share the port (asyncio's
    /// `reuse_port`).
    pub reuse_port: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { backlog: 100, reuse_port: false }
    }
}

impl EventLoop {
    /// The addresses `host` names, in the resolver's order (what `create_connection` uses):
    /// an IP literal (IPv6 with or
    /// without brackets) directly, anything else through `getaddrinfo` on the executor.
    pub async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addresses = self.getaddrinfo(host, port).await?;
        if addresses.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")));
        }
        Ok(addresses)
    }

    /// Connects to `host:port` and starts `protocol` on the connection (asyncio's
    /// `loop.create_connection`). Each resolved address is tried in turn; the error of the
    /// last one is returned if none answers. Returns the transport and the protocol.
    pub async fn create_connection<P: Protocol>(
        &self,
        protocol_factory: impl FnOnce() -> P,
        host: &str,
        port: u16,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)> {
        let mut last_error = None;
        for address in self.resolve(host, port).await? {
            match self.connect_stream(&SockAddr::Inet(address)).await {
                Ok(socket) => {
                    let _ = socket.set_nodelay(true);
                    return Ok(self.start_transport(socket, protocol_factory()).await);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))))
    }

    /// Connects to the Unix socket at `path` (asyncio's `loop.create_unix_connection`).
    pub async fn create_unix_connection<P: Protocol>(
        &self,
        protocol_factory: impl FnOnce() -> P,
        path: impl AsRef<Path>,
    ) -> io::Result<(Transport, Rc<RefCell<P>>)> {
        let socket = self.connect_stream(&SockAddr::Unix(Some(path.as_ref().to_path_buf()))).await?;
        Ok(self.start_transport(socket, protocol_factory()).await)
    }

    async fn connect_stream(&self, address: &SockAddr) -> io::Result<Socket> {
        let socket = Socket::new(address.family(), Kind::Stream)?;
        self.sock_connect(&socket, address).await?;
        Ok(socket)
    }

    /// Starts the transport and returns once `connection_made` has run, as asyncio's
    /// `create_connection` waits for it.
    async fn start_transport<P: Protocol>(&self, socket: Socket, protocol: P) -> (Transport, Rc<RefCell<P>>) {
        let protocol = Rc::new(RefCell::new(protocol));
        let transport = Transport::start(self, socket, protocol.clone(), None);
        let made = self.create_future::<()>();
        let done = made.clone();
        // Scheduled after the transport's start callback, so it runs after connection_made.
        if self.call_soon(move || drop(done.set_result(()))).is_ok() {
            let _ = made.await;
        }
        (transport, protocol)
    }

    /// Listens on `host:port` (every address it resolves to; port 0 picks a free port)
    /// and serves each connection with a new protocol from `protocol_factory` (asyncio's
    /// `loop.create_server`). `SO_REUSEADDR` is set, as asyncio does on Unix.
    pub async fn create_server<P: Protocol>(
        &self,
        protocol_factory: impl Fn() -> P + 'static,
        host: &str,
        port: u16,
        options: ServerOptions,
    ) -> io::Result<Server> {
        let mut listeners = Vec::new();
        for address in self.resolve(host, port).await? {
            let socket = Socket::new(SockAddr::Inet(address).family(), Kind::Stream)?;
            socket.set_reuse_address(true)?;
            if options.reuse_port {
                socket.set_reuse_port(true)?;
            }
            if address.is_ipv6() {
                // As asyncio: an IPv6 listener does not also take IPv4, which may have its own.
                socket.set_only_v6(true)?;
            }
            socket.bind(&SockAddr::Inet(address))?;
            socket.listen(options.backlog as i32)?;
            listeners.push(socket);
        }
        Server::start(self, listeners, protocol_factory_rc(protocol_factory), options.backlog)
    }

    /// Listens on the Unix socket `path` (asyncio's `loop.create_unix_server`). A stale
    /// socket file left by an earlier server is removed first; any other file is an error.
    pub async fn create_unix_server<P: Protocol>(
        &self,
        protocol_factory: impl Fn() -> P + 'static,
        path: impl AsRef<Path>,
        options: ServerOptions,
    ) -> io::Result<Server> {
        let path = path.as_ref();
        remove_stale_unix_socket(path)?;
        let socket = Socket::new(libc::AF_UNIX, Kind::Stream)?;
        socket.bind(&SockAddr::Unix(Some(path.to_path_buf())))?;
        socket.listen(options.backlog as i32)?;
        Server::start(self, vec![socket], protocol_factory_rc(protocol_factory), options.backlog)
    }
}

fn protocol_factory_rc<P: Protocol>(
    factory: impl Fn() -> P + 'static,
) -> Rc<dyn Fn() -> Rc<RefCell<dyn Protocol>>> {
    Rc::new(move || Rc::new(RefCell::new(factory())) as Rc<RefCell<dyn Protocol>>)
}
