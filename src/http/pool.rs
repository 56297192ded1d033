//! Kept-alive connections, by (scheme, host, port), waiting for their next request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use url::Url;

use super::error::HttpErrorKind;
#[cfg(feature = "tls")]
use super::tls::TlsSession;
use crate::event_loop::get_running_loop;
use crate::streams::{open_connection, StreamReader, StreamWriter};
use crate::tasks::wait_for;

/// How much one read asks for.
const READ_SIZE: usize = 64 * 1024;

/// Which connections can serve a URL: same scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    scheme: String,
    host: String,
    port: u16,
}

impl PoolKey {
    pub(crate) fn of(url: &Url) -> Result<PoolKey, HttpErrorKind> {
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(HttpErrorKind::InvalidUrl("no host".to_string())),
        };
        let port =
            url.port_or_known_default().ok_or_else(|| HttpErrorKind::InvalidUrl("no port".to_string()))?;
        Ok(PoolKey { scheme: url.scheme().to_string(), host, port })
    }
}

/// One connection to a server, with the (decrypted) bytes read from it and not yet used.
pub(crate) struct Connection {
    reader: StreamReader,
    writer: StreamWriter,
    buffer: BytesMut,
    idle_since: Instant,
    /// A write failed: the server may still have answered, but the connection is done.
    write_failed: bool,
    /// A request was handed to the transport and has not drained yet: the server has not
    /// taken it all (it may have answered early, RFC 9112 section 9.5). Such a connection
    /// is never reused, and is aborted rather than flushed when dropped.
    sending: bool,
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsSession>>,
}

/// What opening a connection needs besides its key: the time limit and, for https, the
/// TLS settings.
pub(crate) struct ConnectOptions {
    pub(crate) limit: Duration,
    /// The TLS settings, or why they could not be made (bad extra root certificates).
    #[cfg(feature = "tls")]
    pub(crate) tls: Result<std::sync::Arc<rustls::ClientConfig>, String>,
}

impl Connection {
    /// Connects to the key's host within the limit, with a TLS handshake for https.
    pub(crate) async fn open(key: &PoolKey, options: &ConnectOptions) -> Result<Connection, HttpErrorKind> {
        match wait_for(Connection::connect(key, options), options.limit).await {
            Ok(result) => result,
            Err(_) => Err(HttpErrorKind::Timeout("connecting")),
        }
    }

    async fn connect(key: &PoolKey, options: &ConnectOptions) -> Result<Connection, HttpErrorKind> {
        let (reader, writer) = match open_connection(&key.host, key.port).await {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(HttpErrorKind::Resolve(e)),
            Err(e) => return Err(HttpErrorKind::Connect(e)),
        };
        #[cfg(feature = "tls")]
        let tls = match (key.scheme.as_str(), &options.tls) {
            ("https", Ok(config)) => Some(Box::new(
                TlsSession::connect(config.clone(), &key.host, &reader, &writer)
                    .await
                    .map_err(|e| HttpErrorKind::Tls(e.to_string()))?,
            )),
            ("https", Err(why)) => return Err(HttpErrorKind::Tls(why.clone())),
            _ => None,
        };
        #[cfg(not(feature = "tls"))]
        let _ = options;
        Ok(Connection {
            reader,
            writer,
            buffer: BytesMut::new(),
            idle_since: now(),
            write_failed: false,
            sending: false,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// Hands `data` to the transport (encrypted, for https), which sends what the socket
    /// takes at once and buffers the rest; [`drain`](Connection::drain) or
    /// [`fill_or_drain`](Connection::fill_or_drain) then waits for the server to take it.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let (_, writer, _, tls) = self.parts();
        let result = match tls {
            #[cfg(feature = "tls")]
            Some(tls) => tls.write(data, writer),
            _ => {
                writer.write(data);
                Ok(())
            }
        };
        self.write_failed |= result.is_err();
        self.sending = result.is_ok();
        result
    }

    /// Waits until what was written has drained (below the transport's high-water mark).
    pub(crate) async fn drain(&mut self) -> io::Result<()> {
        let result = self.writer.drain().await;
        self.drained(&result);
        result
    }

    fn drained(&mut self, result: &io::Result<()>) {
        self.sending = false;
        self.write_failed |= result.is_err();
    }

    /// Whether part of a request written is still waiting to be sent: the transport
    /// still holds bytes of it (what drained, or went out at once, does not count).
    pub(crate) fn is_sending(&self) -> bool {
        self.sending && self.writer.transport().get_write_buffer_size() > 0
    }

    /// The connection's parts, borrowed apart, so that a read can go on while the writer
    /// drains.
    fn parts(&mut self) -> (&StreamReader, &StreamWriter, &mut BytesMut, TlsPart<'_>) {
        #[cfg(feature = "tls")]
        let tls = self.tls.as_deref_mut();
        #[cfg(not(feature = "tls"))]
        let tls = None;
        (&self.reader, &self.writer, &mut self.buffer, tls)
    }

    /// Reads more into the buffer; false at the end of the stream.
    pub(crate) async fn fill(&mut self) -> io::Result<bool> {
        let (reader, writer, buffer, tls) = self.parts();
        fill(reader, writer, buffer, tls).await
    }

    /// Waits for whichever comes first: more bytes to read ([`Progress::Filled`], as
    /// [`fill`](Connection::fill)), or the request written draining
    /// ([`Progress::Drained`], as [`drain`](Connection::drain)). So a response that the
    /// server sends before it has read the whole request is seen while the request is
    /// still being sent (RFC 9112 section 9.5). Reads are checked first.
    pub(crate) async fn fill_or_drain(&mut self) -> Progress {
        let progress = {
            let (reader, writer, buffer, tls) = self.parts();
            let fill = fill(reader, writer, buffer, tls);
            let drain = writer.drain();
            let (mut fill, mut drain) = (std::pin::pin!(fill), std::pin::pin!(drain));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(filled) = fill.as_mut().poll(cx) {
                    return Poll::Ready(Progress::Filled(filled));
                }
                drain.as_mut().poll(cx).map(Progress::Drained)
            })
            .await
        };
        if let Progress::Drained(result) = &progress {
            self.drained(result);
        }
        progress
    }

    /// Whether the stream, once a read has returned its end, ended without TLS's
    /// close_notify (false for plain http, which has no such signal).
    pub(crate) fn ended_without_close_notify(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.ended_without_close_notify();
        }
        false
    }

    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buffer
    }

    pub(crate) fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.buffer.advance(n);
    }

    /// Still usable: no write failed or is still draining, and the server has not closed it
    /// and sent nothing unasked, neither into our buffer nor into the reader's.
    fn is_clean(&self) -> bool {
        !self.write_failed
            && !self.is_sending()
            && self.buffer.is_empty()
            && self.reader.buffered() == 0
            && !self.reader.at_eof()
            && !self.writer.is_closing()
    }
}

/// What [`Connection::fill_or_drain`] waited for.
pub(crate) enum Progress {
    /// More bytes were read (true), the stream ended (false), or reading failed.
    Filled(io::Result<bool>),
    /// The request written has drained, or writing failed.
    Drained(io::Result<()>),
}

/// The TLS session of an https connection (never one without the `tls` feature).
#[cfg(feature = "tls")]
type TlsPart<'a> = Option<&'a mut TlsSession>;
#[cfg(not(feature = "tls"))]
type TlsPart<'a> = Option<&'a mut ()>;

/// Reads more into `buffer` (decrypting with `tls`, for https); false at the end of the
/// stream. A function of the connection's parts, so that it can run while the writer is
/// drained too.
async fn fill(
    reader: &StreamReader,
    writer: &StreamWriter,
    buffer: &mut BytesMut,
    tls: TlsPart<'_>,
) -> io::Result<bool> {
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        return tls.fill(buffer, reader, writer).await;
    }
    #[cfg(not(feature = "tls"))]
    let _ = (writer, tls);
    let data = reader.read(READ_SIZE).await.map_err(io::Error::from)?;
    buffer.extend_from_slice(&data);
    Ok(!data.is_empty())
}

impl Drop for Connection {
    /// Closes the connection once what is buffered is sent; but a request the server has
    /// not taken (it answered early and may never read the rest) is dropped at once, or
    /// the transport would wait for ever to flush it.
    fn drop(&mut self) {
        if self.is_sending() {
            self.writer.transport().abort();
        } else {
            self.writer.close();
        }
    }
}

/// Idle connections, newest last, dropped after `idle_timeout`; at most
/// `max_idle_per_host` for one key and `max_idle` in all, the oldest closed first.
///
/// The bound in all is what keeps a client that visits many hosts within its file
/// descriptors: each host's last connection would otherwise stay open until a request to
/// that same host took it again (or found it expired), so fetching 1,000 URLs on as many
/// hosts held 1,000 sockets open and, under the usual limit of 1,024 open files, the
/// later ones failed to connect.
pub(crate) struct Pool {
    idle: RefCell<HashMap<PoolKey, Vec<Connection>>>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(idle_timeout: Duration, max_idle_per_host: usize, max_idle: usize) -> Pool {
        Pool {
            idle: RefCell::new(HashMap::new()),
            idle_timeout,
            max_idle_per_host: max_idle_per_host.max(1),
            max_idle: max_idle.max(1),
        }
    }

    /// The most recently used clean connection for `key`, if one has not expired.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<Connection> {
        let now = now();
        let mut idle = self.idle.borrow_mut();
        let connections = idle.get_mut(key)?;
        let mut expired = Vec::new();
        let found = loop {
            let Some(connection) = connections.pop() else { break None };
            if now.duration_since(connection.idle_since) < self.idle_timeout && connection.is_clean() {
                break Some(connection);
            }
            expired.push(connection);
        };
        if connections.is_empty() {
            idle.remove(key);
        }
        drop(idle);
        drop(expired);
        found
    }

    /// Keeps `connection` for the next request to `key`, closing the oldest idle one for
    /// that key past `max_idle_per_host`, and the oldest of all past `max_idle`.
    pub(crate) fn put(&self, key: PoolKey, mut connection: Connection) {
        if !connection.is_clean() {
            return;
        }
        connection.idle_since = now();
        let mut idle = self.idle.borrow_mut();
        let connections = idle.entry(key).or_default();
        connections.push(connection);
        let surplus = connections.len().saturating_sub(self.max_idle_per_host);
        let mut dropped: Vec<Connection> = connections.drain(..surplus).collect();
        drop(idle);
        while self.len() > self.max_idle {
            dropped.extend(self.take_oldest());
        }
        drop(dropped);
    }

    /// Closes the connection that has been idle longest, if there is one; true if there
    /// was. Its file descriptor is free once the loop has run the close (the next
    /// iteration).
    pub(crate) fn close_oldest(&self) -> bool {
        self.take_oldest().is_some()
    }

    /// How many connections are idle, for all keys.
    fn len(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// Removes the connection idle longest from the pool (the first of its key's list,
    /// which is oldest first). Linear in the number of keys, which `max_idle` bounds.
    fn take_oldest(&self) -> Option<Connection> {
        let mut idle = self.idle.borrow_mut();
        let key = idle
            .iter()
            .filter_map(|(key, connections)| Some((connections.first()?.idle_since, key)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, key)| key.clone())?;
        let connections = idle.get_mut(&key)?;
        let oldest = connections.remove(0);
        if connections.is_empty() {
            idle.remove(&key);
        }
        Some(oldest)
    }
}

fn now() -> Instant {
    get_running_loop().map(|event_loop| event_loop.time()).unwrap_or_else(|_| Instant::now())
}
