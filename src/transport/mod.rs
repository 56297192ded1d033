//! Sockets on the loop: asyncio's `selector_events.py`. The `sock_*` coroutines (the
//! textbook bridge), and transports with protocols (the callback layer streams build on).

mod connect;
mod datagram;
mod protocol;
mod read_buffer;
mod server;
mod sock;
mod stream_transport;

pub use connect::ServerOptions;
pub use datagram::DatagramTransport;
pub use protocol::{DatagramProtocol, Protocol};
pub use server::{Server, ACCEPT_RETRY_DELAY};
pub use stream_transport::{Transport, DEFAULT_HIGH_WATER};
