//! Property: the response parser and body decoders do not depend on how the bytes arrive,
//! and no input makes them panic.
//!
//! Valid responses (random status, header fields, a Content-Length or chunked body with random
//! chunk sizes, hex case, extensions, trailers and line endings, then some bytes of whatever
//! follows on the connection) are cut at arbitrary points and fed piece by piece: the head,
//! the body bytes and what is left over must equal those of the same bytes in one piece, and
//! the ones the response was built from. Arbitrary bytes, and bytes drawn from the alphabet of
//! chunked framing, fed to `parse_head` and to a chunked decoder give `Ok` or `Err`, never a
//! panic, and the chunked decoder's outcome does not depend on the split either.
//!
//! The [`HeadScanner`], which parses a head arriving piece by piece without parsing it from
//! the start after every piece, must agree with `parse_head` however the bytes are split:
//! the same head, found as soon as its last byte arrives, or the same error; and it runs
//! the full parse a bounded number of times, however small the pieces.

use bytes::BytesMut;
use evloop::http::parse::{framing, parse_head, BodyDecoder, Framing, HeadScanner, ParseError, ResponseHead};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: Option<Chunked>,
    after: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Chunked {
    /// Sizes of the data chunks, summing to the body length (none zero).
    sizes: Vec<usize>,
    upper_hex: bool,
    extension: bool,
    bare_lf: bool,
    trailers: Vec<(String, String)>,
}

fn header_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,11}"
        .prop_filter("not a framing header", |n| n != "content-length" && n != "transfer-encoding")
        .prop_map(|n| format!("x-{n}"))
}

fn header_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,20}[!-~])?"
}

fn partition(len: usize, cuts: Vec<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (len + 1)).collect();
    cuts.push(0);
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| w[1] - w[0]).collect()
}

fn response() -> impl Strategy<Value = Response> {
    (
        prop_oneof![200u16..=203, 205u16..=303, 305u16..=599],
        prop::collection::vec((header_name(), header_value()), 0..12),
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::option::of((
            prop::collection::vec(any::<usize>(), 0..12),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((header_name(), header_value()), 0..3),
        )),
        prop::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(status, headers, body, chunked, after)| Response {
            status,
            headers,
            chunked: chunked.map(|(cuts, upper_hex, extension, bare_lf, trailers)| Chunked {
                sizes: partition(body.len(), cuts),
                upper_hex,
                extension,
                bare_lf,
                trailers,
            }),
            body,
            after,
        })
}

impl Response {
    /// The response on the wire, and the index where its bytes end (`after` follows).
    fn encode(&self) -> (Vec<u8>, usize) {
        let mut out = format!("HTTP/1.1 {} Some Reason\r\n", self.status).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.chunked {
            None => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
            }
            Some(c) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let eol: &[u8] = if c.bare_lf { b"\n" } else { b"\r\n" };
                let mut at = 0;
                for &size in c.sizes.iter().chain([0].iter()) {
                    let hex = if c.upper_hex { format!("{size:X}") } else { format!("{size:x}") };
                    out.extend_from_slice(hex.as_bytes());
                    if c.extension {
                        out.extend_from_slice(b" ;ext=\"v;1\";flag");
                    }
                    out.extend_from_slice(eol);
                    if size > 0 {
                        out.extend_from_slice(&self.body[at..at + size]);
                        out.extend_from_slice(eol);
                        at += size;
                    }
                }
                for (name, value) in &c.trailers {
                    out.extend_from_slice(format!("{name}: {value}").as_bytes());
                    out.extend_from_slice(eol);
                }
                out.extend_from_slice(eol);
            }
        }
        let end = out.len();
        out.extend_from_slice(&self.after);
        (out, end)
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    head: ResponseHead,
    consumed: usize,
    body: Vec<u8>,
    done: bool,
    left: Vec<u8>,
}

/// Feeds `wire` cut into `pieces` (lengths) to `parse_head` then a body decoder.
fn run(wire: &[u8], pieces: &[usize]) -> Result<Outcome, TestCaseError> {
    let mut pieces = pieces.iter();
    let mut received = BytesMut::new();
    let mut at = 0;
    let mut next_piece = |received: &mut BytesMut| -> bool {
        let n = pieces.next().copied().unwrap_or(wire.len() - at);
        if at == wire.len() {
            return false;
        }
        let n = n.min(wire.len() - at);
        received.extend_from_slice(&wire[at..at + n]);
        at += n;
        true
    };
    let (head, consumed) = loop {
        if let Some(found) = parse_head(&received).map_err(|e| TestCaseError::fail(e.to_string()))? {
            break found;
        }
        prop_assert!(next_piece(&mut received), "the head never completed");
    };
    let _ = received.split_to(consumed);
    let framing = framing("GET", &head).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut decoder = BodyDecoder::new(framing);
    let mut body = Vec::new();
    loop {
        let data = decoder.decode(&mut received).map_err(|e| TestCaseError::fail(e.to_string()))?;
        body.extend_from_slice(&data);
        if decoder.is_done() || !next_piece(&mut received) {
            break;
        }
    }
    let done = decoder.is_done();
    while next_piece(&mut received) {}
    Ok(Outcome { head, consumed, body, done, left: received.to_vec() })
}

/// Feeds `input` cut into `pieces` to a chunked decoder: the data decoded, the error if
/// any, whether it finished, what was left, and what `finish_at_eof` said.
fn run_chunked(input: &[u8], pieces: &[usize]) -> (Vec<u8>, Option<String>, bool, Vec<u8>, bool) {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut data = Vec::new();
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut error = None;
    for &n in pieces.iter().chain([input.len()].iter()) {
        let n = n.min(input.len() - at);
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        match decoder.decode(&mut buf) {
            Ok(d) => data.extend_from_slice(&d),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        if decoder.is_done() {
            break;
        }
    }
    buf.extend_from_slice(&input[at..]);
    let done = decoder.is_done();
    let eof_ok = decoder.finish_at_eof().is_ok();
    if error.is_some() {
        // Where an error stops inside the input, and the data of the failing call, are not
        // part of the contract: only the error is.
        buf.clear();
        data.clear();
    }
    (data, error, done, buf.to_vec(), eof_ok)
}

type HeadResult = Result<Option<(ResponseHead, usize)>, ParseError>;

/// Feeds `wire` cut into `pieces` to a [`HeadScanner`] until it returns something other
/// than `Ok(None)`: that, the buffer it had then, and the full parses it ran.
fn scan(wire: &[u8], pieces: &[usize]) -> (HeadResult, Vec<u8>, usize) {
    let mut scanner = HeadScanner::new();
    let mut received = Vec::new();
    let mut at = 0;
    for &n in pieces.iter().chain([wire.len()].iter()) {
        let n = n.min(wire.len() - at);
        received.extend_from_slice(&wire[at..at + n]);
        at += n;
        let result = scanner.parse(&received);
        if result != Ok(None) || at == wire.len() {
            return (result, received, scanner.full_parses());
        }
    }
    unreachable!("the last piece takes the rest")
}

/// How many bytes have arrived, fed in `pieces` (the rest of `len` in one last piece),
/// after the first piece that brings the total to `at_least`.
fn first_cut_reaching(pieces: &[usize], len: usize, at_least: usize) -> usize {
    let mut at = 0;
    for &n in pieces {
        at = (at + n).min(len);
        if at >= at_least {
            return at;
        }
    }
    len
}

/// Bytes drawn from the alphabet of response heads.
fn head_alphabet() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"HTTP/1.0 HTTP/1.1 HTTP/1.2 200 2x:: ab\t\r\n\r\n\n\n\r\n".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..120)
}

fn chunk_alphabet() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"0123456789abcdefABCDEFxz;= \t\r\n\r\n\r\n:".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_responses_do_not_depend_on_the_split(
        response in response(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let (wire, end) = response.encode();
        let whole = run(&wire, &[wire.len()])?;
        let pieces = partition(wire.len(), cuts);
        let split = run(&wire, &pieces)?;
        prop_assert_eq!(&split, &whole);

        // And both are what the response was built from.
        prop_assert_eq!(whole.head.status, response.status);
        prop_assert_eq!(whole.head.version, 1);
        prop_assert_eq!(&whole.head.reason, "Some Reason");
        for (name, value) in &response.headers {
            prop_assert!(whole
                .head
                .headers
                .iter()
                .any(|(n, v)| n == name && v == value.as_bytes()));
        }
        prop_assert_eq!(&whole.body, &response.body);
        prop_assert!(whole.done);
        prop_assert_eq!(&whole.left[..], &wire[end..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_parse_head(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_head(&bytes);
        let mut with_prefix = b"HTTP/1.1 200 OK\r\n".to_vec();
        with_prefix.extend_from_slice(&bytes);
        if let Ok(Some((head, consumed))) = parse_head(&with_prefix) {
            prop_assert!(consumed <= with_prefix.len());
            let _ = framing("GET", &head);
        }
    }

    #[test]
    fn the_head_scanner_finds_a_valid_head_as_parse_head_does_whatever_the_split(
        response in response(),
        cuts in prop::collection::vec(any::<usize>(), 0..64),
        tiny in any::<bool>(),
    ) {
        let (wire, _) = response.encode();
        let whole = parse_head(&wire).unwrap().unwrap();
        // Pieces of 1 to 3 bytes, or arbitrary cuts.
        let pieces: Vec<usize> = if tiny {
            cuts.iter().chain([0].iter()).map(|c| 1 + c % 3).cycle().take(wire.len()).collect()
        } else {
            partition(wire.len(), cuts)
        };
        let (result, received, full_parses) = scan(&wire, &pieces);
        prop_assert_eq!(received.len(), first_cut_reaching(&pieces, wire.len(), whole.1));
        prop_assert_eq!(result, Ok(Some(whole)));
        prop_assert!(full_parses <= 19, "{} full parses", full_parses);
    }

    #[test]
    fn the_head_scanner_agrees_with_parse_head_on_head_like_bytes(
        bytes in head_alphabet(),
        prefix in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let mut wire = if prefix { b"HTTP/1.1 200 OK\r\n".to_vec() } else { Vec::new() };
        wire.extend_from_slice(&bytes);
        let pieces = partition(wire.len(), cuts);
        let (result, received, full_parses) = scan(&wire, &pieces);
        match parse_head(&wire) {
            // A head: found with the piece that completes it.
            Ok(Some((_, consumed))) => {
                prop_assert_eq!(received.len(), first_cut_reaching(&pieces, wire.len(), consumed));
                prop_assert_eq!(&result, &parse_head(&received));
            }
            // No head yet: none from the scanner either.
            Ok(None) => prop_assert_eq!(&result, &Ok(None)),
            // An error: the scanner may see it only at the end of the head (or not at all
            // before the caller's own parse_head at the end of the stream); when it reports
            // something, it is what parse_head says of the same bytes.
            Err(_) => {
                if result != Ok(None) {
                    prop_assert_eq!(&result, &parse_head(&received));
                }
            }
        }
        prop_assert!(full_parses <= 19, "{} full parses", full_parses);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_chunked_decoder(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = run_chunked(&bytes, &[bytes.len()]);
        let split = run_chunked(&bytes, &partition(bytes.len(), cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn chunk_like_bytes_do_not_depend_on_the_split(
        bytes in chunk_alphabet(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = run_chunked(&bytes, &[bytes.len()]);
        let split = run_chunked(&bytes, &partition(bytes.len(), cuts));
        prop_assert_eq!(split, whole);
    }
}
