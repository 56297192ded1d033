//! Fetch many URLs at once.
//!
//! ```text
//! cargo run --release --example fetch -- [-c N] [-t SECS] [-o DIR] [--max-redirects N] URL...
//! cargo run --release --example fetch                 # demo: 20 slow pages served locally
//! cargo run --release --example fetch -- --sequential # the same demo, one page at a time
//! ```
//!
//! - at most N fetches in flight (default 10), each within SECS seconds in all (default 30);
//!   each holds one connection, and at most N idle ones are kept for reuse, so about 2N
//!   file descriptors are used whatever the number of URLs or hosts; a fetch that finds
//!   none left waits for another to end (see `fetch --help`);
//! - a line per URL as it completes: `<status> <bytes> <seconds>s <url>`, or
//!   `ERR <reason> <url>`; a summary on stderr;
//! - `-o DIR` streams the final body of the i-th URL (0-based) to `DIR/i.part`, renamed to
//!   `DIR/i` once complete and removed if the fetch fails: `DIR/i` only ever holds a whole
//!   body;
//! - exit status 0 when every URL got a complete HTTP response (any status), else 1;
//!   2 for a bad command line.
//!
//! With no URL it starts an HTTP server on 127.0.0.1, on the same loop, whose 20 pages each
//! take one second to answer, and fetches them all at once: about 1 s in all. With
//! `--sequential` it fetches them one by one: about 20 s. This is the comparison our
//! reference material makes between a loop and a plain loop of requests.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::http::{Client, ClientOptions, HttpError};
use evloop::streams::{start_server, StreamReader, StreamWriter};
use evloop::sync::Semaphore;

const USAGE: &str = "\
usage: fetch [-c N] [-t SECS] [-o DIR] [--max-redirects N] [--sequential] [URL...]
  -c N               at most N URLs in flight at once (default 10). Each holds one
                     connection and at most N idle ones are kept for reuse, so about 2N
                     file descriptors are open however many URLs and hosts; a fetch that
                     finds none left waits for another fetch to end.
  -t SECS            time allowed for each URL, head and body together (default 30)
  -o DIR             write the body of the i-th URL (from 0) to DIR/i, only once whole
  --max-redirects N  redirects followed for each URL (default 10)
  --sequential       one URL at a time (as -c 1)
Prints `<status> <bytes> <seconds>s <url>` or `ERR <reason> <url>` for each URL as it
ends; exit status 0 if every URL got a whole response, 1 if not, 2 for a bad command line.
With no URL, fetches 20 slow pages from a server it starts on 127.0.0.1.";
const DEMO_PAGES: usize = 20;
const DEMO_DELAY: Duration = Duration::from_secs(1);

struct Options {
    concurrency: Option<usize>,
    timeout: Duration,
    output: Option<PathBuf>,
    max_redirects: usize,
    sequential: bool,
    urls: Vec<String>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        concurrency: None,
        timeout: Duration::from_secs(30),
        output: None,
        max_redirects: 10,
        sequential: false,
        urls: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-c" => options.concurrency = Some(parse_number(&value("-c")?, "-c")?.max(1)),
            "-t" => {
                let secs: f64 =
                    value("-t")?.parse().map_err(|_| "-t needs a number of seconds".to_string())?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err("-t needs a positive number of seconds".to_string());
                }
                options.timeout = Duration::from_secs_f64(secs);
            }
            "-o" => options.output = Some(PathBuf::from(value("-o")?)),
            "--max-redirects" => {
                options.max_redirects = parse_number(&value("--max-redirects")?, "--max-redirects")?
            }
            "--sequential" => options.sequential = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') && flag.len() > 1 => return Err(format!("unknown option {flag}")),
            url => options.urls.push(url.to_string()),
        }
    }
    Ok(options)
}

fn parse_number(text: &str, name: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("{name} needs a whole number, not {text:?}"))
}

/// What one URL came to.
enum Outcome {
    Done { status: u16, bytes: u64 },
    Failed(String),
}

/// Fetches `url` and reads its body to the end, streaming it to `output`'s partial file
/// (see [`partial`]) if given, and renaming that to `output` once the body is complete.
/// The error says what failed: the fetch (as the client's error says it), or the file,
/// named, which is no "connection error".
async fn fetch_one(client: &Client, url: &str, output: Option<&Path>) -> Result<(u16, u64), String> {
    let http_error = |e: HttpError| e.kind.to_string();
    let mut response = client.get(url).await.map_err(http_error)?;
    let status = response.status();
    let mut file = match output {
        Some(path) => {
            let part = partial(path);
            Some(std::fs::File::create(&part).map_err(file_error(&part))?)
        }
        None => None,
    };
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(http_error)? {
        bytes += chunk.len() as u64;
        if let (Some(file), Some(path)) = (file.as_mut(), output) {
            file.write_all(&chunk).map_err(file_error(&partial(path)))?;
        }
    }
    if let Some(path) = output {
        std::fs::rename(partial(path), path).map_err(file_error(path))?;
    }
    Ok((status, bytes))
}

/// The error for a failed write of `path`, naming it.
fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("cannot write {}: {e}", path.display())
}

/// Where a body is written while it arrives: `path` with `.part` appended. A fetch that
/// fails (a body cut short, an endless body stopped by the time limit) leaves no file
/// that could be taken for a whole body.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Fetches every URL, at most `concurrency` at a time, printing each as it completes.
async fn fetch_all(options: Options, concurrency: usize) -> usize {
    let client = Client::with_options(ClientOptions {
        max_redirects: options.max_redirects,
        timeout: options.timeout,
        per_host_limit: concurrency,
        total_limit: concurrency,
        ..ClientOptions::default()
    });
    let slots = Rc::new(Semaphore::new(concurrency));
    let failures = Rc::new(Cell::new(0));
    let fetches = options.urls.iter().enumerate().map(|(i, url)| {
        let (client, slots, failures, url) = (client.clone(), slots.clone(), failures.clone(), url.clone());
        let output = options.output.as_ref().map(|dir| dir.join(i.to_string()));
        let limit = options.timeout;
        async move {
            let _slot = slots.acquire().await;
            let started = Instant::now();
            let outcome = match evloop::wait_for(fetch_one(&client, &url, output.as_deref()), limit).await {
                Ok(Ok((status, bytes))) => Outcome::Done { status, bytes },
                Ok(Err(reason)) => Outcome::Failed(reason),
                Err(_) => Outcome::Failed(format!("timed out after {} s", limit.as_secs_f64())),
            };
            if let (Outcome::Failed(_), Some(path)) = (&outcome, &output) {
                // The partial body goes, and so does a whole one left by an earlier run.
                let _ = std::fs::remove_file(partial(path));
                let _ = std::fs::remove_file(path);
            }
            match outcome {
                Outcome::Done { status, bytes } => {
                    println!("{status} {bytes} {:.3}s {url}", started.elapsed().as_secs_f64())
                }
                Outcome::Failed(reason) => {
                    failures.set(failures.get() + 1);
                    println!("ERR {} {url}", reason.replace('\n', " "));
                }
            }
        }
    });
    if options.sequential {
        for fetch in fetches {
            fetch.await;
        }
    } else {
        let fetches: Vec<_> = fetches.collect();
        let _ = evloop::gather(fetches).await;
    }
    failures.get()
}

/// The demo's server: every request waits `DEMO_DELAY`, then gets a small page.
async fn serve_slowly(reader: StreamReader, writer: StreamWriter) {
    while let Ok(head) = reader.readuntil(b"\r\n\r\n").await {
        let path = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or("/").to_string();
        evloop::sleep(DEMO_DELAY).await;
        let body = format!("<html><body>This is page {path}, served after {DEMO_DELAY:?}.</body></html>\n");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write(response.as_bytes());
        if writer.drain().await.is_err() {
            return;
        }
    }
    writer.close();
}

async fn main_coroutine(mut options: Options) -> Result<usize, String> {
    let demo = options.urls.is_empty();
    let _server = if demo {
        let server =
            start_server(serve_slowly, "127.0.0.1", 0).await.map_err(|e| format!("demo server: {e}"))?;
        let address = server.addresses()[0].clone();
        options.urls = (1..=DEMO_PAGES).map(|i| format!("http://{address}/page/{i}")).collect();
        eprintln!(
            "demo: {DEMO_PAGES} pages on {address}, each answered after {DEMO_DELAY:?}, fetched {}",
            if options.sequential { "one by one" } else { "all at once" }
        );
        Some(server)
    } else {
        None
    };
    let concurrency = match options.concurrency {
        Some(n) => n,
        None if demo => DEMO_PAGES,
        None => 10,
    };
    let concurrency = if options.sequential { 1 } else { concurrency };
    if let Some(dir) = &options.output {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(fetch_all(options, concurrency).await)
}

fn main() {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("fetch: {message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let count = options.urls.len().max(if options.urls.is_empty() { DEMO_PAGES } else { 0 });
    let started = Instant::now();
    let failures = match evloop::run(main_coroutine(options)) {
        Ok(Ok(failures)) => failures,
        Ok(Err(message)) => {
            eprintln!("fetch: {message}");
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("fetch: {error}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "{count} URLs: {} complete, {failures} failed, in {:.2} s",
        count - failures,
        started.elapsed().as_secs_f64()
    );
    std::process::exit(i32::from(failures > 0));
}
