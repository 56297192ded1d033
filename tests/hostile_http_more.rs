//! More hostile servers for the HTTP client, beyond tests/hostile_http.rs, with RFC 9112
//! as the referee: a transfer coding after `chunked`, a body that stalls, and a server that
//! answers before it has read the request.
//!
//! Every test is bounded by a time limit (`run_test`); nothing sleeps to let things happen.
//! The servers that misbehave over time are small std threads on 127.0.0.1.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run_test as run;
use evloop::http::{Client, ClientOptions, HttpErrorKind};
use hand_served::{fetch_all, options, serve_forever};
use server::{Reply, Server};

/// No run of an example may take longer.
const EXAMPLE_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Transfer codings

#[test]
fn chunked_followed_by_another_transfer_coding_is_an_error_not_a_body_with_its_framing() {
    // RFC 9112 6.3 rule 4: with chunked not the final coding, the body runs to the close,
    // and it is still chunk-encoded underneath. The client undoes no coding but a final
    // chunked, so the chunk framing must not be handed out as if it were the content.
    let chunked_x =
        |codings: &str| format!("HTTP/1.1 200 OK\r\n{codings}\r\n\r\n1\r\nx\r\n0\r\n\r\n").into_bytes();
    let server = Server::start(move |request| match request.target.as_str() {
        "/chunked-identity" => Reply::raw(chunked_x("Transfer-Encoding: chunked, identity")).close(),
        "/split" => {
            Reply::raw(chunked_x("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity")).close()
        }
        _ => Reply::raw(chunked_x("Transfer-Encoding: identity, chunked")),
    });
    let urls = ["/chunked-identity", "/split", "/identity-chunked"].map(|p| server.url(p));
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url, None).await.map_err(|e| e.to_string()));
        }
        results
    });
    for result in &results[..2] {
        let error = result.as_ref().expect_err("chunked, then another coding");
        assert!(error.contains("chunked is not the final transfer coding"), "{error}");
    }
    assert_eq!(results[2], Ok((200, Bytes::from_static(b"x"))), "identity before chunked is a no-op");
}

// ---------------------------------------------------------------------------------------
// Time limits on the body

#[test]
fn a_body_that_stalls_is_a_timeout_not_a_hang() {
    // The head arrives in time, then the body stops short and the connection stays open:
    // nothing but a time limit can end the read.
    let server = Server::start(|request| {
        let bytes: &[u8] = match request.target.as_str() {
            "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nhello",
            _ => b"HTTP/1.0 200 OK\r\n\r\nuntil the close, which never comes",
        };
        Reply::raw(bytes).hang()
    });
    let urls = ["/length", "/chunked", "/until-close"].map(|p| server.url(p));
    let read_timeout = Duration::from_millis(300);
    let results = run(async move {
        let client = Client::with_options(ClientOptions { read_timeout, ..options() });
        let mut results = Vec::new();
        for url in &urls {
            let started = Instant::now();
            let result = fetch_all(&client, "GET", url, None).await;
            results.push((result, started.elapsed()));
        }
        results
    });
    for (result, elapsed) in results {
        let error = result.expect_err("a stalled body");
        assert!(matches!(error.kind, HttpErrorKind::Timeout(_)), "{error:?}");
        assert!(error.to_string().contains("timed out waiting for more of the body"), "{error}");
        assert!(elapsed >= read_timeout && elapsed < Duration::from_secs(3), "{elapsed:?}");
    }
}

#[test]
fn the_read_timeout_limits_each_wait_not_the_whole_body() {
    // Fifteen pieces 100 ms apart: 1.5 s in all, more than the read timeout, yet no wait
    // comes near it.
    let url = serve_forever(|stream| {
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n")?;
        for _ in 0..15 {
            std::thread::sleep(Duration::from_millis(100));
            stream.write_all(b"z")?;
        }
        Ok(())
    });
    let result = run(async move {
        let client =
            Client::with_options(ClientOptions { read_timeout: Duration::from_secs(1), ..options() });
        fetch_all(&client, "GET", &url, None).await.map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok((200, Bytes::from_static(b"zzzzzzzzzzzzzzz"))));
}

// ---------------------------------------------------------------------------------------
// A response before the request is written

#[test]
fn a_response_sent_before_the_request_body_was_read_is_not_lost() {
    // RFC 9112 9.5: a client sending a body should watch for a response while it sends.
    // This server answers a large POST at once, reads none of it, and closes: the write
    // breaks (the unread body makes the close a reset), but the answer had arrived.
    let url = serve_forever(|stream| {
        let mut first = [0u8; 1];
        stream.peek(&mut first)?;
        stream.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!",
        )?;
        // Dropped unread: a reset rather than an orderly close.
        Err(std::io::Error::other("close with the request unread"))
    });
    let next = Server::start(|_| Reply::status("200 OK", "", b"fine"));
    let next_url = next.url("/");
    let results = run(async move {
        let client = Client::with_options(options());
        let large = fetch_all(&client, "POST", &url, Some(vec![b'a'; 16 * 1024 * 1024])).await;
        let after = fetch_all(&client, "GET", &next_url, None).await;
        (large.map_err(|e| e.to_string()), after.map_err(|e| e.to_string()))
    });
    assert_eq!(results.0, Ok((413, Bytes::from_static(b"too big!"))));
    assert_eq!(results.1, Ok((200, Bytes::from_static(b"fine"))));
}

#[test]
fn a_server_that_resets_before_answering_is_still_an_error() {
    // The same broken write, with no answer before the reset: the write's error, once,
    // as before (a fresh connection is not retried).
    let url = serve_forever(|stream| {
        let mut first = [0u8; 1];
        stream.peek(&mut first)?;
        Err(std::io::Error::other("close with the request unread"))
    });
    let result = run(async move {
        let client = Client::with_options(options());
        fetch_all(&client, "POST", &url, Some(vec![b'a'; 16 * 1024 * 1024])).await
    });
    let error = result.expect_err("no response at all");
    assert!(matches!(error.kind, HttpErrorKind::Io(_)), "{error:?}");
}

// ---------------------------------------------------------------------------------------
// The crawl example

#[test]
fn crawl_holds_a_page_of_any_type_to_its_size_limit() {
    // crawl keeps the body of HTML pages only, but its 10 MiB limit is on every page: a
    // larger one of another type is an error too, not a page read to the end and passed.
    let server = Server::start(|request| match request.target.as_str() {
        "/" => Reply::status("200 OK", "Content-Type: text/html\r\n", br#"<a href="/blob">b</a>"#),
        _ => Reply::status(
            "200 OK",
            "Content-Type: application/octet-stream\r\n",
            &vec![b'b'; 11 * 1024 * 1024],
        ),
    });
    let output = process::run("crawl", &["-t", "5", &server.url("/")], EXAMPLE_LIMIT);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.line_for(&server.url("/")), format!("200 {}", server.url("/")));
    let blob = output.line_for(&server.url("/blob"));
    assert!(blob.starts_with("ERR page larger than 10 MiB"), "{blob:?}");
}

// ---------------------------------------------------------------------------------------
// Modules

mod common;

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/example_process.rs"]
mod process;

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/scripted_http.rs"]
mod server;

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/hand_served_http.rs"]
mod hand_served;
