//! Fetching several URLs at once with nothing but the loop's readiness callbacks: no
//! futures, no coroutines. This is the callback-style crawler of the "500 Lines or Less"
//! asyncio chapter; `sock_fetch` does the same with `sock_*` coroutines, and `fetch` with
//! the HTTP client, so the three styles can be read side by side.
//!
//! ```text
//! cargo run --release --example raw_fetch -- http://127.0.0.1:8000/ ...
//! cargo run --release --example raw_fetch        # demo against a local server
//! ```
//!
//! Each fetch is a little state machine driven by callbacks:
//! connect (non-blocking) → writable → send the request → readable → read until the server
//! closes → print the status line and size. IP addresses only: name lookups block, and
//! blocking is what this example shows how to avoid.

#[path = "support/local_http.rs"]
mod local_http;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use evloop::sys::socket::{Kind, SockAddr, Socket};
use evloop::EventLoop;

/// One URL being fetched.
struct Fetcher {
    url: String,
    socket: Socket,
    request: Vec<u8>,
    response: RefCell<Vec<u8>>,
}

impl Fetcher {
    /// Starts the connection and registers for writability: the first callback.
    fn start(event_loop: &EventLoop, url: &str, pending: Rc<Cell<usize>>) -> Result<(), String> {
        let (host, port, path) = local_http::split_url(url)?;
        let address: SocketAddr = format!("{host}:{port}")
            .parse()
            .or_else(|_| format!("[{host}]:{port}").parse())
            .map_err(|_| format!("{url}: raw_fetch needs an IP address, not a host name"))?;
        let address = SockAddr::Inet(address);
        let socket = Socket::new(address.family(), Kind::Stream).map_err(|e| e.to_string())?;
        socket.connect(&address).map_err(|e| format!("{url}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes();
        let fetcher =
            Rc::new(Fetcher { url: url.to_string(), socket, request, response: RefCell::new(Vec::new()) });
        pending.set(pending.get() + 1);
        let (l, f) = (event_loop.clone(), fetcher.clone());
        event_loop
            .add_writer(fetcher.socket.as_raw_fd(), move || f.connected(&l, &pending))
            .map_err(|e| e.to_string())
    }

    /// Writable: the connection is up (or failed); send the request, wait for the answer.
    fn connected(self: &Rc<Self>, event_loop: &EventLoop, pending: &Rc<Cell<usize>>) {
        let fd = self.socket.as_raw_fd();
        let _ = event_loop.remove_writer(fd);
        let sent = match self.socket.take_error() {
            Ok(None) => self.socket.send(&self.request),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        if let Err(e) = sent {
            return self.finish(event_loop, pending, Err(e));
        }
        let (l, f, p) = (event_loop.clone(), self.clone(), pending.clone());
        if let Err(e) = event_loop.add_reader(fd, move || f.readable(&l, &p)) {
            self.finish(event_loop, pending, Err(e));
        }
    }

    /// Readable: take what arrived; the server closing the connection ends the response.
    fn readable(self: &Rc<Self>, event_loop: &EventLoop, pending: &Rc<Cell<usize>>) {
        let mut chunk = [0u8; 16 * 1024];
        match self.socket.recv(&mut chunk) {
            Ok(0) => self.finish(event_loop, pending, Ok(())),
            Ok(n) => self.response.borrow_mut().extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.finish(event_loop, pending, Err(e)),
        }
    }

    fn finish(&self, event_loop: &EventLoop, pending: &Rc<Cell<usize>>, outcome: io::Result<()>) {
        let _ = event_loop.remove_reader(self.socket.as_raw_fd());
        match outcome {
            Ok(()) => {
                let response = self.response.borrow();
                let status = response.split(|b| *b == b'\r').next().unwrap_or_default();
                println!("{} ({} bytes) {}", String::from_utf8_lossy(status), response.len(), self.url);
            }
            Err(e) => println!("ERR {e} {}", self.url),
        }
        pending.set(pending.get() - 1);
        if pending.get() == 0 {
            event_loop.stop();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    let _server = if urls.is_empty() {
        let server = local_http::LocalHttp::start()?;
        urls = (1..=5).map(|i| server.url(&format!("page{i}"))).collect();
        Some(server)
    } else {
        None
    };
    let event_loop = EventLoop::new()?;
    let pending = Rc::new(Cell::new(0));
    for url in &urls {
        if let Err(e) = Fetcher::start(&event_loop, url, pending.clone()) {
            println!("ERR {e}");
        }
    }
    if pending.get() > 0 {
        event_loop.run_forever()?;
    }
    println!("{:?}", event_loop.stats());
    event_loop.close()?;
    Ok(())
}
