//! The textbook bridge: `sock_connect`, `sock_accept`, `sock_sendall`, `sock_recv` and
//! `sock_recv_into` over loopback sockets (asyncio's `loop.sock_*`).
//!
//! Each operation tries the system call first and only on `EAGAIN` registers a one-shot
//! reader or writer; these tests check the data, the errors, and that a wait that ends
//! by cancellation leaves no registration behind (`EventLoop::fd_interest`).

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use evloop::sys::socket::{Kind, SockAddr, Socket};
use evloop::{create_task, sleep, wait_for, EventLoop, Interest, TaskError};

mod common;
use common::{pattern, run_test, this_loop, Checksum};

/// A listening socket on 127.0.0.1, port chosen by the kernel.
fn listener() -> (Socket, SockAddr) {
    let listener = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
    listener.bind(&SockAddr::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
    listener.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A connected (client, server) pair made with `sock_connect` and `sock_accept`.
async fn connected_pair() -> (Socket, Socket) {
    let event_loop = this_loop();
    let (listener, addr) = listener();
    let listener = Rc::new(listener);
    let accepting = {
        let (event_loop, listener) = (event_loop.clone(), listener.clone());
        create_task(async move { event_loop.sock_accept(&listener).await })
    };
    let client = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
    event_loop.sock_connect(&client, &addr).await.expect("sock_connect");
    let (server, peer) = accepting.await.expect("accept task").expect("sock_accept");
    assert_eq!(peer, client.local_addr().unwrap(), "sock_accept reports the client's address");
    assert_eq!(client.peer_addr().unwrap(), addr);
    assert_eq!(event_loop.fd_interest(listener.as_raw_fd()), None, "sock_accept left its reader");
    (client, server)
}

/// Yields until `fd` has the given registration (a task blocked in a `sock_*` call).
async fn until_registered(event_loop: &EventLoop, fd: i32, interest: Interest) {
    while event_loop.fd_interest(fd) != Some(interest) {
        sleep(Duration::ZERO).await;
    }
}

#[test]
fn connect_accept_sendall_recv_and_recv_into() {
    run_test(async {
        let event_loop = this_loop();
        let (client, server) = connected_pair().await;
        let (client, server) = (Rc::new(client), Rc::new(server));

        // The server waits first (nothing to read: EAGAIN, then a temporary reader).
        let receiving = {
            let (event_loop, server) = (event_loop.clone(), server.clone());
            create_task(async move {
                let mut got = Vec::new();
                while got.len() < 11 {
                    let piece = event_loop.sock_recv(&server, 64).await.expect("sock_recv");
                    assert!(!piece.is_empty(), "early end of stream");
                    got.extend_from_slice(&piece);
                }
                got
            })
        };
        until_registered(&event_loop, server.as_raw_fd(), Interest::READ).await;
        event_loop.sock_sendall(&client, b"hello world").await.expect("sock_sendall");
        assert_eq!(receiving.await.unwrap(), b"hello world");
        assert_eq!(event_loop.fd_interest(server.as_raw_fd()), None, "reader left after sock_recv");

        // The other way, into a caller's buffer.
        event_loop.sock_sendall(&server, b"reply").await.unwrap();
        let mut buf = [0u8; 32];
        let mut filled = 0;
        while filled < 5 {
            let n = event_loop.sock_recv_into(&client, &mut buf[filled..]).await.expect("sock_recv_into");
            assert_ne!(n, 0, "early end of stream");
            filled += n;
        }
        assert_eq!(&buf[..filled], b"reply");

        // End of stream: an empty read, then still empty.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(event_loop.sock_recv(&server, 16).await.unwrap().is_empty());
        assert_eq!(event_loop.sock_recv_into(&server, &mut buf).await.unwrap(), 0);
        for fd in [client.as_raw_fd(), server.as_raw_fd()] {
            assert_eq!(event_loop.fd_interest(fd), None);
        }
    });
}

#[test]
fn sock_accept_waits_for_a_connection() {
    run_test(async {
        let event_loop = this_loop();
        let (listener, addr) = listener();
        let listener = Rc::new(listener);
        let accepting = {
            let (event_loop, listener) = (event_loop.clone(), listener.clone());
            create_task(async move { event_loop.sock_accept(&listener).await })
        };
        // The accept is parked on a reader before anyone connects.
        until_registered(&event_loop, listener.as_raw_fd(), Interest::READ).await;
        let client = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        event_loop.sock_connect(&client, &addr).await.unwrap();
        let (server, _) = accepting.await.unwrap().unwrap();
        assert_eq!(event_loop.fd_interest(listener.as_raw_fd()), None);
        event_loop.sock_sendall(&server, b"x").await.unwrap();
        assert_eq!(event_loop.sock_recv(&client, 1).await.unwrap(), b"x");
    });
}

#[test]
fn connection_refused_is_an_io_error_from_sock_connect() {
    run_test(async {
        let event_loop = this_loop();
        // Bound but not listening: the port is ours, and a connection to it is refused.
        let closed = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        closed.bind(&SockAddr::Inet("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = closed.local_addr().unwrap();
        let client = Socket::new(libc::AF_INET, Kind::Stream).unwrap();
        let error = event_loop.sock_connect(&client, &addr).await.expect_err("connect to a closed port");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
        assert_eq!(event_loop.fd_interest(client.as_raw_fd()), None, "sock_connect left its writer");
    });
}

#[test]
fn sock_recv_cancelled_by_wait_for_leaves_no_registration() {
    run_test(async {
        let event_loop = this_loop();
        let (client, server) = connected_pair().await;
        let fd = server.as_raw_fd();
        let timed_out = wait_for(event_loop.sock_recv(&server, 16), Duration::from_millis(20)).await;
        assert!(timed_out.is_err(), "nothing was sent, yet sock_recv returned {timed_out:?}");
        assert_eq!(event_loop.fd_interest(fd), None, "the cancelled sock_recv left its reader");
        // The socket is still usable: a new wait registers again and gets the data.
        event_loop.sock_sendall(&client, b"later").await.unwrap();
        assert_eq!(event_loop.sock_recv(&server, 16).await.unwrap(), b"later");
        assert_eq!(event_loop.fd_interest(fd), None);
    });
}

#[test]
fn sock_recv_cancelled_by_task_cancel_leaves_no_registration() {
    run_test(async {
        let event_loop = this_loop();
        let (client, server) = connected_pair().await;
        let server = Rc::new(server);
        let fd = server.as_raw_fd();
        let reading = {
            let (event_loop, server) = (event_loop.clone(), server.clone());
            create_task(async move { event_loop.sock_recv(&server, 16).await })
        };
        until_registered(&event_loop, fd, Interest::READ).await;
        assert!(reading.cancel());
        assert_eq!(reading.await.unwrap_err(), TaskError::Cancelled);
        assert_eq!(event_loop.fd_interest(fd), None, "the cancelled sock_recv left its reader");

        // Nothing was consumed by the cancelled read.
        event_loop.sock_sendall(&client, b"still here").await.unwrap();
        let mut got = Vec::new();
        while got.len() < 10 {
            got.extend(event_loop.sock_recv(&server, 16).await.unwrap());
        }
        assert_eq!(got, b"still here");
    });
}

#[test]
fn sock_sendall_cancelled_while_waiting_for_room_leaves_no_registration() {
    run_test(async {
        let event_loop = this_loop();
        let (client, _server) = connected_pair().await;
        let fd = client.as_raw_fd();
        // The peer does not read: 64 MiB cannot fit in the kernel's buffers.
        let data = vec![7u8; 64 << 20];
        let outcome = wait_for(event_loop.sock_sendall(&client, &data), Duration::from_millis(50)).await;
        assert!(outcome.is_err(), "64 MiB went into a socket nobody reads");
        assert_eq!(event_loop.fd_interest(fd), None, "the cancelled sock_sendall left its writer");
    });
}

#[test]
fn sock_sendall_of_several_mib_to_a_slow_reader_delivers_every_byte() {
    const SIZE: usize = 8 << 20;
    run_test(async {
        let event_loop = this_loop();
        let (client, server) = connected_pair().await;
        let (client, server) = (Rc::new(client), Rc::new(server));
        let data = pattern(SIZE, 1);
        let mut sent = Checksum::new();
        sent.update(&data);

        // A slow reader: small reads, giving way to the loop after each one.
        let reading = {
            let (event_loop, server) = (event_loop.clone(), server.clone());
            create_task(async move {
                let mut received = Checksum::new();
                let mut buf = vec![0u8; 16 * 1024];
                let mut reads = 0u32;
                loop {
                    let n = event_loop.sock_recv_into(&server, &mut buf).await.expect("sock_recv_into");
                    if n == 0 {
                        break;
                    }
                    reads += 1;
                    received.update(&buf[..n]);
                    sleep(Duration::ZERO).await;
                }
                (received.finish(), reads)
            })
        };
        event_loop.sock_sendall(&client, &data).await.expect("sock_sendall");
        assert_eq!(event_loop.fd_interest(client.as_raw_fd()), None);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (received, reads) = reading.await.unwrap();
        assert_eq!(received, sent.finish(), "the bytes that arrived differ from those sent");
        assert!(reads > 1, "{SIZE} bytes arrived in one read; the reader was not slow");
        assert_eq!(event_loop.fd_interest(server.as_raw_fd()), None);
    });
}

#[test]
fn sock_calls_on_a_unix_socketpair() {
    run_test(async {
        let event_loop = this_loop();
        let (a, b) = Socket::pair(Kind::Stream).unwrap();
        event_loop.sock_sendall(&a, b"over a pair").await.unwrap();
        let mut got = Vec::new();
        while got.len() < 11 {
            got.extend(event_loop.sock_recv(&b, 64).await.unwrap());
        }
        assert_eq!(got, b"over a pair");
        drop(a);
        assert!(event_loop.sock_recv(&b, 64).await.unwrap().is_empty());
    });
}

#[test]
fn sock_connect_over_ipv6_loopback() {
    run_test(async {
        let event_loop = this_loop();
        let listener = Socket::new(libc::AF_INET6, Kind::Stream).unwrap();
        if let Err(error) = listener.bind(&SockAddr::Inet("[::1]:0".parse().unwrap())) {
            eprintln!("skipping: ::1 is not available here ({error})");
            return;
        }
        listener.listen(4).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Socket::new(libc::AF_INET6, Kind::Stream).unwrap();
        event_loop.sock_connect(&client, &addr).await.unwrap();
        let (server, peer) = event_loop.sock_accept(&listener).await.unwrap();
        assert!(matches!(peer, SockAddr::Inet(std::net::SocketAddr::V6(_))), "{peer}");
        event_loop.sock_sendall(&server, b"six").await.unwrap();
        assert_eq!(event_loop.sock_recv(&client, 8).await.unwrap(), b"six");
    });
}
