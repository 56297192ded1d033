//! Sockets on the loop: asyncio's `selector_events.py`. The `sock_*` coroutines (the
//! textbook bridge), and transports with protocols (the callback layer streams build on).

mod sock;
