//! Transports and protocols (asyncio's callback layer): `create_server` /
//! `create_connection`, the order of protocol callbacks, half-close, close versus abort,
//! write flow control, pausing reads, addresses, resets, server shutdown, many connections
//! at once, and IPv6.
//!
//! Protocol callbacks are recorded in a [`Watch`]: a value plus the wakers of coroutines
//! waiting for a condition on it, so a test awaits "the server saw EOF" instead of
//! sleeping and hoping.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
use std::rc::Rc;

use evloop::sys::socket::{Kind, SockAddr, Socket};
use evloop::transport::{Protocol, Server, ServerOptions, Transport, DEFAULT_HIGH_WATER};
use evloop::Interest;

mod common;
use common::{open_file_limit, pattern, poll_once, port_of, run_test, this_loop, Watch};

/// One protocol callback; consecutive `data_received` calls are recorded once.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Made,
    Data,
    Eof,
    Lost(Option<io::ErrorKind>),
    PauseWriting,
    ResumeWriting,
}

#[derive(Default)]
struct Record {
    events: Vec<Ev>,
    received: Vec<u8>,
    transport: Option<Transport>,
    lost_error: Option<String>,
}

impl Record {
    fn saw(&self, event: &Ev) -> bool {
        self.events.contains(event)
    }

    fn lost(&self) -> Option<Option<io::ErrorKind>> {
        self.events.iter().find_map(|e| match e {
            Ev::Lost(kind) => Some(*kind),
            _ => None,
        })
    }
}

type Log = Rc<Watch<Record>>;

/// A protocol that records what happens to it and, if asked, echoes what it receives.
struct Recorder {
    log: Log,
    echo: bool,
    /// What `eof_received` returns: true keeps the connection open for writing.
    keep_open_on_eof: bool,
    pause_in_connection_made: bool,
}

impl Recorder {
    fn new(log: &Log) -> Recorder {
        Recorder { log: log.clone(), echo: false, keep_open_on_eof: false, pause_in_connection_made: false }
    }

    fn echo(log: &Log) -> Recorder {
        Recorder { echo: true, ..Recorder::new(log) }
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: &Transport) {
        self.log.update(|r| {
            r.events.push(Ev::Made);
            r.transport = Some(transport.clone());
        });
        if self.pause_in_connection_made {
            transport.pause_reading();
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        let transport = self.log.update(|r| {
            if r.events.last() != Some(&Ev::Data) {
                r.events.push(Ev::Data);
            }
            r.received.extend_from_slice(data);
            r.transport.clone()
        });
        if self.echo {
            transport.expect("data before connection_made").write(data);
        }
    }

    fn eof_received(&mut self) -> bool {
        self.log.update(|r| r.events.push(Ev::Eof));
        self.keep_open_on_eof
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        self.log.update(|r| {
            r.lost_error = error.as_ref().map(|e| e.to_string());
            r.events.push(Ev::Lost(error.map(|e| e.kind())));
        });
    }

    fn pause_writing(&mut self) {
        self.log.update(|r| r.events.push(Ev::PauseWriting));
    }

    fn resume_writing(&mut self) {
        self.log.update(|r| r.events.push(Ev::ResumeWriting));
    }
}

/// The logs of the connections a server accepted, in order.
type Accepted = Rc<Watch<Vec<Log>>>;

/// A server on 127.0.0.1 whose connections are `make(log)` protocols.
async fn server_with(make: impl Fn(&Log) -> Recorder + 'static) -> (Server, u16, Accepted) {
    server_on("127.0.0.1", make).await.expect("create_server")
}

async fn server_on(
    host: &str,
    make: impl Fn(&Log) -> Recorder + 'static,
) -> io::Result<(Server, u16, Accepted)> {
    let accepted: Accepted = Watch::new(Vec::new());
    let registry = accepted.clone();
    let factory = move || {
        let log: Log = Watch::new(Record::default());
        registry.update(|all| all.push(log.clone()));
        make(&log)
    };
    let options = ServerOptions { backlog: 1024, ..ServerOptions::default() };
    let server = this_loop().create_server(factory, host, 0, options).await?;
    let port = port_of(&server);
    Ok((server, port, accepted))
}

/// The `index`-th connection's log, once its `connection_made` has run.
async fn accepted_log(accepted: &Accepted, index: usize) -> Log {
    let log = accepted.until_some(|all| all.get(index).cloned()).await;
    log.until_some(|r| r.transport.is_some().then_some(())).await;
    log
}

/// Connects a [`Recorder`] and waits for its `connection_made` (asyncio's
/// `create_connection` returns only after it; see the ignored test below).
async fn connect(port: u16, log: &Log) -> Transport {
    let factory_log = log.clone();
    let (transport, _) = this_loop()
        .create_connection(move || Recorder::new(&factory_log), "127.0.0.1", port)
        .await
        .expect("connect");
    log.until_some(|r| r.transport.is_some().then_some(())).await;
    transport
}

fn transport_of(log: &Log) -> Transport {
    log.get(|r| r.transport.clone()).expect("connection_made ran")
}

/// Consecutive `Data` events merged, so orders can be compared whatever the chunking.
fn order(log: &Log) -> Vec<Ev> {
    log.get(|r| r.events.clone())
}

/// Proves that the loop has gone round since bytes were written to another connection of
/// the server: a second client (the server's `index`-th connection) writes one byte and
/// waits until the server got it. The earlier bytes were in the kernel before, so a
/// registered reader would have been called by then.
async fn sentinel_round(port: u16, accepted: &Accepted, index: usize) -> Transport {
    let log: Log = Watch::new(Record::default());
    let transport = connect(port, &log).await;
    transport.write(b"!");
    accepted_log(accepted, index).await.until_some(|r| (!r.received.is_empty()).then_some(())).await;
    transport
}

/// More than the kernel's socket buffers take from a peer that does not read.
const FLOOD: usize = 32 << 20;

#[test]
fn echo_and_the_order_of_callbacks() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::echo).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        transport.write(b"hello, ");
        transport.write(b"evloop");
        client.until_some(|r| (r.received.len() >= 13).then_some(())).await;
        assert_eq!(client.get(|r| r.received.clone()), b"hello, evloop");

        // Client half-closes; the echo server's eof_received says "close", so both ends
        // close cleanly.
        transport.write_eof();
        let server_log = accepted_log(&accepted, 0).await;
        client.until_some(|r| r.lost()).await;
        server_log.until_some(|r| r.lost()).await;
        assert_eq!(order(&client), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        assert_eq!(order(&server_log), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        assert_eq!(server_log.get(|r| r.received.clone()), b"hello, evloop");
        assert!(transport.is_closing());
        assert_eq!(transport.fd(), None);
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn write_eof_half_close_lets_the_server_still_write_back() {
    run_test(async {
        let (server, port, accepted) =
            server_with(|log| Recorder { keep_open_on_eof: true, ..Recorder::echo(log) }).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        assert!(transport.can_write_eof());
        transport.write(b"request");
        transport.write_eof();
        transport.write(b" ignored after write_eof");

        let server_log = accepted_log(&accepted, 0).await;
        server_log.until_some(|r| r.saw(&Ev::Eof).then_some(())).await;
        assert_eq!(server_log.get(|r| r.received.clone()), b"request");
        // The server's side is still open for writing after the client's EOF.
        let server_transport = transport_of(&server_log);
        assert!(!server_transport.is_closing());
        server_transport.write(b" and the answer");
        server_transport.close();

        client.until_some(|r| r.lost()).await;
        assert_eq!(client.get(|r| r.received.clone()), b"request and the answer");
        assert_eq!(order(&client), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        server_log.until_some(|r| r.lost()).await;
        assert_eq!(order(&server_log), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn close_flushes_buffered_data_before_connection_lost() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let data = pattern(FLOOD, 2);
        transport.write(&data);
        assert!(transport.get_write_buffer_size() > 0, "the kernel took {FLOOD} bytes at once");
        transport.close();
        assert!(transport.is_closing());
        transport.write(b"ignored after close");

        client.until_some(|r| r.lost()).await;
        // As in asyncio, draining the buffer while closing also resumes writing.
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting, Ev::ResumeWriting, Ev::Lost(None)]);
        let server_log = accepted_log(&accepted, 0).await;
        server_log.until_some(|r| r.lost()).await;
        let received = server_log.get(|r| r.received.clone());
        assert_eq!(received.len(), FLOOD, "close did not flush the whole buffer");
        assert!(received == data, "the flushed bytes differ from those written");
        assert_eq!(order(&server_log), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn abort_drops_buffered_data() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let server_log = accepted_log(&accepted, 0).await;
        // The server does not read until the client has aborted.
        transport_of(&server_log).pause_reading();

        let data = pattern(FLOOD, 3);
        transport.write(&data);
        let buffered = transport.get_write_buffer_size();
        assert!(buffered > 0, "the kernel took {FLOOD} bytes at once");
        transport.abort();
        assert!(transport.is_closing());
        assert_eq!(transport.get_write_buffer_size(), 0, "abort kept its buffer");
        client.until_some(|r| r.lost()).await;
        assert_eq!(client.get(|r| r.lost()), Some(None), "abort is a clean close for the protocol");

        transport_of(&server_log).resume_reading();
        server_log.until_some(|r| r.lost()).await;
        let received = server_log.get(|r| r.received.clone());
        assert!(received.len() <= FLOOD - buffered, "the aborted buffer was sent anyway");
        assert!(data.starts_with(&received), "what arrived is not a prefix of what was written");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn flow_control_pauses_and_resumes_writing() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        assert_eq!(transport.get_write_buffer_limits(), (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER / 4));
        let server_log = accepted_log(&accepted, 0).await;
        let server_transport = transport_of(&server_log);
        server_transport.pause_reading();

        let data = pattern(FLOOD, 4);
        transport.write(&data);
        let high = transport.get_write_buffer_size();
        assert!(high > DEFAULT_HIGH_WATER, "only {high} bytes buffered");
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting], "pause_writing not called at once");

        // The peer reads again: the buffer drains, resume_writing, everything arrives.
        server_transport.resume_reading();
        client.until_some(|r| r.saw(&Ev::ResumeWriting).then_some(())).await;
        assert!(transport.get_write_buffer_size() <= DEFAULT_HIGH_WATER / 4);
        server_log.until_some(|r| (r.received.len() == FLOOD).then_some(())).await;
        assert_eq!(transport.get_write_buffer_size(), 0);
        assert!(server_log.get(|r| r.received == data));
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting, Ev::ResumeWriting]);
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn pause_writing_from_inside_a_protocol_callback_comes_after_it() {
    // The server answers a request with far more than the high-water mark from inside
    // data_received; the pause notice must still reach it (just after the callback).
    struct Flooder {
        log: Log,
        reply: Rc<Vec<u8>>,
    }
    impl Protocol for Flooder {
        fn connection_made(&mut self, transport: &Transport) {
            self.log.update(|r| r.transport = Some(transport.clone()));
        }
        fn data_received(&mut self, _data: &[u8]) {
            self.log.get(|r| r.transport.clone()).unwrap().write(&self.reply);
            self.log.update(|r| r.events.push(Ev::Data));
        }
        fn pause_writing(&mut self) {
            self.log.update(|r| r.events.push(Ev::PauseWriting));
        }
        fn resume_writing(&mut self) {
            self.log.update(|r| r.events.push(Ev::ResumeWriting));
        }
    }
    run_test(async {
        let event_loop = this_loop();
        let server_log: Log = Watch::new(Record::default());
        let reply = Rc::new(pattern(FLOOD, 5));
        let (log, data) = (server_log.clone(), reply.clone());
        let server = event_loop
            .create_server(
                move || Flooder { log: log.clone(), reply: data.clone() },
                "127.0.0.1",
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let port = server.addresses()[0].as_inet().unwrap().port();
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        client.until_some(|r| r.transport.is_some().then_some(())).await;
        transport.pause_reading();
        transport.write(b"go");
        server_log.until_some(|r| r.saw(&Ev::PauseWriting).then_some(())).await;
        assert_eq!(order(&server_log), [Ev::Data, Ev::PauseWriting]);
        transport.resume_reading();
        client.until_some(|r| (r.received.len() == FLOOD).then_some(())).await;
        assert!(client.get(|r| r.received == *reply));
        server_log.until_some(|r| r.saw(&Ev::ResumeWriting).then_some(())).await;
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn set_write_buffer_limits_moves_the_marks() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let server_log = accepted_log(&accepted, 0).await;
        transport_of(&server_log).pause_reading();

        transport.set_write_buffer_limits(Some(1 << 30), None);
        assert_eq!(transport.get_write_buffer_limits(), (1 << 30, 1 << 28));
        transport.write(&pattern(FLOOD, 6));
        let buffered = transport.get_write_buffer_size();
        assert!(buffered > 0);
        assert_eq!(order(&client), [Ev::Made], "paused below a 1 GiB high-water mark");

        // Lowering the high-water mark under what is buffered pauses at once ...
        transport.set_write_buffer_limits(Some(buffered - 1), Some(buffered / 2));
        assert_eq!(transport.get_write_buffer_limits(), (buffered - 1, buffered / 2));
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting]);
        // ... and raising the low-water mark over it resumes at once.
        transport.set_write_buffer_limits(Some(2 * buffered), Some(buffered));
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting, Ev::ResumeWriting]);

        // Defaults: 64 KiB and a quarter of it; a low mark above the high one is clamped.
        transport.set_write_buffer_limits(None, None);
        assert_eq!(transport.get_write_buffer_limits(), (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER / 4));
        transport.set_write_buffer_limits(Some(1000), Some(5000));
        assert_eq!(transport.get_write_buffer_limits(), (1000, 1000));
        transport.abort();
        // The server side does not read, so it would never notice the close by itself.
        transport_of(&server_log).abort();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn pause_reading_unregisters_the_reader_and_resume_reading_delivers() {
    run_test(async {
        let event_loop = this_loop();
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let server_log = accepted_log(&accepted, 0).await;
        let server_transport = transport_of(&server_log);
        let fd = server_transport.fd().unwrap();
        assert!(server_transport.is_reading());
        assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ));

        server_transport.pause_reading();
        server_transport.pause_reading();
        assert!(!server_transport.is_reading());
        assert_eq!(event_loop.fd_interest(fd), None, "paused, yet the reader is registered");
        transport.write(b"while paused");
        let sentinel = sentinel_round(port, &accepted, 1).await;
        assert_eq!(order(&server_log), [Ev::Made], "data delivered while paused");

        server_transport.resume_reading();
        server_transport.resume_reading();
        assert!(server_transport.is_reading());
        assert_eq!(event_loop.fd_interest(fd), Some(Interest::READ));
        server_log.until_some(|r| (r.received.len() == 12).then_some(())).await;
        assert_eq!(server_log.get(|r| r.received.clone()), b"while paused");
        transport.close();
        sentinel.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn pause_reading_in_connection_made_is_respected() {
    run_test(async {
        // Only the first connection pauses; the second is the sentinel, which must read.
        let first = std::cell::Cell::new(true);
        let (server, port, accepted) = server_with(move |log| Recorder {
            pause_in_connection_made: first.replace(false),
            ..Recorder::new(log)
        })
        .await;
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let server_log = accepted_log(&accepted, 0).await;
        let server_transport = transport_of(&server_log);
        assert!(!server_transport.is_reading(), "the protocol paused reading in connection_made");
        assert_eq!(this_loop().fd_interest(server_transport.fd().unwrap()), None);
        transport.write(b"x");
        let sentinel = sentinel_round(port, &accepted, 1).await;
        assert_eq!(order(&server_log), [Ev::Made], "data delivered while paused");
        server_transport.resume_reading();
        server_log.until_some(|r| (!r.received.is_empty()).then_some(())).await;
        transport.close();
        sentinel.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn create_connection_returns_after_connection_made() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let client: Log = Watch::new(Record::default());
        let log = client.clone();
        let (transport, _) =
            this_loop().create_connection(move || Recorder::new(&log), "127.0.0.1", port).await.unwrap();
        // asyncio's create_connection awaits a waiter set after connection_made.
        assert_eq!(order(&client), [Ev::Made], "create_connection returned before connection_made");
        let server_log = accepted_log(&accepted, 0).await;
        transport_of(&server_log).pause_reading();
        transport.write(&pattern(FLOOD, 7));
        assert_eq!(order(&client), [Ev::Made, Ev::PauseWriting]);
        transport.abort();
        transport_of(&server_log).abort();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn peer_and_local_addresses() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::new).await;
        let server_addr = SockAddr::Inet(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(server.addresses(), std::slice::from_ref(&server_addr));
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let server_transport = transport_of(&accepted_log(&accepted, 0).await);
        assert_eq!(transport.peer_addr(), Some(&server_addr));
        assert_eq!(server_transport.local_addr(), Some(&server_addr));
        let client_addr = transport.local_addr().cloned().expect("client address");
        assert_eq!(server_transport.peer_addr(), Some(&client_addr));
        assert_ne!(client_addr.as_inet().unwrap().port(), port);
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn addresses_are_looked_up_when_first_asked_for_and_kept() {
    run_test(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_addr = SockAddr::Inet(SocketAddr::from(([127, 0, 0, 1], port)));

        // Asked while connected: both answers are kept, and still there after closing.
        let kept: Log = Watch::new(Record::default());
        let transport = connect(port, &kept).await;
        let (_peer, _) = listener.accept().unwrap();
        assert_eq!(transport.peer_addr(), Some(&server_addr));
        let local = transport.local_addr().cloned().expect("local address");
        transport.abort();
        kept.until_some(|r| r.lost()).await;
        assert_eq!(transport.peer_addr(), Some(&server_addr));
        assert_eq!(transport.local_addr(), Some(&local));

        // First asked once the peer has reset the connection: getpeername fails (ENOTCONN),
        // so there is no peer address, as asyncio has none when getpeername fails.
        let reset: Log = Watch::new(Record::default());
        let transport = connect(port, &reset).await;
        transport.pause_reading();
        let (peer, _) = listener.accept().unwrap();
        transport.write(b"unread");
        // Closing with unread data in its receive queue makes the peer send a reset.
        peer.peek(&mut [0u8; 1]).unwrap();
        drop(peer);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(transport.peer_addr(), None, "the peer reset the connection first");
        assert!(transport.local_addr().is_some(), "getsockname still answers");
        transport.resume_reading();
        assert_eq!(reset.until_some(|r| r.lost()).await, Some(io::ErrorKind::ConnectionReset));

        // First asked after the transport closed: nothing to ask, no answer.
        let closed: Log = Watch::new(Record::default());
        let transport = connect(port, &closed).await;
        let (_peer, _) = listener.accept().unwrap();
        transport.abort();
        assert_eq!(transport.peer_addr(), None);
        assert_eq!(transport.local_addr(), None);
    });
}

#[test]
fn connecting_through_localhost() {
    run_test(async {
        let (server, port, _accepted) = server_with(Recorder::echo).await;
        let client: Log = Watch::new(Record::default());
        let log = client.clone();
        let (transport, _) =
            this_loop().create_connection(move || Recorder::new(&log), "localhost", port).await.unwrap();
        transport.write(b"via localhost");
        client.until_some(|r| (r.received.len() == 13).then_some(())).await;
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn connection_refused_from_create_connection() {
    run_test(async {
        let closed = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        closed.bind(&SockAddr::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
        let port = closed.local_addr().unwrap().as_inet().unwrap().port();
        let log: Log = Watch::new(Record::default());
        let outcome = this_loop().create_connection(move || Recorder::new(&log), "127.0.0.1", port).await;
        let error = outcome.map(|_| ()).expect_err("connected to a port nobody listens on");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
    });
}

#[test]
fn the_peers_eof_closes_a_protocol_that_does_not_keep_it_open() {
    run_test(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        let (mut peer, _) = listener.accept().unwrap();
        peer.write_all(b"last words").unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        client.until_some(|r| r.lost()).await;
        assert_eq!(order(&client), [Ev::Made, Ev::Data, Ev::Eof, Ev::Lost(None)]);
        assert_eq!(client.get(|r| r.received.clone()), b"last words");
        assert!(transport.is_closing());
        // The transport closed its socket: the peer reads the end of the stream.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
}

#[test]
fn a_reset_peer_gives_connection_lost_with_the_error() {
    run_test(async {
        let event_loop = this_loop();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client: Log = Watch::new(Record::default());
        let transport = connect(port, &client).await;
        client.until_some(|r| r.transport.is_some().then_some(())).await;
        let fd = transport.fd().unwrap();
        let (peer, _) = listener.accept().unwrap();
        transport.write(b"data the peer will never read");
        // Once the data is in the peer's receive queue, closing the peer sends a reset.
        peer.peek(&mut [0u8; 1]).unwrap();
        drop(peer);

        let lost = client.until_some(|r| r.lost()).await;
        assert_eq!(lost, Some(io::ErrorKind::ConnectionReset), "{:?}", client.get(|r| r.lost_error.clone()));
        assert_eq!(order(&client), [Ev::Made, Ev::Lost(Some(io::ErrorKind::ConnectionReset))]);
        assert!(transport.is_closing());
        assert_eq!(event_loop.fd_interest(fd), None);
        // Writing to a lost connection is ignored, not a panic.
        transport.write(b"too late");
    });
}

#[test]
fn server_close_then_wait_closed_once_connections_are_gone() {
    run_test(async {
        let (server, port, accepted) = server_with(Recorder::echo).await;
        assert!(server.is_serving());
        let logs: Vec<Log> = (0..2).map(|_| Watch::new(Record::default())).collect();
        let mut transports = Vec::new();
        for log in &logs {
            transports.push(connect(port, log).await);
        }
        accepted_log(&accepted, 1).await;
        assert_eq!(server.active_connections(), 2);

        server.close();
        server.close();
        assert!(!server.is_serving());
        let mut closed = pin!(server.wait_closed());
        assert!(poll_once(closed.as_mut()).await.is_pending(), "wait_closed with two live connections");

        // No longer listening: a new connection is refused. The old ones still echo.
        let refused_log: Log = Watch::new(Record::default());
        let log = refused_log.clone();
        let refused = this_loop().create_connection(move || Recorder::new(&log), "127.0.0.1", port).await;
        assert_eq!(refused.map(|_| ()).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        transports[0].write(b"still served");
        logs[0].until_some(|r| (r.received.len() == 12).then_some(())).await;

        transports[0].close();
        accepted_log(&accepted, 0).await.until_some(|r| r.lost()).await;
        assert_eq!(server.active_connections(), 1);
        assert!(poll_once(closed.as_mut()).await.is_pending(), "wait_closed with one live connection");

        transports[1].close();
        closed.await;
        assert_eq!(server.active_connections(), 0);
        // Once closed, wait_closed returns at once.
        server.wait_closed().await;
    });
}

#[test]
fn a_thousand_concurrent_connections_each_echo_their_own_bytes() {
    let wanted = 1000;
    // Each connection costs two fds here (client and server side); leave some spare.
    let fits = open_file_limit().map_or(wanted, |limit| limit.saturating_sub(64) / 2);
    let count = wanted.min(fits);
    if count < wanted {
        eprintln!("open file limit allows only {count} connections (2 fds each); using {count}");
    }
    run_test(async move {
        let (server, port, accepted) = server_with(Recorder::echo).await;
        let clients = (0..count).map(|i| async move {
            let mut payload = format!("connection {i:04}:").into_bytes();
            payload.extend(pattern(2000 + i % 97, i as u64 + 100));
            let log: Log = Watch::new(Record::default());
            let transport = connect(port, &log).await;
            transport.write(&payload);
            log.until_some(|r| (r.received.len() >= payload.len()).then_some(())).await;
            assert!(log.get(|r| r.received == payload), "connection {i} got back other bytes");
            transport.close();
            log.until_some(|r| r.lost()).await;
            assert_eq!(order(&log), [Ev::Made, Ev::Data, Ev::Lost(None)], "connection {i}");
            payload.len()
        });
        let sizes = evloop::gather(clients).await.expect("a client failed");
        assert_eq!(sizes.len(), count);
        assert_eq!(accepted.get(|all| all.len()), count);
        server.close();
        server.wait_closed().await;
        // Every server-side connection saw exactly one client's payload.
        let mut seen: Vec<usize> = accepted.get(|all| {
            all.iter()
                .map(|log| {
                    let received = log.get(|r| r.received.clone());
                    let header = std::str::from_utf8(&received[..16]).expect("a header");
                    header["connection ".len()..15].parse::<usize>().expect("an index")
                })
                .collect()
        });
        seen.sort_unstable();
        assert_eq!(seen, (0..count).collect::<Vec<_>>());
    });
}

#[test]
fn echo_over_ipv6_loopback() {
    run_test(async {
        let (server, port, accepted) = match server_on("::1", Recorder::echo).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("skipping: cannot listen on ::1 ({error})");
                return;
            }
        };
        assert!(matches!(server.addresses()[0], SockAddr::Inet(SocketAddr::V6(_))));
        let client: Log = Watch::new(Record::default());
        let log = client.clone();
        let (transport, _) =
            this_loop().create_connection(move || Recorder::new(&log), "::1", port).await.unwrap();
        transport.write(b"over IPv6");
        client.until_some(|r| (r.received.len() == 9).then_some(())).await;
        assert_eq!(client.get(|r| r.received.clone()), b"over IPv6");
        let peer = transport.peer_addr().unwrap().as_inet().unwrap();
        assert_eq!(peer, SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        let server_side = transport_of(&accepted_log(&accepted, 0).await);
        assert_eq!(server_side.peer_addr(), transport.local_addr());
        // The bracketed form resolves too.
        let other: Log = Watch::new(Record::default());
        let log = other.clone();
        let (second, _) =
            this_loop().create_connection(move || Recorder::new(&log), "[::1]", port).await.unwrap();
        second.close();
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}
