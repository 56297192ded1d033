//! https: rustls, a sans-I/O TLS library, over our own streams. rustls never touches a
//! socket: we hand it the ciphertext we read and send the ciphertext it produces, so TLS
//! adds no I/O path of its own to the loop.

use std::io::{self, Read, Write};

use bytes::{Buf, BytesMut};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::streams::{StreamReader, StreamWriter};

/// How much ciphertext one read asks for.
const READ_SIZE: usize = 64 * 1024;

/// The client's TLS settings: the webpki root store, plus `extra_roots` (DER), e.g. a
/// test's own certificate authority.
pub(crate) fn client_config(extra_roots: &[Vec<u8>]) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One TLS session over a stream pair, with ciphertext read but not yet taken by rustls
/// (it takes no more while its decrypted buffer is full).
pub(crate) struct TlsSession {
    session: ClientConnection,
    incoming: BytesMut,
    peer_closed: bool,
    /// The peer ended the session with close_notify, TLS's own end of the stream (rustls
    /// reads it as an end of 0 bytes; a TCP close without it is an `UnexpectedEof`).
    close_notify_received: bool,
}

impl TlsSession {
    /// Runs the handshake with `host` over the stream pair.
    pub(crate) async fn connect(
        config: Arc<ClientConfig>,
        host: &str,
        reader: &StreamReader,
        writer: &StreamWriter,
    ) -> io::Result<TlsSession> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let session = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = TlsSession {
            session,
            incoming: BytesMut::new(),
            peer_closed: false,
            close_notify_received: false,
        };
        while tls.session.is_handshaking() {
            tls.flush(writer).await?;
            if tls.session.wants_read() {
                if tls.incoming.is_empty() && !tls.receive(reader).await? {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    ));
                }
                tls.feed()?;
            }
        }
        tls.flush(writer).await?;
        Ok(tls)
    }

    /// Encrypts `data` and hands the ciphertext to `writer` (which buffers what the socket
    /// does not take at once); the caller drains. rustls takes at most 64 KiB of
    /// plaintext while its ciphertext waits to be taken out, so a larger `data` is
    /// encrypted piece by piece, each piece's ciphertext taken out before the next.
    pub(crate) fn write(&mut self, mut data: &[u8], writer: &StreamWriter) -> io::Result<()> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let taken = self.session.writer().write(data)?;
            data = &data[taken..];
            let mut ciphertext = 0;
            while self.session.wants_write() {
                ciphertext += self.session.write_tls(&mut out)?;
            }
            if taken == 0 && ciphertext == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "the TLS session takes no more data"));
            }
            writer.write(&out);
            out.clear();
        }
        Ok(())
    }

    /// Sends whatever ciphertext rustls has ready.
    async fn flush(&mut self, writer: &StreamWriter) -> io::Result<()> {
        let mut out = Vec::new();
        while self.session.wants_write() {
            self.session.write_tls(&mut out)?;
        }
        if !out.is_empty() {
            writer.write(&out);
            writer.drain().await?;
        }
        Ok(())
    }

    /// Reads more ciphertext from the socket; false at the end of the stream.
    async fn receive(&mut self, reader: &StreamReader) -> io::Result<bool> {
        let data = reader.read(READ_SIZE).await.map_err(io::Error::from)?;
        self.incoming.extend_from_slice(&data);
        self.peer_closed |= data.is_empty();
        Ok(!data.is_empty())
    }

    /// Gives rustls as much of the pending ciphertext as it takes, and decrypts it.
    fn feed(&mut self) -> io::Result<()> {
        while !self.incoming.is_empty() && self.session.wants_read() {
            let mut input = &self.incoming[..];
            let taken = self.session.read_tls(&mut input)?;
            self.incoming.advance(taken);
            self.session.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if taken == 0 {
                break;
            }
        }
        if self.incoming.is_empty() && self.peer_closed {
            // Tell rustls the stream ended (a read of nothing).
            let _ = self.session.read_tls(&mut &[][..]);
        }
        Ok(())
    }

    /// Appends decrypted bytes to `buffer`; false at the end of the stream. A peer that
    /// closes without TLS's close_notify counts as the end too: the HTTP framing above
    /// notices a body cut short, and asks [`ended_without_close_notify`] about a body that
    /// only the close delimits.
    ///
    /// [`ended_without_close_notify`]: TlsSession::ended_without_close_notify
    pub(crate) async fn fill(
        &mut self,
        buffer: &mut BytesMut,
        reader: &StreamReader,
        writer: &StreamWriter,
    ) -> io::Result<bool> {
        loop {
            if let Some(more) = self.read_plain(buffer)? {
                return Ok(more);
            }
            if self.incoming.is_empty() {
                if self.peer_closed {
                    return Ok(false);
                }
                self.receive(reader).await?;
            }
            self.feed()?;
            self.flush(writer).await?;
        }
    }

    /// Whether the stream, once [`fill`](TlsSession::fill) has returned its end, ended
    /// without close_notify: a TCP close an attacker could have forged to cut the data short
    /// (RFC 9112 section 9.8).
    pub(crate) fn ended_without_close_notify(&self) -> bool {
        !self.close_notify_received
    }

    /// Moves decrypted bytes into `buffer`: `Some(true)` if any came, `Some(false)` at the
    /// end of the stream, `None` if rustls needs more ciphertext first. Not async on
    /// purpose: its 16 KiB scratch buffer then lives on the stack for this call only, not
    /// in every request's future.
    fn read_plain(&mut self, buffer: &mut BytesMut) -> io::Result<Option<bool>> {
        let mut plain = [0u8; 16 * 1024];
        match self.session.reader().read(&mut plain) {
            Ok(0) => {
                self.close_notify_received = true;
                Ok(Some(false))
            }
            Ok(n) => {
                buffer.extend_from_slice(&plain[..n]);
                Ok(Some(true))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(false)),
            Err(e) => Err(e),
        }
    }
}
