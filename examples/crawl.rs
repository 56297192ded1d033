//! The crawler of the "500 Lines or Less" asyncio chapter, on evloop's primitives: a
//! `Queue` of URLs, N worker tasks, a seen-set.
//!
//! ```text
//! cargo run --release --example crawl -- ROOT_URL [--max-tasks N] [--max-pages N] [-t SECS]
//! cargo run --release --example crawl           # crawls a small site it serves itself
//! ```
//!
//! It follows `<a href>` links in `text/html` pages (relative references resolved per
//! RFC 3986, against the page's `<base href>` if it has one; links in comments and scripts
//! are no links, and a page in another encoding than UTF-8 keeps its bytes: see
//! `support/html_links.rs`), drops fragments, stays on the root's scheme, host and port,
//! follows redirects only when they stay there, and fetches each URL once. It prints
//! `<status> <url>` for every URL it fetched (as requested) or `ERR <reason> <url>`, one
//! line per URL, and a summary on stderr. A redirect whose `Location` the client refuses
//! (not a URI reference, or several that disagree) is an `ERR` line, as in fetch.
//!
//! A hostile site cannot stall or swamp it: each URL gets SECS seconds in all, head and
//! body (default 10), and a body longer than 10 MiB is an error rather than something to
//! hold in memory. A page that fails is not parsed for links.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::http::{Client, ClientOptions};
use evloop::streams::{start_server, StreamReader, StreamWriter};
use evloop::sync::Queue;
use url::Url;

#[path = "support/html_links.rs"]
mod html_links;

const USAGE: &str = "usage: crawl [ROOT_URL] [--max-tasks N] [--max-pages N] [-t SECS]";

/// The longest body read from one URL.
const MAX_PAGE: usize = 10 * 1024 * 1024;

struct Crawler {
    root: Url,
    client: Client,
    queue: Queue<Url>,
    seen: RefCell<HashSet<String>>,
    max_pages: usize,
    /// Time allowed for each URL, head and body.
    timeout: Duration,
    pages: Cell<usize>,
    errors: Cell<usize>,
}

impl Crawler {
    /// Same scheme, host and port as the root.
    fn in_scope(&self, url: &Url) -> bool {
        url.scheme() == self.root.scheme()
            && url.host_str() == self.root.host_str()
            && url.port_or_known_default() == self.root.port_or_known_default()
    }

    /// Queues `url` (fragment dropped) if it is in scope, new, and under the page limit.
    fn add(&self, mut url: Url) {
        url.set_fragment(None);
        if !self.in_scope(&url) || self.seen.borrow().len() >= self.max_pages {
            return;
        }
        if self.seen.borrow_mut().insert(url.as_str().to_string()) {
            let _ = self.queue.put_nowait(url);
        }
    }

    /// One worker: take a URL, fetch it, queue its links, mark it done.
    async fn work(self: Rc<Self>) {
        loop {
            let url = self.queue.get().await;
            self.fetch(&url).await;
            let _ = self.queue.task_done();
        }
    }

    /// Fetches `url` within the time limit and prints its one line: its status once its
    /// body has arrived whole, then queues its links; or `ERR`, and no link of it.
    async fn fetch(&self, url: &Url) {
        let outcome = match evloop::wait_for(self.visit(url), self.timeout).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {} s", self.timeout.as_secs_f64())),
        };
        match outcome {
            Ok((status, links)) => {
                println!("{status} {url}");
                self.pages.set(self.pages.get() + 1);
                for link in links {
                    self.add(link);
                }
            }
            Err(reason) => {
                self.errors.set(self.errors.get() + 1);
                println!("ERR {} {url}", reason.replace('\n', " "));
            }
        }
    }

    /// GETs `url`: its status and the URLs it leads to (a redirect's target, or an HTML
    /// page's links), or why it failed.
    async fn visit(&self, url: &Url) -> Result<(u16, Vec<Url>), String> {
        let mut response = self.client.get(url.as_str()).await.map_err(|e| e.kind.to_string())?;
        let status = response.status();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            // The client's reading of Location: relative references resolved, and a value
            // it would refuse to follow (not a URI reference, or fields that disagree) an
            // error here too, not a 3xx printed as if it led somewhere.
            let target = response.location().map_err(|e| e.kind.to_string())?;
            return Ok((status, target.into_iter().collect()));
        }
        let is_html =
            response.header("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
        let mut body = Vec::new();
        // Counted apart from `body`, which keeps HTML only: the limit is on every page.
        let mut received = 0;
        while let Some(chunk) = response.chunk().await.map_err(|e| e.kind.to_string())? {
            received += chunk.len();
            if received > MAX_PAGE {
                return Err(format!("page larger than {} MiB", MAX_PAGE / (1024 * 1024)));
            }
            if is_html {
                body.extend_from_slice(&chunk);
            }
        }
        // Links resolve against the page's first `<base href>`, itself resolved against the
        // page's URL (the HTML standard's base URL); the bytes stay bytes until then.
        let links = html_links::links(&body);
        let base = links.base.and_then(|href| url.join(&html_links::url_text(&href)).ok());
        let base = base.as_ref().unwrap_or(url);
        let links = links.hrefs.iter().filter_map(|href| base.join(&html_links::url_text(href)).ok());
        Ok((status, links.collect()))
    }
}

/// The demo site: a few pages linking to each other, with the things a crawler must get
/// right: relative links, fragments, a redirect, a page linked twice, an off-site link.
async fn serve_site(reader: StreamReader, writer: StreamWriter) {
    while let Ok(head) = reader.readuntil(b"\r\n\r\n").await {
        let path = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or("/").to_string();
        let (status, extra, body) = match path.as_str() {
            "/" => (
                "200 OK",
                "",
                r#"<a href="/a">A</a> <a href='b'>B</a> <a href="/a#top">A again</a> <a href="http://example.com/">off site</a>"#,
            ),
            "/a" => ("200 OK", "", r#"<a href="/c">C</a> <A HREF="/old">old</A>"#),
            "/b" => ("200 OK", "", r#"<a href="./c?x=1&amp;y=2">C with a query</a>"#),
            "/c" => ("200 OK", "", "the end"),
            "/c?x=1&y=2" => ("200 OK", "", r#"<a href="/">home</a>"#),
            "/old" => ("301 Moved Permanently", "Location: /new\r\n", ""),
            "/new" => ("200 OK", "", "moved here"),
            _ => ("404 Not Found", "", "no such page"),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write(response.as_bytes());
        if writer.drain().await.is_err() {
            return;
        }
    }
    writer.close();
}

struct Options {
    root: Option<String>,
    max_tasks: usize,
    max_pages: usize,
    timeout: Duration,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options =
        Options { root: None, max_tasks: 10, max_pages: 1000, timeout: Duration::from_secs(10) };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            value.parse().map_err(|_| format!("{name} needs a whole number, not {value:?}"))
        };
        match arg.as_str() {
            "--max-tasks" => options.max_tasks = number("--max-tasks")?.max(1),
            "--max-pages" => options.max_pages = number("--max-pages")?,
            "-t" => {
                let value = args.next().ok_or("-t needs a value")?;
                let secs: f64 =
                    value.parse().map_err(|_| format!("-t needs a number of seconds, not {value:?}"))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err("-t needs a positive number of seconds".to_string());
                }
                options.timeout = Duration::from_secs_f64(secs);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            root if options.root.is_none() => options.root = Some(root.to_string()),
            extra => return Err(format!("only one ROOT_URL, not also {extra:?}")),
        }
    }
    Ok(options)
}

async fn crawl(options: Options) -> Result<(usize, usize), String> {
    let _server;
    let root = match options.root {
        Some(root) => root,
        None => {
            let server =
                start_server(serve_site, "127.0.0.1", 0).await.map_err(|e| format!("demo site: {e}"))?;
            let root = format!("http://{}/", server.addresses()[0]);
            eprintln!("demo: crawling a small site served on {root}");
            _server = server;
            root
        }
    };
    let root = Url::parse(&root).map_err(|e| format!("{root}: {e}"))?;
    if root.scheme() != "http" || root.host().is_none() {
        return Err(format!("{root}: only http:// URLs with a host can be crawled"));
    }
    let crawler = Rc::new(Crawler {
        client: Client::with_options(ClientOptions {
            follow_redirects: false,
            timeout: options.timeout,
            per_host_limit: options.max_tasks,
            total_limit: options.max_tasks,
            ..ClientOptions::default()
        }),
        root: root.clone(),
        queue: Queue::new(0),
        seen: RefCell::new(HashSet::new()),
        max_pages: options.max_pages,
        timeout: options.timeout,
        pages: Cell::new(0),
        errors: Cell::new(0),
    });
    crawler.add(root);
    let workers: Vec<_> =
        (0..options.max_tasks).map(|_| evloop::create_task(crawler.clone().work())).collect();
    crawler.queue.join().await;
    for worker in &workers {
        worker.cancel();
    }
    Ok((crawler.pages.get(), crawler.errors.get()))
}

fn main() {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("crawl: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    match evloop::run(crawl(options)) {
        Ok(Ok((pages, errors))) => {
            eprintln!("{pages} pages, {errors} errors, in {:.2} s", started.elapsed().as_secs_f64());
            std::process::exit(i32::from(errors > 0));
        }
        Ok(Err(message)) => {
            eprintln!("crawl: {message}");
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("crawl: {error}");
            std::process::exit(1);
        }
    }
}
