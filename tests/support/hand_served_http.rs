//! Hand-written HTTP servers for the cases canned bytes cannot play: a server that
//! trickles, never ends, or answers before reading the request. Each is a plain function
//! over one connection's `TcpStream`, run by [`serve_forever`] on 127.0.0.1; and the
//! client side those tests share ([`options`], [`fetch_all`], [`fetch_each`]). Shared by
//! tests/hostile_http.rs, tests/hostile_http_more.rs, tests/hostile_http_round3.rs and
//! tests/hostile_http_round4.rs.

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use evloop::http::{Client, ClientOptions, HttpError};

/// Client options for hostile servers: every limit 5 s, so that a case that goes wrong
/// fails quickly instead of hanging.
pub fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// `method url` (with `body`) and the whole response body.
pub async fn fetch_all(
    client: &Client,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, Bytes), HttpError> {
    let response = client.request(method, url, body).await?;
    let status = response.status();
    Ok((status, response.bytes().await?))
}

/// GETs each URL in turn with one client: each status and whole body, or the error as text.
pub async fn fetch_each(client: &Client, urls: &[String]) -> Vec<Result<(u16, Bytes), String>> {
    let mut results = Vec::new();
    for url in urls {
        results.push(fetch_all(client, "GET", url, None).await.map_err(|e| e.to_string()));
    }
    results
}

/// Keeps the connection open, reading nothing, for as long as the test process lives.
pub fn hold_open(_stream: &mut TcpStream) -> ! {
    loop {
        std::thread::park();
    }
}

/// Serves every connection with `serve` in its own thread. An `Ok` ends
/// the connection with an orderly close; an `Err` drops it as it is (a reset, if the
/// request was left unread). Returns `http://127.0.0.1:<port>/`; the listener thread ends
/// with the test process.
pub fn serve_forever(serve: fn(&mut TcpStream) -> std::io::Result<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                if serve(&mut stream).is_ok() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            });
        }
    });
    url
}

/// Reads a request head, up to and including its blank line, a byte at a time (so
/// nothing after it is consumed).
pub fn read_head(stream: &mut TcpStream) -> std::io::Result<()> {
    read_target(stream).map(drop)
}

/// Reads a request head as [`read_head`] does and returns its target (`/path?query`).
pub fn read_target(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.split(' ').nth(1).unwrap_or("").to_string())
}
