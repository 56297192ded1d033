//! What can go wrong fetching a URL: one enum that says what failed and for which URL.

use std::fmt;
use std::io;

/// What failed (see [`HttpError`]).
#[derive(Debug)]
pub enum HttpErrorKind {
    /// The URL could not be parsed, or has no host.
    InvalidUrl(String),
    /// Not `http` (or `https` with the `tls` feature).
    UnsupportedScheme(String),
    /// The TLS handshake failed (bad certificate, wrong host name ...).
    Tls(String),
    /// The host name did not resolve.
    Resolve(io::Error),
    /// No address of the host accepted a connection.
    Connect(io::Error),
    /// Reading or writing the connection failed (reset, closed early ...).
    Io(io::Error),
    /// The response broke HTTP/1.1's rules (RFC 9112); the message names the problem.
    Protocol(String),
    /// More redirects than allowed.
    TooManyRedirects(usize),
    /// A time limit passed.
    Timeout(&'static str),
}

/// A failed request: what failed, and the URL it failed for.
#[derive(Debug)]
pub struct HttpError {
    /// The URL being fetched when it failed (after redirects, the one redirected to).
    pub url: String,
    /// What failed.
    pub kind: HttpErrorKind,
}

impl HttpError {
    pub(crate) fn new(url: impl Into<String>, kind: HttpErrorKind) -> HttpError {
        HttpError { url: url.into(), kind }
    }
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpErrorKind::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            HttpErrorKind::UnsupportedScheme(scheme) => write!(f, "unsupported scheme {scheme:?}"),
            HttpErrorKind::Tls(why) => write!(f, "TLS failed: {why}"),
            HttpErrorKind::Resolve(e) => write!(f, "cannot resolve host: {e}"),
            HttpErrorKind::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpErrorKind::Io(e) => write!(f, "connection error: {e}"),
            HttpErrorKind::Protocol(why) => write!(f, "bad response: {why}"),
            HttpErrorKind::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            HttpErrorKind::Timeout(what) => write!(f, "timed out {what}"),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.url)
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            HttpErrorKind::Resolve(e) | HttpErrorKind::Connect(e) | HttpErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
