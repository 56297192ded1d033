//! The HTTP/1.1 client: requests over pooled keep-alive connections, redirects, time
//! limits, and responses read chunk by chunk.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use super::error::{HttpError, HttpErrorKind};
use super::parse::{self, BodyDecoder, Framing, ResponseHead};
use super::pool::{ConnectOptions, Connection, Pool, PoolKey, Progress};
use super::request;
use crate::sync::{Event, Semaphore};
use crate::tasks::wait_for;

/// How a [`Client`] behaves. `ClientOptions::default()` gives the values documented on
/// each field.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Follow redirects (default true); false returns the 3xx response itself (aiohttp's
    /// `allow_redirects=False`).
    pub follow_redirects: bool,
    /// Redirects followed before giving up with `TooManyRedirects` (default 10).
    pub max_redirects: usize,
    /// Time allowed to connect to a host (default 10 s).
    pub connect_timeout: Duration,
    /// Time allowed from sending a request to having the response head, redirects
    /// included (default 30 s). The body's total time is the caller's to limit (with
    /// `evloop::wait_for`); `read_timeout` limits each wait within it.
    pub timeout: Duration,
    /// The longest wait for more of a response body (default 30 s): a server that goes
    /// silent mid-body fails the read with `Timeout` instead of leaving it waiting for
    /// ever. It limits each wait, not the whole body, so a long download that keeps
    /// flowing is not cut off.
    pub read_timeout: Duration,
    /// Requests in flight to one host at once (default 10).
    pub per_host_limit: usize,
    /// Requests in flight in all (default 100).
    pub total_limit: usize,
    /// How long an idle kept-alive connection stays in the pool (default 30 s). The pool
    /// keeps at most `per_host_limit` idle connections for one host and `total_limit` in
    /// all, closing the oldest first, so a client holds at most twice `total_limit`
    /// connections open however many hosts it visits.
    pub idle_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Certificates (DER) trusted for https besides the webpki roots, e.g. a local test CA.
    pub extra_root_certificates: Vec<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            follow_redirects: true,
            max_redirects: 10,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            per_host_limit: 10,
            total_limit: 100,
            idle_timeout: Duration::from_secs(30),
            user_agent: concat!("evloop/", env!("CARGO_PKG_VERSION")).to_string(),
            extra_root_certificates: Vec::new(),
        }
    }
}

struct ClientInner {
    connect: ConnectOptions,
    options: ClientOptions,
    pool: Pool,
    total: Rc<Semaphore>,
    per_host: RefCell<HashMap<PoolKey, Rc<Semaphore>>>,
    /// Told each time a request of this client ends (its total permit is released): what
    /// a connect that ran out of file descriptors waits for.
    finished: Rc<Finished>,
}

/// Counts the requests that have ended, and wakes those waiting for the next to end.
#[derive(Default)]
struct Finished {
    count: Cell<u64>,
    /// Requests waiting in [`Client::open`] for another to end: they hold no connection.
    waiting: Cell<usize>,
    event: Event,
}

impl Finished {
    fn tell(&self) {
        self.count.set(self.count.get() + 1);
        self.event.set();
        self.event.clear();
    }
}

/// An HTTP/1.1 client with a connection pool (what aiohttp's `ClientSession` is to
/// asyncio). Cloning shares the pool and limits.
///
/// ```no_run
/// evloop::run(async {
///     let client = evloop::http::Client::new();
///     let response = client.get("http://127.0.0.1:8000/").await?;
///     println!("{} {}", response.status(), response.text().await?);
///     Ok::<(), evloop::http::HttpError>(())
/// }).unwrap().unwrap();
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Rc<ClientInner>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// A permit held for as long as a request is in flight: the semaphore is released when
/// the response is read to the end or dropped, and `finished`, if any, is told.
struct Permit(Rc<Semaphore>, Option<Rc<Finished>>);

impl Permit {
    async fn acquire(semaphore: &Rc<Semaphore>, finished: Option<&Rc<Finished>>) -> Permit {
        semaphore.acquire().await.forget();
        Permit(semaphore.clone(), finished.cloned())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
        if let Some(finished) = &self.1 {
            finished.tell();
        }
    }
}

impl Client {
    /// A client with the default options.
    pub fn new() -> Client {
        Client::with_options(ClientOptions::default())
    }

    /// A client with these options.
    pub fn with_options(options: ClientOptions) -> Client {
        let connect = ConnectOptions {
            limit: options.connect_timeout,
            #[cfg(feature = "tls")]
            tls: super::tls::client_config(&options.extra_root_certificates).map_err(|e| e.to_string()),
        };
        Client {
            inner: Rc::new(ClientInner {
                connect,
                pool: Pool::new(options.idle_timeout, options.per_host_limit, options.total_limit),
                total: Rc::new(Semaphore::new(options.total_limit.max(1))),
                per_host: RefCell::new(HashMap::new()),
                finished: Rc::default(),
                options,
            }),
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, HttpError> {
        self.request("GET", url, None).await
    }

    /// `HEAD url`: the response has no body.
    pub async fn head(&self, url: &str) -> Result<Response, HttpError> {
        self.request("HEAD", url, None).await
    }

    /// `POST url` with `body`.
    pub async fn post(&self, url: &str, body: Vec<u8>) -> Result<Response, HttpError> {
        self.request("POST", url, Some(body)).await
    }

    /// Sends `method url` (with `body`), follows redirects, and returns the final
    /// response once its head has arrived; read the body with [`Response::chunk`],
    /// [`Response::bytes`] or [`Response::text`].
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let limit = self.inner.options.timeout;
        match wait_for(self.follow_redirects(method, url, body), limit).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::new(url, HttpErrorKind::Timeout("waiting for the response"))),
        }
    }

    async fn follow_redirects(
        &self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let mut url = parse_url(url)?;
        let mut method = method.to_string();
        let mut body = body;
        for _ in 0..=self.inner.options.max_redirects {
            let response = self.send(&method, &url, body.as_deref()).await?;
            if !self.inner.options.follow_redirects {
                return Ok(response);
            }
            let target = response.redirect_target().map_err(|kind| HttpError::new(url.as_str(), kind))?;
            let Some((next, status)) = target else { return Ok(response) };
            drop(response);
            check_url(&next)?;
            // 303 (but for HEAD), and 301/302 after a POST, continue as GET, as browsers
            // and aiohttp do; 307 and 308 repeat the request as it was.
            if (status == 303 && method != "HEAD") || (matches!(status, 301 | 302) && method == "POST") {
                method = "GET".to_string();
                body = None;
            }
            url = next;
        }
        Err(HttpError::new(url.as_str(), HttpErrorKind::TooManyRedirects(self.inner.options.max_redirects)))
    }

    /// One request on one connection, and its response head. A kept-alive connection
    /// that the server closed while it sat in the pool fails before any byte of a
    /// response; then an idempotent request goes once more on a new connection, and any
    /// other fails (the server may have acted on it: RFC 9110 section 9.2.2, aiohttp).
    async fn send(&self, method: &str, url: &Url, body: Option<&[u8]>) -> Result<Response, HttpError> {
        let key = PoolKey::of(url).map_err(|kind| HttpError::new(url.as_str(), kind))?;
        let permits = (
            Permit::acquire(&self.inner.total, Some(&self.inner.finished)).await,
            Permit::acquire(&self.host_semaphore(&key), None).await,
        );
        let request = request::encode(method, url, &self.inner.options.user_agent, body);
        if let Some(connection) = self.inner.pool.take(&key) {
            match exchange(connection, method, &request).await {
                Ok((connection, head, framing)) => {
                    return Ok(self.response(url, key, connection, head, framing, permits))
                }
                Err(Exchange::Failed(kind)) => return Err(HttpError::new(url.as_str(), kind)),
                Err(Exchange::StaleConnection(error)) if !is_idempotent(method) => {
                    return Err(HttpError::new(url.as_str(), closed_without_response(error)))
                }
                Err(Exchange::StaleConnection(_)) => {}
            }
        }
        let connection = self.open(&key).await.map_err(|kind| HttpError::new(url.as_str(), kind))?;
        match exchange(connection, method, &request).await {
            Ok((connection, head, framing)) => {
                Ok(self.response(url, key, connection, head, framing, permits))
            }
            Err(Exchange::Failed(kind)) => Err(HttpError::new(url.as_str(), kind)),
            Err(Exchange::StaleConnection(error)) => {
                Err(HttpError::new(url.as_str(), closed_without_response(error)))
            }
        }
    }

    /// A new connection for `key`. Running out of file descriptors (EMFILE, ENFILE) is
    /// waited out while this client itself holds some it can give back: an idle pooled
    /// connection is closed, or else the next of its other requests to end is awaited,
    /// and the connect is tried again. It is an error only when neither is left: no idle
    /// connection, and no other request in flight but those waiting here too (the
    /// descriptors are held elsewhere). Each new try follows something given back, so this
    /// never spins, and the request's time limit bounds the whole wait. Without it, `-c
    /// 500` under `ulimit -n 256` failed most URLs at once with "Too many open files".
    async fn open(&self, key: &PoolKey) -> Result<Connection, HttpErrorKind> {
        let finished = &self.inner.finished;
        loop {
            let ended_before = finished.count.get();
            let error = match Box::pin(Connection::open(key, &self.inner.connect)).await {
                Err(error) if is_out_of_descriptors(&error) => error,
                result => return result,
            };
            if self.inner.pool.close_oldest() {
                // The socket closes in the loop's next iteration.
                crate::tasks::sleep(Duration::ZERO).await;
            } else if finished.count.get() == ended_before {
                let in_flight = self.inner.options.total_limit.max(1) - self.inner.total.available_permits();
                if in_flight <= 1 + finished.waiting.get() {
                    return Err(error);
                }
                finished.waiting.set(finished.waiting.get() + 1);
                let _waiting = Waiting(finished);
                finished.event.wait().await;
            }
        }
    }

    /// The response for `head`. Its connection goes back to the pool after the body only
    /// with a self-delimited body (a length, chunked, or none at all), without `close` in
    /// any Connection field, and over HTTP/1.1, or over HTTP/1.0 with `keep-alive` in one
    /// (RFC 9112 section 9.3) and no Transfer-Encoding (section 6.1: close after such a
    /// message).
    fn response(
        &self,
        url: &Url,
        key: PoolKey,
        connection: Connection,
        head: ResponseHead,
        framing: Framing,
        permits: (Permit, Permit),
    ) -> Response {
        let persistent = match head.version {
            0 => head.has_token("connection", "keep-alive") && head.header("transfer-encoding").is_none(),
            _ => true,
        };
        let reusable = persistent
            && !matches!(framing, Framing::UntilClose)
            && !head.has_token("connection", "close")
            && !is_204_declaring_a_body(&head);
        let body = BodyState {
            decoder: BodyDecoder::new(framing),
            close_delimited: framing == Framing::UntilClose,
            connection,
            reusable,
            client: self.inner.clone(),
            key,
            _permits: permits,
        };
        Response { url: url.clone(), head, body: Some(body) }
    }

    fn host_semaphore(&self, key: &PoolKey) -> Rc<Semaphore> {
        if let Some(semaphore) = self.inner.per_host.borrow().get(key) {
            return semaphore.clone();
        }
        let semaphore = Rc::new(Semaphore::new(self.inner.options.per_host_limit.max(1)));
        self.inner.per_host.borrow_mut().insert(key.clone(), semaphore.clone());
        semaphore
    }
}

/// Whether `head` is a 204 that declares a body: a Transfer-Encoding, or a Content-Length
/// other than 0, which a server must not send in a 204 (RFC 9110 section 8.6, RFC 9112
/// section 6.1). A 204 ends with its head (RFC 9112 section 6.3, rule 1), but a server
/// that thinks otherwise may send those bytes later, where the next response should
/// start; so its connection is not reused. (A 304 or a response to HEAD may carry both
/// fields by right: they describe the representation, not this message.)
fn is_204_declaring_a_body(head: &ResponseHead) -> bool {
    let is_zero = |value: &[u8]| !value.is_empty() && value.iter().all(|&b| b == b'0');
    head.status == 204
        && (head.header("transfer-encoding").is_some()
            || head.header("content-length").is_some_and(|v| !is_zero(v)))
}

/// The URL schemes this build can fetch.
#[cfg(feature = "tls")]
const SCHEMES: &[&str] = &["http", "https"];
#[cfg(not(feature = "tls"))]
const SCHEMES: &[&str] = &["http"];

/// Parses an absolute URL, refusing what this client cannot fetch.
pub(crate) fn parse_url(url: &str) -> Result<Url, HttpError> {
    let parsed =
        Url::parse(url).map_err(|e| HttpError::new(url, HttpErrorKind::InvalidUrl(e.to_string())))?;
    check_url(&parsed)?;
    Ok(parsed)
}

/// Refuses a URL this client cannot fetch: another scheme, or no host. Applied to every
/// redirect target too, so a `Location: ftp://...` is an error, not a GET sent there.
fn check_url(url: &Url) -> Result<(), HttpError> {
    if !SCHEMES.contains(&url.scheme()) {
        return Err(HttpError::new(url.as_str(), HttpErrorKind::UnsupportedScheme(url.scheme().to_string())));
    }
    if url.host().is_none() {
        return Err(HttpError::new(url.as_str(), HttpErrorKind::InvalidUrl("no host".to_string())));
    }
    Ok(())
}

/// One request counted in [`Finished::waiting`] while it waits (and if it is dropped).
struct Waiting<'a>(&'a Finished);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(self.0.waiting.get() - 1);
    }
}

/// Whether `error` is running out of file descriptors, in this process (EMFILE) or in the
/// whole system (ENFILE), on connecting or on resolving the host name.
fn is_out_of_descriptors(error: &HttpErrorKind) -> bool {
    match error {
        HttpErrorKind::Connect(e) | HttpErrorKind::Resolve(e) => {
            matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
        }
        _ => false,
    }
}

/// Whether a request with `method` may be sent again when its connection failed before
/// a response: the idempotent methods of RFC 9110 section 9.2.2, the set aiohttp retries
/// on a kept-alive connection.
fn is_idempotent(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(&method)
}

/// The error for a connection that ended before a single byte of response: the I/O error
/// it ended with, or none (a clean close).
fn closed_without_response(error: Option<std::io::Error>) -> HttpErrorKind {
    match error {
        Some(error) => HttpErrorKind::Io(error),
        None => HttpErrorKind::Protocol("the server closed the connection without a response".to_string()),
    }
}

/// The most interim (1xx) responses read before the final one: a server may send several
/// (RFC 9110 section 15.2), but not without end.
const MAX_INTERIM: usize = 100;

/// The most bytes of interim responses read before the final one, in all: as much as one
/// head may take.
const MAX_INTERIM_BYTES: usize = parse::MAX_HEAD;

/// The interim responses skipped so far for one request.
#[derive(Default)]
struct InterimCount {
    responses: usize,
    bytes: usize,
}

impl InterimCount {
    /// Counts one more interim response of `bytes` bytes; an error, naming the limit, past
    /// [`MAX_INTERIM`] responses or [`MAX_INTERIM_BYTES`] bytes. Without it a server that
    /// sends `100 Continue` for ever would hold the request until the overall time limit.
    fn add(&mut self, bytes: usize) -> Result<(), HttpErrorKind> {
        self.responses += 1;
        self.bytes += bytes;
        if self.responses > MAX_INTERIM {
            return Err(HttpErrorKind::Protocol(format!(
                "more than {MAX_INTERIM} interim (1xx) responses before the final response"
            )));
        }
        if self.bytes > MAX_INTERIM_BYTES {
            return Err(HttpErrorKind::Protocol(format!(
                "interim (1xx) responses exceed {} KiB in all before the final response",
                MAX_INTERIM_BYTES / 1024
            )));
        }
        Ok(())
    }
}

enum Exchange {
    Failed(HttpErrorKind),
    /// The connection ended before a single byte of response, cleanly or with this
    /// error: stale if it came from the pool, a failure if it was new.
    StaleConnection(Option<std::io::Error>),
}

/// Writes the request and reads the response head (skipping interim 1xx responses, at most
/// [`MAX_INTERIM`] of them and [`MAX_INTERIM_BYTES`] in all; a 101 is an error, as no upgrade
/// was asked for).
///
/// The response is read while the request is still being sent (RFC 9112 section 9.5): a
/// server may answer before it has read the whole request (a 413 for a body too large).
/// A final response that arrives so is returned at once, whether the server then closes
/// (which breaks the write) or neither reads nor closes (which would leave the write
/// waiting for ever); the rest of the request is dropped with the connection, which is
/// never reused. Interim responses do not stop the request. A read that ends or fails
/// while the request is being sent waits for the write's outcome first: only with no
/// response at all is the write's error the outcome.
///
/// The head is parsed with a [`parse::HeadScanner`]: a head trickled a few bytes at a time
/// costs time linear in its length, not quadratic.
async fn exchange(
    mut connection: Connection,
    method: &str,
    request: &[u8],
) -> Result<(Connection, ResponseHead, Framing), Exchange> {
    let mut write_error = connection.write(request).err();
    let mut scanner = parse::HeadScanner::new();
    let mut received_any = false;
    let mut interim = InterimCount::default();
    loop {
        match scanner.parse(connection.buffer()) {
            Ok(Some((head, used))) => {
                received_any = true;
                connection.consume(used);
                if parse::is_interim(head.status) {
                    interim.add(used).map_err(Exchange::Failed)?;
                    continue;
                }
                if head.status == 101 {
                    return Err(Exchange::Failed(unasked_upgrade()));
                }
                let framing = parse::framing(method, &head).map_err(|e| Exchange::Failed(protocol(e)))?;
                if framing != Framing::None {
                    parse::check_transfer_codings(&head).map_err(|e| Exchange::Failed(protocol(e)))?;
                }
                return Ok((connection, head, framing));
            }
            Ok(None) => {}
            Err(e) => return Err(Exchange::Failed(protocol(e))),
        }
        let filled = if connection.is_sending() {
            match connection.fill_or_drain().await {
                Progress::Drained(result) => {
                    write_error = result.err();
                    continue;
                }
                Progress::Filled(ended @ (Ok(false) | Err(_))) if !received_any => {
                    // The stream ended or failed before any response, mid-request: the
                    // write's outcome tells a stale connection from a new one that failed.
                    write_error = connection.drain().await.err();
                    ended
                }
                Progress::Filled(filled) => filled,
            }
        } else {
            connection.fill().await
        };
        match filled {
            Ok(true) => received_any = true,
            Ok(false) if !received_any => return Err(Exchange::StaleConnection(write_error)),
            Ok(false) => {
                return Err(Exchange::Failed(closed_in_the_head(connection.buffer(), interim.responses)))
            }
            Err(e) if !received_any && (write_error.is_some() || is_reset(&e)) => {
                return Err(Exchange::StaleConnection(write_error.or(Some(e))))
            }
            Err(e) => return Err(Exchange::Failed(HttpErrorKind::Io(e))),
        }
    }
}

/// The error for a connection that ended in the middle of a response head: what is wrong
/// with the part received, if anything (the [`parse::HeadScanner`] finds errors in header
/// fields only once the head is complete), else that it was cut short; or, with nothing
/// received after `interim` interim responses, that the final response never began.
fn closed_in_the_head(received: &[u8], interim: usize) -> HttpErrorKind {
    match parse::parse_head(received) {
        Err(e) => protocol(e),
        Ok(None) if received.is_empty() && interim > 0 => HttpErrorKind::Protocol(format!(
            "connection closed after {interim} interim (1xx) response{}, before the final response",
            if interim == 1 { "" } else { "s" }
        )),
        _ => HttpErrorKind::Protocol("connection closed in the middle of the response head".to_string()),
    }
}

/// A reset before any response: the server dropped the connection (stale, if pooled).
fn is_reset(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::ConnectionReset
}

/// The error for a `101 Switching Protocols`: this client never sends `Upgrade`, and a
/// server must not switch to a protocol the client did not ask for (RFC 9110 section
/// 15.2.2); whatever follows on the connection is no longer HTTP/1.1, so it is dropped.
fn unasked_upgrade() -> HttpErrorKind {
    HttpErrorKind::Protocol(
        "unexpected 101 Switching Protocols (the request asked for no upgrade)".to_string(),
    )
}

fn protocol(error: parse::ParseError) -> HttpErrorKind {
    HttpErrorKind::Protocol(error.to_string())
}

struct BodyState {
    decoder: BodyDecoder,
    /// A body that only the end of the connection delimits (no length, not chunked).
    close_delimited: bool,
    connection: Connection,
    reusable: bool,
    client: Rc<ClientInner>,
    key: PoolKey,
    _permits: (Permit, Permit),
}

/// A response whose head has arrived; the body is read on demand, so a large download
/// never has to sit in memory (aiohttp's `ClientResponse`).
pub struct Response {
    url: Url,
    head: ResponseHead,
    body: Option<BodyState>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.head.reason
    }

    /// The URL this response came from (after redirects).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The headers, names in lower case, in the order received.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.head.headers
    }

    /// The first value of header `name` as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// Where a redirect points, with its status, if this is one we follow. A redirect
    /// without `Location` is no redirect: the 3xx is the response (as in aiohttp). A
    /// `Location` that [`location`](Response::location) refuses is an error, as aiohttp's
    /// `InvalidUrlRedirectClientError`, rather than a 3xx passed off as the final answer.
    fn redirect_target(&self) -> Result<Option<(Url, u16)>, HttpErrorKind> {
        if !matches!(self.status(), 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        Ok(self.location_kind()?.map(|next| (next, self.status())))
    }

    /// Where this response points: its `Location` field resolved against its URL (RFC 9110
    /// section 10.2.2), `None` when it has none. For a redirect (3xx), a `Location` without
    /// a fragment inherits the fragment of this response's URL, as that section requires
    /// (`/a#part` redirected to `/b` lands on `/b#part`). An error when the value is not UTF-8 or
    /// not a URI reference, or when several `Location` fields disagree: the field takes
    /// one value (RFC 9110 section 5.3), and which of them to follow would be a guess.
    pub fn location(&self) -> Result<Option<Url>, HttpError> {
        self.location_kind().map_err(|kind| HttpError::new(self.url.as_str(), kind))
    }

    fn location_kind(&self) -> Result<Option<Url>, HttpErrorKind> {
        let mut values = self.head.headers.iter().filter(|(name, _)| name == "location").map(|(_, v)| v);
        let Some(raw) = values.next() else { return Ok(None) };
        if let Some(other) = values.find(|other| *other != raw) {
            return Err(HttpErrorKind::Protocol(format!(
                "conflicting Location fields ({} and {})",
                quote_location(raw),
                quote_location(other)
            )));
        }
        let invalid = |why: String| {
            HttpErrorKind::Protocol(format!("redirect to an invalid Location {}: {why}", quote_location(raw)))
        };
        let location = std::str::from_utf8(raw).map_err(|_| invalid("not UTF-8".to_string()))?;
        let mut next = self.url.join(location.trim()).map_err(|e| invalid(e.to_string()))?;
        if (300..400).contains(&self.status()) && next.fragment().is_none() {
            next.set_fragment(self.url.fragment());
        }
        Ok(Some(next))
    }

    /// The next piece of the body, `None` at its end. When the body is complete the
    /// connection goes back to the pool (if it can be reused). Waiting longer than
    /// [`ClientOptions::read_timeout`] for more of it is a `Timeout` error.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        // The URL is copied into the error only when there is one, not on every call.
        self.next_chunk().await.map_err(|kind| HttpError::new(self.url.as_str(), kind))
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, HttpErrorKind> {
        loop {
            let Some(body) = self.body.as_mut() else { return Ok(None) };
            let data = body.decoder.decode(body.connection.buffer_mut()).map_err(protocol)?;
            if !data.is_empty() {
                return Ok(Some(data));
            }
            if body.decoder.is_done() {
                self.finish();
                return Ok(None);
            }
            let read_timeout = body.client.options.read_timeout;
            let Ok(filled) = wait_for(body.connection.fill(), read_timeout).await else {
                return Err(HttpErrorKind::Timeout("waiting for more of the body"));
            };
            match filled {
                Ok(true) => {}
                Ok(false) => {
                    body.reusable = false;
                    body.decoder.finish_at_eof().map_err(protocol)?;
                    if body.close_delimited && body.connection.ended_without_close_notify() {
                        return Err(truncated_close_delimited_body(&body.decoder));
                    }
                    if !body.decoder.is_done() {
                        self.finish();
                        return Ok(None);
                    }
                }
                Err(e) => return Err(HttpErrorKind::Io(mid_body(e, &body.decoder))),
            }
        }
    }

    /// The body is complete: return the connection to the pool if it is clean.
    ///
    /// Bytes already received after the body belong to no response. RFC 9112 section 6.3
    /// lets a user agent discard them and forbids taking them for the next response: the
    /// response stands as its framing delimited it (as in curl and browsers), and the
    /// connection goes with the bytes (the pool takes no connection holding any). That
    /// covers a wrong Content-Length, a body sent on a HEAD, 204 or 304 (rules 1 and 2),
    /// and a response smuggled behind the body alike; and it does not depend on whether
    /// the excess came in the same read as the body or after it.
    fn finish(&mut self) {
        if let Some(body) = self.body.take() {
            if body.reusable {
                body.client.pool.put(body.key, body.connection);
            }
        }
    }

    /// The whole body. A body that arrived in one piece is handed on without a copy.
    pub async fn bytes(mut self) -> Result<Bytes, HttpError> {
        let Some(first) = self.chunk().await? else { return Ok(Bytes::new()) };
        let Some(second) = self.chunk().await? else { return Ok(first) };
        let mut all = BytesMut::from(&first[..]);
        all.extend_from_slice(&second);
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }

    /// The whole body as text (invalid UTF-8 replaced, as a lenient reader would).
    pub async fn text(self) -> Result<String, HttpError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The error for a body delimited by the close of an https connection that ended without
/// TLS's close_notify: such a body is complete only with it (RFC 9112 section 9.8), as a
/// bare TCP close can be forged to cut it short.
fn truncated_close_delimited_body(decoder: &BodyDecoder) -> HttpErrorKind {
    HttpErrorKind::Protocol(format!(
        "the connection ended without TLS close_notify, so the body, delimited only by the close, \
         may be cut short ({})",
        decoder.progress()
    ))
}

/// `error`, which ended a read in the middle of a body, with how far the body had got, as
/// the error for a clean close says (a reset is a close too, an abrupt one). The kind stays.
fn mid_body(error: std::io::Error, decoder: &BodyDecoder) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{error}, in the middle of the body ({})", decoder.progress()))
}

/// A `Location` value for an error message: quoted, at most 100 bytes, escaped.
fn quote_location(raw: &[u8]) -> String {
    let shown: Vec<u8> = raw.iter().take(100).copied().collect();
    format!("\"{}\"", shown.escape_ascii())
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response").field("status", &self.status()).field("url", &self.url.as_str()).finish()
    }
}
