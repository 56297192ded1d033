//! Sans-I/O HTTP/1.1 response parsing (RFC 9112): the response head, the body framing, and
//! the body decoders.
//!
//! Nothing here reads or writes a socket. The client feeds the bytes it has received:
//!
//! 1. [`parse_head`] on the receive buffer until it returns a head (or an error); a
//!    [`HeadScanner`] does that for a head that arrives piece by piece, without parsing it
//!    from the start after every read. Interim responses (`1xx` except `101`, see
//!    [`is_interim`]) are returned like any other head: the caller drops the consumed bytes
//!    and calls [`parse_head`] again for the final response.
//! 2. [`framing`] decides how the body is delimited (RFC 9112 section 6.3), given the request
//!    method.
//! 3. A [`BodyDecoder`] for that framing turns the bytes that follow into body data, piece by
//!    piece, and says when the body is complete ([`BodyDecoder::is_done`]) or that the peer
//!    closed too early ([`BodyDecoder::finish_at_eof`]).
//!
//! Ambiguous or hostile framing is an error that names the problem ([`ParseError`]).
//!
//! ```
//! use bytes::BytesMut;
//! use evloop::http::parse::{framing, parse_head, BodyDecoder, Framing};
//!
//! let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..]);
//! let (head, consumed) = parse_head(&buf)?.expect("a complete head");
//! let _ = buf.split_to(consumed);
//! assert_eq!(head.status, 200);
//! let framing = framing("GET", &head)?;
//! assert_eq!(framing, Framing::Length(5));
//! let mut decoder = BodyDecoder::new(framing);
//! assert_eq!(&decoder.decode(&mut buf)?[..], b"hello");
//! assert!(decoder.is_done());
//! # Ok::<(), evloop::http::parse::ParseError>(())
//! ```

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::chunk_ext::Ext;
use super::trailer::Trailer;

/// The largest response head accepted, status line and header fields included.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest chunk-size line (size, extensions and line end) a chunked body may carry.
const MAX_CHUNK_LINE: usize = 8 * 1024;

/// The largest trailer section a chunked body may carry.
const MAX_TRAILERS: usize = MAX_HEAD;

/// How many header slots the first parsing attempt offers httparse.
const FIRST_HEADER_SLOTS: usize = 64;

/// A malformed or unacceptable response; the message names the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> ParseError {
        ParseError(message.into())
    }

    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The status line and header fields of one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The minor version: `0` for HTTP/1.0, `1` for HTTP/1.1 and for any higher HTTP/1.x
    /// (`HTTP/1.2` to `HTTP/1.9`), which is read as HTTP/1.1 (RFC 9110 section 2.5, RFC
    /// 9112 section 2.3).
    pub version: u8,
    /// The status code, 100 to 599.
    pub status: u16,
    /// The reason phrase (empty when missing or not valid UTF-8).
    pub reason: String,
    /// The header fields in the order received: names lowercased, values as sent (without
    /// surrounding whitespace; obsolete line folding replaced by spaces).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The value of the first header field called `name` (any case), if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The value of the first header field called `name` (any case), if any and if it is
    /// valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether the header fields called `name` (any case) list `token` (any case), as
    /// `Connection: keep-alive, close` lists `close`: the comma-separated values of every
    /// such field, taken together as one list (RFC 9110 section 5.3).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name)
            .flat_map(|value| value.split(|&b| b == b','))
            .any(|element| trim_ows(element).eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Every value of the header fields called `name` (any case), in order.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Whether `status` is an interim response (`1xx` other than `101 Switching Protocols`): one
/// the final response follows on the same connection, so the caller skips it and parses the
/// next head.
pub fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// Parses one response head from the start of `buf`.
///
/// Returns `Ok(Some((head, consumed)))` when a complete head is there (`consumed` bytes long,
/// the body starting right after), `Ok(None)` when more bytes are needed, and `Err` when the
/// bytes are malformed, are not an HTTP/1.x response at all, or hold no complete head within
/// [`MAX_HEAD`] bytes. Any number of header lines is accepted within that limit. A higher
/// minor version of HTTP/1 (`HTTP/1.2` to `HTTP/1.9`) is read as HTTP/1.1.
///
/// Each call parses `buf` from its start: for a head that arrives a few bytes at a time,
/// use a [`HeadScanner`], which calls this only when it can make a difference.
///
/// Interim responses (`100 Continue`, `103 Early Hints`...; see [`is_interim`]) are returned
/// like final ones: the caller drops the `consumed` bytes and calls `parse_head` again until
/// it gets a final response.
pub fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    // httparse knows HTTP/1.0 and HTTP/1.1 only: a higher minor version is handed to it as
    // 1.1, the version it is to be read as (RFC 9110 section 2.5, RFC 9112 section 2.3).
    // Errors still quote the bytes as received.
    let patched;
    let parsed = match higher_minor_version_at(window) {
        Some(at) => {
            let mut copy = window.to_vec();
            copy[at] = b'1';
            patched = copy;
            &patched[..]
        }
        None => window,
    };
    let mut headers = [httparse::EMPTY_HEADER; FIRST_HEADER_SLOTS];
    match parse_with(parsed, &mut headers) {
        Err(httparse::Error::TooManyHeaders) => {
            // Every header line ends with a line feed: that bounds how many there can be.
            let lines = parsed.iter().filter(|&&b| b == b'\n').count();
            let mut headers = vec![httparse::EMPTY_HEADER; lines + 1];
            finish_parse(buf, window, parse_with(parsed, &mut headers))
        }
        other => finish_parse(buf, window, other),
    }
}

/// Where the minor version digit is, when the status line starts `HTTP/1.x` with `x` a
/// single digit above 1 (`HTTP/1.2` to `HTTP/1.9`), after any empty lines before it (which
/// httparse skips too). What follows the digit is left to httparse: `HTTP/1.23` is still
/// refused there, as RFC 9112's `HTTP-version` is `"HTTP/" DIGIT "." DIGIT`.
fn higher_minor_version_at(window: &[u8]) -> Option<usize> {
    let start = window.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let at = start + b"HTTP/1.".len();
    let higher = window[start..].starts_with(b"HTTP/1.") && matches!(window.get(at), Some(b'2'..=b'9'));
    higher.then_some(at)
}

type Parsed = Option<(ResponseHead, usize)>;

/// How many bytes at the start of a head are parsed on every call of [`HeadScanner::parse`]
/// with new bytes: enough for `HTTP/1.1 200 `, so that what is not an HTTP/1.x response at
/// all is refused at its first bytes, as a full parse after every read would.
const EARLY_BYTES: usize = 16;

/// Parses a response head that arrives piece by piece, in time linear in its length.
///
/// Calling [`parse_head`] after every read parses the head from its start each time: a
/// server that trickles a 64 KiB head a few bytes at a time makes that quadratic. A
/// `HeadScanner` remembers how far it has searched for the end of the head (the empty
/// line: `CRLF CRLF`, or the bare `LF LF` that [`parse_head`] accepts too) and runs the
/// full parse only when it can tell something new:
///
/// - while the head is shorter than 16 bytes, so that bytes that are not HTTP are refused
///   at once (an SSH banner, a TLS alert);
/// - when the status line is complete, so that a bad version or status code is refused
///   before any header field arrives;
/// - when a header field line is complete and invalid on its own (checked by itself, in
///   time linear in its length), so that a bad field is refused as soon as its line
///   arrives;
/// - when the end of the head is in the buffer;
/// - when the buffer reaches [`MAX_HEAD`] without it (the "exceeds 64 KiB" error).
///
/// So the full parse runs at most 19 times per head before it returns a head or an error,
/// however the bytes are split, and every byte is looked at by the search once (and once
/// more by the check of its line). What the full parse returns is what the scanner returns:
/// it agrees with [`parse_head`] on the same bytes. An error in an obs-fold line, or in a
/// line not ended yet, is found when the head is complete or at the limit; a caller that
/// sees the connection end first can call [`parse_head`] once for the precise error.
///
/// ```
/// use evloop::http::parse::HeadScanner;
///
/// let head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
/// let mut scanner = HeadScanner::new();
/// let mut received = Vec::new();
/// for &byte in head.iter() {
///     received.push(byte);
///     if let Some((head, consumed)) = scanner.parse(&received)? {
///         assert_eq!((head.status, consumed), (200, received.len()));
///     }
/// }
/// assert!(scanner.full_parses() <= 19);
/// # Ok::<(), evloop::http::parse::ParseError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct HeadScanner {
    /// How many bytes of the buffer the search has looked at.
    scanned: usize,
    /// Where the line being searched starts.
    line_start: usize,
    /// A field line was found invalid (and the full parse run): later lines are not
    /// checked on their own, which keeps the number of full parses bounded.
    found_invalid_line: bool,
    /// Where the search stands after them.
    state: Scan,
    /// Full parses run since this scanner was made.
    full_parses: usize,
}

/// Where the search for the end of a head stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Scan {
    /// Before the status line: empty lines are skipped, as [`parse_head`] skips them.
    #[default]
    Start,
    /// Inside the status line.
    StatusLine,
    /// Inside a header field line (or an obs-fold continuation of one).
    Line,
    /// Right after the LF that ended a line: an LF here, or CR LF, ends the head.
    LineStart,
    /// After that LF and a CR.
    LineStartCr,
}

impl HeadScanner {
    /// A scanner at the start of a head.
    pub fn new() -> HeadScanner {
        HeadScanner::default()
    }

    /// Looks at the bytes of `buf` not seen yet and returns what [`parse_head`] returns for
    /// `buf` when it runs it, `Ok(None)` when it does not (more bytes are needed).
    ///
    /// `buf` is the receive buffer: between calls bytes may only be added to its end,
    /// except that after a head is returned its `consumed` bytes are dropped from the
    /// front (an interim response, then the next head); the scanner then starts over.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ParseError> {
        if buf.len() < self.scanned {
            // Not the buffer this scanner has seen: start over rather than misread it.
            self.restart();
        }
        let early = self.scanned < EARLY_BYTES && buf.len() > self.scanned;
        let at_limit = buf.len() >= MAX_HEAD;
        let found = self.search(&buf[..buf.len().min(MAX_HEAD)]);
        if !(early || at_limit || found) {
            return Ok(None);
        }
        self.full_parses += 1;
        let result = parse_head(buf);
        if matches!(result, Ok(Some(_))) {
            self.restart();
        }
        result
    }

    /// How many times [`parse`](HeadScanner::parse) has run [`parse_head`] since this
    /// scanner was made: at most 19 per head.
    pub fn full_parses(&self) -> usize {
        self.full_parses
    }

    fn restart(&mut self) {
        self.scanned = 0;
        self.line_start = 0;
        self.found_invalid_line = false;
        self.state = Scan::Start;
    }

    /// Searches `window` on from where the last search stopped; true (and the search stops
    /// there) when the status line just ended, a field line just ended that is invalid on
    /// its own, or the end of the head was found.
    fn search(&mut self, window: &[u8]) -> bool {
        while self.scanned < window.len() {
            let b = window[self.scanned];
            self.scanned += 1;
            let (state, tell) = match (self.state, b) {
                (Scan::Start, b'\r' | b'\n') => (Scan::Start, false),
                (Scan::Start, _) => (Scan::StatusLine, false),
                (Scan::StatusLine, b'\n') => (Scan::LineStart, true),
                (Scan::StatusLine, _) => (Scan::StatusLine, false),
                (Scan::Line, b'\n') => {
                    let invalid = !self.found_invalid_line
                        && !is_valid_field_line(&window[self.line_start..self.scanned]);
                    self.found_invalid_line |= invalid;
                    (Scan::LineStart, invalid)
                }
                (Scan::LineStart | Scan::LineStartCr, b'\n') => (Scan::Line, true),
                (Scan::LineStart, b'\r') => (Scan::LineStartCr, false),
                (Scan::Line | Scan::LineStart | Scan::LineStartCr, _) => (Scan::Line, false),
            };
            self.state = state;
            if state == Scan::LineStart {
                self.line_start = self.scanned;
            }
            if tell {
                return true;
            }
        }
        false
    }
}

/// Whether one header field line, complete with its line end, is one that [`parse_head`]
/// accepts, checked on its own: so an invalid field is refused when its line arrives, not
/// when the head ends (which a hostile server may never send). An obs-fold continuation
/// (a line starting with a space or tab) depends on the lines around it and is left to the
/// full parse. Without obs-fold, httparse reads a response's header lines as it reads
/// bare header lines.
fn is_valid_field_line(line: &[u8]) -> bool {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return true;
    }
    let mut slots = [httparse::EMPTY_HEADER; 2];
    httparse::parse_headers(line, &mut slots).is_ok()
}

fn parse_with<'b>(window: &'b [u8], headers: &mut [httparse::Header<'b>]) -> Result<Parsed, httparse::Error> {
    let mut response = httparse::Response::new(headers);
    let status = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .parse_response(&mut response, window)?;
    let consumed = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let head = ResponseHead {
        version: response.version.unwrap_or(1),
        status: response.code.unwrap_or(0),
        reason: response.reason.unwrap_or("").to_owned(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), clean_value(h.value)))
            .collect(),
    };
    Ok(Some((head, consumed)))
}

/// Trims the value and turns obsolete line folding (CR / LF inside the value) into spaces,
/// as RFC 9112 section 5.2 asks of a user agent.
fn clean_value(value: &[u8]) -> Vec<u8> {
    let value = trim_ows(value);
    value.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect()
}

fn finish_parse(
    buf: &[u8],
    window: &[u8],
    result: Result<Parsed, httparse::Error>,
) -> Result<Parsed, ParseError> {
    match result {
        Ok(Some((head, consumed))) => {
            if !(100..=599).contains(&head.status) {
                return Err(ParseError::new(format!(
                    "invalid status code {:03} (must be 100 to 599)",
                    head.status
                )));
            }
            Ok(Some((head, consumed)))
        }
        Ok(None) if buf.len() >= MAX_HEAD => {
            Err(ParseError::new(format!("response head exceeds {} KiB without ending", MAX_HEAD / 1024)))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(describe(window, e)),
    }
}

fn describe(buf: &[u8], error: httparse::Error) -> ParseError {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let line = first_line(&buf[start..]);
    match error {
        httparse::Error::Version if line.starts_with(b"HTTP/") => ParseError::new(format!(
            "unsupported HTTP version in status line {} (expected HTTP/1.x, x one digit)",
            show(line)
        )),
        httparse::Error::Version => {
            ParseError::new(format!("the response is not HTTP (it starts with {})", show(line)))
        }
        httparse::Error::Status => {
            ParseError::new(format!("invalid status line {} (expected \"HTTP/1.x NNN reason\")", show(line)))
        }
        httparse::Error::HeaderName => ParseError::new(format!(
            "invalid header field name in the response head{}",
            bad_field_line(&buf[start..])
        )),
        httparse::Error::HeaderValue => ParseError::new(format!(
            "invalid header field value in the response head{}",
            bad_field_line(&buf[start..])
        )),
        httparse::Error::NewLine => ParseError::new(format!(
            "invalid line ending in the response head{}",
            bad_field_line(&buf[start..])
        )),
        httparse::Error::Token => ParseError::new("invalid token in the response head"),
        httparse::Error::TooManyHeaders => ParseError::new("too many header fields in the response head"),
    }
}

/// Where a header field error is, for its message: `, in the line "..."` quoting the first
/// field line of `head` (which starts with the status line) that is invalid on its own, or
/// nothing when none is (the fault is in an obs-fold continuation line).
fn bad_field_line(head: &[u8]) -> String {
    let bad = head
        .split_inclusive(|&b| b == b'\n')
        .skip(1)
        .take_while(|line| !matches!(*line, b"\n" | b"\r\n"))
        .find(|line| !is_valid_field_line(line));
    bad.map_or_else(String::new, |line| format!(", in the line {}", show(without_line_end(line))))
}

/// `line` without its LF or CRLF (a bare CR inside stays, to be seen in a message).
fn without_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn first_line(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(buf.len());
    &buf[..end]
}

/// Quotes at most 40 bytes of `bytes`, escaping what is not printable ASCII.
pub(crate) fn show(bytes: &[u8]) -> String {
    let cut = bytes.len().min(40);
    let mut out = format!("\"{}\"", bytes[..cut].escape_ascii());
    if bytes.len() > cut {
        out.push_str("...");
    }
    out
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// How the body of a response is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all: a response to HEAD, or a 1xx, 204 or 304 response.
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Decides how the body of `head`, the response to a request with `method`, is delimited
/// (RFC 9112 section 6.3).
///
/// - No body for `HEAD` requests and for 1xx, 204 and 304 responses.
/// - Transfer-Encoding with `chunked` as the final coding → [`Framing::Chunked`]; with
///   another final coding → [`Framing::UntilClose`] (rule 4, for responses). Codings other
///   than `chunked` are not undone (the client refuses them with
///   [`check_transfer_codings`]). Transfer-Encoding in an HTTP/1.0 response (with or
///   without Content-Length: RFC 9112 section 6.1 calls that faulty framing), together
///   with Content-Length, or with `chunked` more than once is an error.
/// - Content-Length → [`Framing::Length`]: each value must be digits only (no sign, no
///   overflow of `u64`); repeated identical values are accepted, differing ones are an
///   error ("conflicting Content-Length").
/// - Otherwise → [`Framing::UntilClose`].
pub fn framing(method: &str, head: &ResponseHead) -> Result<Framing, ParseError> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
    {
        return Ok(Framing::None);
    }
    let has_te = head.header("transfer-encoding").is_some();
    let has_cl = head.header("content-length").is_some();
    if has_te && head.version == 0 {
        // RFC 9112 section 6.1: an HTTP/1.0 sender does not know Transfer-Encoding, so
        // whoever added it may have kept part of the body; the framing is faulty even
        // with a Content-Length, which is then no more to be trusted than the coding.
        return Err(ParseError::new("Transfer-Encoding in an HTTP/1.0 response (faulty framing)"));
    }
    if has_te && has_cl {
        return Err(ParseError::new(
            "both Transfer-Encoding and Content-Length in the response (ambiguous framing)",
        ));
    }
    if has_te {
        return transfer_encoding_framing(head);
    }
    if has_cl {
        return content_length(head).map(Framing::Length);
    }
    Ok(Framing::UntilClose)
}

fn transfer_encoding_framing(head: &ResponseHead) -> Result<Framing, ParseError> {
    let codings = transfer_codings(head)?;
    let is_chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
    let count = codings.iter().filter(|c| is_chunked(c)).count();
    match codings.last() {
        None => Err(ParseError::new("empty Transfer-Encoding in the response")),
        Some(_) if count > 1 => Err(ParseError::new("Transfer-Encoding applies chunked more than once")),
        Some(last) if is_chunked(last) => Ok(Framing::Chunked),
        Some(_) => Ok(Framing::UntilClose),
    }
}

/// Checks that the body of `head` carries no transfer coding but `chunked` (and the
/// no-op `identity`), with `chunked` last; call it once [`framing`] has accepted the head.
///
/// A client that sends no `TE` header accepts chunked only (RFC 9112 sections 6.1 and
/// 7.4), and nothing here undoes another coding: a body under `gzip` would be handed out
/// still compressed, as if it were the content. So such a response is an error that names
/// the coding, where aiohttp would hand out the encoded bytes. So is `chunked` followed by
/// another coding (`chunked, identity`): [`framing`] then reads until the close (RFC 9112
/// section 6.3, rule 4), and the body would be handed out with its chunk framing in it.
pub fn check_transfer_codings(head: &ResponseHead) -> Result<(), ParseError> {
    let codings = transfer_codings(head)?;
    for coding in &codings {
        if !coding.eq_ignore_ascii_case(b"chunked") && !coding.eq_ignore_ascii_case(b"identity") {
            return Err(ParseError::new(format!(
                "unsupported transfer coding {} (only chunked is accepted)",
                show(coding)
            )));
        }
    }
    let chunked_at = codings.iter().position(|c| c.eq_ignore_ascii_case(b"chunked"));
    if chunked_at.is_some_and(|at| at + 1 < codings.len()) {
        return Err(ParseError::new("chunked is not the final transfer coding (the body cannot be decoded)"));
    }
    Ok(())
}

/// The transfer-coding names of every Transfer-Encoding field, in order (parameters
/// dropped); an error for a name that is not a token.
fn transfer_codings(head: &ResponseHead) -> Result<Vec<&[u8]>, ParseError> {
    let mut codings = Vec::new();
    for value in head.header_values("transfer-encoding") {
        for element in value.split(|&b| b == b',') {
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            // A transfer-coding may carry parameters after ';': only the name matters here.
            let name = trim_ows(element.split(|&b| b == b';').next().unwrap_or(b""));
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(ParseError::new(format!("invalid Transfer-Encoding {}", show(value))));
            }
            codings.push(name);
        }
    }
    Ok(codings)
}

/// Whether `b` may be part of a token (RFC 9110 section 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn content_length(head: &ResponseHead) -> Result<u64, ParseError> {
    let mut length: Option<u64> = None;
    for value in head.header_values("content-length") {
        for element in value.split(|&b| b == b',') {
            let element = trim_ows(element);
            if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::new(format!(
                    "invalid Content-Length {} (must be digits only)",
                    show(value)
                )));
            }
            let parsed = element
                .iter()
                .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| ParseError::new(format!("Content-Length {} overflows", show(element))))?;
            match length {
                Some(previous) if previous != parsed => {
                    return Err(ParseError::new(format!(
                        "conflicting Content-Length values ({previous} and {parsed})"
                    )))
                }
                _ => length = Some(parsed),
            }
        }
    }
    length.ok_or_else(|| ParseError::new("missing Content-Length value"))
}

/// Where a chunked body decoder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// At the start of a chunk-size line, before any digit.
    SizeStart,
    /// Reading hex digits of the size.
    Size(u64),
    /// After the size: whitespace before an extension or the line end.
    SizeSpace(u64),
    /// Inside chunk extensions, checked (see [`Ext`]) and then ignored, until the line end.
    Extension(u64, Ext),
    /// Saw CR at the end of the size line; LF must follow.
    SizeLf(u64),
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// After chunk data: CR (or a bare LF) must follow.
    DataCr,
    /// After chunk data and CR: LF must follow.
    DataLf,
    /// Inside the trailer section, checked (see [`Trailer`]) and then ignored.
    Trailer(Trailer),
}

#[derive(Clone, Debug)]
enum State {
    /// Waiting for this many more bytes.
    Length { remaining: u64, total: u64 },
    /// Decoding the chunked coding.
    Chunked { state: Chunk, line: usize, trailers: usize },
    /// Everything until the connection closes.
    UntilClose,
    /// The body is complete.
    Done,
    /// A previous call failed with this error.
    Failed(ParseError),
}

/// Decodes one response body from the bytes that follow its head.
///
/// Feed it with [`decode`](BodyDecoder::decode) as bytes arrive; when the connection closes,
/// call [`finish_at_eof`](BodyDecoder::finish_at_eof). Once [`is_done`](BodyDecoder::is_done)
/// is true the decoder takes no more bytes: anything left in the input belongs to whatever
/// follows on the connection (for a kept-alive connection, checking it is the caller's job).
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    /// Body bytes handed out so far.
    received: u64,
}

impl BodyDecoder {
    /// A decoder for a body delimited by `framing`.
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n, total: n },
            Framing::Chunked => State::Chunked { state: Chunk::SizeStart, line: 0, trailers: 0 },
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state, received: 0 }
    }

    /// Consumes bytes from the front of `input` and returns the body data decoded from them
    /// (possibly empty, when `input` held only framing or nothing).
    ///
    /// Content-Length and close-delimited bodies are handed out without copying (split off
    /// `input`). A Content-Length body stops at the declared length, leaving what follows in
    /// `input`; a chunked body stops after its last chunk and trailer section. Chunked
    /// decoding accepts upper and lower case hex sizes, checks and then ignores chunk
    /// extensions and trailer fields, and tolerates a bare LF for CRLF (RFC 9112 section
    /// 2.2); a missing or non-hex size, a size above `u64`, data not followed by CRLF, a
    /// malformed chunk extension (section 7.1.1) or trailer field line (7.1.2) is an error.
    /// After an error every call returns the same error.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Bytes, ParseError> {
        match &mut self.state {
            State::Done => Ok(Bytes::new()),
            State::Failed(e) => Err(e.clone()),
            State::UntilClose => {
                let data = input.split().freeze();
                self.received += data.len() as u64;
                Ok(data)
            }
            State::Length { remaining, .. } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                let data = input.split_to(n).freeze();
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = State::Done;
                }
                self.received += n as u64;
                Ok(data)
            }
            State::Chunked { .. } => match self.decode_chunked(input) {
                Ok(data) => Ok(data),
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    Err(e)
                }
            },
        }
    }

    fn decode_chunked(&mut self, input: &mut BytesMut) -> Result<Bytes, ParseError> {
        let State::Chunked { mut state, mut line, mut trailers } = self.state else {
            unreachable!("decode_chunked called on a chunked decoder only");
        };
        let mut first: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        let mut done = false;
        while !input.is_empty() && !done {
            if let Chunk::Data(remaining) = state {
                let n = remaining.min(input.len() as u64) as usize;
                let data = input.split_to(n).freeze();
                self.received += n as u64;
                match (&first, &mut more) {
                    (None, _) => first = Some(data),
                    (Some(f), None) => {
                        let mut joined = BytesMut::with_capacity(f.len() + data.len());
                        joined.extend_from_slice(f);
                        joined.extend_from_slice(&data);
                        more = Some(joined);
                    }
                    (Some(_), Some(m)) => m.extend_from_slice(&data),
                }
                state = if remaining == n as u64 { Chunk::DataCr } else { Chunk::Data(remaining - n as u64) };
                continue;
            }
            let b = input[0];
            input.advance(1);
            state = match state {
                Chunk::SizeStart | Chunk::Size(_) | Chunk::SizeSpace(_) | Chunk::Extension(..) => {
                    line += 1;
                    if line > MAX_CHUNK_LINE {
                        return Err(ParseError::new(format!(
                            "chunk-size line longer than {} KiB",
                            MAX_CHUNK_LINE / 1024
                        )));
                    }
                    chunk_size_byte(state, b)?
                }
                Chunk::SizeLf(size) => match b {
                    b'\n' => end_of_size_line(size),
                    _ => return Err(ParseError::new("missing LF after CR in a chunk-size line")),
                },
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    b'\n' => Chunk::SizeStart,
                    _ => return Err(missing_crlf_after_data()),
                },
                Chunk::DataLf => match b {
                    b'\n' => Chunk::SizeStart,
                    _ => return Err(missing_crlf_after_data()),
                },
                Chunk::Trailer(trailer) => {
                    trailers += 1;
                    if trailers > MAX_TRAILERS {
                        return Err(ParseError::new(format!(
                            "chunked trailer section longer than {} KiB",
                            MAX_TRAILERS / 1024
                        )));
                    }
                    match trailer.next(b)? {
                        Some(trailer) => Chunk::Trailer(trailer),
                        None => {
                            done = true;
                            Chunk::Trailer(Trailer::START)
                        }
                    }
                }
                Chunk::Data(_) => unreachable!("data is handled above"),
            };
            if state == Chunk::SizeStart {
                line = 0;
            }
        }
        self.state = if done { State::Done } else { State::Chunked { state, line, trailers } };
        Ok(match (first, more) {
            (_, Some(m)) => m.freeze(),
            (Some(f), None) => f,
            (None, None) => Bytes::new(),
        })
    }

    /// Tells the decoder that the peer closed the connection. `Ok` when the body is complete
    /// at this point (a close-delimited body ends here); an error when a Content-Length or
    /// chunked body is unfinished ("connection closed before the body was complete").
    pub fn finish_at_eof(&mut self) -> Result<(), ParseError> {
        match &self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(e) => Err(e.clone()),
            State::Length { .. } | State::Chunked { .. } => Err(ParseError::new(format!(
                "connection closed before the body was complete ({})",
                self.progress()
            ))),
        }
    }

    /// How far the body has got, in words, for an error that ends it early: `got 5 of 10
    /// bytes`, `got 5 bytes of a chunked body, 4 more bytes of the current chunk due`, or
    /// `got 5 bytes` for a body without a declared length.
    pub fn progress(&self) -> String {
        match &self.state {
            State::Length { total, .. } => format!("got {} of {total} bytes", self.received),
            State::Chunked { state, .. } => {
                let detail = match state {
                    Chunk::Data(left) => format!(", {left} more bytes of the current chunk due"),
                    Chunk::Trailer(_) => ", the trailer section was unfinished".to_owned(),
                    _ => ", the last chunk was missing".to_owned(),
                };
                format!("got {} bytes of a chunked body{detail}", self.received)
            }
            State::UntilClose | State::Done | State::Failed(_) => format!("got {} bytes", self.received),
        }
    }

    /// Whether the whole body has been decoded; `decode` takes no more bytes then.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

fn missing_crlf_after_data() -> ParseError {
    ParseError::new("missing CRLF after chunk data")
}

/// After a complete chunk-size line: a zero size starts the trailer section.
fn end_of_size_line(size: u64) -> Chunk {
    if size == 0 {
        Chunk::Trailer(Trailer::START)
    } else {
        Chunk::Data(size)
    }
}

/// One byte of a chunk-size line: `1*HEXDIG *(BWS ";" ext) CRLF`, the extensions checked
/// by [`Ext`].
fn chunk_size_byte(state: Chunk, b: u8) -> Result<Chunk, ParseError> {
    let hex = (b as char).to_digit(16).map(u64::from);
    Ok(match (state, hex, b) {
        (Chunk::SizeStart, Some(d), _) => Chunk::Size(d),
        (Chunk::SizeStart, None, _) => {
            return Err(ParseError::new(format!(
                "missing chunk size (found {} where hex digits were expected)",
                show(&[b])
            )))
        }
        (Chunk::Size(n), Some(d), _) => Chunk::Size(
            n.checked_mul(16)
                .and_then(|n| n.checked_add(d))
                .ok_or_else(|| ParseError::new("chunk size overflows 64 bits (more than 16 hex digits)"))?,
        ),
        (Chunk::Extension(n, ext), _, b'\r') if ext.may_end_line() => Chunk::SizeLf(n),
        (Chunk::Extension(n, ext), _, b'\n') if ext.may_end_line() => end_of_size_line(n),
        (Chunk::Size(n) | Chunk::SizeSpace(n), _, b'\r') => Chunk::SizeLf(n),
        (Chunk::Size(n) | Chunk::SizeSpace(n), _, b'\n') => end_of_size_line(n),
        (Chunk::Size(n) | Chunk::SizeSpace(n), _, b' ' | b'\t') => Chunk::SizeSpace(n),
        (Chunk::Size(n) | Chunk::SizeSpace(n), _, b';') => Chunk::Extension(n, Ext::BeforeName),
        (Chunk::Size(_) | Chunk::SizeSpace(_), _, _) => {
            return Err(ParseError::new(format!(
                "invalid chunk size: unexpected {} in the chunk-size line",
                show(&[b])
            )))
        }
        (Chunk::Extension(n, ext), _, _) => Chunk::Extension(n, ext.next(b)?),
        _ => unreachable!("chunk_size_byte is called in size-line states only"),
    })
}
