//! A fifth round of hostile servers for the HTTP client, with RFC 9112 and RFC 9110 as the
//! referees: Transfer-Encoding in an HTTP/1.0 response, status lines without a reason
//! phrase and status codes that are not three digits, bytes after a complete body,
//! HTTP/1.0 keep-alive, the fragment a redirect inherits, odd but valid lengths, and a head
//! of thousands of tiny fields. (The crawler's reading of HTML is in tests/crawl_example.rs.)
//!
//! Every test is bounded by a time limit (`run_test`, and the client's own limits); nothing
//! sleeps to let things happen. The servers are std threads on 127.0.0.1.

use bytes::Bytes;
use common::run_test as run;
use evloop::http::parse::{parse_head, HeadScanner, MAX_HEAD};
use evloop::http::Client;
use hand_served::options;
use server::{Reply, Server};

/// One request of a test: method and path.
type Ask = (&'static str, &'static str);

/// Sends each request in turn on one client: each status, reason and whole body, or the
/// error as text.
fn ask_each(server: &Server, asks: &[Ask]) -> Vec<Result<(u16, String, Bytes), String>> {
    let asks: Vec<(String, String)> = asks.iter().map(|(m, p)| (m.to_string(), server.url(p))).collect();
    run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for (method, url) in &asks {
            let result = async {
                let response = client.request(method, url, None).await?;
                let (status, reason) = (response.status(), response.reason().to_string());
                Ok((status, reason, response.bytes().await?))
            };
            results.push(result.await.map_err(|e: evloop::http::HttpError| e.to_string()));
        }
        results
    })
}

/// The connection each request came on, in order.
fn conns(server: &Server) -> Vec<usize> {
    server.requests().into_iter().map(|r| r.conn).collect()
}

/// Asserts that `result` is a protocol error that says `expected` and names `path`.
fn assert_error(result: &Result<(u16, String, Bytes), String>, path: &str, expected: &str) {
    let error = result.as_ref().err().unwrap_or_else(|| panic!("{path}: accepted: {result:?}"));
    assert!(error.starts_with("bad response: "), "{path}: not a protocol error: {error}");
    assert!(error.contains(expected), "{path}: {error:?} does not say {expected:?}");
    assert!(error.contains(path), "{path}: {error:?} does not name the URL");
}

/// Asserts that `result` is a success with this status and body.
fn assert_ok(result: &Result<(u16, String, Bytes), String>, status: u16, body: &[u8]) {
    let (got_status, _, got_body) = result.as_ref().unwrap_or_else(|e| panic!("expected {status}: {e}"));
    assert_eq!((*got_status, &got_body[..]), (status, body));
}

/// A server that answers each path with these bytes and keeps the connection open (so
/// nothing but the bytes can end a response), and `ok` to anything else.
fn serve_paths(replies: &'static [(&'static str, &'static [u8])]) -> Server {
    Server::start(move |request| {
        let found = replies.iter().find(|(path, _)| *path == request.target);
        match found {
            Some((_, bytes)) => Reply::raw(*bytes),
            None => Reply::status("200 OK", "", b"ok"),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Transfer-Encoding in an HTTP/1.0 response

#[test]
fn transfer_encoding_in_an_http_1_0_response_is_faulty_framing_even_with_content_length() {
    // RFC 9112 6.1: a client that receives an HTTP/1.0 message with Transfer-Encoding MUST
    // treat it as if the framing is faulty, even if a Content-Length is present, and close
    // the connection after the message. Faulty framing in a response is an unrecoverable
    // error for a user agent (6.3): the response is discarded and the connection closed.
    // So none of these is a body, neither the chunked one nor the Content-Length one, and
    // the next request goes on a new connection.
    let server = serve_paths(&[
        ("/te", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("/te-cl", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
        (
            "/te-cl-keep-alive",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\
              Transfer-Encoding: identity\r\n\r\nhello",
        ),
    ]);
    let paths = ["/te", "/next", "/te-cl", "/next", "/te-cl-keep-alive", "/next"];
    let results = ask_each(&server, &paths.map(|p| ("GET", p)));
    for i in [0, 2, 4] {
        assert_error(&results[i], paths[i], "Transfer-Encoding in an HTTP/1.0 response (faulty framing)");
        assert_ok(&results[i + 1], 200, b"ok");
    }
    assert_eq!(conns(&server), [0, 1, 1, 2, 2, 3], "a faulty response's connection is closed");
}

#[test]
fn an_http_1_0_bodiless_response_with_transfer_encoding_stands_but_closes_its_connection() {
    // A response to HEAD, and a 304, end with their head whatever their fields say (RFC
    // 9112 6.3 rules 1 and 2): Transfer-Encoding frames nothing there, so the response
    // stands. But the server used a field HTTP/1.0 does not have (6.1: close the
    // connection after the message), so its connection is not reused, keep-alive or not.
    let server = serve_paths(&[
        ("/head", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (
            "/304",
            b"HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
    ]);
    let results =
        ask_each(&server, &[("HEAD", "/head"), ("GET", "/next"), ("GET", "/304"), ("GET", "/next")]);
    let expected: [(u16, &[u8]); 4] = [(200, b""), (200, b"ok"), (304, b""), (200, b"ok")];
    for (result, (status, body)) in results.iter().zip(expected) {
        assert_ok(result, status, body);
    }
    assert_eq!(conns(&server), [0, 1, 1, 2]);
}

// ---------------------------------------------------------------------------------------
// The status line

#[test]
fn a_status_line_without_a_reason_phrase_or_its_space_is_accepted() {
    // RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. Many
    // servers leave out the second SP with the empty reason; curl and browsers accept it,
    // and so does the client: the reason is then empty. (`HTTP/1.1 200\r\n` with a body is
    // in hostile_http.rs too.)
    let server = serve_paths(&[
        ("/404", b"HTTP/1.1 404\r\nContent-Length: 4\r\n\r\ngone"),
        ("/space", b"HTTP/1.1 201 \r\nContent-Length: 3\r\n\r\nnew"),
        ("/http10", b"HTTP/1.0 200\r\nContent-Length: 2\r\n\r\nok"),
        ("/bare-lf", b"HTTP/1.1 204\n\n"),
    ]);
    let results = ask_each(&server, &["/404", "/space", "/http10", "/bare-lf"].map(|p| ("GET", p)));
    let expected: [(u16, &[u8]); 4] = [(404, b"gone"), (201, b"new"), (200, b"ok"), (204, b"")];
    for (result, (status, body)) in results.iter().zip(expected) {
        assert_ok(result, status, body);
        assert_eq!(result.as_ref().unwrap().1, "", "no reason phrase");
    }
}

#[test]
fn status_codes_that_are_not_three_digits_from_100_to_599_are_errors() {
    // RFC 9112 4: status-code = 3DIGIT; RFC 9110 15: the first digit is 1 to 5. Anything
    // else is not a status line the client can act on.
    let server = serve_paths(&[
        ("/600", b"HTTP/1.1 600\r\nContent-Length: 0\r\n\r\n"),
        ("/999", b"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n"),
        ("/000", b"HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n"),
        ("/four", b"HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("/two", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
        ("/hex", b"HTTP/1.1 20a OK\r\nContent-Length: 0\r\n\r\n"),
        ("/sign", b"HTTP/1.1 +200 OK\r\nContent-Length: 0\r\n\r\n"),
        ("/glued", b"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n"),
        ("/none", b"HTTP/1.1 \r\nContent-Length: 0\r\n\r\n"),
    ]);
    let cases = [
        ("/600", "invalid status code 600"),
        ("/999", "invalid status code 999"),
        ("/000", "invalid status code 000"),
        ("/four", "invalid status line \"HTTP/1.1 0200 OK\""),
        ("/two", "invalid status line"),
        ("/hex", "invalid status line"),
        ("/sign", "invalid status line"),
        ("/glued", "invalid status line \"HTTP/1.1 200OK\""),
        ("/none", "invalid status line"),
    ];
    let results = ask_each(&server, &cases.map(|(path, _)| ("GET", path)));
    for ((path, expected), result) in cases.iter().zip(&results) {
        assert_error(result, path, expected);
    }
}

// ---------------------------------------------------------------------------------------
// Bytes after a complete body

#[test]
fn bytes_after_a_complete_body_are_discarded_with_the_connection_not_taken_as_a_response() {
    // RFC 9112 6.3: once a response is complete, a user agent MAY discard what remains to
    // be read, and MUST NOT take it for a separate response. The body is what the framing
    // delimits, so the response stands (as in curl and browsers); the connection, which
    // holds bytes no request asked for, is not reused. Even when the excess is a whole
    // response of its own, it is never handed to the next request.
    let server = serve_paths(&[
        ("/longer", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more"),
        (
            "/smuggled",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
              HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
        ),
        ("/chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nextra"),
    ]);
    let paths = ["/longer", "/next", "/smuggled", "/next", "/chunked", "/next"];
    let results = ask_each(&server, &paths.map(|p| ("GET", p)));
    for i in [0, 2, 4] {
        assert_ok(&results[i], 200, b"hello");
        assert_ok(&results[i + 1], 200, b"ok");
    }
    assert_eq!(conns(&server), [0, 1, 1, 2, 2, 3], "no connection holding excess bytes is reused");
}

// ---------------------------------------------------------------------------------------
// HTTP/1.0 responses and the pool

#[test]
fn an_http_1_0_connection_is_reused_only_with_keep_alive_and_a_length() {
    // RFC 9112 9.3: an HTTP/1.0 connection persists only with the "keep-alive" connection
    // option, and then only if the body's end can be told without the close. Without a
    // length, an HTTP/1.0 body runs to the close (6.3 rule 8), keep-alive or not.
    let server = Server::start(|request| match request.target.as_str() {
        "/plain" => Reply::raw(&b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nplain"[..]),
        "/keep-alive" => {
            Reply::raw(&b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 4\r\n\r\nkept"[..])
        }
        "/keep-alive-close" => Reply::raw(
            &b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 4\r\n\r\nlast"[..],
        ),
        "/no-length" => {
            Reply::raw(&b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nall of it, to the close"[..])
                .close()
        }
        _ => Reply::status("200 OK", "", b"ok"),
    });
    let paths = ["/plain", "/keep-alive", "/next", "/keep-alive-close", "/no-length", "/next"];
    let results = ask_each(&server, &paths.map(|p| ("GET", p)));
    let bodies: [&[u8]; 6] = [b"plain", b"kept", b"ok", b"last", b"all of it, to the close", b"ok"];
    for (result, body) in results.iter().zip(bodies) {
        assert_ok(result, 200, body);
    }
    // plain (0, dropped), keep-alive (1, kept), next (1), keep-alive-close (1, dropped),
    // no-length (2, read to the close), next (3).
    assert_eq!(conns(&server), [0, 1, 1, 1, 2, 3]);
}

// ---------------------------------------------------------------------------------------
// Redirects

#[test]
fn a_redirect_without_a_fragment_inherits_the_requests_fragment() {
    // RFC 9110 10.2.2: a Location without a fragment is processed as if it inherited the
    // fragment of the request's URI; one with its own fragment keeps it. Fragments are
    // never sent (the server sees paths only).
    let server = Server::start(|request| match request.target.as_str() {
        "/inherit" => Reply::status("302 Found", "Location: /middle\r\n", b""),
        "/middle" => Reply::status("307 Temporary Redirect", "Location: target?q=1\r\n", b""),
        "/own" => Reply::status("301 Moved Permanently", "Location: /target?q=1#own\r\n", b""),
        _ => Reply::status("200 OK", "", b"ok"),
    });
    let urls = [server.url("/inherit#frag"), server.url("/own#frag"), server.url("/inherit")];
    let (landed, location) = run(async move {
        let client = Client::with_options(options());
        let mut landed = Vec::new();
        for url in &urls {
            let response = client.get(url).await.unwrap();
            landed.push((response.url().path().to_string(), response.url().fragment().map(str::to_string)));
        }
        let no_follow =
            Client::with_options(evloop::http::ClientOptions { follow_redirects: false, ..options() });
        let response = no_follow.get(&urls[0]).await.unwrap();
        (landed, response.location().unwrap().map(|url| url.fragment().map(str::to_string)))
    });
    let expected = [("/target", Some("frag")), ("/target", Some("own")), ("/target", None)];
    for ((path, fragment), (want_path, want_fragment)) in landed.iter().zip(expected) {
        assert_eq!((path.as_str(), fragment.as_deref()), (want_path, want_fragment));
    }
    assert_eq!(location, Some(Some("frag".to_string())), "Response::location inherits it too");
    assert!(server.requests().iter().all(|r| !r.target.contains('#')), "no fragment is sent");
}

// ---------------------------------------------------------------------------------------
// Lengths, and fields that frame nothing

#[test]
fn content_length_with_leading_zeros_is_valid() {
    // RFC 9110 8.6: Content-Length = 1*DIGIT; leading zeros change nothing.
    let server = serve_paths(&[
        ("/0005", b"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello"),
        ("/0000", b"HTTP/1.1 200 OK\r\nContent-Length: 0000\r\n\r\n"),
    ]);
    let results = ask_each(&server, &[("GET", "/0005"), ("GET", "/0000"), ("GET", "/next")]);
    assert_ok(&results[0], 200, b"hello");
    assert_ok(&results[1], 200, b"");
    assert_ok(&results[2], 200, b"ok");
    assert_eq!(conns(&server), [0, 0, 0], "the lengths were exact: the connection stays clean");
}

#[test]
fn chunked_on_a_304_or_a_head_response_reads_no_body() {
    // RFC 9112 6.3 rules 1 and 2: a 304, and any response to HEAD, end with the head; a
    // Transfer-Encoding or Content-Length there describes what a GET would have got. No
    // body is waited for (the server sends none and keeps the connection open), and the
    // connection serves the next request.
    let server = serve_paths(&[
        ("/304", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("/head", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n"),
        ("/head-length", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),
    ]);
    let asks = [("GET", "/304"), ("HEAD", "/head"), ("HEAD", "/head-length"), ("GET", "/next")];
    let results = ask_each(&server, &asks);
    let expected: [(u16, &[u8]); 4] = [(304, b""), (200, b""), (200, b""), (200, b"ok")];
    for (result, (status, body)) in results.iter().zip(expected) {
        assert_ok(result, status, body);
    }
    assert_eq!(conns(&server), [0, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------
// Many small header fields

/// A head of `a:\r\n` lines (the shortest field line there is) up to `size` bytes.
fn tiny_fields_head(size: usize) -> Vec<u8> {
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
    while head.len() + 4 + 2 <= size {
        head.extend_from_slice(b"a:\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[test]
fn sixteen_thousand_tiny_header_fields_are_read_in_linear_work() {
    // About 16 000 fields in a head just under 64 KiB. The work does not depend on how the
    // bytes are split: the scanner runs the full parser a bounded number of times (counted,
    // not timed), and each full parse is linear in the head (httparse is run at most twice,
    // the second time with a slot for every line).
    let head = tiny_fields_head(MAX_HEAD);
    assert!(head.len() <= MAX_HEAD && head.len() > MAX_HEAD - 4);
    let (whole, consumed) = parse_head(&head).unwrap().unwrap();
    assert_eq!((whole.headers.len(), consumed), ((head.len() - 37) / 4 + 1, head.len()));
    for piece in [1, 3, 1000] {
        let mut scanner = HeadScanner::new();
        let mut received = Vec::new();
        let mut found = None;
        for bytes in head.chunks(piece) {
            received.extend_from_slice(bytes);
            if let Some((parsed, _)) = scanner.parse(&received).unwrap() {
                found = Some(parsed);
            }
        }
        assert_eq!(found.as_ref(), Some(&whole), "pieces of {piece}");
        assert!(scanner.full_parses() <= 19, "pieces of {piece}: {} full parses", scanner.full_parses());
    }
    // The same head from a server, with the client's own time limits (5 s) as the bound.
    let mut reply = head.clone();
    reply.extend_from_slice(b"ok");
    let server = Server::start(move |_| Reply::raw(reply.clone()));
    let url = server.url("/");
    let (fields, body) = run(async move {
        let response = Client::with_options(options()).get(&url).await.unwrap();
        let fields = response.headers().len();
        (fields, response.bytes().await.unwrap())
    });
    assert_eq!((fields, &body[..]), (whole.headers.len(), &b"ok"[..]));
    // One field line more and the head is over the limit: an error, not a longer wait.
    let mut over = head[..head.len() - 2].to_vec();
    over.extend_from_slice(b"a:\r\n\r\n");
    assert!(parse_head(&over).unwrap_err().message().contains("exceeds 64 KiB"));
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
