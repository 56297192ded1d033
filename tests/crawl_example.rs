//! The crawl example (`examples/crawl.rs`) run as a process against a scripted local
//! site: the set of URLs it prints is exactly the site's reachable in-scope set, each
//! fetched once; `--max-pages`, `--max-tasks`, bad command lines, and the demo.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use server::{Reply, Server};

/// No run of the example may take longer.
const LIMIT: Duration = Duration::from_secs(15);

fn crawl(args: &[&str]) -> process::Output {
    process::run("crawl", args, LIMIT)
}

fn html(body: &str) -> Reply {
    Reply::status("200 OK", "Content-Type: text/html; charset=utf-8\r\n", body.as_bytes())
}

/// The printed `<status> <url>` lines as path-and-query → status, checking that each URL
/// is printed once and lies on `origin`.
fn printed(output: &process::Output, origin: &str) -> BTreeMap<String, u16> {
    let mut pages = BTreeMap::new();
    for line in output.lines() {
        let (status, url) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let status: u16 = status.parse().unwrap_or_else(|_| panic!("not `<status> <url>`: {line:?}"));
        let path = url.strip_prefix(origin).unwrap_or_else(|| panic!("{line:?} is not on {origin}"));
        assert!(pages.insert(path.to_string(), status).is_none(), "{url} printed twice");
    }
    pages
}

/// Two servers: the site, and another on a different port that must never be asked.
struct Site {
    site: Server,
    other: Server,
}

impl Site {
    fn start() -> Site {
        let other = Server::start(|_| html(r#"<a href="/">nothing to crawl here</a>"#));
        let other_port = other.addr.port();
        let own_port = Arc::new(AtomicU16::new(0));
        let port = own_port.clone();
        let site = Server::start(move |request| {
            let own = port.load(Ordering::SeqCst);
            match request.target.as_str() {
                "/" => html(&format!(
                    r##"<html><body>
                    <a href="/a">A</a> <a href='b'>B</a> <a href="/a#top">A again</a>
                    <a href="http://127.0.0.1:{other_port}/off">another port</a>
                    <a href="http://localhost:{own}/">another host name</a>
                    <a href="https://127.0.0.1:{own}/">another scheme</a>
                    <a href="/doc.txt">text</a> <a href="/moved">moved</a> <a href="/away">away</a>
                    <a href="q?x=1&amp;y=2">query</a> <A HREF=/upper>upper case</A>
                    <a href="/missing">missing</a> <a href="mailto:someone@example.com">mail</a>
                    <a href="#section">this page</a> <a href="http://127.0.0.1:{own}/abs">absolute</a>
                    </body></html>"##
                )),
                "/a" => html(
                    r#"<a href="/">home</a> <a href="b">b</a> <a href="./c#frag">c</a> <a href="/a">self</a>"#,
                ),
                "/b" => html(r#"<a href="/c?k=v">c with a query</a> <a href="../a">a</a>"#),
                "/c" => html(r#"<p>C links to <a href="/a">a</a></p>"#),
                "/c?k=v" => html(r#"<a href="/">home</a> <a href="sub/deep">deep</a>"#),
                "/sub/deep" => html(r#"<a href="../a">up</a> <a href="../c?k=v#x">again</a>"#),
                "/doc.txt" => Reply::status(
                    "200 OK",
                    "Content-Type: text/plain\r\n",
                    br#"not HTML, so not parsed: <a href="/never">never</a>"#,
                ),
                "/moved" => Reply::status("301 Moved Permanently", "Location: /landing\r\n", b""),
                "/landing" => html(r#"<a href="/a">a</a>"#),
                "/away" => Reply::status(
                    "302 Found",
                    &format!("Location: http://127.0.0.1:{other_port}/redirected\r\n"),
                    b"",
                ),
                "/q?x=1&y=2" => html("no links"),
                "/upper" => html(""),
                "/abs" => html(r#"<a href="/a">a</a>"#),
                "/missing" => Reply::status("404 Not Found", "Content-Type: text/html\r\n", b"no such page"),
                _ => Reply::status("500 Internal Server Error", "", b"this page must not be fetched"),
            }
        });
        own_port.store(site.addr.port(), Ordering::SeqCst);
        Site { site, other }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.site.addr)
    }
}

/// What the site links to, in scope, with the status each page answers.
const REACHABLE: [(&str, u16); 14] = [
    ("/", 200),
    ("/a", 200),
    ("/abs", 200),
    ("/away", 302),
    ("/b", 200),
    ("/c", 200),
    ("/c?k=v", 200),
    ("/doc.txt", 200),
    ("/landing", 200),
    ("/missing", 404),
    ("/moved", 301),
    ("/q?x=1&y=2", 200),
    ("/sub/deep", 200),
    ("/upper", 200),
];

fn reachable() -> BTreeMap<String, u16> {
    REACHABLE.iter().map(|(path, status)| (path.to_string(), *status)).collect()
}

fn check_full_crawl(max_tasks: &str) {
    let site = Site::start();
    let root = site.site.url("/");
    let output = crawl(&[&root, "--max-tasks", max_tasks]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(printed(&output, &site.origin()), reachable(), "{output:?}");
    // Each page was fetched exactly once, and nothing else.
    let mut asked: Vec<String> = site.site.requests().into_iter().map(|r| r.target).collect();
    asked.sort();
    let expected: Vec<String> = reachable().into_keys().collect();
    assert_eq!(asked, expected);
    assert_eq!(site.other.requests().len(), 0, "the other port was never asked");
    assert_eq!(site.other.accepts(), 0);
    assert!(output.stderr.contains("14 pages, 0 errors"), "{}", output.stderr);
}

#[test]
fn crawls_exactly_the_reachable_in_scope_set() {
    check_full_crawl("10");
}

#[test]
fn one_worker_crawls_the_same_set() {
    check_full_crawl("1");
}

#[test]
fn max_pages_limits_the_crawl() {
    let site = Site::start();
    let root = site.site.url("/");
    let output = crawl(&[&root, "--max-pages", "5"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let pages = printed(&output, &site.origin());
    assert_eq!(pages.len(), 5, "{output:?}");
    assert_eq!(pages.get("/"), Some(&200));
    let all = reachable();
    assert!(pages.iter().all(|(path, status)| all.get(path) == Some(status)), "{pages:?}");
    assert_eq!(site.site.requests().len(), 5);
}

#[test]
fn a_root_without_a_trailing_slash_and_an_unreachable_root() {
    let site = Site::start();
    let output = crawl(&[&site.origin(), "--max-pages", "1"]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert_eq!(output.lines(), [format!("200 {}/", site.origin())]);

    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port())
    };
    let output = crawl(&[&refused]);
    assert_eq!(output.code, Some(1), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].starts_with("ERR ") && lines[0].ends_with(&refused), "{output:?}");
}

#[test]
fn href_is_the_attribute_not_any_substring() {
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r#"<a data-href="/decoy" href="/real">x</a> <a title="see href=/decoy2" href='/real2'>y</a>"#,
        ),
        _ => html(""),
    });
    let output = crawl(&[&server.url("/")]);
    let pages: BTreeSet<String> = printed(&output, &format!("http://{}", server.addr)).into_keys().collect();
    assert_eq!(pages, BTreeSet::from(["/", "/real", "/real2"].map(String::from)));
}

/// Crawls `server` from `/` and checks that it succeeded, printed one line per request,
/// and asked for exactly the `expected` targets, in any order.
fn assert_crawled(server: &Server, expected: &[&str]) {
    let output = crawl(&["-t", "5", &server.url("/")]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let mut targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    targets.sort();
    assert_eq!(output.lines().len(), targets.len(), "{output:?}");
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(targets, expected);
}

#[test]
fn links_resolve_against_the_first_base_href() {
    // HTML: the document's base URL is the href of its first <base> that has one,
    // resolved against the page's URL; relative links resolve against it. A <base> in a
    // comment is none, and a later one changes nothing.
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r##"<!-- <base href="/commented/"> --><head><base target="_blank"><BASE HREF="dir/sub/">
               <base href="/ignored/"></head>
               <a href="page">relative</a> <a href="../up?q=1">up</a> <a href="/absolute">absolute</a>
               <a href="">the base itself</a> <a href="#frag">the base again</a>"##,
        ),
        _ => html(""),
    });
    let expected = ["/", "/absolute", "/dir/sub/", "/dir/sub/page", "/dir/up?q=1"];
    assert_crawled(&server, &expected);
}

#[test]
fn link_bytes_of_a_page_not_in_utf8_are_percent_encoded_as_they_are() {
    // A Latin-1 page: `é` is the one byte E9. Decoding the page as UTF-8 made it U+FFFD
    // (%EF%BF%BD); the crawler now percent-encodes the link's bytes as the page has them,
    // in the path and the query, and resolves relative links the same way. UTF-8 pages
    // give what they always gave (%C3%A9).
    let server = Server::start(|request| {
        let latin1 =
            |body: &[u8]| Reply::status("200 OK", "Content-Type: text/html; charset=iso-8859-1\r\n", body);
        match request.target.as_str() {
            "/" => latin1(b"<a href=\"/caf\xe9?q=cr\xe8me\">caf\xe9</a> <a href='d\xe9j\xe0'>rel</a>"),
            "/utf8" => html("<a href=\"/caf\u{e9}-utf8\">x</a>"),
            _ => latin1(b"<a href=\"/utf8\">on</a>"),
        }
    });
    let expected = ["/", "/caf%E9?q=cr%E8me", "/caf%C3%A9-utf8", "/d%E9j%E0", "/utf8"];
    assert_crawled(&server, &expected);
}

#[test]
fn character_references_in_href_are_decoded() {
    // HTML attribute values: numeric and named references are decoded (&amp; and the
    // rest); a legacy name without its `;` is decoded only when no letter, digit or `=`
    // follows, so `&copy=2` is a query parameter, not a copyright sign.
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r#"<a href="/ref?a=1&amp;b=2&#38;c=3&#x26;d=4&AMP;e">refs</a>
               <a href="/legacy?x=1&copy=2&amp=3">legacy</a>
               <a href="/caf&#233;">numeric</a> <a href="/q&quot;uote&#39;s">quotes</a>"#,
        ),
        _ => html(""),
    });
    // `&AMP;` is not one of the names decoded (HTML's are case-sensitive, and it is
    // the upper-case legacy one): it stays, and the URL parser keeps it as it is.
    let expected =
        ["/", "/caf%C3%A9", "/legacy?x=1&copy=2&amp=3", "/q%22uote's", "/ref?a=1&b=2&c=3&d=4&AMP;e"];
    assert_crawled(&server, &expected);
}

#[test]
fn attribute_forms_and_case_are_read_as_a_browser_reads_them() {
    // Upper-case tags and names, single quotes, bare values, attributes split by
    // newlines or a `/`, and a duplicate href (the first wins).
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            "<A HREF='/single'>1</A> <a href=/bare>2</a> <a\nclass=x\nhref\n=\n\"/newlines\">3</a>\
             <a/href=\"/slash\">4</a> <a href=\"/first\" href=\"/second\">5</a> <a href = '/spaced' >6</a>",
        ),
        _ => html(""),
    });
    let expected = ["/", "/bare", "/first", "/newlines", "/single", "/slash", "/spaced"];
    assert_crawled(&server, &expected);
}

#[test]
fn links_in_comments_scripts_styles_and_attribute_values_or_to_other_schemes_are_not_followed() {
    // A comment, the text of <script>, <style>, <textarea> and <title>, and an attribute
    // value hold no tags; javascript:, mailto: and data: links are not fetched (nor are
    // they http). After each of them, a real link shows that the page goes on.
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r#"<title>a <a href="/in-title"> b</title> <a href="/after-title">t</a>
               <!-- <a href="/in-comment"> --> <a href="/after-comment">c</a>
               <!--> <a href="/after-empty-comment">e</a>
               <script>document.write('<a href="/in-script">')</script> <a href="/after-script">s</a>
               <SCRIPT type="text/x">"</scripty>"; <a href='/in-script2'></SCRIPT >
               <a href="/after-script2">s2</a>
               <style>/* <a href="/in-style"> */</style> <a href="/after-style">st</a>
               <textarea><a href="/in-textarea"></textarea> <img alt='<a href="/in-attribute">'>
               <a href="javascript:location='/js'">js</a> <a href="mailto:me@example.com">mail</a>
               <a href="data:text/html,<a href=/data>">data</a> <a href="/last">last</a>"#,
        ),
        _ => html(""),
    });
    let expected = [
        "/",
        "/after-comment",
        "/after-empty-comment",
        "/after-script",
        "/after-script2",
        "/after-style",
        "/after-title",
        "/last",
    ];
    assert_crawled(&server, &expected);
}

#[test]
fn pages_built_to_make_a_scanner_go_quadratic_are_read_in_one_pass() {
    // Pages of 2 MiB, each made of what a scanner would choke on if it searched again from
    // every `<` or `&`, or kept every attribute: a quadratic scan would take hours, so the
    // time limit of the run is a generous bound. A link after each filler shows that the
    // page was read to its end; after an attribute value that never ends, nothing is a
    // link, as in a browser.
    fn page(head: &str, filler: &str, tail: &str) -> Reply {
        html(&[head, &filler.repeat(2 * 1024 * 1024 / filler.len()), tail].concat())
    }
    let server = Server::start(|request| match request.target.as_str() {
        "/" => html(
            r#"<a href="/lt">1</a> <a href="/attrs">2</a> <a href="/script">3</a> <a href="/refs">4</a>
               <a href="/open">5</a>"#,
        ),
        "/lt" => page("", "<", r#"<a href="/after-lt">x</a>"#),
        "/attrs" => page("<a", " x y='z'", r#" href="/after-attrs">x</a>"#),
        "/script" => page("<script>", "</scrip<", r#"</script><a href="/after-script">x</a>"#),
        "/refs" => {
            page(r#"<a href="http://elsewhere.invalid/?"#, "&amp;&#38", r#"">x</a><a href="/after-refs">"#)
        }
        "/open" => page(r#"<a href="/before-open">x</a><a title='"#, "x<a href=/in-open> ", ""),
        _ => html(""),
    });
    let expected = [
        "/",
        "/after-attrs",
        "/after-lt",
        "/after-refs",
        "/after-script",
        "/attrs",
        "/before-open",
        "/lt",
        "/open",
        "/refs",
        "/script",
    ];
    assert_crawled(&server, &expected);
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["http://127.0.0.1:1/", "http://127.0.0.1:2/"][..],
        &["--max-tasks", "many"],
        &["--max-pages"],
        &["--bogus"],
    ] {
        let output = crawl(args);
        assert_eq!(output.code, Some(2), "{args:?}: {output:?}");
        assert!(output.stderr.contains("usage: crawl"), "{args:?}: {output:?}");
    }
    let output = crawl(&["ftp://127.0.0.1/"]);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn demo_crawls_its_own_site() {
    let output = crawl(&[]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let origin = output
        .lines()
        .first()
        .and_then(|line| line.split_once(' '))
        .and_then(|(_, url)| url.strip_suffix('/').map(|u| u.to_string()))
        .filter(|u| u.starts_with("http://127.0.0.1:"));
    // The root is fetched first; every other page comes later.
    let origin = origin.unwrap_or_else(|| panic!("the root first: {output:?}"));
    let pages = printed(&output, &origin);
    let expected: BTreeMap<String, u16> = [
        ("/", 200),
        ("/a", 200),
        ("/b", 200),
        ("/c", 200),
        ("/c?x=1&y=2", 200),
        ("/old", 301),
        ("/new", 200),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), *s))
    .collect();
    assert_eq!(pages, expected, "{output:?}");
    assert!(output.stderr.contains("7 pages, 0 errors"), "{}", output.stderr);
    assert!(output.elapsed < Duration::from_secs(5), "took {:?}", output.elapsed);
}

// ---------------------------------------------------------------------------------------
// Running the examples as processes

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/example_process.rs"]
mod process;

// ---------------------------------------------------------------------------------------
// The scripted server

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/scripted_http.rs"]
mod server;
