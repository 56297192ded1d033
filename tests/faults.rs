//! Faults: `accept` out of file descriptors backs off instead of spinning, and a peer that
//! vanishes mid-write is an error, never SIGPIPE.
//!
//! The EMFILE test fills this process's fd table, which would break any test running
//! beside it, so this file holds only these two tests and they take a lock to run one at
//! a time. The table is filled with `/dev/null` handles (no `unsafe` needed); if the soft
//! limit is very large it is first lowered with `prlimit(1)` and restored afterwards.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use evloop::sys::socket::{Kind, SockAddr, Socket};
use evloop::transport::{Protocol, ServerOptions, Transport, ACCEPT_RETRY_DELAY};
use evloop::{create_task, sleep, wait_for, EventLoop, Interest};

mod common;
use common::{open_file_limit, run_test, this_loop, Watch};

static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Conn {
    made_at: Option<Instant>,
    received: Vec<u8>,
    lost: Option<Option<io::Error>>,
}

/// Records one connection's life.
struct Recorder(Rc<Watch<Conn>>);

impl Protocol for Recorder {
    fn connection_made(&mut self, _transport: &Transport) {
        self.0.update(|c| c.made_at = Some(Instant::now()));
    }

    fn data_received(&mut self, data: &[u8]) {
        self.0.update(|c| c.received.extend_from_slice(data));
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        self.0.update(|c| c.lost = Some(error));
    }
}

/// Lowers the soft fd limit with prlimit(1) while alive, restoring it on drop.
struct LoweredLimit {
    restore_to: usize,
}

impl LoweredLimit {
    fn to(soft: usize) -> Option<LoweredLimit> {
        let restore_to = open_file_limit()?;
        set_soft_limit(soft).then_some(LoweredLimit { restore_to })
    }
}

impl Drop for LoweredLimit {
    fn drop(&mut self) {
        set_soft_limit(self.restore_to);
    }
}

fn set_soft_limit(soft: usize) -> bool {
    let pid = std::process::id().to_string();
    let applied = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={soft}:")])
        .status()
        .is_ok_and(|status| status.success());
    applied && open_file_limit() == Some(soft)
}

/// Opens `/dev/null` until the process is out of descriptors (EMFILE).
fn fill_fd_table() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => files.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return files,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
    }
}

#[test]
fn accept_out_of_descriptors_backs_off_then_accepts() {
    let _alone = alone();
    // Filling millions of descriptors would take a while: lower a huge limit first.
    let _lowered = match open_file_limit() {
        Some(limit) if limit > 65_536 => {
            let lowered = LoweredLimit::to(4096);
            if lowered.is_none() {
                eprintln!("skipping: fd limit {limit} is too large to fill, and prlimit could not lower it");
                return;
            }
            lowered
        }
        _ => None,
    };
    run_test(async {
        let event_loop = this_loop();
        let reported: Rc<Watch<Vec<(String, Instant)>>> = Watch::new(Vec::new());
        let handler_log = reported.clone();
        event_loop.set_exception_handler(move |context| {
            let text = context.to_string();
            handler_log.update(|all| all.push((text, Instant::now())));
        });
        let connection: Rc<Watch<Conn>> = Watch::new(Conn::default());
        let conn = connection.clone();
        let server = event_loop
            .create_server(move || Recorder(conn.clone()), "127.0.0.1", 0, ServerOptions::default())
            .await
            .unwrap();
        let port = server.addresses()[0].as_inet().unwrap().port();

        // Out of descriptors, but for the one the client needs. The handshake completes
        // in the kernel; the server's accept4 has no descriptor left to give.
        let mut files = fill_fd_table();
        let held = files.len();
        files.pop();
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect with one fd free");
        assert!(File::open("/dev/null").is_err(), "the fd table is not full");

        wait_for(reported.until(|all| !all.is_empty()), Duration::from_secs(2))
            .await
            .expect("the exception handler was not told of EMFILE");
        let (message, backed_off_at) = reported.get(|all| all[0].clone());
        assert!(message.contains("accept"), "{message}");
        assert!(message.contains("os error 24"), "not EMFILE: {message}");

        // The listener stays readable, but the server must not spin on it.
        let before = event_loop.stats();
        sleep(Duration::from_millis(200)).await;
        let spun = event_loop.stats().iterations - before.iterations;
        assert!(spun < 50, "{spun} loop iterations in 200 ms while out of descriptors");
        assert_eq!(reported.get(|all| all.len()), 1, "accept retried before the back-off delay");
        assert!(connection.get(|c| c.made_at.is_none()));

        // Descriptors again: the retry accepts within the back-off delay (+ margin).
        drop(files);
        let freed_at = Instant::now();
        wait_for(connection.until(|c| c.made_at.is_some()), ACCEPT_RETRY_DELAY + Duration::from_secs(1))
            .await
            .expect("the connection was not accepted after the retry delay");
        let made_at = connection.get(|c| c.made_at.unwrap());
        assert!(
            made_at.duration_since(freed_at) <= ACCEPT_RETRY_DELAY + Duration::from_millis(300),
            "accepted {:?} after descriptors were freed",
            made_at.duration_since(freed_at)
        );
        assert!(
            made_at.duration_since(backed_off_at) + Duration::from_millis(5) >= ACCEPT_RETRY_DELAY,
            "accepted {:?} after backing off, before the retry delay",
            made_at.duration_since(backed_off_at)
        );
        eprintln!(
            "held {held} descriptors; {spun} iterations in 200 ms; accepted {:?} after backing off",
            made_at.duration_since(backed_off_at)
        );

        // The accepted connection works.
        client.write_all(b"ping").unwrap();
        connection.until(|c| c.received.len() == 4).await;
        drop(client);
        connection.until(|c| c.lost.is_some()).await;
        server.close();
        server.wait_closed().await;
    });
}

/// Records whether SIGPIPE arrives, with SIGUSR1 as a sentinel: once the loop has run the
/// callback of a SIGUSR1 sent after the faults, an earlier SIGPIPE would have been seen.
struct SigpipeWatch {
    pipes: Rc<Watch<(u32, u32)>>,
}

impl SigpipeWatch {
    /// None if the loop cannot handle signals (then only survival is checked).
    fn install(event_loop: &EventLoop) -> Option<SigpipeWatch> {
        let pipes: Rc<Watch<(u32, u32)>> = Watch::new((0, 0));
        let (on_pipe, on_usr1) = (pipes.clone(), pipes.clone());
        let installed =
            event_loop.add_signal_handler(libc::SIGPIPE, move || on_pipe.update(|(p, _)| *p += 1)).and_then(
                |()| event_loop.add_signal_handler(libc::SIGUSR1, move || on_usr1.update(|(_, u)| *u += 1)),
            );
        match installed {
            Ok(()) => Some(SigpipeWatch { pipes }),
            Err(error) => {
                eprintln!("cannot watch for SIGPIPE ({error}); checking only that the process survives");
                None
            }
        }
    }

    async fn sigpipes(&self) -> u32 {
        let status = Command::new("kill").args(["-USR1", &std::process::id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -USR1 failed");
        self.pipes.until(|(_, usr1)| *usr1 > 0).await;
        // SIGPIPE's callback, if it was in the same batch, runs in the same iteration.
        sleep(Duration::ZERO).await;
        self.pipes.get(|(pipe, _)| *pipe)
    }
}

fn is_vanished_peer(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

#[test]
fn a_peer_vanishing_mid_write_is_an_error_not_sigpipe() {
    let _alone = alone();
    run_test(async {
        let event_loop = this_loop();
        let watch = SigpipeWatch::install(&event_loop);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let flood = vec![0x5au8; 32 << 20];

        // A transport with a full write buffer; the peer reads a little and is gone.
        let conn: Rc<Watch<Conn>> = Watch::new(Conn::default());
        let protocol_conn = conn.clone();
        let (transport, _) =
            event_loop.create_connection(move || Recorder(protocol_conn), "127.0.0.1", port).await.unwrap();
        conn.until(|c| c.made_at.is_some()).await;
        let (mut peer, _) = listener.accept().unwrap();
        transport.write(&flood);
        assert!(transport.get_write_buffer_size() > 0);
        peer.read_exact(&mut [0u8; 4096]).unwrap();
        drop(peer);
        conn.until(|c| c.lost.is_some()).await;
        conn.get(|c| match &c.lost {
            Some(Some(error)) => assert!(is_vanished_peer(error), "{error}"),
            other => panic!("connection_lost({other:?}) for a vanished peer"),
        });

        // sock_sendall, blocked on a full socket when the peer goes.
        let client = Rc::new(Socket::new(libc::AF_INET, Kind::Stream).unwrap());
        let addr = SockAddr::Inet(listener.local_addr().unwrap());
        event_loop.sock_connect(&client, &addr).await.unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let sending = {
            let (event_loop, client, flood) = (event_loop.clone(), client.clone(), flood.clone());
            create_task(async move { event_loop.sock_sendall(&client, &flood).await })
        };
        while event_loop.fd_interest(client.as_raw_fd()) != Some(Interest::WRITE) {
            sleep(Duration::ZERO).await;
        }
        peer.read_exact(&mut [0u8; 4096]).unwrap();
        drop(peer);
        let error = sending.await.unwrap().expect_err("sock_sendall to a vanished peer succeeded");
        assert!(is_vanished_peer(&error), "{error}");
        assert_eq!(event_loop.fd_interest(client.as_raw_fd()), None);
        // And again, on the dead socket, at once.
        let error = event_loop.sock_sendall(&client, b"more").await.expect_err("send on a reset socket");
        assert!(is_vanished_peer(&error), "{error}");

        if let Some(watch) = watch {
            assert_eq!(watch.sigpipes().await, 0, "SIGPIPE was raised");
        }
        // Reaching this line is the main point: SIGPIPE's default action would have killed
        // the process.
    });
}
