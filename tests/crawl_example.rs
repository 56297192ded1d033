//! The crawl example (`examples/crawl.rs`) run as a process against a scripted local
//! site: the set of URLs it prints is exactly the site's reachable in-scope set, each
//! fetched once; `--max-pages`, `--max-tasks`, bad command lines, and the demo.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use server::{Reply, Server};

/// No run of the example may take longer.
const LIMIT: Duration = Duration::from_secs(15);

fn crawl(args: &[&str]) -> process::Output {
    process::run("crawl", args, LIMIT)
}

fn html(body: &str) -> Reply {
    Reply::status("200 OK", "Content-Type: text/html; charset=utf-8\r\n", body.as_bytes())
}

/// The printed `<status> <url>` lines as path-and-query → status, checking that each URL
/// is printed once and lies on `origin`.
fn printed(output: &process::Output, origin: &str) -> BTreeMap<String, u16> {
    let mut pages = BTreeMap::new();
    for line in output.lines() {
        let (status, url) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let status: u16 = status.parse().unwrap_or_else(|_| panic!("not `<status> <url>`: {line:?}"));
        let path = url.strip_prefix(origin).unwrap_or_else(|| panic!("{line:?} is not on {origin}"));
        assert!(pages.insert(path.to_string(), status).is_none(), "{url} printed twice");
    }
    pages
}

/// Two servers: the site, and another on a different port that must never be asked.
struct Site {
    site: Server,
    other: Server,
}

impl Site {
    fn start() -> Site {
        let other = Server::start(|_| html(r#"<a href="/">nothing to crawl here</a>"#));
        let other_port = other.addr.port();
        let own_port = Arc::new(AtomicU16::new(0));
        let port = own_port.clone();
        let site = Server::start(move |request| {
            let own = port.load(Ordering::SeqCst);
            match request.target.as_str() {
                "/" => html(&format!(
                    r##"<html><body>
                    <a href="/a">A</a> <a href='b'>B</a> <a href="/a#top">A again</a>
                    <a href="http://127.0.0.1:{other_port}/off">another port</a>
                    <a href="http://localhost:{own}/">another host name</a>
                    <a href="https://127.0.0.1:{own}/">another scheme</a>
                    <a href="/doc.txt">text</a> <a href="/moved">moved</a> <a href="/away">away</a>
                    <a href="q?x=1&amp;y=2">query</a> <A HREF=/upper>upper case</A>
                    <a href="/missing">missing</a> <a href="mailto:someone@example.com">mail</a>
                    <a href="#section">this page</a> <a href="http://127.0.0.1:{own}/abs">absolute</a>
                    </body></html>"##
                )),
                "/a" => html(
                    r#"<a href="/">home</a> <a href="b">b</a> <a href="./c#frag">c</a> <a href="/a">self</a>"#,
                ),
                "/b" => html(r#"<a href="/c?k=v">c with a query</a> <a href="../a">a</a>"#),
                "/c" => html(r#"<p>C links to <a href="/a">a</a></p>"#),
                "/c?k=v" => html(r#"<a href="/">home</a> <a href="sub/deep">deep</a>"#),
                "/sub/deep" => html(r#"<a href="../a">up</a> <a href="../c?k=v#x">again</a>"#),
                "/doc.txt" => Reply::status(
                    "200 OK",
                    "Content-Type: text/plain\r\n",
                    br#"not HTML, so not parsed: <a href="/never">never</a>"#,
                ),
                "/moved" => Reply::status("301 Moved Permanently", "Location: /landing\r\n", b""),
                "/landing" => html(r#"<a href="/a">a</a>"#),
                "/away" => Reply::status(
                    "302 Found",
                    &format!("Location: http://127.0.0.1:{other_port}/redirected\r\n"),
                    b"",
                ),
                "/q?x=1&y=2" => html("no links"),
                "/upper" => html(""),
                "/abs" => html(r#"<a href="/a">a</a>"#),
                "/missing" => Reply::status("404 Not Found", "Content-Type: text/html\r\n", b"no such page"),
                _ => Reply::status("500 Internal Server Error", "", b"this page must not be fetched"),
            }
        });
        own_port.store(site.addr.port(), Ordering::SeqCst);
        Site { site, other }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.site.addr)
    }
}

/// What the site links to, in scope, with the status each page answers.
const REACHABLE: [(&str, u16); 14] = [
    ("/", 200),
    ("/a", 200),
    ("/abs", 200),
    ("/away", 302),
    ("/b", 200),
    ("/c", 200),
    ("/c?k=v", 200),
    ("/doc.txt", 200),
    ("/landing", 200),
    ("/missing", 404),
    ("/moved", 301),
    ("/q?x=1&y=2", 200),
    ("/sub/deep", 200),
    ("/upper", 200),
];

fn reachable() -> BTreeMap<String, u16> {
    REACHABLE.iter().map(|(path, status)| (path.to_string(), *status)).collect()
}

fn check_full_crawl(max_tasks: &str) {
    let site = Site::start();
    let root = site.site.url("/");
    let output = crawl(&[&root, "--max-tasks", max_tasks]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(printed(&output, &site.origin()), reachable(), "{output:?}");
    // Each page was fetched exactly once, and nothing else.
    let mut asked: Vec<String> = site.site.requests().into_iter().map(|r| r.target).collect();
    asked.sort();
    let expected: Vec<String> = reachable().into_keys().collect();
    assert_eq!(asked, expected);
    assert_eq!(site.other.requests().len(), 0, "the other port was never asked");
    assert_eq!(site.other.accepts(), 0);
    assert!(output.stderr.contains("14 pages, 0 errors"), "{}", output.stderr);
}

#[test]
fn crawls_exactly_the_reachable_in_scope_set() {
    check_full_crawl("10");
}

#[test]
fn one_worker_crawls_the_same_set() {
    check_full_crawl("1");
}

#[test]
fn max_pages_limits_the_crawl() {
    let site = Site::start();
    let root = site.site.url("/");
    let output = crawl(&[&root, "--max-pages", "5"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let pages = printed(&output, &site.origin());
    assert_eq!(pages.len(), 5, "{output:?}");
    assert_eq!(pages.get("/"), Some(&200));
    let all = reachable();
    assert!(pages.iter().all(|(path, status)| all.get(path) == Some(status)), "{pages:?}");
    assert_eq!(site.site.requests().len(), 5);
}

#[test]
fn a_root_without_a_trailing_slash_and_an_unreachable_root() {
    let site = Site::start();
    let output = crawl(&[&site.origin(), "--max-pages", "1"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.lines(), [format!("200 {}/", site.origin())]);

    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port())
    };
    let output = crawl(&[&refused]);
    assert_eq!(output.code, Some(1), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].starts_with("ERR ") && lines[0].ends_with(&refused), "{output:?}");
}

#[test]
fn href_is_the_attribute_not_any_substring() {
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r#"<a data-href="/decoy" href="/real">x</a> <a title="see href=/decoy2" href='/real2'>y</a>"#,
        ),
        _ => html(""),
    });
    let output = crawl(&[&server.url("/")]);
    let pages: BTreeSet<String> = printed(&output, &format!("http://{}", server.addr)).into_keys().collect();
    assert_eq!(pages, BTreeSet::from(["/", "/real", "/real2"].map(String::from)));
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["http://127.0.0.1:1/", "http://127.0.0.1:2/"][..],
        &["--max-tasks", "many"],
        &["--max-pages"],
        &["--bogus"],
    ] {
        let output = crawl(args);
        assert_eq!(output.code, Some(2), "{args:?}: {output:?}");
        assert!(output.stderr.contains("usage: crawl"), "{args:?}: {output:?}");
    }
    let output = crawl(&["ftp://127.0.0.1/"]);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn demo_crawls_its_own_site() {
    let output = crawl(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let origin = output
        .lines()
        .first()
        .and_then(|line| line.split_once(' '))
        .and_then(|(_, url)| url.strip_suffix('/').map(|u| u.to_string()))
        .filter(|u| u.starts_with("http://127.0.0.1:"));
    // The root is fetched first; every other page comes later.
    let origin = origin.unwrap_or_else(|| panic!("the root first: {output:?}"));
    let pages = printed(&output, &origin);
    let expected: BTreeMap<String, u16> = [
        ("/", 200),
        ("/a", 200),
        ("/b", 200),
        ("/c", 200),
        ("/c?x=1&y=2", 200),
        ("/old", 301),
        ("/new", 200),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), *s))
    .collect();
    assert_eq!(pages, expected, "{output:?}");
    assert!(output.stderr.contains("7 pages, 0 errors"), "{}", output.stderr);
    assert!(output.elapsed < Duration::from_secs(5), "took {:?}", output.elapsed);
}

// ---------------------------------------------------------------------------------------
// Running the examples as processes

mod process {
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// What a run of an example gave.
    #[derive(Debug)]
    pub struct Output {
        /// The exit code (None if killed by a signal).
        pub code: Option<i32>,
        pub stdout: String,
        pub stderr: String,
        pub elapsed: Duration,
    }

    impl Output {
        pub fn lines(&self) -> Vec<&str> {
            self.stdout.lines().collect()
        }
    }

    /// `target/debug/examples/<name>`, built once per test binary (`cargo build`, the
    /// debug profile, as the tests; `CARGO_TARGET_DIR` respected).
    pub fn example(name: &str) -> PathBuf {
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        let dir = BUILT.get_or_init(|| {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--quiet", "--example", "fetch", "--example", "crawl"])
                .current_dir(&manifest);
            // The variables cargo set for this test process are not the shell's: passed on,
            // they would make build scripts that track them (ring's) rebuild, here and then
            // again in the next plain cargo command.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("CARGO_PKG_")
                    || [
                        "CARGO_MANIFEST_DIR",
                        "CARGO_MANIFEST_PATH",
                        "CARGO_CRATE_NAME",
                        "CARGO_BIN_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "CARGO_RUSTC_CURRENT_DIR",
                        "OUT_DIR",
                    ]
                    .contains(&name.as_ref())
                {
                    cargo.env_remove(name.as_ref());
                }
            }
            let status = cargo.status().expect("run cargo build");
            assert!(status.success(), "cargo build of the examples failed");
            let target =
                std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from);
            manifest.join(target).join("debug").join("examples")
        });
        dir.join(name)
    }

    /// Runs example `name` with `args`, killed (and the test failed) after `limit`.
    pub fn run(name: &str, args: &[&str], limit: Duration) -> Output {
        let program = example(name);
        let started = Instant::now();
        let mut child = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let reader = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = reader(Box::new(child.stdout.take().unwrap()));
        let stderr = reader(Box::new(child.stderr.take().unwrap()));
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} {args:?} still running after {limit:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = started.elapsed();
        Output {
            code: status.code(),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
            elapsed,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The scripted server

#[allow(dead_code)] // each test file uses part of this module
mod server {
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
}
