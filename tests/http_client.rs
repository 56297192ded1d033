//! The HTTP/1.1 client (`evloop::http::Client`) against scripted local servers: every
//! body framing, hostile responses, redirects, time limits, the keep-alive pool and its
//! limits. The servers run in std threads on 127.0.0.1 (port 0) and answer each request
//! with canned bytes chosen by path, so hostile responses are served byte-exactly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run_test as run;
use evloop::http::{Client, ClientOptions, HttpError, HttpErrorKind};
use server::{Reply, Request, Server};

/// GET `url` and read the whole body.
async fn get_all(client: &Client, url: &str) -> Result<(u16, Bytes), HttpError> {
    let response = client.get(url).await?;
    let status = response.status();
    Ok((status, response.bytes().await?))
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// `HTTP/1.1 200 OK` with a Content-Length body.
fn ok(body: &[u8]) -> Reply {
    Reply::status("200 OK", "", body)
}

// ---------------------------------------------------------------------------------------
// Body framing

#[test]
fn content_length_body() {
    let server = Server::start(|_| ok(b"hello, world"));
    let url = server.url("/page");
    let (status, body) = run(async move { get_all(&Client::new(), &url).await.unwrap() });
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"hello, world");
}

#[test]
fn request_head_is_well_formed() {
    let server = Server::start(|_| ok(b"x"));
    let url = server.url("/path/to?q=1&r=two#fragment");
    run(async move { get_all(&Client::new(), &url).await.unwrap() });
    let request = &server.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/path/to?q=1&r=two", "origin-form target, no fragment");
    assert_eq!(request.header("host"), Some(format!("127.0.0.1:{}", server.addr.port()).as_str()));
    assert_eq!(request.header("accept-encoding"), Some("identity"));
    assert!(request.header("user-agent").is_some_and(|ua| ua.starts_with("evloop/")));
    assert!(request.header("content-length").is_none(), "a GET carries no body");
}

#[test]
fn chunked_body_with_extensions_trailers_and_mixed_case_hex() {
    let server = Server::start(|_| {
        Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
               5;name=value\r\nhello\r\n\
               A\r\n0123456789\r\n\
               a ; ext=\"quoted\"\r\nabcdefghij\r\n\
               1B\r\n---twenty-seven bytes long!\r\n\
               0\r\nX-Trailer: yes\r\nX-Other: also\r\n\r\n"[..],
        )
    });
    let url = server.url("/chunked");
    let bodies = run(async move {
        let client = Client::new();
        let first = get_all(&client, &url).await.unwrap();
        // The connection is clean after the trailers: it serves the next request too.
        let second = get_all(&client, &url).await.unwrap();
        (first, second)
    });
    let expected = b"hello0123456789abcdefghij---twenty-seven bytes long!";
    assert_eq!(bodies.0, (200, Bytes::from_static(expected)));
    assert_eq!(bodies.1, (200, Bytes::from_static(expected)));
    assert_eq!(server.accepts(), 1, "the connection is reused after a chunked body");
}

#[test]
fn close_delimited_body() {
    let server =
        Server::start(|_| Reply::raw(&b"HTTP/1.1 200 OK\r\n\r\nuntil the server closes"[..]).close());
    let url = server.url("/");
    let (first, second) = run(async move {
        let client = Client::new();
        (get_all(&client, &url).await.unwrap(), get_all(&client, &url).await.unwrap())
    });
    assert_eq!(&first.1[..], b"until the server closes");
    assert_eq!(first, second);
    assert_eq!(server.accepts(), 2, "a close-delimited connection is never reused");
}

#[test]
fn no_body_for_head_204_304() {
    let server = Server::start(|request| match (request.method.as_str(), request.target.as_str()) {
        // Declares a length but sends no body: HEAD's answer has none.
        ("HEAD", _) => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..]),
        (_, "/204") => Reply::raw(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
        (_, "/304") => Reply::raw(&b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"[..]),
        _ => ok(b"after"),
    });
    let (head, no_content, not_modified, after) = {
        let (h, n, m, a) =
            (server.url("/head"), server.url("/204"), server.url("/304"), server.url("/after"));
        run(async move {
            let client = Client::new();
            let head = client.head(&h).await.unwrap();
            let head = (head.status(), head.header("content-length").map(str::to_string), head.bytes().await);
            (
                head,
                get_all(&client, &n).await.unwrap(),
                get_all(&client, &m).await.unwrap(),
                get_all(&client, &a).await,
            )
        })
    };
    assert_eq!(head.0, 200);
    assert_eq!(head.1.as_deref(), Some("1000"));
    assert!(head.2.unwrap().is_empty());
    assert_eq!(no_content, (204, Bytes::new()));
    assert_eq!(not_modified, (304, Bytes::new()));
    assert_eq!(after.unwrap(), (200, Bytes::from_static(b"after")));
    assert_eq!(server.accepts(), 1, "bodiless responses leave the connection clean for the next");
}

#[test]
fn interim_responses_are_skipped() {
    let server = Server::start(|request| {
        match request.target.as_str() {
        "/continue" => Reply::raw(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"[..]),
        _ => Reply::raw(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
               HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated"[..],
        ),
    }
    });
    let (a, b) = (server.url("/continue"), server.url("/hints"));
    let (first, second) = run(async move {
        let client = Client::new();
        (get_all(&client, &a).await.unwrap(), client.post(&b, b"data".to_vec()).await.unwrap().status())
    });
    assert_eq!(first, (200, Bytes::from_static(b"real")));
    assert_eq!(second, 201);
}

#[test]
fn two_mib_body_streamed_by_chunk_arrives_byte_exact() {
    let body: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i.wrapping_mul(7) % 251) as u8).collect();
    let chunked = chunk_encode(&body, &[1, 4095, 65536, 100_000, 7]);
    let served = body.clone();
    let server = Server::start(move |request| match request.target.as_str() {
        "/length" => ok(&served),
        _ => Reply::raw(chunked.clone()),
    });
    let urls = [server.url("/length"), server.url("/chunked")];
    let results = run(async move {
        let client = Client::new();
        let mut results = Vec::new();
        for url in &urls {
            let mut response = client.get(url).await.unwrap();
            let (mut all, mut pieces) = (Vec::new(), 0);
            while let Some(piece) = response.chunk().await.unwrap() {
                assert!(!piece.is_empty(), "chunk() hands out data or None, never an empty piece");
                all.extend_from_slice(&piece);
                pieces += 1;
            }
            results.push((all, pieces));
        }
        results
    });
    for (all, pieces) in results {
        assert!(all == body, "the body differs (got {} bytes)", all.len());
        assert!(pieces > 1, "a 2 MiB body arrives in several pieces");
    }
    assert_eq!(server.accepts(), 1);
}

/// `body` in the chunked coding, chunk sizes cycling through `sizes`, hex in upper case
/// for odd chunks and lower case for even ones.
fn chunk_encode(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let (mut at, mut i) = (0, 0);
    while at < body.len() {
        let n = sizes[i % sizes.len()].min(body.len() - at);
        let size = if i % 2 == 0 { format!("{n:x}") } else { format!("{n:X}") };
        out.extend_from_slice(format!("{size}\r\n").as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------------------------------
// Hostile responses: each is an error that names the problem

#[test]
fn hostile_responses_are_errors_that_name_the_problem() {
    let mut big_head = b"HTTP/1.1 200 OK\r\n".to_vec();
    while big_head.len() <= 70 * 1024 {
        big_head
            .extend_from_slice(format!("X-Padding-{}: {}\r\n", big_head.len(), "p".repeat(100)).as_bytes());
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "/cl-and-te",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            "both Transfer-Encoding and Content-Length",
        ),
        (
            "/conflicting-cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
            "conflicting Content-Length values (5 and 6)",
        ),
        ("/negative-cl", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello".to_vec(), "invalid Content-Length \"-5\""),
        ("/alpha-cl", b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello".to_vec(), "invalid Content-Length \"five\""),
        (
            "/overflow-cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello".to_vec(),
            "Content-Length \"99999999999999999999999\" overflows",
        ),
        (
            "/chunk-overflow",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n".to_vec(),
            "chunk size overflows",
        ),
        ("/garbage", b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), "not HTTP"),
        ("/http2", b"HTTP/2 200\r\n\r\n".to_vec(), "unsupported HTTP version"),
        ("/big-head", big_head, "response head exceeds 64 KiB"),
    ];
    let replies: Vec<(String, Vec<u8>)> =
        cases.iter().map(|(path, bytes, _)| (path.to_string(), bytes.clone())).collect();
    let server = Server::start(move |request| {
        let (_, bytes) = replies.iter().find(|(path, _)| *path == request.target).expect("a known path");
        // Hang up never: every error must come from the bytes alone.
        Reply::raw(bytes.clone()).hang()
    });
    let urls: Vec<String> = cases.iter().map(|(path, _, _)| server.url(path)).collect();
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(get_all(&client, url).await);
        }
        results
    });
    for ((path, _, expected), result) in cases.iter().zip(results) {
        let error = result.expect_err(path);
        let message = error.to_string();
        assert!(matches!(error.kind, HttpErrorKind::Protocol(_)), "{path}: {error:?}");
        assert!(message.contains(expected), "{path}: {message:?} does not say {expected:?}");
        assert!(
            error.url.ends_with(path) && message.contains(&error.url),
            "{path}: {message:?} names the URL"
        );
    }
}

#[test]
fn connection_closed_mid_body_is_an_error() {
    let server = Server::start(|request| match request.target.as_str() {
        "/length" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"[..]).close(),
        "/chunked" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly this"[..]).close()
        }
        "/no-last-chunk" => {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsome\r\n"[..]).close()
        }
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]).close(),
    });
    let urls = ["/length", "/chunked", "/no-last-chunk", "/head"].map(|p| server.url(p));
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(get_all(&client, url).await.map(|_| ()).unwrap_err().to_string());
        }
        results
    });
    assert!(
        results[0].contains("connection closed before the body was complete (got 9 of 100 bytes)"),
        "{}",
        results[0]
    );
    assert!(results[1].contains("connection closed before the body was complete"), "{}", results[1]);
    assert!(results[1].contains("7 more bytes"), "{}", results[1]);
    assert!(results[2].contains("the last chunk was missing"), "{}", results[2]);
    assert!(results[3].contains("closed in the middle of the response head"), "{}", results[3]);
}

#[test]
fn unusable_urls_are_errors() {
    let results = run(async {
        let client = Client::new();
        let mut kinds = Vec::new();
        for url in ["ftp://127.0.0.1/file", "not a url", "http://"] {
            kinds.push(client.get(url).await.unwrap_err());
        }
        kinds
    });
    assert!(
        matches!(results[0].kind, HttpErrorKind::UnsupportedScheme(ref s) if s == "ftp"),
        "{:?}",
        results[0]
    );
    assert!(matches!(results[1].kind, HttpErrorKind::InvalidUrl(_)), "{:?}", results[1]);
    assert!(matches!(results[2].kind, HttpErrorKind::InvalidUrl(_)), "{:?}", results[2]);
    assert_eq!(results[1].url, "not a url");
}

// ---------------------------------------------------------------------------------------
// Redirects

/// A server with redirects: `/rNNN[-rel]` answers status NNN to `/target`; `/chain/N` to
/// `/chain/N-1` down to a page; `/loop` to itself; `/target` echoes the method and body.
fn redirect_server() -> Server {
    Server::start(|request: &Request| {
        let path = request.target.as_str();
        if let Some(code) = path.strip_prefix("/r").and_then(|p| p.get(..3)) {
            // Relative references of both kinds: absolute-path and path-relative.
            let location = if path.ends_with("-rel") { "target" } else { "/target" };
            let reason = match code {
                "301" => "Moved Permanently",
                "302" => "Found",
                "303" => "See Other",
                "307" => "Temporary Redirect",
                _ => "Permanent Redirect",
            };
            return Reply::status(
                &format!("{code} {reason}"),
                &format!("Location: {location}\r\n"),
                b"moved",
            );
        }
        if let Some(n) = path.strip_prefix("/chain/") {
            let n: usize = n.parse().unwrap();
            if n == 0 {
                return ok(b"end of the chain");
            }
            return Reply::status("302 Found", &format!("Location: /chain/{}\r\n", n - 1), b"");
        }
        match path {
            "/loop" => Reply::status("302 Found", "Location:  /loop \r\n", b""),
            "/target" => {
                ok(format!("{} {}", request.method, String::from_utf8_lossy(&request.body)).as_bytes())
            }
            _ => Reply::status("404 Not Found", "", b""),
        }
    })
}

#[test]
fn redirects_with_relative_location_and_method_rewriting() {
    let server = redirect_server();
    let base = server.url("/");
    let results = run(async move {
        let client = Client::new();
        let mut results = Vec::new();
        for (method, path, body) in [
            ("GET", "r301", None),
            ("GET", "r302-rel", None),
            ("GET", "r303", None),
            ("GET", "r307", None),
            ("GET", "r308", None),
            ("POST", "r301", Some(b"one".to_vec())),
            ("POST", "r302", Some(b"two".to_vec())),
            ("POST", "r303-rel", Some(b"three".to_vec())),
            ("PUT", "r303", Some(b"four".to_vec())),
            ("POST", "r307", Some(b"five".to_vec())),
            ("POST", "r308-rel", Some(b"six".to_vec())),
        ] {
            let response = client.request(method, &format!("{base}{path}"), body).await.unwrap();
            let (status, url) = (response.status(), response.url().path().to_string());
            let text = response.text().await.unwrap();
            results.push((format!("{method} /{path}"), status, url, text));
        }
        results
    });
    let expected = [
        "GET ",
        "GET ",
        "GET ",
        "GET ",
        "GET ", // GET stays GET
        "GET ",
        "GET ",
        "GET ",
        "GET ", // 301/302 after POST, and 303, become GET without a body
        "POST five",
        "POST six", // 307 and 308 repeat method and body
    ];
    for ((what, status, url, text), expected) in results.iter().zip(expected) {
        assert_eq!((*status, url.as_str(), text.as_str()), (200, "/target", expected), "{what}");
    }
    // What the server received at the target, byte-exact bodies and headers included.
    let at_target: Vec<Request> = server.requests().into_iter().filter(|r| r.target == "/target").collect();
    assert_eq!(at_target.len(), 11);
    for request in &at_target[..9] {
        assert_eq!((request.method.as_str(), request.body.as_slice()), ("GET", &b""[..]));
        assert!(request.header("content-length").is_none(), "a rewritten GET has no Content-Length");
    }
    assert_eq!((at_target[9].method.as_str(), at_target[9].body.as_slice()), ("POST", &b"five"[..]));
    assert_eq!((at_target[10].method.as_str(), at_target[10].body.as_slice()), ("POST", &b"six"[..]));
    assert_eq!(at_target[10].header("content-length"), Some("3"));
}

#[test]
fn head_stays_head_through_a_303() {
    let server = redirect_server();
    let url = server.url("/r303");
    let status = run(async move { Client::new().head(&url).await.unwrap().status() });
    assert_eq!(status, 200);
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "HEAD"]);
}

#[test]
fn redirect_loop_ends_with_too_many_redirects() {
    let server = redirect_server();
    let (l, ok3, long3) = (server.url("/loop"), server.url("/chain/3"), server.url("/chain/4"));
    let (looped, three, four, default) = run(async move {
        let client = Client::with_options(ClientOptions { max_redirects: 3, ..options() });
        let looped = client.get(&l).await.unwrap_err();
        let three = get_all(&client, &ok3).await.unwrap();
        let four = client.get(&long3).await.unwrap_err();
        let default = Client::new().get(&l).await.unwrap_err();
        (looped, three, four, default)
    });
    assert!(matches!(looped.kind, HttpErrorKind::TooManyRedirects(3)), "{looped:?}");
    assert!(looped.to_string().contains("more than 3 redirects"), "{looped}");
    assert_eq!(
        three,
        (200, Bytes::from_static(b"end of the chain")),
        "exactly max_redirects redirects are followed"
    );
    assert!(matches!(four.kind, HttpErrorKind::TooManyRedirects(3)), "{four:?}");
    assert!(matches!(default.kind, HttpErrorKind::TooManyRedirects(10)), "{default:?}");
    let loops = server.requests().iter().filter(|r| r.target == "/loop").count();
    assert_eq!(loops, 4 + 11, "max_redirects + 1 requests each, then the error");
}

#[test]
fn follow_redirects_false_returns_the_3xx() {
    let server = redirect_server();
    let url = server.url("/r301");
    let (status, location, body) = run(async move {
        let client = Client::with_options(ClientOptions { follow_redirects: false, ..options() });
        let response = client.get(&url).await.unwrap();
        let location = response.header("location").map(str::to_string);
        (response.status(), location, response.bytes().await.unwrap())
    });
    assert_eq!((status, location.as_deref(), &body[..]), (301, Some("/target"), &b"moved"[..]));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn redirect_to_an_unsupported_scheme_is_an_error() {
    // The redirects point at ftp:// and ws:// URLs on the port of a plain-HTTP server: the
    // client must refuse the scheme, not send an HTTP request there.
    let plain = Server::start(|_| ok(b"an HTTP answer on a non-HTTP URL"));
    let port = plain.addr.port();
    let redirector = Server::start(move |request| {
        let scheme = &request.target[1..];
        Reply::status("302 Found", &format!("Location: {scheme}://127.0.0.1:{port}/secret\r\n"), b"")
    });
    let urls = [redirector.url("/ftp"), redirector.url("/ws")];
    let results = run(async move {
        let client = Client::with_options(options());
        let mut results = Vec::new();
        for url in &urls {
            results.push(client.get(url).await.map(|r| r.status()));
        }
        results
    });
    assert_eq!(plain.requests().len(), 0, "HTTP requests were sent to non-HTTP URLs");
    for (scheme, result) in ["ftp", "ws"].iter().zip(results) {
        let error = result.unwrap_err();
        assert!(matches!(error.kind, HttpErrorKind::UnsupportedScheme(ref s) if s == scheme), "{error:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Failures and time limits

#[test]
fn connect_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let error = run(async move { Client::with_options(options()).get(&url).await.unwrap_err() });
    assert!(matches!(error.kind, HttpErrorKind::Connect(_)), "{error:?}");
    assert!(error.to_string().starts_with("cannot connect"), "{error}");
    assert_eq!(error.url, format!("http://127.0.0.1:{port}/"));
}

#[test]
fn total_timeout_when_the_server_never_answers() {
    let server = Server::start(|_| Reply::raw(Vec::new()).hang());
    let url = server.url("/never");
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let error = run(async move {
        let client = Client::with_options(ClientOptions { timeout: limit, ..options() });
        client.get(&url).await.unwrap_err()
    });
    let elapsed = started.elapsed();
    assert!(matches!(error.kind, HttpErrorKind::Timeout(_)), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(error.url.ends_with("/never"));
    assert!(elapsed >= limit && elapsed < limit + Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn total_timeout_covers_a_slow_head_after_redirects() {
    let server = Server::start(|request| match request.target.as_str() {
        "/first" => Reply::status("302 Found", "Location: /slow\r\n", b""),
        _ => ok(b"late").delay(Duration::from_millis(1500)),
    });
    let url = server.url("/first");
    let started = Instant::now();
    let error = run(async move {
        let client = Client::with_options(ClientOptions { timeout: Duration::from_millis(300), ..options() });
        client.get(&url).await.unwrap_err()
    });
    assert!(matches!(error.kind, HttpErrorKind::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(1400), "took {:?}", started.elapsed());
}

#[test]
fn valid_and_failing_urls_in_one_gather_do_not_disturb_each_other() {
    let good = Server::start(|request| {
        ok(format!("page {}", request.target).as_bytes()).delay(Duration::from_millis(50))
    });
    let bad = Server::start(|request| match request.target.as_str() {
        "/garbage" => Reply::raw(&b"garbage, not HTTP\r\n\r\n"[..]).hang(),
        "/cut" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut"[..]).close(),
        _ => Reply::raw(Vec::new()).hang(),
    });
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port())
    };
    let mut urls = Vec::new();
    for i in 0..6 {
        urls.push(good.url(&format!("/{i}")));
        urls.push(match i {
            0 => bad.url("/garbage"),
            1 => bad.url("/cut"),
            2 => bad.url("/hang"),
            3 => refused.clone(),
            4 => "http://exa mple.com/".to_string(),
            _ => "gopher://127.0.0.1/".to_string(),
        });
    }
    let all = urls.clone();
    let results = run(async move {
        let client = Client::with_options(ClientOptions { timeout: Duration::from_millis(500), ..options() });
        let fetches = all.into_iter().map(|url| {
            let client = client.clone();
            async move { get_all(&client, &url).await }
        });
        evloop::gather(fetches).await.unwrap()
    });
    for (i, (url, result)) in urls.iter().zip(&results).enumerate() {
        if i % 2 == 0 {
            let (status, body) = result.as_ref().unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((*status, &body[..]), (200, format!("page /{}", i / 2).as_bytes()), "{url}");
        } else {
            let error = result.as_ref().expect_err(url);
            assert_eq!(&error.url, url);
            let what = error.to_string();
            let expected = [
                "not HTTP",
                "closed before the body was complete",
                "timed out",
                "cannot connect",
                "invalid URL",
                "unsupported scheme",
            ][i / 2];
            assert!(what.contains(expected), "{url}: {what}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The keep-alive pool

#[test]
fn sequential_gets_reuse_one_connection() {
    let server = Server::start(|request| ok(request.target.as_bytes()));
    let (a, b, c) = (server.url("/a"), server.url("/b"), server.url("/c"));
    let bodies = run(async move {
        let client = Client::new();
        let mut bodies = Vec::new();
        for url in [a, b, c] {
            bodies.push(get_all(&client, &url).await.unwrap().1);
        }
        bodies
    });
    assert_eq!(bodies, ["/a", "/b", "/c"].map(|s| Bytes::from_static(s.as_bytes())));
    assert_eq!(server.accepts(), 1);
    assert!(server.requests().iter().all(|r| r.conn == 0));
}

#[test]
fn a_response_not_read_to_the_end_is_not_reused() {
    let big = vec![b'x'; 300_000];
    let server = Server::start(move |request| match request.target.as_str() {
        "/big" => ok(&big),
        _ => ok(b"small"),
    });
    let (big, small) = (server.url("/big"), server.url("/small"));
    let results = run(async move {
        let client = Client::new();
        // Dropped unread.
        let response = client.get(&big).await.unwrap();
        drop(response);
        let first = get_all(&client, &small).await.unwrap();
        // Read in part, then dropped.
        let mut response = client.get(&big).await.unwrap();
        let piece = response.chunk().await.unwrap().unwrap();
        assert!(piece.len() < 300_000);
        drop(response);
        let second = get_all(&client, &small).await.unwrap();
        (first, second)
    });
    assert_eq!(results.0, (200, Bytes::from_static(b"small")));
    assert_eq!(results.1, (200, Bytes::from_static(b"small")));
    // big (conn 0), small (conn 1, reused for big), small (conn 2).
    let conns: Vec<(String, usize)> = server.requests().into_iter().map(|r| (r.target, r.conn)).collect();
    assert_eq!(
        conns,
        [("/big", 0), ("/small", 1), ("/big", 1), ("/small", 2)].map(|(p, c)| (p.to_string(), c)),
    );
    assert_eq!(server.accepts(), 3);
}

#[test]
fn connection_close_and_http_1_0_without_keep_alive_are_not_reused() {
    let server = Server::start(|request| match request.target.as_str() {
        "/close" => Reply::raw(&b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..]),
        "/close-mixed-case" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\nContent-Length: 2\r\n\r\nok"[..],
        ),
        "/http10" => Reply::raw(&b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"[..]),
        "/http10-keep-alive" => {
            Reply::raw(&b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"[..])
        }
        _ => ok(b"ok"),
    });
    let paths = ["/close", "/close-mixed-case", "/http10", "/http10-keep-alive", "/plain", "/plain"];
    let urls = paths.map(|p| server.url(p));
    run(async move {
        let client = Client::new();
        for url in &urls {
            assert_eq!(get_all(&client, url).await.unwrap(), (200, Bytes::from_static(b"ok")));
        }
    });
    // The server keeps every connection open: only the client decides not to reuse them.
    // An HTTP/1.0 response with `Connection: keep-alive` and a length keeps its connection
    // (RFC 9112 9.3), so the first /plain goes on it.
    let conns: Vec<usize> = server.requests().into_iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 1, 2, 3, 3, 3]);
}

#[test]
fn a_stale_pooled_connection_is_retried_on_a_new_one() {
    // The server answers one request per connection, keep-alive by the headers, then
    // closes: the pooled connection is stale when the next GET takes it.
    let server = Server::start(|request| ok(request.target.as_bytes()).close());
    let (a, b, c) = (server.url("/a"), server.url("/b"), server.url("/c"));
    let bodies = run(async move {
        let client = Client::new();
        let mut bodies = Vec::new();
        for url in [a, b, c] {
            bodies.push(get_all(&client, &url).await.unwrap().1);
        }
        bodies
    });
    assert_eq!(bodies, ["/a", "/b", "/c"].map(|s| Bytes::from_static(s.as_bytes())));
    let conns: Vec<usize> = server.requests().into_iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 1, 2]);
}

#[test]
fn per_host_limit_bounds_concurrent_requests() {
    let server = Server::start(|request| ok(request.target.as_bytes()).delay(Duration::from_millis(100)));
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/{i}"))).collect();
    let started = Instant::now();
    let results = run(async move {
        let client = Client::with_options(ClientOptions { per_host_limit: 2, ..options() });
        let fetches = urls.into_iter().map(|url| {
            let client = client.clone();
            async move { get_all(&client, &url).await.unwrap() }
        });
        evloop::gather(fetches).await.unwrap()
    });
    for (i, (status, body)) in results.iter().enumerate() {
        assert_eq!((*status, &body[..]), (200, format!("/{i}").as_bytes()));
    }
    assert_eq!(server.max_in_flight(), 2, "never more than per_host_limit at once, and that many used");
    assert!(server.accepts() <= 2, "{} connections", server.accepts());
    assert!(started.elapsed() >= Duration::from_millis(300), "3 rounds of 100 ms");
}

#[test]
fn total_limit_bounds_concurrent_requests_across_hosts() {
    let shared = std::sync::Arc::new(server::Gauge::default());
    let (g1, g2) = (shared.clone(), shared.clone());
    let one = Server::start(move |_| g1.reply(ok(b"one"), Duration::from_millis(60)));
    let two = Server::start(move |_| g2.reply(ok(b"two"), Duration::from_millis(60)));
    let mut urls = Vec::new();
    for i in 0..4 {
        urls.push(one.url(&format!("/{i}")));
        urls.push(two.url(&format!("/{i}")));
    }
    run(async move {
        let client = Client::with_options(ClientOptions { total_limit: 3, per_host_limit: 10, ..options() });
        let fetches = urls.into_iter().map(|url| {
            let client = client.clone();
            async move { get_all(&client, &url).await.unwrap() }
        });
        evloop::gather(fetches).await.unwrap()
    });
    assert_eq!(shared.max(), 3, "at most total_limit requests at once over both hosts");
}

#[test]
fn ipv6_literal() {
    let Ok(server) = Server::start_on("[::1]:0", |request| {
        ok(format!("{} {}", request.target, request.header("host").unwrap_or("")).as_bytes())
    }) else {
        eprintln!("skipped: ::1 is not available");
        return;
    };
    let port = server.addr.port();
    let url = format!("http://[::1]:{port}/six");
    let (first, second) = run(async move {
        let client = Client::new();
        (get_all(&client, &url).await.unwrap(), get_all(&client, &url).await.unwrap())
    });
    assert_eq!(first, (200, Bytes::from(format!("/six [::1]:{port}"))));
    assert_eq!(first, second);
    assert_eq!(server.accepts(), 1);
}

// ---------------------------------------------------------------------------------------
// The scripted server

mod common;

#[path = "support/scripted_http.rs"]
mod server;
