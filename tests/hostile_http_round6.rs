//! A sixth round of hostile and real-world servers for the HTTP client, with RFC 9112, RFC
//! 9110 and RFC 3986 as the referees: the URL as the request sends it (target, Host,
//! userinfo, IPv6 literals, ports), host names that do not resolve, how many connections a
//! client keeps when it visits many hosts, and servers that stay silent, reset, close a
//! pooled connection under the next request, or send an absurd length or many fields.
//! (Running out of file descriptors, and `fetch -t` against a trickled body, are in
//! tests/fetch_example.rs: they need a process of their own.)
//!
//! Every test is bounded by a time limit (`run_test`, and the client's own limits); nothing
//! sleeps to let things happen. The servers are std threads on 127.0.0.1 (and ::1 where
//! the machine has it).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::run_test as run;
use evloop::http::request::{host_header, request_target};
use evloop::http::{Client, ClientOptions, HttpError, HttpErrorKind};
use hand_served::{fetch_all, hold_open, options, read_head, serve_forever};
use server::{Reply, Server};
use url::Url;

/// GETs each URL in turn on one client with `options`: each status and whole body, or
/// the error.
fn get_each_with(options: ClientOptions, urls: Vec<String>) -> Vec<Result<(u16, Bytes), HttpError>> {
    run(async move {
        let client = Client::with_options(options);
        let mut results = Vec::new();
        for url in &urls {
            results.push(fetch_all(&client, "GET", url, None).await);
        }
        results
    })
}

/// GETs each URL in turn on one client with the hostile-server [`options`].
fn get_each(urls: Vec<String>) -> Vec<Result<(u16, Bytes), HttpError>> {
    get_each_with(options(), urls)
}

/// A server answering every request with its target as the body, keep-alive.
fn echo_target() -> Server {
    Server::start(|request| Reply::status("200 OK", "", request.target.as_bytes()))
}

/// The request target and `Host` of each request `server` received, in order.
fn targets_and_hosts(server: &Server) -> Vec<(String, String)> {
    let requests = server.requests().into_iter();
    requests.map(|r| (r.target.clone(), r.header("host").unwrap_or("").to_string())).collect()
}

/// Asserts that `result` is a success with this status and body.
fn assert_ok(result: &Result<(u16, Bytes), HttpError>, status: u16, body: &[u8]) {
    let (got_status, got_body) = result.as_ref().unwrap_or_else(|e| panic!("expected {status}: {e}"));
    assert_eq!((*got_status, &got_body[..]), (status, body));
}

/// The error of `result`, which must have failed.
fn error_of(result: &Result<(u16, Bytes), HttpError>) -> &HttpError {
    result.as_ref().err().unwrap_or_else(|| panic!("accepted: {result:?}"))
}

// ---------------------------------------------------------------------------------------
// The URL, as the request sends it

#[test]
fn the_request_target_is_the_normalized_path_and_query_without_fragment_or_userinfo() {
    // RFC 9112 3.2.1: origin-form is the absolute path and query; RFC 3986 5.2.4 removes dot
    // segments; a fragment is never sent (RFC 9110 7.1); userinfo is never sent as part of
    // the target or Host (RFC 9110 4.2.4: a sender MUST NOT generate it). Spaces and
    // non-ASCII are percent-encoded as UTF-8, and an empty path is `/`.
    let server = echo_target();
    let port = server.addr.port();
    let base = format!("127.0.0.1:{port}");
    let urls = vec![
        format!("HTTP://{base}/a/../b/./c/.?q=1&r=%20#frag"),
        format!("http://user:secret@{base}/private"),
        format!("http://{base}"),
        format!("http://{base}?x=1"),
        format!("http://{base}/sp ace/é?a b=ü"),
        format!("http://{base}/%7e/a%2Fb"),
    ];
    let results = get_each(urls);
    let expected =
        ["/b/c/?q=1&r=%20", "/private", "/", "/?x=1", "/sp%20ace/%C3%A9?a%20b=%C3%BC", "/%7e/a%2Fb"];
    for (result, target) in results.iter().zip(expected) {
        assert_ok(result, 200, target.as_bytes());
    }
    let seen = targets_and_hosts(&server);
    assert_eq!(seen.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), expected);
    assert!(seen.iter().all(|(_, host)| *host == base), "Host is host:port for a port not 80: {seen:?}");
    for request in server.requests() {
        for (name, value) in &request.headers {
            assert!(!value.contains("secret") && name != "authorization", "userinfo sent: {name}: {value}");
        }
    }
}

#[test]
fn bytes_rfc_3986_forbids_in_a_path_or_query_are_percent_encoded() {
    // The url crate serializes as browsers do and leaves `|`, `^`, `[`, `]`, and in the
    // query `{`, `}`, `` ` `` and `\`, as typed, and a `%` that starts no percent-encoding.
    // RFC 3986 3.3 and 3.4 allow none of them raw (pchar: unreserved, pct-encoded,
    // sub-delims, ":" and "@"; 2.1: "%" only with two hex digits), and RFC 9112 3.2 wants a
    // valid request-target: strict servers answer 400. Valid `%XX` stay as they are (the
    // url crate encodes `'` in the query of an http URL itself, as browsers do).
    let server = echo_target();
    let url = server.url("/a|b^c[d]e%zz%41/x%2?q={y}|z^w`v[1]\\%&ok=!$'()*+,;=:@/?~");
    let expected = "/a%7Cb%5Ec%5Bd%5De%25zz%41/x%252?q=%7By%7D%7Cz%5Ew%60v%5B1%5D%5C%25&ok=!$%27()*+,;=:@/?~";
    let results = get_each(vec![url.clone()]);
    assert_ok(&results[0], 200, expected.as_bytes());
    assert_eq!(request_target(&Url::parse(&url).unwrap()), expected);
}

#[test]
fn the_host_header_omits_the_default_port_and_brackets_an_ipv6_literal() {
    // RFC 9110 7.2: Host is the target URI's authority without userinfo; the port may be
    // left out when it is the scheme's default (url normalizes it away), and an IPv6
    // literal keeps its brackets (RFC 3986 3.2.2).
    let cases = [
        ("http://Example.COM:80/", "example.com"),
        ("http://example.com:8080/", "example.com:8080"),
        ("https://example.com:443/", "example.com"),
        ("https://example.com:80/", "example.com:80"),
        ("http://user:pw@example.com/", "example.com"),
        ("http://[::1]/", "[::1]"),
        ("http://[0:0:0:0:0:0:0:1]:8080/", "[::1]:8080"),
        ("http://127.0.0.1:80/", "127.0.0.1"),
    ];
    for (url, host) in cases {
        assert_eq!(host_header(&Url::parse(url).unwrap()), host, "{url}");
    }
}

#[test]
fn an_ipv6_literal_host_is_fetched_with_its_bracketed_host_header() {
    let Ok(server) = Server::start_on("[::1]:0", |request| {
        Reply::status("200 OK", "", request.header("host").unwrap_or("").as_bytes())
    }) else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let host = format!("[::1]:{}", server.addr.port());
    let results = get_each(vec![format!("http://{host}/six"), format!("http://{host}/six-again")]);
    assert_ok(&results[0], 200, host.as_bytes());
    assert_ok(&results[1], 200, host.as_bytes());
    assert_eq!(server.accepts(), 1, "the IPv6 connection is pooled like any other");
}

#[test]
fn a_port_out_of_range_or_not_a_number_is_an_invalid_url() {
    for url in ["http://127.0.0.1:65536/", "http://127.0.0.1:99999999999/", "http://127.0.0.1:8o/"] {
        let results = get_each(vec![url.to_string()]);
        let error = error_of(&results[0]);
        assert!(matches!(error.kind, HttpErrorKind::InvalidUrl(_)), "{url}: {error}");
        assert!(error.to_string().contains("invalid port number"), "{url}: {error}");
    }
}

#[test]
fn localhost_in_any_case_is_resolved_and_each_address_tried() {
    // `localhost` may resolve to ::1 first; the server listens on 127.0.0.1 only, so the
    // first address may refuse and the next must be tried.
    let server = echo_target();
    let port = server.addr.port();
    let results = get_each(vec![format!("http://LocalHost:{port}/here")]);
    assert_ok(&results[0], 200, b"/here");
    assert_eq!(targets_and_hosts(&server), [("/here".to_string(), format!("localhost:{port}"))]);
}

#[test]
fn a_name_that_does_not_resolve_is_a_resolve_error_and_the_next_url_is_still_fetched() {
    // `.invalid` never resolves (RFC 6761 6.4). The error used to be `Connect` ("cannot
    // connect: failed to lookup address information"), which `HttpErrorKind::Resolve`
    // exists to tell apart from a refused connection.
    let server = echo_target();
    let results = get_each(vec!["http://no-such-host.invalid/".to_string(), server.url("/after")]);
    let error = error_of(&results[0]);
    assert!(matches!(error.kind, HttpErrorKind::Resolve(_)), "{error:?}");
    assert!(error.to_string().starts_with("cannot resolve host: "), "{error}");
    assert!(error.to_string().contains("no-such-host.invalid"), "{error}");
    assert_ok(&results[1], 200, b"/after");
}

// ---------------------------------------------------------------------------------------
// Many hosts: the pool is bounded in all, not only per host

#[test]
fn idle_connections_are_bounded_in_all_so_many_hosts_do_not_hold_a_socket_each() {
    // Twelve hosts (ports), visited once each by a client with total_limit 3: only the 3
    // most recent connections may stay idle. Visited again newest first, the last 3 are
    // reused and the 9 others need a new connection. The pool used to keep one connection
    // per host for as long as the idle timeout, so a fetch of 1,000 URLs on 1,000 hosts
    // held 1,000 sockets and ran out of file descriptors under the usual limit of 1,024.
    let servers: Vec<Server> = (0..12).map(|_| echo_target()).collect();
    let first: Vec<String> = servers.iter().map(|s| s.url("/")).collect();
    let mut urls = first.clone();
    urls.extend(first.into_iter().rev());
    let options = ClientOptions { per_host_limit: 3, total_limit: 3, ..options() };
    for result in get_each_with(options, urls) {
        assert_ok(&result, 200, b"/");
    }
    let accepts: Vec<usize> = servers.iter().map(Server::accepts).collect();
    assert_eq!(accepts, [2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1]);
}

#[test]
fn the_per_host_idle_bound_still_holds_under_the_total_one() {
    // Six requests at once to one host with per_host_limit 2 and total_limit 4: at most 2
    // connections, reused after.
    let server =
        Server::start(|request| Reply::status("200 OK", "", request.target.as_bytes()).delay(ms(50)));
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/{i}"))).collect();
    let results = run(async move {
        let client = Client::with_options(ClientOptions { per_host_limit: 2, total_limit: 4, ..options() });
        let fetches = urls.into_iter().map(|url| {
            let client = client.clone();
            async move { fetch_all(&client, "GET", &url, None).await.map_err(|e| e.to_string()) }
        });
        evloop::gather(fetches).await.unwrap()
    });
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|(status, _)| *status == 200)), "{results:?}");
    assert_eq!(server.accepts(), 2);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------
// Servers that stay silent, reset, or close under the next request

#[test]
fn a_server_that_accepts_and_never_answers_fails_at_the_head_time_limit() {
    let url = serve_forever(|stream| {
        read_head(stream)?;
        hold_open(stream)
    });
    let options = ClientOptions { timeout: ms(300), ..options() };
    let results = get_each_with(options, vec![url]);
    let error = error_of(&results[0]);
    assert!(matches!(error.kind, HttpErrorKind::Timeout(_)), "{error:?}");
    assert!(error.to_string().contains("timed out waiting for the response"), "{error}");
}

/// Waits until the peer has sent something, reading none of it: dropping the stream then
/// resets the connection (unread data), rather than closing it cleanly.
fn await_unread_request(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    while stream.peek(&mut byte)? == 0 {}
    Ok(())
}

#[test]
fn a_reset_right_after_accept_is_one_clear_error_and_is_not_retried() {
    // A new connection that fails before any response is not stale: it is not retried
    // (only a pooled one is), and the error says what happened.
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = await_unread_request(&mut stream);
            drop(stream);
        }
    });
    let results = get_each(vec![url]);
    let error = error_of(&results[0]);
    assert!(matches!(error.kind, HttpErrorKind::Io(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("connection error: ") && text.contains("reset"), "{text}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one attempt only");
}

#[test]
fn a_pooled_connection_reset_under_the_next_request_is_retried_once_if_idempotent() {
    // Each connection answers its first request, then resets when the second arrives:
    // nothing of a response came, so a GET goes again on a new connection (RFC 9112
    // 9.3.1, RFC 9110 9.2.2) and a POST does not (it may have been acted on). The clean
    // close is in tests/hostile_http.rs; a reset is what a server that closes an idle
    // connection with unread bytes in it sends.
    let url = serve_forever(|stream| {
        let target = hand_served::read_target(stream)?;
        let body = target.as_bytes();
        write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())?;
        stream.write_all(body)?;
        await_unread_request(stream)?;
        Err(std::io::Error::other("reset"))
    });
    let (first, second, post) = (format!("{url}first"), format!("{url}second"), format!("{url}post"));
    let results = run(async move {
        let client = Client::with_options(options());
        let a = fetch_all(&client, "GET", &first, None).await.map_err(|e| e.to_string());
        let b = fetch_all(&client, "GET", &second, None).await.map_err(|e| e.to_string());
        let c = fetch_all(&client, "POST", &post, Some(b"form".to_vec())).await.map_err(|e| e.to_string());
        [a, b, c]
    });
    assert_eq!(results[0], Ok((200, Bytes::from_static(b"/first"))));
    assert_eq!(results[1], Ok((200, Bytes::from_static(b"/second"))), "retried on a new connection");
    let post_error = results[2].as_ref().unwrap_err();
    assert!(post_error.starts_with("connection error: ") && post_error.contains("reset"), "{post_error}");
}

// ---------------------------------------------------------------------------------------
// Lengths and fields

#[test]
fn a_huge_content_length_with_a_short_body_is_an_error_that_says_how_much_came() {
    // 10^18 is a valid length (digits, no overflow): nothing is reserved for it, and the
    // close after 5 bytes is a body cut short.
    let server = Server::start(|_| {
        Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\nshort"[..]).close()
    });
    let results = get_each(vec![server.url("/huge")]);
    let text = error_of(&results[0]).to_string();
    assert!(text.contains("connection closed before the body was complete"), "{text}");
    assert!(text.contains("got 5 of 1000000000000000000 bytes"), "{text}");
}

#[test]
fn a_hundred_set_cookie_fields_are_all_kept_in_order() {
    // Set-Cookie is the field that may not be combined into one (RFC 9110 5.3).
    let cookies: String = (0..100).map(|i| format!("Set-Cookie: c{i}=v{i}; Path=/\r\n")).collect();
    let server = Server::start(move |_| Reply::status("200 OK", &cookies, b"ok"));
    let url = server.url("/cookies");
    let cookies = run(async move {
        let client = Client::with_options(options());
        let response = client.get(&url).await.unwrap();
        let cookies: Vec<Vec<u8>> =
            response.headers().iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.clone()).collect();
        assert_eq!(&response.bytes().await.unwrap()[..], b"ok");
        cookies
    });
    let expected: Vec<Vec<u8>> = (0..100).map(|i| format!("c{i}=v{i}; Path=/").into_bytes()).collect();
    assert_eq!(cookies, expected);
}

#[test]
fn a_content_length_0_response_is_complete_at_once_and_its_connection_reused() {
    let server = Server::start(|request| match request.target.as_str() {
        "/empty" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..]),
        _ => Reply::status("200 OK", "", b"after"),
    });
    let results = get_each(vec![server.url("/empty"), server.url("/empty"), server.url("/next")]);
    assert_ok(&results[0], 200, b"");
    assert_ok(&results[1], 200, b"");
    assert_ok(&results[2], 200, b"after");
    assert_eq!(server.accepts(), 1, "one connection for all three");
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
