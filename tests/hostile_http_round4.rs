//! A fourth round of hostile servers for the HTTP client, with RFC 9112 as the referee:
//! chunk extensions and trailer fields that break their grammar, an endless stream of
//! interim (1xx) responses, a 204 that declares a body it sends later, header errors that
//! must say where they are, and odd or conflicting `Location` fields (client and crawler).
//!
//! Every test is bounded by a time limit (`run_test`, and the client's own limits); nothing
//! sleeps to let things happen. The servers are std threads on 127.0.0.1.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::run_test as run;
use evloop::http::Client;
use hand_served::{fetch_each, hold_open, options, read_head, read_target, serve_forever};
use server::{serve_indexed, Reply, Server};

/// A chunked response head, for a body to follow.
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

/// GETs each of `bodies` after a [`CHUNKED`] head; the results in order.
fn get_chunked(bodies: &[&[u8]]) -> Vec<Result<(u16, Bytes), String>> {
    let replies = bodies.iter().map(|body| [CHUNKED, body].concat()).collect();
    let (_server, urls) = serve_indexed(replies);
    run(async move { fetch_each(&Client::with_options(options()), &urls).await })
}

/// Asserts that each result is a protocol error saying `expected`.
fn assert_errors(cases: &[&[u8]], results: &[Result<(u16, Bytes), String>], expected: &str) {
    for (case, result) in cases.iter().zip(results) {
        let shown = case.escape_ascii();
        let error = result.as_ref().err().unwrap_or_else(|| panic!("{shown}: accepted: {result:?}"));
        assert!(error.starts_with("bad response: "), "{shown}: not a protocol error: {error}");
        assert!(error.contains(expected), "{shown}: {error:?} does not say {expected:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Chunk extensions

#[test]
fn malformed_chunk_extensions_are_errors() {
    // RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
    // the name a token, the value a token or a quoted-string. A control byte, an empty name
    // or value, or an unterminated quoted-string is not a chunk extension.
    let cases: &[&[u8]] = &[
        b"5;\x00=1\r\nhello\r\n0\r\n\r\n",
        b"5;a=\x01\r\nhello\r\n0\r\n\r\n",
        b"5;a=b\x7f\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",
        b"5;=v\r\nhello\r\n0\r\n\r\n",
        b"5;a=\r\nhello\r\n0\r\n\r\n",
        b"5;a b\r\nhello\r\n0\r\n\r\n",
        b"5;a=@\r\nhello\r\n0\r\n\r\n",
        b"5;a=b\"c\"\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"x\x00y\"\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"x\ty\x7f\"\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"unterminated\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"x\\\x01\"\r\nhello\r\n0\r\n\r\n",
        b"0;last=\x02\r\n\r\n",
    ];
    assert_errors(cases, &get_chunked(cases), "invalid chunk extension");
}

#[test]
fn a_bare_cr_in_a_chunk_extension_is_an_error() {
    // RFC 9112 2.2: a bare CR is not a line end; inside a quoted value it is a control byte.
    let cases: &[&[u8]] = &[b"5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n", b"5;a=x\ry\r\nhello\r\n0\r\n\r\n"];
    let results = get_chunked(cases);
    assert_errors(&cases[..1], &results[..1], "invalid chunk extension");
    assert_errors(&cases[1..], &results[1..], "missing LF after CR");
}

#[test]
fn well_formed_chunk_extensions_are_accepted() {
    // The forms of RFC 9112 7.1.1 the validation must keep accepting: BWS around ";" and
    // "=", a name alone, quoted-strings with quoted-pairs, ";" inside quotes, obs-text.
    let cases: &[&[u8]] = &[
        b"5;name=value\r\nhello\r\n0\r\n\r\n",
        b"5 ; a = b ; flag\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"v;1\";flag\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"q\\\"uo\\\\te\"\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"\xff\xfe\t \"\r\nhello\r\n0;done\r\n\r\n",
        b"5;a=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
    ];
    for (case, result) in cases.iter().zip(get_chunked(cases)) {
        assert_eq!(result, Ok((200, Bytes::from_static(b"hello"))), "{}", case.escape_ascii());
    }
}

// ---------------------------------------------------------------------------------------
// Trailer fields

#[test]
fn malformed_trailer_fields_are_errors() {
    // RFC 9112 7.1.2: the trailer section is field lines as in a head (5.1): a token name,
    // then the colon with no whitespace before it, then a value of visible bytes, spaces
    // and tabs; no NUL, no bare CR, no other control byte.
    let cases: &[&[u8]] = &[
        b"5\r\nhello\r\n0\r\nX : v\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX\t: v\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX Y: v\r\n\r\n",
        b"5\r\nhello\r\n0\r\nno colon\r\n\r\n",
        b"5\r\nhello\r\n0\r\nnocolon\r\n\r\n",
        b"5\r\nhello\r\n0\r\n: no name\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX\xff: v\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: a\x7f\r\n\r\n",
        b"5\r\nhello\r\n0\r\n folded first\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: ok\r\nY: a\x1bb\r\n\r\n",
    ];
    assert_errors(cases, &get_chunked(cases), "invalid trailer field");
}

#[test]
fn well_formed_trailers_are_accepted_and_never_merged_into_the_head() {
    // RFC 9110 6.5: trailer fields are not to be merged into the header section, and none
    // of them may frame the message: a Content-Length, Transfer-Encoding or Connection in
    // the trailers changes neither the body nor the reuse of the connection. (This already
    // held before the trailers were validated; it guards the validation.)
    let server = Server::start(|request| match request.target.as_str() {
        "/trailers" => Reply::raw(
            [
                CHUNKED,
                b"5\r\nhello\r\n0\r\nContent-Length: 99\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\
                  X-Empty:\r\nX-Tight:v\r\nX-Folded: a\r\n b\r\nX-Bin: \xff\xfe\r\nX-Bare-LF: y\n\r\n",
            ]
            .concat(),
        ),
        _ => Reply::status("200 OK", "", b"next"),
    });
    let urls = [server.url("/trailers"), server.url("/next")];
    let (names, results) = run(async move {
        let client = Client::with_options(options());
        let response = client.get(&urls[0]).await.unwrap();
        let names: Vec<String> = response.headers().iter().map(|(name, _)| name.clone()).collect();
        let first = response.bytes().await.map_err(|e| e.to_string());
        let second = fetch_each(&client, &urls[1..]).await;
        (names, [first, second[0].clone().map(|(_, body)| body)])
    });
    assert_eq!(names, ["transfer-encoding"], "no trailer field in the head");
    assert_eq!(results[0], Ok(Bytes::from_static(b"hello")));
    assert_eq!(results[1], Ok(Bytes::from_static(b"next")));
    let conns: Vec<usize> = server.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0], "a Connection: close trailer does not close the connection");
}

// ---------------------------------------------------------------------------------------
// Interim responses

#[test]
fn an_endless_stream_of_100_continue_is_cut_off_by_count() {
    // RFC 9110 15.2: a client must be able to parse one or more 1xx responses before the
    // final one; it need not wait for ever. This server sends 100 Continue without end:
    // the client gives up at its limit and says so, long before its 5 s timeout.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        loop {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
    });
    let started = std::time::Instant::now();
    let results = run(async move { fetch_each(&Client::with_options(options()), &[url]).await });
    assert_errors(&[b"100 Continue..."], &results, "more than 100 interim (1xx) responses");
    assert!(started.elapsed().as_secs() < 4, "cut off by the count, not the time limit");
}

#[test]
fn interim_responses_over_64_kib_in_all_are_cut_off() {
    // Fewer than 100 interim responses, but each with 16 KiB of Link fields: the bytes are
    // bounded too, as a single head is.
    let url = serve_forever(|stream| {
        read_head(stream)?;
        let link = format!("Link: </{}>; rel=preload\r\n", "a".repeat(1000));
        let hint = format!("HTTP/1.1 103 Early Hints\r\n{}\r\n", link.repeat(16));
        loop {
            stream.write_all(hint.as_bytes())?;
        }
    });
    let results = run(async move { fetch_each(&Client::with_options(options()), &[url]).await });
    assert_errors(&[b"103 Early Hints..."], &results, "interim (1xx) responses exceed 64 KiB in all");
}

#[test]
fn a_close_after_interim_responses_says_so() {
    // The head that was cut short is the final one, not one begun: the error says the
    // connection ended after the interim responses, before any byte of the final one.
    let server = Server::start(|_| {
        Reply::raw(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"[..])
            .close()
    });
    let urls = [server.url("/")];
    let results = run(async move { fetch_each(&Client::with_options(options()), &urls).await });
    assert_errors(
        &[b"100, 103, close"],
        &results,
        "connection closed after 2 interim (1xx) responses, before the final response",
    );
}

// ---------------------------------------------------------------------------------------
// A 204 that declares a body

#[test]
fn a_204_that_declares_a_body_does_not_keep_its_connection() {
    // RFC 9110 8.6 and RFC 9112 6.1: a server must not send Content-Length or
    // Transfer-Encoding in a 204. This one does, and sends the 5 bytes it declared only
    // once the next request has arrived on the connection, ahead of the next response. A
    // 204 ends with its head (RFC 9112 6.3 rule 1), so those bytes are garbage: a server
    // this confused about framing must not get the next request on the same connection.
    let url = serve_forever(|stream| {
        if read_target(stream)? == "/next" {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")?;
        } else {
            stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")?;
            read_head(stream)?;
            stream.write_all(b"helloHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")?;
        }
        hold_open(stream)
    });
    let urls = [format!("{url}204"), format!("{url}next")];
    let results = run(async move { fetch_each(&Client::with_options(options()), &urls).await });
    assert_eq!(results[0], Ok((204, Bytes::new())));
    assert_eq!(results[1], Ok((200, Bytes::from_static(b"next"))));
}

// ---------------------------------------------------------------------------------------
// Errors in the head name the line

#[test]
fn an_invalid_header_field_is_quoted_in_the_error() {
    // "Say what was wrong and where": among many fields, the error quotes the bad line,
    // not only the kind of fault (a bare CR, a NUL, whitespace before the colon).
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 200 OK\r\nX-Good: 1\r\nX-Bad: a\rb\r\nX-Late: 2\r\n\r\n", r#""X-Bad: a\rb""#),
        (b"HTTP/1.1 200 OK\r\nX-Good: 1\r\nX-Nul: a\x00b\r\n\r\n", r#""X-Nul: a\x00b""#),
        (b"HTTP/1.1 200 OK\r\nX-Good: 1\r\nX-Space : v\r\n\r\n", r#""X-Space : v""#),
    ];
    let (_server, urls) = serve_indexed(cases.iter().map(|(bytes, _)| bytes.to_vec()).collect());
    let results = run(async move { fetch_each(&Client::with_options(options()), &urls).await });
    for ((bytes, quoted), result) in cases.iter().zip(&results) {
        assert_errors(&[bytes], std::slice::from_ref(result), "invalid header field");
        assert_errors(&[bytes], std::slice::from_ref(result), quoted);
    }
}

// ---------------------------------------------------------------------------------------
// A reset mid-body

#[test]
fn a_reset_mid_body_says_how_much_of_the_body_had_arrived() {
    // A server that closes with the request unread resets the connection (RST) instead of
    // ending it: the error is the reset, and, as for a clean close, it says how far the
    // body had got. The first server never reads the request; the second, a chunked one,
    // reads only its first byte.
    let length = serve_forever(|stream| {
        let mut first = [0u8; 1];
        stream.peek(&mut first)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")?;
        Err(std::io::Error::other("close with the request unread"))
    });
    let chunked = serve_forever(|stream| {
        let mut first = [0u8; 1];
        std::io::Read::read_exact(stream, &mut first)?;
        stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nhello")?;
        Err(std::io::Error::other("close with the request unread"))
    });
    let results = run(async move { fetch_each(&Client::with_options(options()), &[length, chunked]).await });
    let errors: Vec<&String> = results.iter().map(|r| r.as_ref().unwrap_err()).collect();
    assert!(errors[0].starts_with("connection error: "), "{}", errors[0]);
    assert!(errors[0].contains("got 5 of 10 bytes"), "{}", errors[0]);
    assert!(errors[1].starts_with("connection error: "), "{}", errors[1]);
    assert!(
        errors[1].contains("got 5 bytes of a chunked body, 4 more bytes of the current chunk due"),
        "{}",
        errors[1]
    );
}

// ---------------------------------------------------------------------------------------
// https: a body delimited by the close

#[cfg(feature = "tls")]
#[test]
fn an_https_body_delimited_by_the_close_needs_tls_close_notify() {
    // RFC 9112 9.8: a response with neither Content-Length nor chunked is complete only if
    // a valid closure alert (close_notify) was received; a TCP close without one may be an
    // attacker's truncation. A body framed by its length is complete without it.
    let (config, cert) = tls_served::server_config();
    let cut = tls_served::serve_once(config.clone(), b"HTTP/1.1 200 OK\r\n\r\npart of the bo", false);
    let whole = tls_served::serve_once(config.clone(), b"HTTP/1.1 200 OK\r\n\r\nthe whole body", true);
    let framed = tls_served::serve_once(config, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody", false);
    let results = run(async move {
        let options = evloop::http::ClientOptions { extra_root_certificates: vec![cert], ..options() };
        fetch_each(&Client::with_options(options), &[cut, whole, framed]).await
    });
    assert_errors(&[b"cut"], &results[..1], "without TLS close_notify");
    assert_eq!(results[1], Ok((200, Bytes::from_static(b"the whole body"))));
    assert_eq!(results[2], Ok((200, Bytes::from_static(b"body"))));
}

// ---------------------------------------------------------------------------------------
// Location

/// A site whose redirects carry odd `Location` fields, for the client and the crawler.
fn redirecting_site() -> Server {
    let html = |body: &str| Reply::status("200 OK", "Content-Type: text/html\r\n", body.as_bytes());
    Server::start(move |request| match request.target.as_str() {
        "/" => html(
            r#"<a href="/bad">bad</a> <a href="/two">two</a> <a href="/same">same</a>
               <a href="/odd">odd</a> <a href="/loop-a">loop</a>"#,
        ),
        "/bad" => Reply::status("302 Found", "Location: http://[::1\r\n", b""),
        "/two" => Reply::status("302 Found", "Location: /x\r\nLocation: /y\r\n", b""),
        "/same" => {
            Reply::status("301 Moved Permanently", "Location: /landing\r\nlocation: /landing\r\n", b"")
        }
        "/odd" => Reply::status("302 Found", "Location:   ?page=2  \r\n", b""),
        "/loop-a" => Reply::status("302 Found", "Location: loop-b\r\n", b""),
        "/loop-b" => Reply::status("307 Temporary Redirect", "Location: /loop-a#again\r\n", b""),
        "/landing" | "/odd?page=2" => html("arrived"),
        _ => Reply::status("404 Not Found", "Content-Type: text/html\r\n", b"never asked"),
    })
}

#[test]
fn location_fields_that_disagree_are_an_error_and_equal_ones_are_followed() {
    // RFC 9110 10.2.2: Location takes one URI reference. Two that differ leave the client
    // to guess which to follow (browsers refuse such a response); the same one twice
    // is unambiguous.
    let server = redirecting_site();
    let urls = [server.url("/two"), server.url("/same")];
    let results = run(async move { fetch_each(&Client::with_options(options()), &urls).await });
    assert_errors(&[b"/two"], &results[..1], r#"conflicting Location fields ("/x" and "/y")"#);
    assert_eq!(results[1], Ok((200, Bytes::from_static(b"arrived"))));
    assert!(!server.requests().iter().any(|r| r.target == "/x" || r.target == "/y"));
}

#[test]
fn crawl_reports_an_unusable_redirect_as_an_error_and_resolves_odd_ones() {
    // The crawler follows redirects itself: it reads Location as the client does. A
    // Location that is not a URI reference, or two that disagree, is an ERR line (as fetch
    // reports it), not a 3xx printed as if it led somewhere; a query-only reference is
    // resolved against the page (RFC 3986 5.2); a redirect loop ends at the seen-set.
    let server = redirecting_site();
    let output = process::run("crawl", &["-t", "5", &server.url("/")], Duration::from_secs(20));
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.line_for(&server.url("/bad")).starts_with("ERR "), "{output:?}");
    assert!(output.line_for(&server.url("/bad")).contains("invalid Location"), "{output:?}");
    assert!(output.line_for(&server.url("/two")).contains("conflicting Location fields"), "{output:?}");
    for (path, status) in [
        ("/", 200),
        ("/same", 301),
        ("/landing", 200),
        ("/odd", 302),
        ("/odd?page=2", 200),
        ("/loop-a", 302),
        ("/loop-b", 307),
    ] {
        assert_eq!(output.line_for(&server.url(path)), format!("{status} {}", server.url(path)));
    }
    assert_eq!(output.lines().len(), 9, "{output:?}");
    assert!(!server.requests().iter().any(|r| r.target == "/x" || r.target == "/y"));
}

#[test]
fn crawl_reads_links_out_of_html_that_is_not_utf8() {
    // A page with invalid UTF-8, a NUL and an unterminated quote: the bytes around the
    // links do not hide them, and nothing panics. (This held with the lossy decoding; the
    // crawler now reads the page's bytes as they are: see tests/crawl_example.rs.)
    let server = Server::start(|request| {
        let html = |body: &[u8]| Reply::status("200 OK", "Content-Type: text/html\r\n", body);
        match request.target.as_str() {
            "/" => html(b"\xff\xfe<a href=\"/after\">x</a> \xc3\x28\x00 <a href=\"/caf\xc3\xa9\">utf8</a> <a title=\"open"),
            _ => html(b"leaf"),
        }
    });
    let output = process::run("crawl", &["-t", "5", &server.url("/")], Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.lines().len(), 3, "{output:?}");
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert!(targets.contains(&"/after".to_string()), "{targets:?}");
    assert!(targets.contains(&"/caf%C3%A9".to_string()), "{targets:?}");
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

#[cfg(feature = "tls")]
#[path = "support/tls_served_http.rs"]
mod tls_served;
