//! Datagram endpoints (asyncio's `create_datagram_endpoint`): a UDP round trip, `sendto`
//! with and without an address, ICMP port unreachable as `error_received`, and
//! `close` → `connection_lost`.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use evloop::sys::socket::SockAddr;
use evloop::transport::{DatagramProtocol, DatagramTransport};
use evloop::wait_for;

mod common;
use common::this_loop;

/// Tests that look for a new fd in /proc/self/fd take this so no other test of this
/// binary opens one meanwhile; the others take it too, to keep it simple.
static FDS: Mutex<()> = Mutex::new(());

/// [`common::run_test`], one test of this binary at a time (see [`FDS`]).
fn run_test<F>(body: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let _serial = FDS.lock().unwrap_or_else(|e| e.into_inner());
    common::run_test(body)
}

/// What a datagram protocol saw; coroutines wait for conditions on it.
#[derive(Default)]
struct Seen {
    made: usize,
    datagrams: Vec<(Vec<u8>, SockAddr)>,
    errors: Vec<io::Error>,
    lost: Vec<Option<io::ErrorKind>>,
    transport: Option<DatagramTransport>,
}

/// The [`Seen`] that protocol callbacks update and coroutines wait on.
type Watch = common::Watch<Seen>;

/// Records everything; echoes each datagram back to its sender if `echo`.
struct Recorder {
    watch: Rc<Watch>,
    echo: bool,
}

impl DatagramProtocol for Recorder {
    fn connection_made(&mut self, transport: &DatagramTransport) {
        self.watch.update(|s| {
            s.made += 1;
            s.transport = Some(transport.clone());
        });
    }

    fn datagram_received(&mut self, data: &[u8], addr: SockAddr) {
        if self.echo {
            let transport = self.watch.get(|s| s.transport.clone()).expect("connection_made first");
            transport.sendto(data, Some(addr.clone()));
        }
        self.watch.update(|s| s.datagrams.push((data.to_vec(), addr)));
    }

    fn error_received(&mut self, error: io::Error) {
        self.watch.update(|s| s.errors.push(error));
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        self.watch.update(|s| s.lost.push(error.map(|e| e.kind())));
    }
}

async fn endpoint(
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    echo: bool,
) -> (DatagramTransport, Rc<Watch>) {
    let watch = Rc::new(Watch::default());
    let protocol_watch = watch.clone();
    let (transport, _) = this_loop()
        .create_datagram_endpoint(move || Recorder { watch: protocol_watch, echo }, local, remote)
        .await
        .expect("create_datagram_endpoint");
    watch.until(|s| s.made == 1).await;
    (transport, watch)
}

fn any_port() -> Option<SocketAddr> {
    Some("127.0.0.1:0".parse().unwrap())
}

fn inet(addr: &SockAddr) -> SocketAddr {
    addr.as_inet().expect("an IP address")
}

/// The socket fds open in this process.
fn socket_fds() -> Vec<i32> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        {
            fds.push(fd);
        }
    }
    fds
}

#[test]
fn udp_round_trip_with_a_connected_client() {
    run_test(async {
        let (server, server_seen) = endpoint(any_port(), None, true).await;
        let server_addr = inet(&server.local_addr().unwrap());
        assert_eq!(server.peer_addr(), None);

        let (client, client_seen) = endpoint(None, Some(server_addr), false).await;
        assert_eq!(client.peer_addr(), Some(&SockAddr::Inet(server_addr)));
        let client_addr = client.local_addr().unwrap();

        client.sendto(b"ping", None);
        client.sendto(b"pong", None);
        client_seen.until(|s| s.datagrams.len() == 2).await;
        let got = client_seen.get(|s| s.datagrams.clone());
        assert_eq!(got[0], (b"ping".to_vec(), SockAddr::Inet(server_addr)));
        assert_eq!(got[1], (b"pong".to_vec(), SockAddr::Inet(server_addr)));
        server_seen.get(|s| {
            assert_eq!(s.datagrams.len(), 2);
            assert!(s.datagrams.iter().all(|(_, from)| *from == client_addr));
            assert!(s.errors.is_empty());
        });

        // A datagram as large as UDP over loopback allows survives the trip.
        let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        client.sendto(&big, None);
        client_seen.until(|s| s.datagrams.len() == 3).await;
        assert!(client_seen.get(|s| s.datagrams[2].0 == big));
        assert!(client_seen.get(|s| s.errors.is_empty()));
        client.close();
        server.close();
    });
}

#[test]
fn sendto_with_an_address_from_an_unconnected_endpoint() {
    run_test(async {
        let (server, server_seen) = endpoint(any_port(), None, true).await;
        let server_addr = server.local_addr().unwrap();
        let (client, client_seen) = endpoint(any_port(), None, false).await;
        let client_addr = client.local_addr().unwrap();
        assert_ne!(inet(&client_addr).port(), 0, "bound to a real port");

        client.sendto(b"addressed", Some(server_addr.clone()));
        client_seen.until(|s| !s.datagrams.is_empty()).await;
        assert_eq!(client_seen.get(|s| s.datagrams[0].clone()), (b"addressed".to_vec(), server_addr.clone()));
        assert_eq!(server_seen.get(|s| s.datagrams[0].1.clone()), client_addr);

        // A std socket on the other side, to see the datagram exactly as sent.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_addr = SockAddr::Inet(peer.local_addr().unwrap());
        client.sendto(b"to std", Some(peer_addr));
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to std");
        assert_eq!(SockAddr::Inet(from), client_addr);

        // Without an address and not connected: the kernel's error reaches error_received,
        // and the endpoint stays open.
        client.sendto(b"nowhere", None);
        client_seen.until(|s| !s.errors.is_empty()).await;
        let raw = client_seen.get(|s| s.errors[0].raw_os_error());
        assert_eq!(raw, Some(libc::EDESTADDRREQ), "{:?}", client_seen.get(|s| s.errors[0].to_string()));
        assert!(!client.is_closing());
        client.close();
        server.close();
    });
}

#[test]
fn port_unreachable_on_a_connected_socket_reaches_error_received() {
    run_test(async {
        // A port that was just free: bind, note it, close.
        let closed_port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let (client, seen) = endpoint(None, Some(closed_port), false).await;
        // ICMP port unreachable makes the next recv (or send) fail with ECONNREFUSED,
        // whichever comes first; either way error_received hears of it.
        client.sendto(b"anyone?", None);
        let reported = wait_for(seen.until(|s| !s.errors.is_empty()), Duration::from_secs(2)).await;
        if reported.is_err() {
            // The error may surface only on the next send.
            client.sendto(b"anyone at all?", None);
            seen.until(|s| !s.errors.is_empty()).await;
        }
        let error = seen.get(|s| s.errors[0].kind());
        assert_eq!(error, io::ErrorKind::ConnectionRefused);
        assert!(!client.is_closing(), "error_received closed the endpoint");
        assert!(seen.get(|s| s.lost.is_empty()));
        client.close();
        seen.until(|s| !s.lost.is_empty()).await;
        assert_eq!(seen.get(|s| s.lost.clone()), [None]);
    });
}

#[test]
fn close_calls_connection_lost_once_and_unregisters() {
    run_test(async {
        let event_loop = this_loop();
        let before = socket_fds();
        let (endpoint_transport, seen) = endpoint(any_port(), None, false).await;
        let fd = *socket_fds().iter().find(|fd| !before.contains(fd)).expect("the endpoint's socket fd");
        assert!(event_loop.fd_interest(fd).is_some_and(|i| i.is_readable()));
        assert!(!endpoint_transport.is_closing());
        endpoint_transport.close();
        endpoint_transport.close();
        endpoint_transport.abort();
        assert!(endpoint_transport.is_closing());
        assert_eq!(event_loop.fd_interest(fd), None);
        seen.until(|s| !s.lost.is_empty()).await;
        assert_eq!(seen.get(|s| s.lost.clone()), [None]);
        assert!(!socket_fds().contains(&fd), "the socket is still open after connection_lost");
        // Sending on a closed endpoint is ignored.
        endpoint_transport.sendto(b"late", Some(SockAddr::Inet("127.0.0.1:9".parse().unwrap())));
        assert!(seen.get(|s| s.errors.is_empty()));
    });
}

#[test]
fn close_right_after_creation_leaves_no_registration() {
    run_test(async {
        let event_loop = this_loop();
        let before = socket_fds();
        let watch = Rc::new(Watch::default());
        let protocol_watch = watch.clone();
        let (transport, _) = event_loop
            .create_datagram_endpoint(
                move || Recorder { watch: protocol_watch, echo: false },
                any_port(),
                None,
            )
            .await
            .unwrap();
        let fd = *socket_fds().iter().find(|fd| !before.contains(fd)).expect("the endpoint's socket fd");
        // Closed before connection_made's callback had its turn.
        transport.close();
        watch.until(|s| !s.lost.is_empty()).await;
        assert!(!socket_fds().contains(&fd), "the socket is still open after connection_lost");
        assert_eq!(event_loop.fd_interest(fd), None, "a reader is registered for a closed fd");
    });
}

#[test]
fn an_endpoint_needs_an_address() {
    run_test(async {
        let watch = Rc::new(Watch::default());
        let outcome =
            this_loop().create_datagram_endpoint(move || Recorder { watch, echo: false }, None, None).await;
        let error = outcome.map(|_| ()).expect_err("no local and no remote address");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn udp_over_ipv6_loopback() {
    run_test(async {
        let watch = Rc::new(Watch::default());
        let protocol_watch = watch.clone();
        let server = this_loop()
            .create_datagram_endpoint(
                move || Recorder { watch: protocol_watch, echo: true },
                Some("[::1]:0".parse().unwrap()),
                None,
            )
            .await;
        let Ok((server, _)) = server else {
            eprintln!("skipping: ::1 is not available here");
            return;
        };
        let server_addr = inet(&server.local_addr().unwrap());
        assert!(server_addr.is_ipv6());
        let (client, seen) = endpoint(None, Some(server_addr), false).await;
        client.sendto(b"six", None);
        seen.until(|s| !s.datagrams.is_empty()).await;
        assert_eq!(seen.get(|s| s.datagrams[0].clone()), (b"six".to_vec(), SockAddr::Inet(server_addr)));
        client.close();
        server.close();
    });
}
