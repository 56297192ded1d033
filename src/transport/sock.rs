//! The textbook bridge from readiness callbacks to coroutines: asyncio's `loop.sock_*`.
//!
//! Each operation tries the system call first. Only if the kernel says `EAGAIN` does it
//! register a reader or writer callback that completes a [`Future`](crate::Future), await
//! that future, and try again. The registration is removed as soon as the future completes
//! or the awaiting coroutine is cancelled (a guard removes it on drop). This costs two
//! `epoll_ctl` calls per wait, which is why transports (the rest of this folder) register
//! once and stay registered; these functions are here to be read.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::event_loop::EventLoop;
use crate::sys::socket::{SockAddr, Socket};

/// Which readiness to wait for.
#[derive(Clone, Copy)]
enum Readiness {
    Readable,
    Writable,
}

/// Removes the temporary reader or writer when the wait ends, however it ends.
struct Registration<'a> {
    event_loop: &'a EventLoop,
    fd: RawFd,
    readiness: Readiness,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let _ = match self.readiness {
            Readiness::Readable => self.event_loop.remove_reader(self.fd),
            Readiness::Writable => self.event_loop.remove_writer(self.fd),
        };
    }
}

impl EventLoop {
    /// Waits until `fd` is readable or writable: a one-shot reader or writer that completes
    /// a future (asyncio's `_sock_recv` / `_sock_write_done` pattern).
    async fn wait_ready(&self, fd: RawFd, readiness: Readiness) -> io::Result<()> {
        let ready = self.create_future::<()>();
        let on_ready = ready.clone();
        let callback = move || {
            let _ = on_ready.set_result(());
        };
        match readiness {
            Readiness::Readable => self.add_reader(fd, callback)?,
            Readiness::Writable => self.add_writer(fd, callback)?,
        }
        let _registration = Registration { event_loop: self, fd, readiness };
        let _ = ready.await;
        Ok(())
    }

    /// Retries `op` until it stops saying `EAGAIN` (waiting for `readiness` in between)
    /// or `EINTR`.
    async fn retry_when_ready<T>(
        &self,
        fd: RawFd,
        readiness: Readiness,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_ready(fd, readiness).await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    /// Receives up to `max` bytes (asyncio's `loop.sock_recv`); empty at end of stream.
    pub async fn sock_recv(&self, sock: &Socket, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = self.sock_recv_into(sock, &mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Receives into `buf`, returning how many bytes arrived; 0 at end of stream
    /// (asyncio's `loop.sock_recv_into`).
    pub async fn sock_recv_into(&self, sock: &Socket, buf: &mut [u8]) -> io::Result<usize> {
        self.retry_when_ready(sock.as_raw_fd(), Readiness::Readable, || sock.recv(buf)).await
    }

    /// Sends all of `data`, waiting for room as often as needed (asyncio's
    /// `loop.sock_sendall`). A peer that vanished is an error (`EPIPE` / `ECONNRESET`).
    pub async fn sock_sendall(&self, sock: &Socket, data: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        while sent < data.len() {
            sent += self
                .retry_when_ready(sock.as_raw_fd(), Readiness::Writable, || sock.send(&data[sent..]))
                .await?;
        }
        Ok(())
    }

    /// Connects `sock` to `addr` (asyncio's `loop.sock_connect`): a non-blocking
    /// `connect`, then, if it is in progress, wait until writable and read `SO_ERROR`.
    pub async fn sock_connect(&self, sock: &Socket, addr: &SockAddr) -> io::Result<()> {
        if sock.connect(addr)? {
            return Ok(());
        }
        self.wait_ready(sock.as_raw_fd(), Readiness::Writable).await?;
        match sock.take_error()? {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Accepts a connection (asyncio's `loop.sock_accept`): the new socket, non-blocking,
    /// and its peer's address.
    pub async fn sock_accept(&self, sock: &Socket) -> io::Result<(Socket, SockAddr)> {
        self.retry_when_ready(sock.as_raw_fd(), Readiness::Readable, || sock.accept()).await
    }
}
