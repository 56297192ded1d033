//! https through the client: a TLS server on 127.0.0.1 with a certificate generated here
//! (rcgen), trusted by the client through `extra_root_certificates`.
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use evloop::http::{Client, ClientOptions, HttpErrorKind};
use tls_served::{read_request_head, server_config};

/// A TLS server answering `connections` connections, one request each, with `body`.
fn serve_tls(connections: usize, body: &'static [u8]) -> (u16, Vec<u8>, std::thread::JoinHandle<()>) {
    let (config, cert_der) = server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else { return };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let session = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut stream = rustls::StreamOwned::new(session, tcp);
            if !read_request_head(&mut stream) {
                continue;
            }
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (port, cert_der, thread)
}

#[test]
fn https_get_with_a_trusted_local_certificate() {
    let body: &'static [u8] = &[b'x'; 100_000];
    let (port, cert, server) = serve_tls(1, body);
    let fetched = evloop::run(async move {
        let client =
            Client::with_options(ClientOptions { extra_root_certificates: vec![cert], ..Default::default() });
        let response = client.get(&format!("https://localhost:{port}/")).await?;
        let status = response.status();
        Ok::<_, evloop::http::HttpError>((status, response.bytes().await?))
    })
    .unwrap()
    .unwrap();
    assert_eq!(fetched.0, 200);
    assert_eq!(&fetched.1[..], body);
    server.join().unwrap();
}

#[test]
fn an_untrusted_certificate_is_a_tls_error() {
    let (port, _cert, server) = serve_tls(1, b"secret");
    let outcome =
        evloop::run(
            async move { Client::new().get(&format!("https://localhost:{port}/")).await.map(|_| ()) },
        )
        .unwrap();
    let error = outcome.expect_err("a self-signed certificate must not be trusted by default");
    assert!(matches!(error.kind, HttpErrorKind::Tls(_)), "{error}");
    assert!(error.to_string().contains("localhost"), "{error}");
    drop(server);
}

#[test]
fn an_https_request_body_larger_than_the_tls_buffer_is_sent_whole() {
    // rustls takes at most 64 KiB of plaintext before its ciphertext is taken out: a
    // larger body must be fed to it in pieces, not refused with "failed to write whole
    // buffer" (which used to end in a timeout).
    let (port, cert, server) = serve_echo_length();
    let options = ClientOptions {
        extra_root_certificates: vec![cert],
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let outcome = evloop::run(async move {
        let client = Client::with_options(options);
        let body = vec![b'a'; 1024 * 1024];
        let response = client.request("POST", &format!("https://localhost:{port}/"), Some(body)).await?;
        let status = response.status();
        Ok::<_, evloop::http::HttpError>((status, response.bytes().await?))
    })
    .unwrap();
    let (status, body) = outcome.unwrap();
    assert_eq!((status, &body[..]), (200, format!("{}", 1024 * 1024).as_bytes()));
    server.join().unwrap();
}

/// A TLS server for one connection: it reads a request with a `Content-Length` body and
/// answers with the number of body bytes it got.
fn serve_echo_length() -> (u16, Vec<u8>, std::thread::JoinHandle<()>) {
    let (config, cert_der) = server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else { return };
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut stream = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
        let mut request = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let length = loop {
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if request.len() >= end + 4 + length {
                    break request.len() - end - 4;
                }
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break 0,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        };
        let body = length.to_string();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
        stream.conn.send_close_notify();
        let _ = stream.flush();
    });
    (port, cert_der, thread)
}

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/tls_served_http.rs"]
mod tls_served;
