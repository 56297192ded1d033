//! Property suite of issue 7 (deterministic mode, point 6): the HTTP client (`src/http/`)
//! against a local server under injected socket faults.
//!
//! The server is the scripted one of the HTTP tests (std threads, so the faults, which
//! the loop injects on its own thread only, hit the client alone). It answers
//! `/r/<id>/<framing>/<len>/<chunk>` with a body of `len` bytes unique to the request `id`,
//! framed by Content-Length, chunked (in `chunk`-byte chunks), until-close, or
//! Content-Length with `Connection: close`. proptest picks the loop seed (task order and
//! faults), the fault rates, and rounds of one to three concurrent requests, each read to
//! the end, read for a few chunks then dropped, or dropped right after its head. Checked:
//! - transient faults (short reads and writes, `EAGAIN`, `EINTR`): every response is
//!   byte-exact (whatever part of it was read), each request reaches the server exactly
//!   once, and when requests go one at a time the pool reuses exactly the connections a
//!   model says it can: one left after a body read to its end and kept alive, never one
//!   dropped in the middle of its body, nor one the server closes;
//! - with resets as well: every response is byte-exact or a clean `HttpError` (never a
//!   time-out, a panic or a hang), and a response that follows one dropped half-read on
//!   the same host is its own, not the rest of the other;
//! - after each case the client is dropped and `assert_quiescent` holds.
//!
//! And two fixed tests: the pool against a server that sends bytes nobody asked for on a
//! kept-alive connection while it idles in the pool; a reset on a new connection reported
//! as that I/O error.
//!
//! Rates: each transient fault at one of [`TRANSIENT_RATES`]; resets at one of
//! [`RESET_RATES`] per stream `recv`/`send`, beside transient faults at
//! [`TRANSIENT_WITH_RESETS`]. Seeds: cases come from [`CASES_SEED`] (override with
//! `PROPTEST_RNG_SEED`); each case's loop and fault seed is in its input, printed by
//! proptest and `deterministic::report_seed` on failure (replay with `EVLOOP_SEED=0x...`).
//! Sockets are watched throughout, so the virtual clock does not jump and [`CASE_LIMIT`]
//! and the client's time limits are in effect real time. [`CASES`] cases per property.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use evloop::http::{Client, ClientOptions, HttpError, HttpErrorKind};
use evloop::{deterministic, gather, get_running_loop, wait_for, EventLoop, FaultCounts, FaultPlan};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use server::{Reply, Server};

mod common;
use common::{pattern, proptest_config, Watchdog};

/// The seed proptest generates this file's cases from.
const CASES_SEED: u64 = 0x6874_7470_0000_0007;
/// Cases per property.
const CASES: u32 = 128;
/// Rates of each transient fault (short read, short write, `EAGAIN`, `EINTR`).
const TRANSIENT_RATES: [f64; 3] = [0.05, 0.2, 0.5];
/// Rates of connection resets per stream `recv`/`send`, in the property with resets.
const RESET_RATES: [f64; 2] = [0.02, 0.1];
/// The rate of each transient fault beside the resets.
const TRANSIENT_WITH_RESETS: f64 = 0.2;
/// Time one case may take (real time in effect); a case takes milliseconds.
const CASE_LIMIT: Duration = Duration::from_secs(20);
/// The client's own time limits, under [`CASE_LIMIT`]: reaching one is a failure too.
const CLIENT_LIMIT: Duration = Duration::from_secs(10);
/// Real time before the watchdog aborts the run.
const CASE_WATCHDOG: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked(usize),
    UntilClose,
    LengthThenClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadBody {
    /// To the end.
    All,
    /// At most this many chunks, then the response is dropped.
    Part(usize),
    /// Dropped right after the head.
    HeadOnly,
}

#[derive(Clone, Copy, Debug)]
struct Req {
    framing: Framing,
    len: usize,
    read: ReadBody,
}

fn req() -> impl Strategy<Value = Req> {
    let framing = prop_oneof![
        4 => Just(Framing::Length),
        3 => (1usize..5000).prop_map(Framing::Chunked),
        1 => Just(Framing::UntilClose),
        1 => Just(Framing::LengthThenClose),
    ];
    let len = prop_oneof![1 => 0usize..16, 2 => 0usize..4096, 2 => 0usize..200_000];
    let read = prop_oneof![
        4 => Just(ReadBody::All),
        2 => (1usize..4).prop_map(ReadBody::Part),
        1 => Just(ReadBody::HeadOnly),
    ];
    (framing, len, read).prop_map(|(framing, len, read)| Req { framing, len, read })
}

fn rounds() -> impl Strategy<Value = Vec<Vec<Req>>> {
    prop_oneof![
        // One request at a time: the pool's reuse follows the model exactly.
        1 => prop::collection::vec(req().prop_map(|r| vec![r]), 1..10),
        1 => prop::collection::vec(prop::collection::vec(req(), 1..4), 1..6),
    ]
}

/// The body of request `id`.
fn body_of(id: usize, len: usize) -> Vec<u8> {
    pattern(len, 0x6b6f_6479 ^ id as u64)
}

fn path_of(id: usize, req: &Req) -> String {
    match req.framing {
        Framing::Length => format!("/r/{id}/length/{}/0", req.len),
        Framing::Chunked(chunk) => format!("/r/{id}/chunked/{}/{chunk}", req.len),
        Framing::UntilClose => format!("/r/{id}/close/{}/0", req.len),
        Framing::LengthThenClose => format!("/r/{id}/length-close/{}/0", req.len),
    }
}

/// The scripted server's answer to `/r/<id>/<framing>/<len>/<chunk>`.
fn answer(target: &str) -> Reply {
    let parts: Vec<&str> = target.split('/').collect();
    let [_, "r", id, framing, len, chunk] = parts[..] else {
        return Reply::status("404 Not Found", "", b"no such path");
    };
    let (id, len, chunk): (usize, usize, usize) =
        (id.parse().unwrap(), len.parse().unwrap(), chunk.parse().unwrap());
    let body = body_of(id, len);
    match framing {
        "length" => Reply::status("200 OK", "", &body),
        "length-close" => Reply::status("200 OK", "Connection: close\r\n", &body).close(),
        "close" => {
            let mut bytes = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            bytes.extend_from_slice(&body);
            Reply::raw(bytes).close()
        }
        "chunked" => {
            let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for piece in body.chunks(chunk.max(1)) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            Reply::raw(bytes)
        }
        _ => Reply::status("404 Not Found", "", b"no such framing"),
    }
}

fn client() -> Client {
    Client::with_options(ClientOptions {
        timeout: CLIENT_LIMIT,
        connect_timeout: CLIENT_LIMIT,
        ..ClientOptions::default()
    })
}

/// How one request went.
#[derive(Debug)]
enum Outcome {
    /// The head, and the body chunks read (all of them if `complete`).
    Response {
        status: u16,
        length: Option<String>,
        body: Vec<u8>,
        complete: bool,
    },
    Failed(String, bool),
}

impl Outcome {
    fn failed(error: HttpError) -> Outcome {
        let timed_out = matches!(error.kind, HttpErrorKind::Timeout(_));
        Outcome::Failed(error.to_string(), timed_out)
    }
}

async fn fetch(client: Client, url: String, read: ReadBody) -> Outcome {
    let mut response = match client.get(&url).await {
        Ok(response) => response,
        Err(error) => return Outcome::failed(error),
    };
    let (status, length) = (response.status(), response.header("content-length").map(str::to_string));
    let mut body = Vec::new();
    let most = match read {
        ReadBody::All => usize::MAX,
        ReadBody::Part(chunks) => chunks,
        ReadBody::HeadOnly => 0,
    };
    let mut complete = false;
    for _ in 0..most {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => {
                complete = true;
                break;
            }
            Err(error) => return Outcome::failed(error),
        }
    }
    Outcome::Response { status, length, body, complete }
}

/// Runs the rounds, one after the other, the requests of a round at once, against the
/// server `url` names; each request's outcome.
async fn run_rounds(url: impl Fn(&str) -> String, rounds: Vec<Vec<Req>>) -> Vec<Outcome> {
    let client = client();
    let mut outcomes = Vec::new();
    let mut id = 0;
    for round in rounds {
        let fetches: Vec<_> = round
            .iter()
            .map(|req| {
                let fetch = fetch(client.clone(), url(&path_of(id, req)), req.read);
                id += 1;
                Box::pin(fetch)
            })
            .collect();
        outcomes.extend(gather(fetches).await.expect("plain futures do not fail"));
    }
    outcomes
}

/// A faulty loop with `seed` running `body`, bounded by [`CASE_LIMIT`]; then checks
/// that nothing panicked and nothing is left on the loop.
fn run_faulty<T: 'static, Fut>(
    seed: u64,
    plan: impl FnOnce(u64) -> FaultPlan,
    what: &str,
    body: impl FnOnce() -> Fut,
) -> Result<(T, FaultCounts), TestCaseError>
where
    Fut: Future<Output = T> + 'static,
{
    let _watchdog = Watchdog::start(CASE_WATCHDOG, format!("{what} with seed {seed:#x}"));
    deterministic::report_seed(seed, |seed| {
        let event_loop = EventLoop::builder().virtual_clock().seed(seed).faults(plan(seed)).build().unwrap();
        let panics = Rc::new(RefCell::new(Vec::new()));
        let seen = panics.clone();
        event_loop.set_exception_handler(move |context| seen.borrow_mut().push(context.to_string()));
        let outcome = event_loop.run_until_complete(wait_for(Box::pin(body()), CASE_LIMIT));
        let counts = event_loop.fault_counts().expect("faults were planned");
        prop_assert!(panics.borrow().is_empty(), "panics: {:?}", panics.borrow());
        let value = match outcome {
            Ok(Ok(value)) => value,
            Ok(Err(_)) => {
                return Err(TestCaseError::fail(format!("{what}: hung ({CASE_LIMIT:?}); {counts:?}")))
            }
            Err(error) => return Err(TestCaseError::fail(format!("{what}: {error}"))),
        };
        // The client is gone: its connections close in the iteration after.
        event_loop.run_until_complete(async {}).unwrap();
        let quiescent = event_loop.check_quiescent();
        prop_assert!(quiescent.is_ok(), "{}; {:?}", quiescent.unwrap_err(), counts);
        Ok((value, counts))
    })
}

/// Checks every outcome against its request; `transient`: no error allowed at all.
fn check_outcomes(requests: &[Req], outcomes: &[Outcome], transient: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(requests.len(), outcomes.len());
    for (id, (req, outcome)) in requests.iter().zip(outcomes).enumerate() {
        let expected = body_of(id, req.len);
        match outcome {
            Outcome::Response { status, length, body, complete } => {
                prop_assert_eq!(*status, 200, "request {}", id);
                if matches!(req.framing, Framing::Length | Framing::LengthThenClose) {
                    prop_assert_eq!(length.clone(), Some(req.len.to_string()), "request {}", id);
                }
                prop_assert!(
                    expected.starts_with(body),
                    "request {} ({:?}): {} body bytes that are not its own",
                    id,
                    req,
                    body.len()
                );
                if *complete {
                    prop_assert_eq!(body.len(), expected.len(), "request {}: the body ended early", id);
                }
                if req.read == ReadBody::All {
                    prop_assert!(*complete, "request {}: read to the end, yet not complete", id);
                }
            }
            Outcome::Failed(error, timed_out) => {
                prop_assert!(
                    !transient,
                    "request {} ({:?}) failed under transient faults: {}",
                    id,
                    req,
                    error
                );
                prop_assert!(!timed_out, "request {} timed out (a hang): {}", id, error);
            }
        }
    }
    Ok(())
}

/// The connection (by accept order) each request should reach the server on, when the
/// requests go one at a time with transient faults only: the pool keeps a connection
/// whose body was read to its end on a kept-alive response, and hands out the newest.
fn model_connections(requests: &[Req], outcomes: &[Outcome]) -> Vec<usize> {
    let (mut idle, mut next, mut conns) = (Vec::new(), 0, Vec::new());
    for (req, outcome) in requests.iter().zip(outcomes) {
        let conn = idle.pop().unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        conns.push(conn);
        let complete = matches!(outcome, Outcome::Response { complete: true, .. });
        if complete && matches!(req.framing, Framing::Length | Framing::Chunked(_)) {
            idle.push(conn);
        }
    }
    conns
}

proptest! {
    #![proptest_config(proptest_config(CASES, CASES_SEED))]

    #[test]
    fn responses_are_byte_exact_and_the_pool_reuses_only_clean_connections_under_transient_faults(
        rounds in rounds(),
        rate in prop::sample::select(TRANSIENT_RATES.to_vec()),
        seed in any::<u64>(),
    ) {
        let server = Server::start(|request| answer(&request.target));
        let requests: Vec<Req> = rounds.iter().flatten().copied().collect();
        let one_at_a_time = rounds.iter().all(|round| round.len() == 1);
        let base = server.url("");
        let (outcomes, counts) = run_faulty(
            seed,
            |seed| FaultPlan::transient(seed, rate),
            "http with transient faults",
            move || run_rounds(move |path| format!("{base}{path}"), rounds),
        )?;
        check_outcomes(&requests, &outcomes, true)?;
        prop_assert_eq!(counts.resets, 0);
        // Each request reached the server once; one at a time, on the model's connection.
        let mut received: Vec<(usize, usize)> = server
            .requests()
            .iter()
            .map(|r| (r.target.split('/').nth(2).unwrap().parse().unwrap(), r.conn))
            .collect();
        received.sort_unstable();
        let ids: Vec<usize> = received.iter().map(|&(id, _)| id).collect();
        prop_assert_eq!(ids, (0..requests.len()).collect::<Vec<_>>(), "requests sent more or less than once");
        if one_at_a_time {
            let conns: Vec<usize> = received.iter().map(|&(_, conn)| conn).collect();
            let model = model_connections(&requests, &outcomes);
            prop_assert_eq!(conns, model, "connections reused against the model");
        }
    }

    #[test]
    fn responses_are_byte_exact_or_clean_errors_with_resets(
        rounds in rounds(),
        reset_rate in prop::sample::select(RESET_RATES.to_vec()),
        seed in any::<u64>(),
    ) {
        let server = Server::start(|request| answer(&request.target));
        let requests: Vec<Req> = rounds.iter().flatten().copied().collect();
        let base = server.url("");
        let (outcomes, _counts) = run_faulty(
            seed,
            |seed| FaultPlan::transient(seed, TRANSIENT_WITH_RESETS).with_resets(reset_rate),
            "http with resets",
            move || run_rounds(move |path| format!("{base}{path}"), rounds),
        )?;
        check_outcomes(&requests, &outcomes, false)?;
    }
}

/// A kept-alive connection idles in the pool when the server sends bytes nobody asked for
/// (a second response, say): they must not be taken for the answer to the next request
/// on that connection. The server is a thread of its own so it can send them at the right
/// moment: after the first response was read to its end, before the second request.
/// (This found that `Connection::is_clean`, src/http/pool.rs, looked only at the
/// connection's own buffer, not at the bytes its `StreamReader` held: the second GET
/// returned "STALE".)
#[test]
fn unsolicited_bytes_on_a_pooled_connection_are_not_taken_for_the_next_response() {
    let _watchdog = Watchdog::start(CASE_WATCHDOG, "unsolicited bytes on a pooled connection");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (send_extra, extra_wanted) = mpsc::channel::<()>();
    let (extra_sent, wait_extra) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let mut served = Vec::new();
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { break };
            let mut first = true;
            loop {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => break,
                    }
                }
                if !request.ends_with(b"\r\n\r\n") {
                    break;
                }
                let target = String::from_utf8_lossy(&request).split(' ').nth(1).unwrap_or("").to_string();
                served.push(target.clone());
                let body = format!("answer to {target}");
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                stream.write_all(reply.as_bytes()).unwrap();
                if first {
                    first = false;
                    // Unasked: a whole second response, once the client says so.
                    if extra_wanted.recv().is_ok() {
                        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTALE").unwrap();
                        wait_until_delivered(&stream);
                        let _ = extra_sent.send(());
                    }
                }
            }
        }
        served
    });
    let event_loop = EventLoop::builder().virtual_clock().build().unwrap();
    let (first, second) = event_loop
        .run_until_complete(async move {
            let event_loop = get_running_loop().unwrap();
            let client = client();
            let get = |path: &str| {
                let (client, url) = (client.clone(), format!("http://127.0.0.1:{port}{path}"));
                async move {
                    let response = client.get(&url).await?;
                    response.text().await
                }
            };
            let first = get("/first").await;
            // The first connection is in the pool now; the server sends its extra bytes,
            // and the loop reads them (the socket is readable before the executor job that
            // waits for the server's word ends, so in the same iteration at the latest).
            send_extra.send(()).unwrap();
            let waited = event_loop.run_in_executor(move || wait_extra.recv_timeout(CASE_WATCHDOG));
            wait_for(waited, CASE_LIMIT).await.expect("the server's word").unwrap().expect("the extra bytes");
            let second =
                wait_for(Box::pin(get("/second")), CASE_LIMIT).await.expect("the second request hung");
            (first.map_err(|e| e.to_string()), second.map_err(|e| e.to_string()))
        })
        .unwrap();
    event_loop.run_until_complete(async {}).unwrap();
    event_loop.shutdown_default_executor();
    // Unblocks the server's accept if the client never opened a second connection.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)));
    let served = server.join().unwrap();
    assert_eq!(first.as_deref(), Ok("answer to /first"));
    assert_ne!(second.as_deref(), Ok("STALE"), "the unsolicited bytes were taken for the response");
    assert_eq!(second.as_deref(), Ok("answer to /second"));
    assert_eq!(served, ["/first", "/second"]);
    event_loop.assert_quiescent();
}

/// Waits until the peer's kernel has acknowledged everything written to `stream`, so the
/// bytes are in the peer's receive queue: a loopback `write` usually delivers before it
/// returns, but on a loaded machine the kernel may finish the delivery later, and the
/// test above needs the extra bytes readable before it tells the client to go on. Reads
/// the socket's send queue (`tx_queue`) from `/proc/net/tcp`; bounded by the watchdog.
fn wait_until_delivered(stream: &std::net::TcpStream) {
    let (local, peer) = (stream.local_addr().unwrap().port(), stream.peer_addr().unwrap().port());
    let ours = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |address: &str| address.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
        (fields.len() > 4 && port(fields[1]) == Some(local) && port(fields[2]) == Some(peer)).then(|| {
            let tx_queue = fields[4].split(':').next().unwrap_or("0");
            u64::from_str_radix(tx_queue, 16).unwrap_or(0)
        })
    };
    let deadline = std::time::Instant::now() + CASE_WATCHDOG;
    while std::time::Instant::now() < deadline {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        if table.lines().filter_map(ours).all(|unacknowledged| unacknowledged == 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A reset on a connection just opened is reported as the I/O error it is, not as a
/// server that "closed without a response": every stream `send`/`recv` of this loop is
/// reset, so the request's first `send` is.
#[test]
fn a_reset_on_a_new_connection_is_an_io_error() {
    let _watchdog = Watchdog::start(CASE_WATCHDOG, "a reset on a new connection");
    let server = Server::start(|request| answer(&request.target));
    let url = server.url(&path_of(0, &Req { framing: Framing::Length, len: 10, read: ReadBody::All }));
    let event_loop = EventLoop::builder()
        .faults(FaultPlan { seed: 2, reset: 1.0, ..FaultPlan::default() })
        .build()
        .unwrap();
    let outcome = event_loop
        .run_until_complete(async move {
            let client = client();
            let result = client.get(&url).await.map(|_| ());
            drop(client);
            result
        })
        .unwrap();
    match outcome {
        Err(HttpError { kind: HttpErrorKind::Io(error), .. }) => {
            assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}")
        }
        other => panic!("expected a connection reset, got {other:?}"),
    }
    event_loop.assert_quiescent();
}

#[path = "support/scripted_http.rs"]
#[allow(dead_code)]
mod server;
