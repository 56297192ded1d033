//! What a connection's owner implements: asyncio's `Protocol` and `DatagramProtocol`.
//!
//! The loop calls these; the protocol answers by calling its transport (`write`, `close`,
//! `pause_reading` ...). Every method but `data_received` / `datagram_received` has a
//! default that does nothing, as asyncio's base classes do.

use std::io;

use super::datagram::DatagramTransport;
use super::stream_transport::Transport;
use crate::sys::socket::SockAddr;

/// The callbacks of a stream connection (asyncio's `asyncio.Protocol`).
pub trait Protocol: 'static {
    /// The connection is up; keep `transport` to write to it (asyncio's
    /// `connection_made`). Reading starts right after this returns.
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport;
    }

    /// Bytes arrived (asyncio's `data_received`). The slice is only valid during the call.
    fn data_received(&mut self, data: &[u8]);

    /// The peer closed its writing side (asyncio's `eof_received`). Return true to keep
    /// the connection open for writing (a half-close); false, the default, closes it.
    fn eof_received(&mut self) -> bool {
        false
    }

    /// The connection is closed (asyncio's `connection_lost`): `None` for a normal close,
    /// the error for a failure such as a reset. Called exactly once.
    fn connection_lost(&mut self, error: Option<io::Error>) {
        let _ = error;
    }

    /// The transport's write buffer went above its high-water mark: stop writing for now
    /// (asyncio's `pause_writing`).
    fn pause_writing(&mut self) {}

    /// The write buffer drained below the low-water mark (asyncio's `resume_writing`).
    fn resume_writing(&mut self) {}
}

/// The callbacks of a datagram endpoint (asyncio's `asyncio.DatagramProtocol`).
pub trait DatagramProtocol: 'static {
    /// The endpoint is ready; keep `transport` to send with it.
    fn connection_made(&mut self, transport: &DatagramTransport) {
        let _ = transport;
    }

    /// One datagram arrived from `addr` (asyncio's `datagram_received`).
    fn datagram_received(&mut self, data: &[u8], addr: SockAddr);

    /// A send or receive failed, e.g. ICMP port unreachable on a connected UDP socket
    /// (asyncio's `error_received`). The endpoint stays open.
    fn error_received(&mut self, error: io::Error) {
        let _ = error;
    }

    /// The endpoint is closed (asyncio's `connection_lost`).
    fn connection_lost(&mut self, error: Option<io::Error>) {
        let _ = error;
    }
}
