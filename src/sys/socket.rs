//! Sockets: non-blocking, close-on-exec, owned. TCP and UDP over IPv4 and IPv6, and Unix
//! domain sockets. Every call is the plain system call with its errno as an `io::Error`;
//! `EAGAIN` is an error like any other here: what to do about it is the loop's business.
//! In the deterministic mode, [`faults`] may make a call fail or shorten
//! it before it reaches the kernel.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::faults::{self, Fault, SocketCall};
use super::{check, check_size};

/// Where a socket is: an IP address and port, or a Unix domain socket path (`None` for
/// an unnamed one, as a socketpair end or a client that did not bind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// A Unix domain socket.
    Unix(Option<PathBuf>),
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        SockAddr::Inet(addr)
    }
}

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockAddr::Inet(addr) => addr.fmt(f),
            SockAddr::Unix(Some(path)) => path.display().fmt(f),
            SockAddr::Unix(None) => f.write_str("(unnamed)"),
        }
    }
}

impl SockAddr {
    /// The address family, for `socket(2)`.
    pub fn family(&self) -> libc::c_int {
        match self {
            SockAddr::Inet(SocketAddr::V4(_)) => libc::AF_INET,
            SockAddr::Inet(SocketAddr::V6(_)) => libc::AF_INET6,
            SockAddr::Unix(_) => libc::AF_UNIX,
        }
    }

    /// The IP address and port, if it is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            SockAddr::Inet(addr) => Some(*addr),
            SockAddr::Unix(_) => None,
        }
    }

    /// Encodes the address as the kernel wants it.
    fn to_raw(&self) -> io::Result<(libc::sockaddr_storage, libc::socklen_t)> {
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (empty) value.
        let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        let len = match self {
            SockAddr::Inet(SocketAddr::V4(addr)) => {
                let raw = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: addr.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
                    sin_zero: [0; 8],
                };
                write_raw(&mut storage, raw)
            }
            SockAddr::Inet(SocketAddr::V6(addr)) => {
                let raw = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: addr.port().to_be(),
                    sin6_flowinfo: addr.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: addr.ip().octets() },
                    sin6_scope_id: addr.scope_id(),
                };
                write_raw(&mut storage, raw)
            }
            SockAddr::Unix(path) => {
                // SAFETY: sockaddr_un is plain old data; all zeroes is valid.
                let mut raw: libc::sockaddr_un = unsafe { MaybeUninit::zeroed().assume_init() };
                raw.sun_family = libc::AF_UNIX as libc::sa_family_t;
                let bytes = path.as_deref().map(|p| p.as_os_str().as_bytes()).unwrap_or_default();
                if bytes.len() >= raw.sun_path.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "Unix socket path too long"));
                }
                for (dst, src) in raw.sun_path.iter_mut().zip(bytes) {
                    *dst = *src as libc::c_char;
                }
                write_raw(&mut storage, raw);
                (size_of::<libc::sa_family_t>() + bytes.len() + usize::from(!bytes.is_empty()))
                    as libc::socklen_t
            }
        };
        Ok((storage, len))
    }

    /// Decodes what the kernel filled in.
    fn from_raw(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SockAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                let raw: libc::sockaddr_in = read_raw(storage);
                let ip = Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr));
                Ok(SockAddr::Inet(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(raw.sin_port)))))
            }
            libc::AF_INET6 => {
                let raw: libc::sockaddr_in6 = read_raw(storage);
                let ip = Ipv6Addr::from(raw.sin6_addr.s6_addr);
                let port = u16::from_be(raw.sin6_port);
                Ok(SockAddr::Inet(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    raw.sin6_flowinfo,
                    raw.sin6_scope_id,
                ))))
            }
            libc::AF_UNIX => {
                let raw: libc::sockaddr_un = read_raw(storage);
                let path_len = (len as usize).saturating_sub(size_of::<libc::sa_family_t>());
                let bytes: Vec<u8> = raw.sun_path[..path_len.min(raw.sun_path.len())]
                    .iter()
                    .map(|c| *c as u8)
                    .take_while(|b| *b != 0)
                    .collect();
                let path = (!bytes.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)));
                Ok(SockAddr::Unix(path))
            }
            // An unnamed Unix socket (a socketpair end) reports family 0 or a bare length.
            _ if len as usize <= size_of::<libc::sa_family_t>() => Ok(SockAddr::Unix(None)),
            family => Err(io::Error::other(format!("unsupported address family {family}"))),
        }
    }
}

/// Copies a concrete sockaddr into the start of a storage; returns its length.
fn write_raw<T: Copy>(storage: &mut libc::sockaddr_storage, raw: T) -> libc::socklen_t {
    debug_assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>());
    // SAFETY: sockaddr_storage is at least as large and as aligned as every sockaddr type
    // (that is its purpose), and `T` is plain old data.
    unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast::<T>(), raw) };
    size_of::<T>() as libc::socklen_t
}

/// Reads a concrete sockaddr from the start of a storage.
fn read_raw<T: Copy>(storage: &libc::sockaddr_storage) -> T {
    // SAFETY: as in `write_raw`; the caller checked `ss_family`, and bytes the kernel did not
    // write are the zeroes the storage was created with, valid for plain old data.
    unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast::<T>()) }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: plain old data; all zeroes is a valid value.
    unsafe { MaybeUninit::zeroed().assume_init() }
}

/// Stream (TCP, Unix stream) or datagram (UDP, Unix datagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_DGRAM`.
    Datagram,
}

impl Kind {
    fn raw(self) -> libc::c_int {
        match self {
            Kind::Stream => libc::SOCK_STREAM,
            Kind::Datagram => libc::SOCK_DGRAM,
        }
    }
}

/// A non-blocking, close-on-exec socket, closed on drop.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// `socket(family, kind | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
    pub fn new(family: libc::c_int, kind: Kind) -> io::Result<Socket> {
        let flags = kind.raw() | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: no pointers; a non-negative result is a new descriptor nobody else owns.
        let fd = check(unsafe { libc::socket(family, flags, 0) })?;
        // SAFETY: `fd` was just created and is owned by nothing else.
        Ok(Socket { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// A connected pair of Unix domain sockets (`socketpair(2)`).
    pub fn pair(kind: Kind) -> io::Result<(Socket, Socket)> {
        let mut fds = [0 as libc::c_int; 2];
        let flags = kind.raw() | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `fds` is a writable array of two ints, as socketpair requires.
        check(unsafe { libc::socketpair(libc::AF_UNIX, flags, 0, fds.as_mut_ptr()) })?;
        // SAFETY: both descriptors were just created and are owned by nothing else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Socket { fd: a }, Socket { fd: b }))
    }

    /// Wraps a descriptor this process owns, making it non-blocking.
    pub fn from_owned(fd: OwnedFd) -> io::Result<Socket> {
        let socket = Socket { fd };
        socket.set_nonblocking()?;
        Ok(socket)
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        let flags = check(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) })?;
        // SAFETY: as above.
        check(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
        Ok(())
    }

    /// `bind(2)`.
    pub fn bind(&self, addr: &SockAddr) -> io::Result<()> {
        let (storage, len) = addr.to_raw()?;
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the call's duration.
        check(unsafe {
            libc::bind(self.fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
        })?;
        Ok(())
    }

    /// `listen(2)`.
    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        // SAFETY: integer arguments only.
        check(unsafe { libc::listen(self.fd.as_raw_fd(), backlog) })?;
        Ok(())
    }

    /// Starts a non-blocking `connect(2)`. `Ok(true)`: connected at once (Unix sockets,
    /// sometimes loopback); `Ok(false)`: in progress (`EINPROGRESS`), wait until writable
    /// and read [`take_error`](Self::take_error).
    pub fn connect(&self, addr: &SockAddr) -> io::Result<bool> {
        let (storage, len) = addr.to_raw()?;
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the call's duration.
        let ret = unsafe {
            libc::connect(self.fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
        };
        match check(ret) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the new connection and its peer.
    pub fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        self.injected_fault(SocketCall::Accept, 0)?;
        let mut storage = zeroed_storage();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` and `len` are writable and describe each other; the kernel
        // writes at most `len` bytes and updates `len`.
        let fd = check(unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` is a new descriptor owned by nothing else.
        let socket = Socket { fd: unsafe { OwnedFd::from_raw_fd(fd) } };
        Ok((socket, SockAddr::from_raw(&storage, len)?))
    }

    /// `recv(2)` into `buf`; 0 means the peer closed its side.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let buf = match self.injected_fault(SocketCall::Recv, buf.len())? {
            Some(len) => &mut buf[..len],
            None => buf,
        };
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        check_size(unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    }

    /// `send(2)` with `MSG_NOSIGNAL`: a vanished peer is an `EPIPE` error, never SIGPIPE.
    /// May send less than `buf`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let buf = match self.injected_fault(SocketCall::Send, buf.len())? {
            Some(len) => &buf[..len],
            None => buf,
        };
        self.send_nosignal(buf)
    }

    /// `send(2)` of one datagram on a connected datagram socket: whole or not at all, so
    /// an injected fault may refuse it but never shortens it.
    pub fn send_datagram(&self, buf: &[u8]) -> io::Result<usize> {
        self.injected_fault(SocketCall::Datagram, buf.len())?;
        self.send_nosignal(buf)
    }

    /// The `send(2)` itself, once the injector (if any) had its say.
    fn send_nosignal(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is readable for `buf.len()` bytes.
        check_size(unsafe {
            libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        })
    }

    /// `recvfrom(2)`: one datagram and who sent it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.injected_fault(SocketCall::Datagram, buf.len())?;
        let mut storage = zeroed_storage();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `buf` is writable for its length; `storage`/`len` as in `accept`.
        let n = check_size(unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        })?;
        Ok((n, SockAddr::from_raw(&storage, len)?))
    }

    /// `sendto(2)` with `MSG_NOSIGNAL`: one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        self.injected_fault(SocketCall::Datagram, buf.len())?;
        let (storage, len) = addr.to_raw()?;
        // SAFETY: `buf` is readable for its length; `storage` holds `len` bytes of address.
        check_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        })
    }

    /// Asks the thread's fault injector (see [`faults`]) about a call of
    /// `len` bytes: `Ok(None)` to make it as asked, `Ok(Some(n))` to make it with `n`
    /// bytes, or the error to return instead. A reset shuts the socket down first, so the
    /// calls after it fail as they would after a real one.
    #[inline]
    fn injected_fault(&self, call: SocketCall, len: usize) -> io::Result<Option<usize>> {
        if !faults::any_active() {
            return Ok(None);
        }
        self.carry_out(faults::next_fault(call, len))
    }

    /// Does what the injector decided.
    #[cold]
    fn carry_out(&self, fault: Fault) -> io::Result<Option<usize>> {
        match fault {
            Fault::None => Ok(None),
            Fault::Shorten(n) => Ok(Some(n)),
            Fault::Fail(error) => Err(error),
            Fault::Reset => {
                let _ = self.shutdown(Shutdown::Both);
                Err(io::Error::from_raw_os_error(libc::ECONNRESET))
            }
        }
    }

    /// `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: integer arguments only.
        check(unsafe { libc::shutdown(self.fd.as_raw_fd(), how) })?;
        Ok(())
    }

    /// The pending error (`SO_ERROR`), cleared by reading it: how a non-blocking connect
    /// reports its outcome.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let code = self.get_int(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
    }

    /// `SO_REUSEADDR`.
    pub fn set_reuse_address(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
    }

    /// `SO_REUSEPORT`.
    pub fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
    }

    /// `SO_KEEPALIVE`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_KEEPALIVE, on.into())
    }

    /// `IPV6_V6ONLY`.
    pub fn set_only_v6(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on.into())
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        // SAFETY: we pass a pointer to one initialised int and its size.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are writable and describe each other.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(value)
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.name(libc::getsockname)
    }

    /// `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        self.name(libc::getpeername)
    }

    fn name(
        &self,
        call: unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int,
    ) -> io::Result<SockAddr> {
        let mut storage = zeroed_storage();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `call` is getsockname or getpeername; `storage`/`len` are writable and
        // describe each other.
        check(unsafe {
            call(self.fd.as_raw_fd(), (&mut storage as *mut libc::sockaddr_storage).cast(), &mut len)
        })?;
        SockAddr::from_raw(&storage, len)
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for Socket {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<Socket> for OwnedFd {
    fn from(socket: Socket) -> OwnedFd {
        socket.fd
    }
}

/// Removes a stale Unix socket file before binding, as asyncio's `create_unix_server`
/// does: only if it is a socket, never another kind of file.
pub fn remove_stale_unix_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_kernel_format() {
        for addr in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%2]:9"] {
            let addr = SockAddr::Inet(addr.parse().unwrap());
            let (storage, len) = addr.to_raw().unwrap();
            assert_eq!(SockAddr::from_raw(&storage, len).unwrap(), addr);
        }
        let unix = SockAddr::Unix(Some(PathBuf::from("/tmp/evloop.sock")));
        let (storage, len) = unix.to_raw().unwrap();
        assert_eq!(SockAddr::from_raw(&storage, len).unwrap(), unix);
    }

    #[test]
    fn loopback_connect_accept_send_recv() {
        let listener = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        listener.set_reuse_address(true).unwrap();
        listener.bind(&SockAddr::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
        listener.listen(16).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        let _ = client.connect(&addr).unwrap();
        let (server, peer) = loop {
            match listener.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!(client.take_error().unwrap().map(|e| e.to_string()), None);
        assert_eq!(Some(peer), client.local_addr().ok());
        assert_eq!(client.send(b"ping").unwrap(), 4);
        let mut buf = [0u8; 16];
        let n = loop {
            match server.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(&buf[..n], b"ping");
        drop(server);
        // The peer is gone: send fails with EPIPE or ECONNRESET instead of raising SIGPIPE.
        let mut failed = false;
        for _ in 0..100 {
            if client.send(&[0u8; 65536]).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "sending to a closed peer kept succeeding");
    }
}
