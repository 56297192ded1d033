//! The fetch example (`examples/fetch.rs`) run as a process against scripted local
//! servers: its output lines, exit status, `-o`, `-c`, `-t`, `--max-redirects`, bad
//! command lines, and the no-URL demo.

use std::time::Duration;

use process::TempDir;
use server::{Reply, Server};

/// No run of the example may take longer.
const LIMIT: Duration = Duration::from_secs(15);

fn fetch(args: &[&str]) -> process::Output {
    process::run("fetch", args, LIMIT)
}

fn ok(body: &[u8]) -> Reply {
    Reply::status("200 OK", "", body)
}

/// A line `<status> <bytes> <seconds>s <url>`, parsed.
fn parse_line(line: &str) -> Option<(u16, u64, f64, &str)> {
    let mut parts = line.splitn(4, ' ');
    let status = parts.next()?.parse().ok()?;
    let bytes = parts.next()?.parse().ok()?;
    let seconds = parts.next()?.strip_suffix('s')?;
    if seconds.split_once('.').is_none_or(|(_, decimals)| decimals.len() != 3) {
        return None;
    }
    Some((status, bytes, seconds.parse().ok()?, parts.next()?))
}

#[test]
fn a_line_per_url_and_exit_0_when_all_complete() {
    let server = Server::start(|request| match request.target.as_str() {
        "/page" => ok(&[b'p'; 1234]),
        "/missing" => Reply::status("404 Not Found", "", b"not found"),
        "/moved" => Reply::status("301 Moved Permanently", "Location: /page\r\n", b"elsewhere"),
        "/empty" => Reply::raw(&b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..]),
    });
    let urls = ["/page", "/missing", "/moved", "/empty", "/chunked"].map(|p| server.url(p));
    let output = fetch(&urls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.lines().len(), 5, "{output:?}");
    let expected = [(200, 1234), (404, 9), (200, 1234), (204, 0), (200, 3)];
    for (url, (status, bytes)) in urls.iter().zip(expected) {
        let line = output.line_for(url);
        let (got_status, got_bytes, seconds, got_url) =
            parse_line(line).unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!((got_status, got_bytes, got_url), (status, bytes, url.as_str()), "{line}");
        assert!((0.0..5.0).contains(&seconds), "{line}");
    }
    assert!(output.stderr.contains("5 URLs: 5 complete, 0 failed"), "{}", output.stderr);
}

#[test]
fn failures_print_err_lines_and_exit_1() {
    let server = Server::start(|request| match request.target.as_str() {
        "/good" => ok(b"fine"),
        "/garbage" => Reply::raw(&b"220 smtp.example.com ESMTP\r\n\r\n"[..]).hang(),
        "/cut" => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."[..]).close(),
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"[..]),
    });
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port())
    };
    let urls = [
        server.url("/good"),
        server.url("/garbage"),
        server.url("/cut"),
        server.url("/conflict"),
        refused,
        "ftp://127.0.0.1/".to_string(),
        "no-scheme".to_string(),
    ];
    let output = fetch(&urls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.lines().len(), urls.len(), "{output:?}");
    assert_eq!(parse_line(output.line_for(&urls[0])).map(|l| (l.0, l.1)), Some((200, 4)));
    let reasons = [
        "not HTTP",
        "connection closed before the body was complete",
        "conflicting Content-Length",
        "cannot connect",
        "unsupported scheme",
        "invalid URL",
    ];
    for (url, reason) in urls[1..].iter().zip(reasons) {
        let line = output.line_for(url);
        assert!(line.starts_with("ERR ") && line.contains(reason), "{url}: {line:?} should say {reason:?}");
    }
    assert!(output.stderr.contains("7 URLs: 1 complete, 6 failed"), "{}", output.stderr);
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["-c"][..],
        &["-c", "many", "http://127.0.0.1:1/"],
        &["-t", "0", "http://127.0.0.1:1/"],
        &["-t", "-1", "http://127.0.0.1:1/"],
        &["-t", "soon", "http://127.0.0.1:1/"],
        &["--max-redirects", "-1", "http://127.0.0.1:1/"],
        &["-o"],
        &["--bogus", "http://127.0.0.1:1/"],
        &["--help"],
    ] {
        let output = fetch(args);
        assert_eq!(output.code, Some(2), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        assert!(output.stderr.contains("usage: fetch"), "{args:?}: {output:?}");
    }
}

#[test]
fn output_dir_gets_byte_exact_bodies_in_argument_order() {
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    let served = binary.clone();
    let server = Server::start(move |request| {
        match request.target.as_str() {
        "/binary" => ok(&served),
        "/chunked" => Reply::raw(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n\r\n\x00\xff\r\n0\r\nT: 1\r\n\r\n"[..],
        ),
        "/close" => Reply::raw(&b"HTTP/1.0 200 OK\r\n\r\nuntil close\n"[..]).close(),
        "/empty" => ok(b""),
        "/redirect" => Reply::status("302 Found", "Location: /final\r\n", b"the redirect's own body"),
        "/final" => ok(b"final body"),
        _ => Reply::status("404 Not Found", "", b"no such page"),
    }
    });
    let paths = ["/binary", "/chunked", "/close", "/empty", "/redirect", "/nothing-here"];
    let urls = paths.map(|p| server.url(p));
    let dir = TempDir::new("output");
    let out = dir.0.join("nested").join("dir");
    let mut args = vec!["-o", out.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let output = fetch(&args);
    assert_eq!(output.code, Some(0), "{output:?}");
    let expected: [&[u8]; 6] =
        [&binary, b"\r\n\x00\xff", b"until close\n", b"", b"final body", b"no such page"];
    for (i, body) in expected.iter().enumerate() {
        let written =
            std::fs::read(out.join(i.to_string())).unwrap_or_else(|e| panic!("{}/{i}: {e}", out.display()));
        assert!(written == *body, "{}/{i} ({}) differs: {} bytes", out.display(), paths[i], written.len());
    }
    let files = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(files, paths.len(), "one file per URL");
}

#[test]
fn concurrency_limit() {
    let server = Server::start(|request| ok(request.target.as_bytes()).delay(Duration::from_millis(150)));
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/{i}"))).collect();
    let mut args = vec!["-c", "2"];
    args.extend(urls.iter().map(String::as_str));
    let output = fetch(&args);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.lines().len(), 6);
    assert_eq!(server.max_in_flight(), 2, "-c 2: at most 2 requests in flight, and 2 used");
    assert!(output.elapsed >= Duration::from_millis(450), "three rounds of 150 ms: {:?}", output.elapsed);
}

#[test]
fn default_concurrency_is_10() {
    let server = Server::start(|request| ok(request.target.as_bytes()).delay(Duration::from_millis(150)));
    let urls: Vec<String> = (0..12).map(|i| server.url(&format!("/{i}"))).collect();
    let output = fetch(&urls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(server.max_in_flight(), 10);
}

#[test]
fn timeout_ends_hanging_urls_with_err() {
    let server = Server::start(|request| match request.target.as_str() {
        "/good" => ok(b"fine"),
        // The head never comes.
        "/silent" => Reply::raw(Vec::new()).hang(),
        // The head comes, the body stalls.
        _ => Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstalled"[..]).hang(),
    });
    let urls = ["/good", "/silent", "/stalled-body"].map(|p| server.url(p));
    let mut args = vec!["-t", "0.5"];
    args.extend(urls.iter().map(String::as_str));
    let output = fetch(&args);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.elapsed < Duration::from_secs(3), "took {:?}", output.elapsed);
    assert_eq!(parse_line(output.line_for(&urls[0])).map(|l| (l.0, l.1)), Some((200, 4)));
    for url in &urls[1..] {
        let line = output.line_for(url);
        assert!(line.starts_with("ERR ") && line.contains("timed out"), "{line:?}");
    }
}

#[test]
fn max_redirects() {
    let server = Server::start(|request| {
        let n: usize = request.target.trim_start_matches("/chain/").parse().unwrap_or(0);
        if n == 0 {
            ok(b"arrived")
        } else {
            Reply::status("302 Found", &format!("Location: /chain/{}\r\n", n - 1), b"")
        }
    });
    let (two, three) = (server.url("/chain/2"), server.url("/chain/3"));
    let output = fetch(&["--max-redirects", "2", &two, &three]);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(parse_line(output.line_for(&two)).map(|l| (l.0, l.1)), Some((200, 7)));
    let line = output.line_for(&three);
    assert!(line.starts_with("ERR ") && line.contains("more than 2 redirects"), "{line:?}");
    let output = fetch(&["--max-redirects", "0", &two]);
    assert!(output.line_for(&two).contains("more than 0 redirects"), "{output:?}");
}

#[test]
fn demo_fetches_20_slow_pages_at_once() {
    let output = fetch(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 20, "{output:?}");
    let mut pages: Vec<usize> = lines
        .iter()
        .map(|line| {
            let (status, bytes, _, url) = parse_line(line).unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!(status, 200, "{line}");
            assert!(bytes > 0, "{line}");
            url.rsplit_once("/page/").and_then(|(_, n)| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
        })
        .collect();
    pages.sort_unstable();
    assert_eq!(pages, (1..=20).collect::<Vec<_>>());
    assert!(output.elapsed < Duration::from_secs(5), "took {:?}", output.elapsed);
    assert!(output.stderr.contains("20 URLs: 20 complete, 0 failed"), "{}", output.stderr);
}

// ---------------------------------------------------------------------------------------
// Hostile round 6: file descriptors, names that do not resolve, trickled bodies, files

/// Runs fetch with `args` under a limit of `fds` open files, killed (and the test failed)
/// after [`LIMIT`].
fn fetch_with_fd_limit(fds: u32, args: &[&str]) -> process::Output {
    process::run_with_open_file_limit("fetch", fds, args, LIMIT)
}

/// Asserts that every URL got a 200 with body `body`, and the summary says so.
fn assert_all_fetched(output: &process::Output, urls: &[String], body: &[u8]) {
    let errors: Vec<&str> = output.lines().into_iter().filter(|l| l.starts_with("ERR")).take(3).collect();
    assert!(errors.is_empty(), "{} URLs failed, such as {errors:?}", output.stderr);
    assert_eq!(output.code, Some(0), "{output:?}");
    for url in urls {
        let line = output.line_for(url);
        assert_eq!(parse_line(line).map(|l| (l.0, l.1)), Some((200, body.len() as u64)), "{line}");
    }
    let summary = format!("{} URLs: {} complete, 0 failed", urls.len(), urls.len());
    assert!(output.stderr.contains(&summary), "{}", output.stderr);
}

#[test]
fn many_hosts_under_a_low_open_file_limit_all_complete() {
    // 200 hosts (ports) under `ulimit -n 100`, 10 at a time: the pool used to keep every
    // host's connection until its idle timeout, and from about the 90th host on, each
    // connect failed with "Too many open files". It now keeps at most 10 idle in all.
    let servers: Vec<Server> = (0..200).map(|_| Server::start(|_| ok(b"host"))).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url("/")).collect();
    let output = fetch_with_fd_limit(100, &urls.iter().map(String::as_str).collect::<Vec<_>>());
    assert_all_fetched(&output, &urls, b"host");
}

#[test]
fn a_concurrency_above_the_open_file_limit_waits_for_descriptors_instead_of_failing() {
    // -c 300 under `ulimit -n 64`: a connect that finds no descriptor left waits for
    // another fetch to end (or closes an idle connection) and tries again, where it used to
    // fail the URL at once with "cannot connect: Too many open files".
    let server = Server::start(|request| ok(&request.target.as_bytes()[..4]));
    let urls: Vec<String> = (0..300).map(|i| server.url(&format!("/{i:03}"))).collect();
    let mut args = vec!["-c", "300"];
    args.extend(urls.iter().map(String::as_str));
    let output = fetch_with_fd_limit(64, &args);
    assert_all_fetched(&output, &urls, b"/000");
}

#[test]
fn a_name_that_does_not_resolve_fails_alone_and_says_so() {
    let server = Server::start(|_| ok(b"fine"));
    let (bad, good) = ("http://no-such-host.invalid/".to_string(), server.url("/good"));
    let output = fetch(&[&bad, &good]);
    assert_eq!(output.code, Some(1), "{output:?}");
    let line = output.line_for(&bad);
    assert!(line.starts_with("ERR cannot resolve host: "), "{line:?}");
    assert_eq!(parse_line(output.line_for(&good)).map(|l| (l.0, l.1)), Some((200, 4)));
}

#[test]
fn a_body_trickled_under_the_read_timeout_is_ended_by_t() {
    // One byte every 50 ms never lets `read_timeout` (30 s) fire; `-t` bounds the URL as a
    // whole. The server stops by itself once its writes fail (fetch has gone).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/trickle", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        while stream.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let output = fetch(&["-t", "1", &url]);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.line_for(&url), format!("ERR timed out after 1 s {url}"));
    assert!(output.elapsed < Duration::from_secs(5), "took {:?}", output.elapsed);
    server.join().unwrap();
}

#[test]
fn an_output_file_that_cannot_be_written_is_named_and_is_no_connection_error() {
    let server = Server::start(|_| ok(b"body"));
    let dir = TempDir::new("unwritable");
    std::fs::create_dir_all(dir.0.join("0.part")).unwrap();
    let url = server.url("/page");
    let output = fetch(&["-o", dir.0.to_str().unwrap(), &url]);
    assert_eq!(output.code, Some(1), "{output:?}");
    let line = output.line_for(&url);
    let expected = format!("ERR cannot write {}: ", dir.0.join("0.part").display());
    assert!(line.starts_with(&expected), "{line:?} should start {expected:?}");
}

#[test]
fn help_documents_the_options_and_the_concurrency_bound() {
    let output = fetch(&["--help"]);
    for text in ["-c N", "default 10", "file descriptors", "-t SECS", "-o DIR", "--max-redirects N"] {
        assert!(output.stderr.contains(text), "--help does not say {text:?}: {}", output.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// Running the examples as processes

#[path = "support/example_process.rs"]
mod process;

// ---------------------------------------------------------------------------------------
// The scripted server

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/scripted_http.rs"]
mod server;
