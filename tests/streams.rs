//! Streams (asyncio's `streams.py`): `start_server` / `open_connection`, every read
//! coroutine, `IncompleteRead` and `LimitOverrun`, lines as an async stream, 64 MiB each
//! way at once, flow control in both directions (`drain` and reader-side pausing),
//! `wait_closed`, errors, and reads around the reader letting go of a big buffer.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::time::Duration;

use evloop::streams::{
    open_connection, start_server, start_server_with_options, StreamError, StreamReader, StreamWriter,
    DEFAULT_LIMIT,
};
use evloop::sync::Event;
use evloop::transport::{Server, ServerOptions};
use evloop::{create_task, sleep, wait_for};
use futures_core::Stream;

mod common;
use common::{pattern, poll_once, port_of, run_test, Checksum};

/// A server that sends `script` in one write and closes.
async fn script_server(script: &'static [u8]) -> (Server, u16) {
    let server = start_server(
        move |_reader, writer| async move {
            writer.write(script);
            writer.close();
            writer.wait_closed().await.expect("closed cleanly");
        },
        "127.0.0.1",
        0,
    )
    .await
    .expect("start_server");
    let port = port_of(&server);
    (server, port)
}

/// A line echo server: each line comes back; at the end of the stream it closes.
async fn echo_server() -> (Server, u16) {
    let server = start_server(
        |reader, writer| async move {
            loop {
                let line = reader.readline().await.expect("readline on the server");
                if line.is_empty() {
                    break;
                }
                writer.write(&line);
                writer.drain().await.expect("drain on the server");
            }
            writer.close();
        },
        "127.0.0.1",
        0,
    )
    .await
    .expect("start_server");
    let port = port_of(&server);
    (server, port)
}

/// A checksum and the byte count it covers.
type Sum = (u64, u64);

/// Writes `blocks` MiB (a pattern with the block number in front of each MiB), draining
/// after each, then half-closes; returns the checksum of what it wrote.
async fn send_mib_blocks(writer: &StreamWriter, blocks: u64, seed: u64) -> (u64, u64) {
    let mut block = pattern(1 << 20, seed);
    let mut sent = Checksum::new();
    for number in 0..blocks {
        block[..8].copy_from_slice(&number.to_le_bytes());
        writer.write(&block);
        sent.update(&block);
        writer.drain().await.expect("drain");
    }
    writer.write_eof();
    sent.finish()
}

/// Reads to the end in `read(64 KiB)` pieces; the checksum of what arrived.
async fn receive_all(reader: &StreamReader) -> (u64, u64) {
    let mut received = Checksum::new();
    loop {
        let piece = reader.read(64 * 1024).await.expect("read");
        if piece.is_empty() {
            break;
        }
        received.update(&piece);
    }
    assert!(reader.at_eof());
    received.finish()
}

#[test]
fn open_connection_and_start_server_echo_lines() {
    run_test(async {
        let (server, port) = echo_server().await;
        let (reader, writer) = open_connection("127.0.0.1", port).await.expect("open_connection");
        assert_eq!(writer.peer_addr().and_then(|a| a.as_inet()).map(|a| a.port()), Some(port));
        for line in [&b"first line\n"[..], b"second\n", b"\n", b"last one\n"] {
            writer.write(line);
            writer.drain().await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), line);
        }
        writer.writelines([&b"a"[..], b"b\n", b"c\n"]);
        assert_eq!(reader.readline().await.unwrap(), &b"ab\n"[..]);
        assert_eq!(reader.readline().await.unwrap(), &b"c\n"[..]);
        // Half-close: the server sees the end, closes, and we see ours.
        assert!(writer.can_write_eof());
        writer.write_eof();
        assert_eq!(reader.readline().await.unwrap(), &b""[..]);
        assert!(reader.at_eof());
        writer.close();
        writer.wait_closed().await.expect("closed cleanly");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn every_read_coroutine_over_a_connection() {
    run_test(async {
        let (server, port) = script_server(b"line one\nAAAA--BBBBBBrest of it").await;
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        assert_eq!(reader.readline().await.unwrap(), &b"line one\n"[..]);
        assert_eq!(reader.readuntil(b"--").await.unwrap(), &b"AAAA--"[..]);
        assert_eq!(reader.readexactly(6).await.unwrap(), &b"BBBBBB"[..]);
        assert_eq!(reader.read(0).await.unwrap(), &b""[..]);
        assert_eq!(reader.read(4).await.unwrap(), &b"rest"[..]);
        assert!(!reader.at_eof());
        assert_eq!(reader.read_to_end().await.unwrap(), &b" of it"[..]);
        assert!(reader.at_eof());
        // At the end: empty reads, incomplete exact reads.
        assert_eq!(reader.read(10).await.unwrap(), &b""[..]);
        assert_eq!(reader.readline().await.unwrap(), &b""[..]);
        assert_eq!(reader.read_to_end().await.unwrap(), &b""[..]);
        assert_eq!(reader.readexactly(0).await.unwrap(), &b""[..]);
        match reader.readexactly(1).await {
            Err(StreamError::IncompleteRead { partial, expected: Some(1) }) => assert!(partial.is_empty()),
            other => panic!("readexactly at the end gave {other:?}"),
        }
        match reader.readuntil(b"\n").await {
            Err(StreamError::IncompleteRead { partial, expected: None }) => assert!(partial.is_empty()),
            other => panic!("readuntil at the end gave {other:?}"),
        }
        writer.close();
        writer.wait_closed().await.expect("closed cleanly");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn incomplete_reads_carry_what_came_before_the_end() {
    run_test(async {
        let (server, port) = script_server(b"12345").await;
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        let error = reader.readexactly(10).await.expect_err("only 5 bytes come");
        assert!(error.to_string().contains("5 bytes read on a total of 10"), "{error}");
        match error {
            StreamError::IncompleteRead { partial, expected } => {
                assert_eq!(partial, &b"12345"[..]);
                assert_eq!(expected, Some(10));
            }
            other => panic!("{other:?}"),
        }
        assert!(reader.at_eof());
        writer.close();

        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        match reader.readuntil(b"\r\n").await {
            Err(StreamError::IncompleteRead { partial, expected: None }) => {
                assert_eq!(partial, &b"12345"[..])
            }
            other => panic!("readuntil without its separator gave {other:?}"),
        }
        assert!(reader.at_eof());
        writer.close();

        // readline gives the last partial line instead of an error, as asyncio does.
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        assert_eq!(reader.readline().await.unwrap(), &b"12345"[..]);
        assert_eq!(reader.readline().await.unwrap(), &b""[..]);
        writer.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn limit_overrun_behaviours() {
    run_test(async {
        // readuntil: the separator is past the limit; the data stays in the buffer.
        let reader = StreamReader::new(8);
        assert_eq!(reader.limit(), 8);
        reader.feed_data(b"0123456789\nok\n");
        match reader.readuntil(b"\n").await {
            Err(StreamError::LimitOverrun { consumed }) => assert!(consumed > 8, "consumed {consumed}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(reader.readexactly(11).await.unwrap(), &b"0123456789\n"[..]);
        // Separator and all exactly at the limit is fine.
        reader.feed_data(b"1234567\n");
        assert_eq!(reader.readuntil(b"ok\n").await.unwrap(), &b"ok\n"[..]);
        assert_eq!(reader.readline().await.unwrap(), &b"1234567\n"[..]);

        // readline: the long line is dropped, separator included, and the next one read.
        reader.feed_data(b"0123456789\nnext\n");
        let error = reader.readline().await.expect_err("a line longer than the limit");
        assert!(matches!(error, StreamError::LimitOverrun { .. }), "{error:?}");
        assert_eq!(reader.readline().await.unwrap(), &b"next\n"[..]);

        // No separator at all within the limit: LimitOverrun without waiting for more.
        reader.feed_data(b"no newline in sight");
        assert!(matches!(reader.readuntil(b"\n").await, Err(StreamError::LimitOverrun { .. })));
        let error = reader.readline().await.expect_err("overrun");
        assert!(matches!(error, StreamError::LimitOverrun { .. }));
        // readline dropped what it looked at, as asyncio clears the buffer.
        reader.feed_data(b"fresh\n");
        assert_eq!(reader.readline().await.unwrap(), &b"fresh\n"[..]);

        // Errors as io::Error.
        let io_error: io::Error = StreamError::LimitOverrun { consumed: 9 }.into();
        assert_eq!(io_error.kind(), io::ErrorKind::InvalidData);
        let io_error: io::Error =
            StreamError::IncompleteRead { partial: bytes::Bytes::new(), expected: Some(3) }.into();
        assert_eq!(io_error.kind(), io::ErrorKind::UnexpectedEof);

        // readexactly knows no limit.
        reader.feed_data(&[b'x'; 100]);
        reader.feed_eof();
        assert_eq!(reader.readexactly(100).await.unwrap().len(), 100);
        assert!(reader.at_eof());
    });
}

#[test]
fn a_read_waits_for_data_and_an_error_ends_it() {
    run_test(async {
        let reader = Rc::new(StreamReader::new(DEFAULT_LIMIT));
        let waiting = {
            let reader = reader.clone();
            create_task(async move { reader.readexactly(6).await.map(|b| b.to_vec()) })
        };
        sleep(Duration::ZERO).await;
        reader.feed_data(b"abc");
        sleep(Duration::ZERO).await;
        assert!(!waiting.done(), "readexactly(6) returned with 3 bytes");
        reader.feed_data(b"def");
        assert_eq!(waiting.await.unwrap().unwrap(), b"abcdef");

        let failing = {
            let reader = reader.clone();
            create_task(async move { reader.readline().await.map(|b| b.to_vec()) })
        };
        sleep(Duration::ZERO).await;
        reader.set_exception(&io::Error::from(io::ErrorKind::ConnectionReset));
        match failing.await.unwrap() {
            Err(StreamError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn the_first_error_is_the_one_kept() {
    run_test(async {
        let reader = StreamReader::new(DEFAULT_LIMIT);
        reader.set_exception(&io::Error::from(io::ErrorKind::ConnectionReset));
        reader.set_exception(&io::Error::from(io::ErrorKind::TimedOut));
        for _ in 0..2 {
            match reader.read(1).await {
                Err(StreamError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
                other => panic!("{other:?}"),
            }
        }
    });
}

/// An emptied big buffer is let go and a small one kept (idle connections hold no big
/// buffer): neither may change what the reads return.
#[test]
fn reads_around_a_big_buffer_being_let_go() {
    run_test(async {
        let reader = StreamReader::new(DEFAULT_LIMIT);
        // All of a big buffer at once.
        let big = pattern(100_000, 3);
        reader.feed_data(&big);
        let all = reader.read(200_000).await.unwrap();
        assert_eq!(all, &big[..]);
        reader.feed_data(b"small");
        assert_eq!(reader.read(100).await.unwrap(), &b"small"[..]);

        // A big buffer emptied by a small read of its rest.
        let mut lines = vec![b'x'; 10_000];
        lines.extend_from_slice(b"\ntail");
        reader.feed_data(&lines);
        let line = reader.readline().await.unwrap();
        assert_eq!(line.len(), 10_001);
        assert_eq!(reader.read(4).await.unwrap(), &b"tail"[..]);
        reader.feed_data(b"more\n");
        assert_eq!(reader.readline().await.unwrap(), &b"more\n"[..]);

        // A small buffer, emptied and filled again many times.
        for i in 0..100u8 {
            reader.feed_data(&[i; 64]);
            assert_eq!(reader.readexactly(64).await.unwrap(), &[i; 64][..]);
        }
        // What was handed out is untouched by all of that.
        assert_eq!(all, &big[..]);
        assert!(line.iter().take(10_000).all(|&b| b == b'x'));
        reader.feed_eof();
        assert!(reader.at_eof());
    });
}

#[test]
fn drains_and_wait_closed_all_wake_when_the_connection_goes() {
    run_test(async {
        // The server keeps its pair and never reads, so the client's writes pile up.
        let held = Rc::new(RefCell::new(Vec::new()));
        let keep = held.clone();
        let server = start_server(
            move |reader, writer| {
                keep.borrow_mut().push((reader, writer));
                async {}
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (_reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let writer = Rc::new(writer);
        writer.write(&pattern(32 << 20, 5));
        let drains: Vec<_> = (0..2)
            .map(|_| {
                let writer = writer.clone();
                create_task(async move { writer.drain().await })
            })
            .collect();
        let closed = {
            let writer = writer.clone();
            create_task(async move { writer.wait_closed().await })
        };
        for _ in 0..3 {
            sleep(Duration::ZERO).await;
        }
        assert!(drains.iter().all(|d| !d.done()) && !closed.done(), "nobody should be done yet");

        writer.transport().abort();
        for drain in drains {
            let error = drain.await.unwrap().expect_err("drain on a lost connection");
            assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        }
        closed.await.unwrap().expect("an aborted connection closes cleanly");
        for (_, writer) in held.borrow_mut().drain(..) {
            writer.close();
        }
        server.close();
        server.wait_closed().await;
    });
}

/// asyncio's drain lets a pending `connection_lost` run before it looks: a write that
/// killed the transport is reported by the drain right after it.
#[test]
fn drain_right_after_a_write_that_hit_a_reset_is_an_error() {
    run_test(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        writer.write(b"never read");
        // Closing with unread data in its receive queue makes the peer send a reset.
        peer.peek(&mut [0u8; 1]).unwrap();
        drop(peer);
        // Write, without giving the loop a turn, until a send meets the reset and closes
        // the transport.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !writer.is_closing() {
            assert!(std::time::Instant::now() < deadline, "no send failed after the peer reset");
            writer.write(b"into the void");
        }
        let error = writer.drain().await.expect_err("drain after a failed write");
        let reset_or_pipe = |kind| matches!(kind, io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe);
        assert!(reset_or_pipe(error.kind()), "{error:?}");
        let closed = writer.wait_closed().await.expect_err("wait_closed after a failed write");
        assert!(reset_or_pipe(closed.kind()), "{closed:?}");
    });
}

#[test]
fn lines_as_an_async_stream() {
    run_test(async {
        let (server, port) = script_server(b"a\nbb\n\nccc").await;
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        let mut lines = reader.lines();
        let mut got = Vec::new();
        while let Some(line) = lines.next().await {
            got.push(line.expect("a line"));
        }
        assert_eq!(got, [&b"a\n"[..], b"bb\n", b"\n", b"ccc"]);
        assert!(lines.next().await.is_none(), "the stream goes on after its end");
        writer.close();

        // The same through futures_core::Stream::poll_next.
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        let mut lines = reader.lines();
        let mut got = Vec::new();
        while let Some(line) = poll_fn(|cx| Pin::new(&mut lines).poll_next(cx)).await {
            got.push(line.unwrap());
        }
        assert_eq!(got, [&b"a\n"[..], b"bb\n", b"\n", b"ccc"]);
        assert!(poll_fn(|cx| Pin::new(&mut lines).poll_next(cx)).await.is_none());
        writer.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn sixty_four_mib_each_way_at_once() {
    const MIB: u64 = 64;
    run_test(async {
        let server_sums: Rc<Cell<Option<(Sum, Sum)>>> = Rc::new(Cell::new(None));
        let done = Rc::new(Event::new());
        let (sums, finished) = (server_sums.clone(), done.clone());
        let server = start_server(
            move |reader, writer| {
                let (sums, finished) = (sums.clone(), finished.clone());
                async move {
                    let writer = Rc::new(writer);
                    let sending = {
                        let writer = writer.clone();
                        create_task(async move { send_mib_blocks(&writer, MIB, 2).await })
                    };
                    let received = receive_all(&reader).await;
                    let sent = sending.await.expect("server's sender");
                    writer.close();
                    sums.set(Some((sent, received)));
                    finished.set();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let writer = Rc::new(writer);
        let sending = {
            let writer = writer.clone();
            create_task(async move { send_mib_blocks(&writer, MIB, 1).await })
        };
        let received = receive_all(&reader).await;
        let sent = sending.await.expect("client's sender");
        done.wait().await;
        let (server_sent, server_received) = server_sums.take().unwrap();
        assert_eq!(sent.1, MIB << 20);
        assert_eq!(server_received, sent, "client → server bytes differ");
        assert_eq!(received, server_sent, "server → client bytes differ");
        assert_ne!(sent, server_sent, "the two directions carried the same bytes");
        writer.close();
        writer.wait_closed().await.expect("closed cleanly");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn drain_waits_while_the_peer_does_not_read() {
    const SIZE: usize = 32 << 20;
    run_test(async {
        let go = Rc::new(Event::new());
        let received = Rc::new(Cell::new(0usize));
        let (start, count) = (go.clone(), received.clone());
        let server = start_server(
            move |reader, writer| {
                let (start, count) = (start.clone(), count.clone());
                async move {
                    start.wait().await;
                    loop {
                        let piece = reader.read(1 << 20).await.unwrap();
                        if piece.is_empty() {
                            break;
                        }
                        count.set(count.get() + piece.len());
                    }
                    writer.close();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        // Nothing buffered: drain is ready at once.
        assert!(poll_once(pin!(writer.drain())).await.is_ready());

        writer.write(&pattern(SIZE, 9));
        assert!(writer.transport().get_write_buffer_size() > 0);
        let mut draining = pin!(writer.drain());
        assert!(poll_once(draining.as_mut()).await.is_pending(), "drain did not wait for a stalled peer");
        // Still waiting after the loop went round a few times.
        for _ in 0..3 {
            sleep(Duration::ZERO).await;
        }
        assert!(poll_once(draining.as_mut()).await.is_pending());

        go.set();
        draining.await.expect("drain once the peer reads");
        assert!(writer.transport().get_write_buffer_size() <= 16 * 1024);
        writer.write_eof();
        assert_eq!(reader.read_to_end().await.unwrap(), &b""[..]);
        assert_eq!(received.get(), SIZE);
        writer.close();
        writer.wait_closed().await.expect("closed cleanly");
        // Once the connection is gone drain is an error.
        assert!(writer.drain().await.is_err());
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn a_full_reader_pauses_its_transport_and_resumes_below_the_limit() {
    const SIZE: usize = 4 << 20;
    run_test(async {
        let go = Rc::new(Event::new());
        let start = go.clone();
        let server = start_server(
            move |_reader, writer| {
                let start = start.clone();
                async move {
                    start.wait().await;
                    writer.write(&pattern(SIZE, 11));
                    writer.drain().await.unwrap();
                    writer.close();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        assert_eq!(reader.limit(), DEFAULT_LIMIT);
        let transport = writer.transport().clone();
        // Reading starts (right after connection_made) ...
        while !transport.is_reading() {
            sleep(Duration::ZERO).await;
        }
        // ... and stops once the unread buffer passes twice the limit.
        go.set();
        while transport.is_reading() {
            sleep(Duration::from_millis(1)).await;
        }
        assert!(!transport.is_closing());

        // Read in small pieces until reading resumes: at or below the limit, well before
        // the end.
        let mut sum = Checksum::new();
        while !transport.is_reading() {
            let piece = reader.read(8 * 1024).await.unwrap();
            assert!(!piece.is_empty());
            sum.update(&piece);
        }
        let resumed_after = sum.len;
        assert!(resumed_after < SIZE as u64, "reading resumed only after everything was read");
        loop {
            let piece = reader.read(64 * 1024).await.unwrap();
            if piece.is_empty() {
                break;
            }
            sum.update(&piece);
        }
        let mut expected = Checksum::new();
        expected.update(&pattern(SIZE, 11));
        assert_eq!(sum.finish(), expected.finish());
        writer.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn readexactly_more_than_twice_the_limit() {
    const SIZE: usize = 1 << 20;
    run_test(async {
        let server = start_server(
            |_reader, writer| async move {
                writer.write(&pattern(SIZE, 12));
                writer.close();
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let data = wait_for(reader.readexactly(SIZE), Duration::from_secs(3))
            .await
            .expect("readexactly(1 MiB) stalled: the transport stays paused")
            .unwrap();
        assert!(data == pattern(SIZE, 12));
        writer.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn read_to_end_of_more_than_twice_the_limit() {
    const SIZE: usize = 1 << 20;
    run_test(async {
        let server = start_server(
            |_reader, writer| async move {
                writer.write(&pattern(SIZE, 13));
                writer.close();
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let (reader, writer) = open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let data = wait_for(reader.read_to_end(), Duration::from_secs(3))
            .await
            .expect("read_to_end of 1 MiB stalled: the transport stays paused")
            .unwrap();
        assert!(data == pattern(SIZE, 13));
        writer.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn wait_closed_after_close() {
    run_test(async {
        let (server, port) = echo_server().await;
        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
        writer.write(b"bye\n");
        assert_eq!(reader.readline().await.unwrap(), &b"bye\n"[..]);
        assert!(!writer.is_closing());
        writer.close();
        assert!(writer.is_closing());
        writer.wait_closed().await.expect("closed cleanly");
        // Closing our side ends our reader too; waiting again returns at once.
        assert_eq!(reader.read(10).await.unwrap(), &b""[..]);
        writer.wait_closed().await.expect("closed cleanly");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn a_server_handler_sees_each_client_in_its_own_task() {
    run_test(async {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        let server = start_server(
            move |reader, writer| {
                let record = record.clone();
                async move {
                    let name = reader.readline().await.unwrap();
                    record.borrow_mut().push(name.to_vec());
                    writer.write(b"hello ");
                    writer.write(&name);
                    writer.close();
                }
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let port = port_of(&server);
        let clients = (0..20).map(|i| async move {
            let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
            writer.write(format!("client {i}\n").as_bytes());
            let reply = reader.read_to_end().await.unwrap();
            writer.close();
            assert_eq!(reply, format!("hello client {i}\n").as_bytes());
        });
        evloop::gather(clients).await.unwrap();
        assert_eq!(seen.borrow().len(), 20);
        server.close();
        server.wait_closed().await;
    });
}

/// `start_server_with_options` hands its options to `create_server`: with `reuse_port`,
/// two servers share a port, and 300 connections made at once, more than asyncio's
/// default backlog of 100 (the kernel would drop the SYNs beyond it), are all served.
#[test]
fn start_server_with_options_shares_a_port_and_takes_a_large_backlog() {
    run_test(async {
        let options = ServerOptions { backlog: 512, reuse_port: true };
        let serve = |reader: StreamReader, writer: StreamWriter| async move {
            if let Ok(data) = reader.read(1).await {
                writer.write(&data);
            }
            writer.close();
        };
        let first =
            start_server_with_options(serve, "127.0.0.1", 0, options.clone()).await.expect("first server");
        let port = port_of(&first);
        let second = start_server_with_options(serve, "127.0.0.1", port, options)
            .await
            .expect("second server, same port");
        let refused = start_server(serve, "127.0.0.1", port).await.expect_err("a third without reuse_port");
        assert_eq!(refused.kind(), io::ErrorKind::AddrInUse);

        // Connect all at once with blocking sockets before the loop accepts any.
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let clients: Vec<std::net::TcpStream> = (0..300)
            .map(|i| {
                let connected = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5));
                connected.unwrap_or_else(|e| panic!("connection {i} not taken into the backlog: {e}"))
            })
            .collect();
        let echoes: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                evloop::get_running_loop().unwrap().run_in_executor(move || {
                    use std::io::{Read, Write};
                    client.set_read_timeout(Some(Duration::from_secs(30)))?;
                    client.write_all(b"x")?;
                    let mut byte = [0u8; 1];
                    client.read_exact(&mut byte)?;
                    Ok::<u8, io::Error>(byte[0])
                })
            })
            .collect();
        for echo in echoes {
            assert_eq!(echo.await.expect("executor job").expect("echo"), b'x');
        }
        for server in [first, second] {
            server.close();
            server.wait_closed().await;
        }
    });
}
