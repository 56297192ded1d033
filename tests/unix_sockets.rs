//! Unix domain sockets: `create_unix_server` / `create_unix_connection` with protocols,
//! `start_unix_server` / `open_unix_connection` with streams, a stale socket file
//! replaced, and a regular file at the path refused.
//!
//! Each test works in its own directory under the system temp dir, removed at the end.

use std::cell::RefCell;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evloop::streams::{open_unix_connection, start_unix_server};
use evloop::sys::socket::SockAddr;
use evloop::transport::{Protocol, ServerOptions, Transport};

mod common;
use common::{run_test, this_loop};

/// A fresh directory, removed (with what is in it) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique =
            format!("evloop-unix-{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// What a protocol received, and whether it was lost; coroutines wait on it.
#[derive(Default)]
struct Seen {
    received: Vec<u8>,
    lost: Option<Option<io::ErrorKind>>,
    transport: Option<Transport>,
}

/// The [`Seen`] that protocol callbacks update and coroutines wait on.
type Watch = common::Watch<Seen>;

struct Recorder {
    watch: Rc<Watch>,
    echo: bool,
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: &Transport) {
        self.watch.update(|s| s.transport = Some(transport.clone()));
    }

    fn data_received(&mut self, data: &[u8]) {
        if self.echo {
            self.watch.get(|s| s.transport.clone()).unwrap().write(data);
        }
        self.watch.update(|s| s.received.extend_from_slice(data));
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        self.watch.update(|s| s.lost = Some(error.map(|e| e.kind())));
    }
}

/// A Unix echo server at `path`; the watches of its connections.
async fn echo_server(path: &Path) -> io::Result<(evloop::transport::Server, Rc<RefCell<Vec<Rc<Watch>>>>)> {
    let accepted: Rc<RefCell<Vec<Rc<Watch>>>> = Rc::default();
    let registry = accepted.clone();
    let server = this_loop()
        .create_unix_server(
            move || {
                let watch = Rc::new(Watch::default());
                registry.borrow_mut().push(watch.clone());
                Recorder { watch, echo: true }
            },
            path,
            ServerOptions::default(),
        )
        .await?;
    Ok((server, accepted))
}

/// Connects to `path`, sends `message` and checks it comes back.
async fn echo_round_trip(path: &Path, message: &[u8]) -> Transport {
    let watch = Rc::new(Watch::default());
    let protocol_watch = watch.clone();
    let (transport, _) = this_loop()
        .create_unix_connection(move || Recorder { watch: protocol_watch, echo: false }, path)
        .await
        .expect("create_unix_connection");
    transport.write(message);
    watch.until(|s| s.received.len() >= message.len()).await;
    assert_eq!(watch.get(|s| s.received.clone()), message);
    transport
}

#[test]
fn protocol_echo_over_a_unix_socket() {
    let dir = TempDir::new("protocol");
    let path = dir.path("echo.sock");
    run_test(async move {
        let (server, accepted) = echo_server(&path).await.expect("create_unix_server");
        assert!(is_socket(&path));
        assert_eq!(server.addresses(), [SockAddr::Unix(Some(path.clone()))]);

        let transport = echo_round_trip(&path, b"over a unix socket").await;
        assert_eq!(transport.peer_addr(), Some(&SockAddr::Unix(Some(path.clone()))));
        assert_eq!(transport.local_addr(), Some(&SockAddr::Unix(None)), "an unbound client is unnamed");

        // A megabyte both ways, through the kernel's small Unix socket buffers.
        let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
        let second = echo_round_trip(&path, &big).await;

        transport.close();
        second.close();
        let server_side = accepted.borrow()[0].clone();
        server_side.until(|s| s.lost.is_some()).await;
        assert_eq!(server_side.get(|s| s.lost), Some(None));
        server.close();
        server.wait_closed().await;
    });
    drop(dir);
}

#[test]
fn streams_over_a_unix_socket() {
    let dir = TempDir::new("streams");
    let path = dir.path("streams.sock");
    run_test(async move {
        let server = start_unix_server(
            |reader, writer| async move {
                while let Ok(line) = reader.readline().await {
                    if line.is_empty() {
                        break;
                    }
                    writer.write(b"> ");
                    writer.write(&line);
                    writer.drain().await.unwrap();
                }
                writer.close();
            },
            &path,
        )
        .await
        .expect("start_unix_server");
        let (reader, writer) = open_unix_connection(&path).await.expect("open_unix_connection");
        writer.write(b"one\ntwo\n");
        assert_eq!(reader.readline().await.unwrap(), &b"> one\n"[..]);
        assert_eq!(reader.readline().await.unwrap(), &b"> two\n"[..]);
        writer.write_eof();
        assert_eq!(reader.read_to_end().await.unwrap(), &b""[..]);
        writer.close();
        writer.wait_closed().await.expect("closed cleanly");
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    // A server that went away without removing its socket file.
    drop(UnixListener::bind(&path).unwrap());
    assert!(is_socket(&path), "the stale socket file is there");
    run_test(async move {
        // Nobody listens on it.
        let refused = this_loop()
            .create_unix_connection(|| Recorder { watch: Rc::default(), echo: false }, &path)
            .await;
        assert_eq!(refused.map(|_| ()).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);

        let (server, _accepted) = echo_server(&path).await.expect("create_unix_server over a stale socket");
        let transport = echo_round_trip(&path, b"fresh").await;
        transport.close();
        server.close();
        server.wait_closed().await;
    });
}

#[test]
fn a_regular_file_at_the_path_is_refused_and_kept() {
    let dir = TempDir::new("regular");
    let path = dir.path("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    run_test(async move {
        let outcome = echo_server(&path).await;
        let error = outcome.map(|_| ()).expect_err("listening over a regular file");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious", "the file was touched");
    });
}

#[test]
fn connecting_to_a_missing_path_fails() {
    let dir = TempDir::new("missing");
    let path = dir.path("nobody-here.sock");
    run_test(async move {
        let error = open_unix_connection(&path).await.map(|_| ()).expect_err("nothing at the path");
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    });
}
