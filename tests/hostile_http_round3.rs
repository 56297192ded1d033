//! A third round of hostile servers for the HTTP client, with RFC 9112 as the referee: a
//! higher HTTP/1.x minor version, a head trickled up to near the 64 KiB limit, a complete
//! response sent before the request body was read by a server that then neither reads nor
//! closes. (The same round's https case, a request body larger than the TLS library's
//! buffer, is in tests/https.rs.)
//!
//! Every test is bounded by a time limit (`run_test`, and the client's own limits); nothing
//! sleeps to let things happen. The servers are std threads on 127.0.0.1.

use std::io::Write;

use bytes::Bytes;
use common::run_test as run;
use evloop::http::Client;
use hand_served::{fetch_all, hold_open, options, read_head, serve_forever};
use server::{Reply, Server};

// ---------------------------------------------------------------------------------------
// The version

#[test]
fn a_higher_minor_version_is_read_as_http_1_1_and_keeps_the_connection() {
    // RFC 9110 2.5 and RFC 9112 2.3: a message of a higher minor version within HTTP/1 is
    // processed as if it were HTTP/1.1, the highest minor version this client supports; so
    // the connection is kept alive as an HTTP/1.1 one would be.
    let server = Server::start(|request| match request.target.as_str() {
        "/1.2" => Reply::raw(&b"HTTP/1.2 200 OK\r\nContent-Length: 3\r\n\r\none"[..]),
        _ => Reply::raw(&b"HTTP/1.9 201 Created\r\nContent-Length: 3\r\n\r\ntwo"[..]),
    });
    let urls = [server.url("/1.2"), server.url("/1.9")];
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url, None).await.map_err(|e| e.to_string()));
        }
        results
    });
    assert_eq!(results[0], Ok((200, Bytes::from_static(b"one"))));
    assert_eq!(results[1], Ok((201, Bytes::from_static(b"two"))));
    let conns: Vec<usize> = server.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0], "both requests on one kept-alive connection");
}

// ---------------------------------------------------------------------------------------
// A trickled head

#[test]
fn a_head_of_60_kib_trickled_in_small_pieces_is_read() {
    // A server that sends a large head a few bytes per write (no Nagle coalescing), then
    // the body: the client must put the pieces together, whatever reads they arrive in.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        stream.set_nodelay(true)?;
        for piece in trickled_head().chunks(7) {
            stream.write_all(piece)?;
        }
        stream.write_all(b"done")?;
        hold_open(stream)
    });
    let result = run(async move {
        let client = Client::with_options(options());
        let response = client.get(&url).await.map_err(|e| e.to_string())?;
        let padding = response.headers().iter().filter(|(name, _)| name == "x-padding").count();
        let last = response.header("x-last").map(str::to_owned);
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((padding, last, body))
    });
    let (padding, last, body) = result.expect("the trickled response");
    assert_eq!(padding, PADDING_LINES);
    assert_eq!(last.as_deref(), Some("end"));
    assert_eq!(body, Bytes::from_static(b"done"));
}

const PADDING_LINES: usize = 960;

/// A head of about 60 KiB: a status line, 960 padding fields of 64 bytes, and a last field.
fn trickled_head() -> Vec<u8> {
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n".to_vec();
    for i in 0..PADDING_LINES {
        head.extend_from_slice(format!("X-Padding: {i:04} {}\r\n", "p".repeat(47)).as_bytes());
    }
    head.extend_from_slice(b"X-Last: end\r\n\r\n");
    assert!(head.len() > 60 * 1024 && head.len() < 64 * 1024, "{}", head.len());
    head
}

#[test]
fn a_head_cut_short_by_a_close_names_what_was_wrong_with_it() {
    // The client looks for errors in header fields once the head is complete; a head that
    // ends with the connection first is still checked, and its error is the one reported.
    let server = Server::start(|request| match request.target.as_str() {
        "/bad" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Name: x\r\n"[..]).close(),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"[..]).close(),
    });
    let urls = [server.url("/bad"), server.url("/cut")];
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url, None).await.map_err(|e| e.to_string()));
        }
        results
    });
    let bad = results[0].as_ref().unwrap_err();
    assert!(bad.contains("invalid header field name"), "{bad}");
    let cut = results[1].as_ref().unwrap_err();
    assert!(cut.contains("connection closed in the middle of the response head"), "{cut}");
}

#[test]
fn a_bad_field_is_refused_at_once_though_the_head_never_ends() {
    // The client does not wait for the end of the head to look at a field line: a server
    // that sends a bad one and then stalls gets an error naming it, not a timeout.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Name: x\r\n")?;
        hold_open(stream)
    });
    let result = run(async move {
        let client = Client::with_options(options());
        fetch_all(&client, "GET", &url, None).await.map_err(|e| e.to_string())
    });
    let error = result.unwrap_err();
    assert!(error.contains("invalid header field name"), "{error}");
}

// ---------------------------------------------------------------------------------------
// A response before the request is sent

#[test]
fn an_early_response_is_returned_though_the_server_neither_reads_nor_closes() {
    // RFC 9112 9.5: a client sending a body should watch for a response while it sends,
    // and may stop sending when one arrives. This server reads the request head, answers
    // 413 at once with a complete response and no Connection: close, then neither reads
    // the 16 MiB body nor closes: the write can never finish, so only reading while
    // writing finds the answer before the time limit.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")?;
        hold_open(stream)
    });
    let results = run(async move {
        let client = Client::with_options(options());
        let large = vec![b'a'; 16 * 1024 * 1024];
        let first = fetch_all(&client, "POST", &url, Some(large.clone())).await;
        // The first connection has the rest of the body unsent: it must not be pooled. Were
        // it reused, this request would go to a server that reads nothing and never answers.
        let second = fetch_all(&client, "POST", &url, Some(large)).await;
        (first.map_err(|e| e.to_string()), second.map_err(|e| e.to_string()))
    });
    assert_eq!(results.0, Ok((413, Bytes::from_static(b"too big!"))));
    assert_eq!(results.1, Ok((413, Bytes::from_static(b"too big!"))));
}

#[test]
fn an_interim_response_while_the_body_is_sent_does_not_stop_the_request() {
    // A 100 Continue that arrives while the body is still being sent is skipped: the body
    // goes on to the end, and the final response comes after it.
    let url = serve_forever(|stream| {
        use std::io::Read;
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        let mut body = vec![0u8; 4 * 1024 * 1024];
        stream.read_exact(&mut body)?;
        let all_a = body.iter().all(|&b| b == b'a');
        let reply: &[u8] = if all_a { b"whole" } else { b"wrong" };
        stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", reply.len()).as_bytes())?;
        stream.write_all(reply)?;
        hold_open(stream)
    });
    let result = run(async move {
        let client = Client::with_options(options());
        fetch_all(&client, "POST", &url, Some(vec![b'a'; 4 * 1024 * 1024])).await.map_err(|e| e.to_string())
    });
    assert_eq!(result, Ok((200, Bytes::from_static(b"whole"))));
}

// ---------------------------------------------------------------------------------------
// Modules

mod common;

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/scripted_http.rs"]
mod server;

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/hand_served_http.rs"]
mod hand_served;
