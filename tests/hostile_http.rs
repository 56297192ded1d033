//! The HTTP client and the fetch and crawl examples against hostile servers, with RFC 9112
//! as the referee. The rule: bad input gets a clear error and loses nothing; never a panic,
//! a hang, unbounded memory, or a wrong body reported as a success.
//!
//! The scripted server (tests/support/scripted_http.rs) serves canned bytes; the few
//! servers that must misbehave over time (trickle, endless bodies or heads) are small std
//! threads here. Every test is bounded by a time limit; nothing sleeps to let things happen.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::run_test as run;
use evloop::http::{Client, ClientOptions, HttpError, HttpErrorKind};
use hand_served::{read_head, serve_forever};
use process::TempDir;
use server::{Reply, Server};

/// No run of an example may take longer.
const EXAMPLE_LIMIT: Duration = Duration::from_secs(20);

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// `method url` and the whole body.
async fn fetch_all(client: &Client, method: &str, url: &str) -> Result<(u16, Bytes), HttpError> {
    let response = client.request(method, url, None).await?;
    let status = response.status();
    Ok((status, response.bytes().await?))
}

/// GETs each URL in turn with one client; the results in order.
fn get_each(urls: Vec<String>) -> Vec<Result<(u16, Bytes), HttpError>> {
    run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url).await);
        }
        results
    })
}

fn ok(body: &[u8]) -> Reply {
    Reply::status("200 OK", "", body)
}

/// Asserts `result` is a protocol error whose message says `expected`.
fn assert_protocol_error(what: &str, result: &Result<(u16, Bytes), HttpError>, expected: &str) {
    match result {
        Err(error @ HttpError { kind: HttpErrorKind::Protocol(_), .. }) => {
            let message = error.to_string();
            assert!(message.contains(expected), "{what}: {message:?} does not say {expected:?}");
        }
        other => panic!("{what}: expected a protocol error saying {expected:?}, got {other:?}"),
    }
}

/// A server answering `/i` with `replies[i]`, byte for byte, and the URLs, in order. With
/// `hang`, each connection is then left open, so nothing but the bytes can end a response.
fn serve_raw(replies: Vec<Vec<u8>>, hang: bool) -> (Server, Vec<String>) {
    let count = replies.len();
    let server = Server::start(move |request| {
        let index: usize = request.target.trim_start_matches('/').parse().expect("a known path");
        let reply = Reply::raw(replies[index].clone());
        if hang {
            reply.hang()
        } else {
            reply
        }
    });
    let urls = (0..count).map(|i| server.url(&format!("/{i}"))).collect();
    (server, urls)
}

/// GETs each reply of `cases` from a [`serve_raw`] server: each must be a protocol error
/// saying the text beside it.
fn assert_each_is_a_protocol_error(cases: Vec<(Vec<u8>, &str)>) {
    let (_server, urls) = serve_raw(cases.iter().map(|(bytes, _)| bytes.clone()).collect(), true);
    for ((bytes, expected), result) in cases.iter().zip(&get_each(urls)) {
        assert_protocol_error(&String::from_utf8_lossy(bytes), result, expected);
    }
}

/// The connection each request came on, in order.
fn conns(server: &Server) -> Vec<usize> {
    server.requests().into_iter().map(|r| r.conn).collect()
}

// ---------------------------------------------------------------------------------------
// Framing: Content-Length and Transfer-Encoding

#[test]
fn content_length_and_transfer_encoding_together_is_an_error_and_the_connection_is_dropped() {
    // RFC 9112 6.3 rule 3: Transfer-Encoding overrides Content-Length, and the message
    // "ought to be handled as an error"; the connection must not be reused either way.
    let server = Server::start(|request| {
        match request.target.as_str() {
        "/both" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
        _ => ok(b"next"),
    }
    });
    let results = get_each(vec![server.url("/both"), server.url("/next")]);
    assert_protocol_error("CL and TE", &results[0], "both Transfer-Encoding and Content-Length");
    assert_eq!(results[1].as_ref().unwrap(), &(200, Bytes::from_static(b"next")));
    assert_eq!(conns(&server), [0, 1], "the ambiguous connection is not reused");
}

#[test]
fn bad_content_length_values_are_errors() {
    let cases: &[(&str, &str)] = &[
        ("Content-Length: 5\r\nContent-Length: 6", "conflicting Content-Length values (5 and 6)"),
        ("Content-Length: 5, 6", "conflicting Content-Length values (5 and 6)"),
        ("Content-Length: +5", "invalid Content-Length \"+5\""),
        ("Content-Length: -5", "invalid Content-Length \"-5\""),
        ("Content-Length: 5 5", "invalid Content-Length \"5 5\""),
        ("Content-Length: 0x5", "invalid Content-Length \"0x5\""),
        ("Content-Length: 5.0", "invalid Content-Length \"5.0\""),
        ("Content-Length:", "invalid Content-Length \"\""),
        ("Content-Length: 18446744073709551616", "overflows"),
        ("Content-Length: 999999999999999999999999999999", "overflows"),
    ];
    assert_each_is_a_protocol_error(
        cases
            .iter()
            .map(|(header, expected)| {
                (format!("HTTP/1.1 200 OK\r\n{header}\r\n\r\nhello").into_bytes(), *expected)
            })
            .collect(),
    );
}

#[test]
fn repeated_identical_content_length_and_surrounding_spaces_are_fine() {
    let server = Server::start(|request| match request.target.as_str() {
        "/repeated" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"[..])
        }
        "/list" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"[..]),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length:   005  \r\n\r\nhello"[..]),
    });
    let results = get_each(["/repeated", "/list", "/spaces"].map(|p| server.url(p)).to_vec());
    for result in results {
        assert_eq!(result.unwrap(), (200, Bytes::from_static(b"hello")));
    }
}

#[test]
fn bad_chunked_bodies_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"5x\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        (b"0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "missing chunk size"),
        (b" 5\r\nhello\r\n0\r\n\r\n", "missing chunk size"),
        (b"\r\nhello\r\n0\r\n\r\n", "missing chunk size"),
        (b"10000000000000000\r\nhello\r\n", "chunk size overflows"),
        (b"5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data"),
        (b"5\r\nhello0\r\n\r\n", "missing CRLF after chunk data"),
        (b"5\rhello\r\n0\r\n\r\n", "missing LF after CR"),
    ];
    assert_each_is_a_protocol_error(
        cases
            .iter()
            .map(|(body, expected)| {
                ([&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], body].concat(), *expected)
            })
            .collect(),
    );
}

#[test]
fn bodies_cut_short_by_a_close_are_errors_never_short_successes() {
    let server = Server::start(|request| match request.target.as_str() {
        "/length" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"[..]).close(),
        "/no-final-crlf" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"[..])
                .close()
        }
        "/mid-chunk" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nhello"[..]).close()
        }
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"[..]).close(),
    });
    let results = get_each(
        ["/length", "/no-final-crlf", "/mid-chunk", "/no-last-chunk"].map(|p| server.url(p)).to_vec(),
    );
    let expected = [
        "got 5 of 10 bytes",
        "the trailer section was unfinished",
        "4 more bytes of the current chunk due",
        "the last chunk was missing",
    ];
    for (result, expected) in results.iter().zip(expected) {
        assert_protocol_error(expected, result, "connection closed before the body was complete");
        assert_protocol_error(expected, result, expected);
    }
}

#[test]
fn a_close_delimited_body_ends_at_the_close() {
    let server = Server::start(|_| Reply::raw(&b"HTTP/1.1 200 OK\r\n\r\nuntil the end"[..]).close());
    let results = get_each(vec![server.url("/"), server.url("/again")]);
    for result in results {
        assert_eq!(result.unwrap(), (200, Bytes::from_static(b"until the end")));
    }
    assert_eq!(server.accepts(), 2);
}

// ---------------------------------------------------------------------------------------
// Responses without a body, interim responses

#[test]
fn a_body_sent_on_204_304_or_head_is_not_the_body_and_the_connection_is_dropped() {
    // RFC 9112 6.3 rules 1 and 2: these responses end with their header section, whatever
    // Content-Length says; bytes after it are not part of any response (6.3, last
    // paragraph: a user agent MAY discard them). The response is complete and empty, and
    // the connection, now holding garbage, is not reused.
    let server = Server::start(|request| match (request.method.as_str(), request.target.as_str()) {
        (_, "/204") => Reply::raw(&b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"[..]),
        (_, "/304") => Reply::raw(&b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello"[..]),
        ("HEAD", _) => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..]),
        _ => ok(b"right body"),
    });
    let urls = ["/204", "/next", "/304", "/next", "/head", "/next"].map(|p| server.url(p));
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let method = if i == 4 { "HEAD" } else { "GET" };
            results.push(fetch_all(&client, method, url).await.map_err(|e| e.to_string()));
        }
        results
    });
    let expected: [(u16, &[u8]); 6] = [
        (204, b""),
        (200, b"right body"),
        (304, b""),
        (200, b"right body"),
        (200, b""),
        (200, b"right body"),
    ];
    for (result, (status, body)) in results.into_iter().zip(expected) {
        assert_eq!(result, Ok((status, Bytes::from_static(body))));
    }
    // Each bodiless response's connection is dropped; each good one's is kept for the next.
    assert_eq!(conns(&server), [0, 1, 1, 2, 2, 3], "no connection holding stray bytes is reused");
}

#[test]
fn bodiless_responses_without_stray_bytes_keep_the_connection() {
    let server = Server::start(|request| match (request.method.as_str(), request.target.as_str()) {
        (_, "/204") => Reply::raw(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
        (_, "/304") => Reply::raw(&b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"[..]),
        ("HEAD", _) => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
        _ => ok(b"body"),
    });
    let urls = ["/204", "/304", "/head", "/get"].map(|p| server.url(p));
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let method = if i == 2 { "HEAD" } else { "GET" };
            results.push(fetch_all(&client, method, url).await.unwrap());
        }
        results
    });
    let statuses: Vec<(u16, usize)> = results.iter().map(|(s, b)| (*s, b.len())).collect();
    assert_eq!(statuses, [(204, 0), (304, 0), (200, 0), (200, 4)]);
    assert_eq!(conns(&server), [0, 0, 0, 0]);
}

#[test]
fn several_interim_responses_in_a_row_are_skipped() {
    let mut reply = Vec::new();
    for _ in 0..20 {
        reply.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    reply.extend_from_slice(b"HTTP/1.1 102 Processing\r\n\r\n");
    reply.extend_from_slice(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n",
    );
    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
    let server = Server::start(move |request| match request.target.as_str() {
        "/interim" => Reply::raw(reply.clone()),
        _ => ok(b"next"),
    });
    let results = get_each(vec![server.url("/interim"), server.url("/next")]);
    assert_eq!(results[0].as_ref().unwrap(), &(200, Bytes::from_static(b"final")));
    assert_eq!(results[1].as_ref().unwrap(), &(200, Bytes::from_static(b"next")));
    assert_eq!(conns(&server), [0, 0]);
}

#[test]
fn an_interim_response_then_a_close_is_an_error() {
    let server = Server::start(|_| Reply::raw(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]).close());
    let results = get_each(vec![server.url("/")]);
    assert_protocol_error("100 then close", &results[0], "closed");
}

#[test]
fn an_unasked_101_switching_protocols_is_an_error_and_the_connection_is_dropped() {
    // RFC 9110 15.2.2: a server must not switch to a protocol the client did not ask for
    // with Upgrade, and after a 101 the connection no longer speaks HTTP/1.1.
    let server = Server::start(|request| match (request.conn, request.target.as_str()) {
        (_, "/upgrade") => Reply::raw(
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
        ),
        (0, _) => Reply::raw(&b"\x81\x05hello"[..]),
        _ => ok(b"next"),
    });
    let results = get_each(vec![server.url("/upgrade"), server.url("/next")]);
    assert_protocol_error("101", &results[0], "101 Switching Protocols");
    assert_eq!(results[1].as_ref().unwrap(), &(200, Bytes::from_static(b"next")));
    assert_eq!(conns(&server), [0, 1]);
}

// ---------------------------------------------------------------------------------------
// The response head

#[test]
fn malformed_heads_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/1.1 200 OK\r\nno colon at all\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/1.1 200 OK\r\n Content-Length: 5\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/1.1 200 OK\r\nX-\xff: y\r\nContent-Length: 5\r\n\r\nhello", "invalid header field name"),
        (b"HTTP/2 200\r\n\r\n", "unsupported HTTP version"),
        (b"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"),
        // HTTP/1.2 is read as HTTP/1.1 now (RFC 9110 2.5, RFC 9112 2.3: a higher minor
        // version is processed as the highest one supported; see hostile_http_round3.rs),
        // but RFC 9112's HTTP-version has one digit each side of the dot.
        (b"HTTP/1.10 200 OK\r\n\r\n", "unsupported HTTP version"),
        (b"HTTP/0.9 200 OK\r\n\r\n", "unsupported HTTP version"),
        (b"http/1.1 200 OK\r\n\r\n", "not HTTP"),
        (b"ICY 200 OK\r\n\r\n", "not HTTP"),
        (b"<html><body>no status line</body></html>\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code 099"),
        (b"HTTP/1.1 200 OK\r\nA: x\x00y\r\n\r\n", "invalid header field value"),
    ];
    assert_each_is_a_protocol_error(
        cases.iter().map(|(bytes, expected)| (bytes.to_vec(), *expected)).collect(),
    );
}

#[test]
fn lenient_but_unambiguous_heads_are_accepted() {
    // RFC 9112 2.2: a bare LF may be taken for CRLF; 5.2: obs-fold in a response is
    // replaced by spaces; obs-text (non-UTF-8 bytes) is allowed in values and the reason.
    let cases: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
        b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 \xff\xfe\r\nX-Bin: \xff\xfe\xfd\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    ];
    let (_server, urls) = serve_raw(cases.iter().map(|bytes| bytes.to_vec()).collect(), false);
    let heads = run(async move {
        let client = Client::with_options(options());
        let mut heads = Vec::new();
        for url in &urls {
            let response = client.get(url).await.unwrap();
            let folded = response.header("x-folded").map(str::to_string);
            let binary = response.headers().iter().find(|(n, _)| n == "x-bin").map(|(_, v)| v.clone());
            assert_eq!(&response.bytes().await.unwrap()[..], b"hello");
            heads.push((folded, binary));
        }
        heads
    });
    let folded = heads[1].0.as_deref().unwrap();
    assert!(folded.starts_with("one") && folded.contains("two") && folded.ends_with("three"), "{folded:?}");
    assert!(!folded.contains(['\r', '\n']), "{folded:?}");
    assert_eq!(heads[2].1.as_deref(), Some(&b"\xff\xfe\xfd"[..]));
}

#[test]
fn an_endless_head_is_cut_off_at_64_kib() {
    // A server that sends header lines forever, as fast as it can.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\n")?;
        loop {
            stream.write_all(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")?;
        }
    });
    let results = get_each(vec![url]);
    assert_protocol_error("endless head", &results[0], "response head exceeds 64 KiB");
}

// ---------------------------------------------------------------------------------------
// Time limits

#[test]
fn the_head_time_limit_fires_for_silent_and_trickling_servers() {
    let silent = Server::start(|_| Reply::raw(Vec::new()).hang());
    // One byte every 50 ms, forever: each read makes progress, the whole never comes.
    let trickle = serve_forever(|stream| {
        read_head(stream)?;
        for &byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
            stream.write_all(&[byte])?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    });
    let urls = vec![silent.url("/"), trickle];
    let results = run(async move {
        let client = Client::with_options(ClientOptions { timeout: Duration::from_millis(500), ..options() });
        let mut results = Vec::new();
        for url in &urls {
            let started = std::time::Instant::now();
            let result = client.get(url).await.map(|r| r.status());
            results.push((result, started.elapsed()));
        }
        results
    });
    for (result, elapsed) in results {
        let error = result.unwrap_err();
        assert!(matches!(error.kind, HttpErrorKind::Timeout(_)), "{error:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Bodies that never end

#[test]
fn an_endless_chunked_body_is_handed_out_in_bounded_pieces() {
    let url = serve_forever(|stream| {
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let mut chunk = format!("{:x}\r\n", 16 * 1024).into_bytes();
        chunk.extend_from_slice(&[b'z'; 16 * 1024]);
        chunk.extend_from_slice(b"\r\n");
        loop {
            stream.write_all(&chunk)?;
        }
    });
    let (total, largest) = run(async move {
        let client = Client::with_options(options());
        let mut response = client.get(&url).await.unwrap();
        let (mut total, mut largest) = (0usize, 0usize);
        while total < 32 * 1024 * 1024 {
            let chunk = response.chunk().await.unwrap().expect("the body never ends");
            assert!(chunk.iter().all(|&b| b == b'z'));
            total += chunk.len();
            largest = largest.max(chunk.len());
        }
        (total, largest)
    });
    assert!(total >= 32 * 1024 * 1024);
    assert!(largest <= 256 * 1024, "pieces stay small: the largest was {largest} bytes");
}

// ---------------------------------------------------------------------------------------
// Redirects

#[test]
fn redirects_missing_relative_looping_and_invalid_locations() {
    let server = Server::start(|request| match request.target.as_str() {
        "/no-location" => Reply::status("302 Found", "", b"stay"),
        "/dir/relative" => Reply::status("301 Moved Permanently", "Location: ../final?q=1\r\n", b""),
        "/loop" => Reply::status("307 Temporary Redirect", "Location: /loop\r\n", b""),
        "/invalid" => Reply::status("302 Found", "Location: http://[::1\r\n", b""),
        "/not-utf8" => {
            Reply::raw(&b"HTTP/1.1 302 Found\r\nLocation: /\xff\xfe\r\nContent-Length: 0\r\n\r\n"[..])
        }
        "/post" => Reply::status("303 See Other", "Location: /final\r\n", b""),
        "/final?q=1" | "/final" => ok(b"arrived"),
        _ => Reply::status("404 Not Found", "", b""),
    });
    let urls = ["/no-location", "/dir/relative", "/loop", "/invalid", "/not-utf8"].map(|p| server.url(p));
    let post = server.url("/post");
    let (results, posted) = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url).await);
        }
        let response = client.post(&post, b"form".to_vec()).await.unwrap();
        (results, (response.status(), response.url().path().to_string()))
    });
    assert_eq!(results[0].as_ref().unwrap(), &(302, Bytes::from_static(b"stay")));
    assert_eq!(results[1].as_ref().unwrap(), &(200, Bytes::from_static(b"arrived")));
    assert!(matches!(results[2], Err(HttpError { kind: HttpErrorKind::TooManyRedirects(10), .. })));
    assert_protocol_error("invalid Location", &results[3], "invalid Location");
    assert_protocol_error("non-UTF-8 Location", &results[4], "invalid Location");
    assert_eq!(posted, (200, "/final".to_string()));
    let after_post = server.requests().into_iter().find(|r| r.target == "/final").unwrap();
    assert_eq!((after_post.method.as_str(), after_post.body.len()), ("GET", 0), "303 turns POST into GET");
}

// ---------------------------------------------------------------------------------------
// Keep-alive

#[test]
fn connection_close_on_a_kept_alive_connection_is_honoured() {
    let server = Server::start(|request| match request.target.as_str() {
        "/close" => Reply::status("200 OK", "Connection: close\r\n", b"last"),
        _ => ok(b"kept"),
    });
    let results = get_each(["/a", "/close", "/b", "/c"].map(|p| server.url(p)).to_vec());
    let bodies: Vec<Bytes> = results.into_iter().map(|r| r.unwrap().1).collect();
    assert_eq!(bodies, ["kept", "last", "kept", "kept"].map(|s| Bytes::from_static(s.as_bytes())));
    assert_eq!(conns(&server), [0, 0, 1, 1]);
}

#[test]
fn connection_close_is_found_in_any_connection_field_and_any_case() {
    // RFC 9110 7.6.1: Connection is a list of tokens, and several fields form one list.
    let server = Server::start(|request| match request.target.as_str() {
        "/second-field" => {
            Reply::status("200 OK", "Connection: keep-alive\r\nConnection: close\r\n", b"last")
        }
        "/list" => Reply::status("200 OK", "Connection: Keep-Alive, CLOSE\r\n", b"last"),
        _ => ok(b"kept"),
    });
    let results = get_each(["/second-field", "/a", "/list", "/b"].map(|p| server.url(p)).to_vec());
    for result in results {
        assert_eq!(result.unwrap().0, 200);
    }
    assert_eq!(conns(&server), [0, 1, 1, 2]);
}

#[test]
fn a_pooled_connection_closed_on_reuse_is_retried_once_for_idempotent_requests_only() {
    // Every connection answers its first request and closes silently on its second: the
    // pooled connection fails right as it is reused.
    let counts = std::sync::Mutex::new(std::collections::HashMap::<usize, usize>::new());
    let server = Server::start(move |request| {
        let n = {
            let mut counts = counts.lock().unwrap();
            let n = counts.entry(request.conn).or_insert(0);
            *n += 1;
            *n
        };
        if n == 1 {
            ok(request.target.as_bytes())
        } else {
            Reply::raw(Vec::new()).close()
        }
    });
    let [a, b, c, d, e] = ["/a", "/b", "/post", "/put", "/put-again"].map(|p| server.url(p));
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        // GET on a fresh connection, then GET on the pooled one: closed, retried once.
        results.push(fetch_all(&client, "GET", &a).await.map_err(|e| e.to_string()));
        results.push(fetch_all(&client, "GET", &b).await.map_err(|e| e.to_string()));
        // POST on the pooled connection: closed, and not retried (it may have been acted on).
        let posted = client.post(&c, b"form".to_vec()).await;
        results.push(posted.map(|r| (r.status(), Bytes::new())).map_err(|e| e.to_string()));
        // PUT is idempotent: on a fresh connection (the last one was dropped), then on the
        // pooled one: closed, retried once.
        results.push(fetch_all(&client, "PUT", &d).await.map_err(|e| e.to_string()));
        results.push(fetch_all(&client, "PUT", &e).await.map_err(|e| e.to_string()));
        results
    });
    assert_eq!(results[0], Ok((200, Bytes::from_static(b"/a"))));
    assert_eq!(results[1], Ok((200, Bytes::from_static(b"/b"))));
    let post_error = results[2].as_ref().unwrap_err();
    assert!(post_error.contains("closed the connection without a response"), "{post_error}");
    assert_eq!(results[3], Ok((200, Bytes::from_static(b"/put"))));
    assert_eq!(results[4], Ok((200, Bytes::from_static(b"/put-again"))));
    let requests: Vec<(usize, String, String)> =
        server.requests().into_iter().map(|r| (r.conn, r.method, r.target)).collect();
    let posts = requests.iter().filter(|(_, method, _)| method == "POST").count();
    assert_eq!(posts, 1, "the POST was sent once: {requests:?}");
    let expected: Vec<(usize, String, String)> = [
        (0, "GET", "/a"),
        (0, "GET", "/b"),
        (1, "GET", "/b"),
        (1, "POST", "/post"),
        (2, "PUT", "/put"),
        (2, "PUT", "/put-again"),
        (3, "PUT", "/put-again"),
    ]
    .into_iter()
    .map(|(c, m, t)| (c, m.to_string(), t.to_string()))
    .collect();
    assert_eq!(requests, expected);
}

#[test]
fn a_fresh_connection_that_closes_without_a_response_is_not_retried() {
    let server = Server::start(|_| Reply::raw(Vec::new()).close());
    let results = get_each(vec![server.url("/")]);
    assert_protocol_error("silent close", &results[0], "closed the connection without a response");
    assert_eq!(server.accepts(), 1, "one attempt only");
}

// ---------------------------------------------------------------------------------------
// Codings

#[test]
fn a_transfer_coding_other_than_chunked_is_an_error() {
    // The client sends no TE header, so chunked is the only transfer coding a server may
    // use (RFC 9112 7.4, 6.1); a body still compressed would be handed out as if it were
    // the content.
    let server = Server::start(|request| {
        match request.target.as_str() {
        "/gzip-chunked" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
        ),
        "/gzip" => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"[..]).close(),
        "/split" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
        ),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..]),
    }
    });
    let results = get_each(["/gzip-chunked", "/gzip", "/split", "/chunked"].map(|p| server.url(p)).to_vec());
    assert_protocol_error("gzip, chunked", &results[0], "unsupported transfer coding \"gzip\"");
    assert_protocol_error("gzip", &results[1], "unsupported transfer coding \"gzip\"");
    assert_protocol_error("x-custom", &results[2], "unsupported transfer coding \"x-custom\"");
    assert_eq!(results[3].as_ref().unwrap(), &(200, Bytes::from_static(b"abc")));
}

#[test]
fn a_content_coding_is_passed_on_as_sent_with_its_header() {
    // The client asks for `Accept-Encoding: identity` and decodes no content coding: a
    // server that compresses anyway gets its bytes handed on unchanged, labelled by the
    // Content-Encoding header (what curl does without --compressed).
    let gzip =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00";
    let server = Server::start(move |_| Reply::status("200 OK", "Content-Encoding: gzip\r\n", gzip));
    let url = server.url("/");
    let (encoding, body) = run(async move {
        let client = Client::with_options(options());
        let response = client.get(&url).await.unwrap();
        let encoding = response.header("content-encoding").map(str::to_string);
        (encoding, response.bytes().await.unwrap())
    });
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(&body[..], &gzip[..]);
    let request = &server.requests()[0];
    assert_eq!(request.header("accept-encoding"), Some("identity"));
}

// ---------------------------------------------------------------------------------------
// The examples, as processes

#[test]
fn fetch_reports_each_hostile_response_as_an_error_line() {
    let server = Server::start(|request| {
        match request.target.as_str() {
        "/good" => ok(b"fine"),
        "/both" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
        "/space-colon" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"[..]),
        "/truncated" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"[..]).close(),
        "/chunk-junk" => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..]),
        "/http2" => Reply::raw(&b"HTTP/2 200\r\n\r\n"[..]),
        "/silent" => Reply::raw(Vec::new()).hang(),
        "/204" => Reply::raw(&b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"[..]),
        _ => Reply::status("404 Not Found", "", b""),
    }
    });
    let paths = ["/good", "/both", "/space-colon", "/truncated", "/chunk-junk", "/http2", "/silent", "/204"];
    let urls = paths.map(|p| server.url(p));
    let mut args = vec!["-t", "1"];
    args.extend(urls.iter().map(String::as_str));
    let output = process::run("fetch", &args, EXAMPLE_LIMIT);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.lines().len(), urls.len(), "{output:?}");
    let expected = [
        "200 4 ",
        "ERR bad response: both Transfer-Encoding and Content-Length",
        "ERR bad response: invalid header field name",
        "ERR bad response: connection closed before the body was complete (got 5 of 10 bytes)",
        "ERR bad response: missing chunk size",
        "ERR bad response: unsupported HTTP version",
        "ERR timed out",
        "204 0 ",
    ];
    for (url, expected) in urls.iter().zip(expected) {
        let line = output.line_for(url);
        assert!(line.starts_with(expected), "{line:?} should start with {expected:?}");
    }
    assert!(output.stderr.contains("8 URLs: 2 complete, 6 failed"), "{}", output.stderr);
}

#[test]
fn fetch_o_keeps_only_complete_bodies() {
    // The file of a URL whose body fails (cut short, or endless until the time limit) is
    // removed: DIR/i exists only for a body received whole.
    let endless = serve_forever(|stream| {
        read_head(stream)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
        chunk.extend_from_slice(&[b'e'; 64 * 1024]);
        chunk.extend_from_slice(b"\r\n");
        loop {
            stream.write_all(&chunk)?;
        }
    });
    let server = Server::start(|request| match request.target.as_str() {
        "/whole" => ok(b"whole body"),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"[..]).close(),
    });
    let urls = [server.url("/whole"), server.url("/cut"), endless];
    let dir = TempDir::new("fetch-o");
    let mut args = vec!["-t", "1", "-o", dir.0.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let output = process::run("fetch", &args, EXAMPLE_LIMIT);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.line_for(&urls[1]).starts_with("ERR "), "{output:?}");
    assert!(output.line_for(&urls[2]).starts_with("ERR timed out"), "{output:?}");
    assert_eq!(std::fs::read(dir.0.join("0")).unwrap(), b"whole body");
    let mut files: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["0"], "only the complete body is kept");
}

#[test]
fn crawl_bounds_each_page_in_time_and_size_and_prints_one_line_per_url() {
    let endless = serve_forever(|stream| {
        read_head(stream)?;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        let page = "<a href=\"/x\">x</a>".repeat(4096);
        let mut chunk = format!("{:x}\r\n", page.len()).into_bytes();
        chunk.extend_from_slice(page.as_bytes());
        chunk.extend_from_slice(b"\r\n");
        loop {
            stream.write_all(&chunk)?;
        }
    });
    let html = |body: &str| Reply::status("200 OK", "Content-Type: text/html\r\n", body.as_bytes());
    let server = Server::start(move |request| {
        match request.target.as_str() {
        "/" => html(r#"<a href="/stalled">s</a> <a href="/cut">c</a> <a href="/fine">f</a> <a href="/huge">h</a>"#),
        "/stalled" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n<a hr"[..]).hang()
        }
        "/cut" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n<a href=\"/from-cut\">"[..],
        )
        .close(),
        "/huge" => {
            let page = "<a href=\"/from-huge\">h</a>".repeat(1 << 16);
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                page.len() * 8
            )
            .into_bytes();
            for _ in 0..8 {
                bytes.extend_from_slice(page.as_bytes());
            }
            Reply::raw(bytes)
        }
        "/fine" => html("the end"),
        _ => Reply::status("404 Not Found", "Content-Type: text/html\r\n", b"no"),
    }
    });
    let output = process::run("crawl", &["-t", "1", &server.url("/")], EXAMPLE_LIMIT);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.elapsed < Duration::from_secs(10), "{output:?}");
    let mut lines: Vec<&str> = output.lines();
    lines.sort();
    let root = server.url("");
    assert_eq!(lines.len(), 5, "one line per URL: {output:?}");
    for url in ["/stalled", "/cut", "/huge"] {
        let url = server.url(url);
        let mine: Vec<&&str> = lines.iter().filter(|l| l.ends_with(&format!(" {url}"))).collect();
        assert_eq!(mine.len(), 1, "{url}: {lines:?}");
        assert!(mine[0].starts_with("ERR "), "{url}: {lines:?}");
    }
    assert!(lines.contains(&format!("200 {root}/").as_str()), "{lines:?}");
    assert!(lines.contains(&format!("200 {root}/fine").as_str()), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("timed out") && l.ends_with("/stalled")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("larger than") && l.ends_with("/huge")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("/from-")), "no link from a failed page is followed: {lines:?}");

    // A root whose body never ends: an error, in bounded time (and so bounded memory).
    let output = process::run("crawl", &["-t", "3", &endless], EXAMPLE_LIMIT);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.lines().len(), 1, "{output:?}");
    assert!(output.lines()[0].starts_with("ERR "), "{output:?}");
}

#[test]
fn crawl_rejects_a_bad_time_limit() {
    for args in [&["-t"][..], &["-t", "0", "http://127.0.0.1:1/"], &["-t", "soon", "http://127.0.0.1:1/"]] {
        let output = process::run("crawl", args, EXAMPLE_LIMIT);
        assert_eq!(output.code, Some(2), "{args:?}: {output:?}");
        assert!(output.stderr.contains("usage: crawl"), "{args:?}: {output:?}");
    }
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
