//! A one-shot https server for the hostile tests: a rustls server on 127.0.0.1, with a
//! certificate for `localhost` generated here (rcgen), that answers one request with canned
//! bytes and then ends the connection with or without TLS's close_notify. tests/https.rs
//! uses its server configuration and request reader too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A rustls server configuration with a new self-signed certificate for `localhost`, and
/// that certificate (DER), for the client to trust.
pub fn server_config() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
        .unwrap();
    (Arc::new(config), cert_der)
}

/// Serves one connection: reads a request head, writes `reply`, then sends close_notify
/// if `close_notify`, and closes the TCP connection either way. Returns
/// `https://localhost:<port>/`; the thread ends after that one connection (or 5 s of
/// silence).
pub fn serve_once(config: Arc<rustls::ServerConfig>, reply: &'static [u8], close_notify: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://localhost:{}/", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else { return };
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let session = rustls::ServerConnection::new(config).unwrap();
        let mut stream = rustls::StreamOwned::new(session, tcp);
        if !read_request_head(&mut stream) {
            return;
        }
        let _ = stream.write_all(reply);
        if close_notify {
            stream.conn.send_close_notify();
        }
        let _ = stream.flush();
        let _ = stream.sock.shutdown(Shutdown::Both);
    });
    url
}

/// Reads from `stream` until the end of a request head; false if the peer closed or
/// failed first.
pub fn read_request_head(stream: &mut impl Read) -> bool {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    true
}
