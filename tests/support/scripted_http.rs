//! A scripted HTTP server for the HTTP tests: std threads on 127.0.0.1 answering each
//! request with canned bytes chosen by path, so hostile responses can be served byte-exactly.
//! Shared by tests/http_client.rs, tests/fetch_example.rs and tests/crawl_example.rs.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which accepted connection it came on (0 for the first).
    pub conn: usize,
    pub method: String,
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What the server does after writing a reply.
#[derive(Clone, Copy, Debug)]
pub enum After {
    /// Reads the next request on the connection.
    KeepAlive,
    /// Closes its side (EOF for the client) and reads no more requests.
    Close,
    /// Neither answers nor closes: waits for the client to go away.
    Hang,
}

/// The bytes to answer with, after `delay`.
pub struct Reply {
    pub delay: Duration,
    pub bytes: Vec<u8>,
    pub after: After,
}

impl Reply {
    /// Exactly these bytes, then keep-alive.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply { delay: Duration::ZERO, bytes: bytes.into(), after: After::KeepAlive }
    }

    /// `HTTP/1.1 <status>`, `extra` header lines (each ending in CRLF), a Content-Length
    /// and `body`.
    pub fn status(status: &str, extra: &str, body: &[u8]) -> Reply {
        let mut bytes =
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        Reply::raw(bytes)
    }

    pub fn close(self) -> Reply {
        Reply { after: After::Close, ..self }
    }

    pub fn hang(self) -> Reply {
        Reply { after: After::Hang, ..self }
    }

    pub fn delay(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
}

/// A server answering `/i` with `replies[i]`, byte for byte, and the URLs, in order. The
/// server never closes a connection (so nothing but the bytes can end a response), and
/// reads the next request on it (so a connection the client keeps is served again).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn serve_indexed(replies: Vec<Vec<u8>>) -> (Server, Vec<String>) {
    let count = replies.len();
    let server = Server::start(move |request| {
        let index: usize = request.target.trim_start_matches('/').parse().expect("a known path");
        Reply::raw(replies[index].clone())
    });
    let urls = (0..count).map(|i| server.url(&format!("/{i}"))).collect();
    (server, urls)
}

/// Counts requests in progress, and the most seen at once (shareable by servers).
#[derive(Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// Counts this request while it waits `delay` (call from a handler), then `reply`.
    pub fn reply(&self, reply: Reply, delay: Duration) -> Reply {
        self.enter();
        std::thread::sleep(delay);
        self.leave();
        reply
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    stop: AtomicBool,
    accepts: AtomicUsize,
    gauge: Gauge,
    requests: Mutex<Vec<Request>>,
    streams: Mutex<Vec<TcpStream>>,
}

/// A scripted HTTP server in std threads; stops (and drops its connections) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// On 127.0.0.1, a free port.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        Server::start_on("127.0.0.1:0", handler).expect("bind 127.0.0.1")
    }

    pub fn start_on(
        address: impl ToSocketAddrs,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(address)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            stop: AtomicBool::new(false),
            accepts: AtomicUsize::new(0),
            gauge: Gauge::default(),
            requests: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = accepting.accepts.fetch_add(1, Ordering::SeqCst);
                if let Ok(clone) = stream.try_clone() {
                    accepting.streams.lock().unwrap().push(clone);
                }
                let shared = accepting.clone();
                std::thread::spawn(move || serve(&shared, stream, conn));
            }
        });
        Ok(Server { addr, shared, acceptor: Some(acceptor) })
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.shared.accepts.load(Ordering::SeqCst)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The most requests handled at once (from the head received to the reply written).
    pub fn max_in_flight(&self) -> usize {
        self.shared.gauge.max()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.shared.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn serve(shared: &Shared, mut stream: TcpStream, conn: usize) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffer, conn) {
        shared.requests.lock().unwrap().push(request.clone());
        shared.gauge.enter();
        let reply = (shared.handler)(&request);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        shared.gauge.leave();
        if stream.write_all(&reply.bytes).is_err() {
            return;
        }
        match reply.after {
            After::KeepAlive => {}
            After::Close => {
                let _ = stream.shutdown(Shutdown::Write);
                break;
            }
            After::Hang => break,
        }
    }
    // Read (and ignore) whatever else comes until the client or the test hangs up.
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>, conn: usize) -> Option<Request> {
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buffer)?;
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap_or(0));
    while buffer.len() < end + length {
        fill(stream, buffer)?;
    }
    let body = buffer[end..end + length].to_vec();
    buffer.drain(..end + length);
    Some(Request { conn, method, target, headers, body })
}

fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
