//! The sans-I/O response parser: heads, framing (RFC 9112 section 6.3) and body decoders,
//! including every error a hostile or broken server can provoke.

use bytes::BytesMut;
use evloop::http::parse::{
    framing, is_interim, parse_head, BodyDecoder, Framing, HeadScanner, ParseError, ResponseHead, MAX_HEAD,
};

fn head(text: &str) -> ResponseHead {
    let (head, consumed) = parse_head(text.as_bytes()).expect("valid head").expect("complete head");
    assert_eq!(consumed, text.len());
    head
}

fn head_err(bytes: &[u8]) -> String {
    match parse_head(bytes) {
        Err(e) => e.message().to_owned(),
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

fn framing_of(text: &str) -> Result<Framing, ParseError> {
    framing("GET", &head(text))
}

fn framing_err(text: &str) -> String {
    match framing_of(text) {
        Err(e) => e.message().to_owned(),
        Ok(f) => panic!("expected a framing error, got {f:?}"),
    }
}

/// Decodes `body` in one piece; returns the data, what is left, and whether it is done.
fn decode_all(framing: Framing, body: &[u8]) -> (Result<Vec<u8>, ParseError>, Vec<u8>, bool) {
    let mut decoder = BodyDecoder::new(framing);
    let mut input = BytesMut::from(body);
    let result = decoder.decode(&mut input).map(|b| b.to_vec());
    (result, input.to_vec(), decoder.is_done())
}

fn chunked_err(body: &[u8]) -> String {
    match decode_all(Framing::Chunked, body).0 {
        Err(e) => e.message().to_owned(),
        Ok(data) => panic!("expected a chunked error, got {data:?}"),
    }
}

/// Decodes a chunked `body` one byte at a time.
fn chunked_bytewise(body: &[u8]) -> (Vec<u8>, bool) {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut out = Vec::new();
    for &b in body {
        let mut input = BytesMut::from(&[b][..]);
        out.extend_from_slice(&decoder.decode(&mut input).expect("valid chunked body"));
        assert!(input.is_empty() || decoder.is_done());
    }
    (out, decoder.is_done())
}

// ---- heads ----

#[test]
fn parses_a_simple_head() {
    let text = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Multi: a\r\nx-multi: b\r\n\r\n";
    let h = head(text);
    assert_eq!(h.version, 1);
    assert_eq!(h.status, 200);
    assert_eq!(h.reason, "OK");
    assert_eq!(h.headers.len(), 3);
    assert_eq!(h.headers[0].0, "content-type");
    assert_eq!(h.header("CONTENT-TYPE"), Some(&b"text/html"[..]));
    assert_eq!(h.header_str("content-type"), Some("text/html"));
    assert_eq!(h.header("x-multi"), Some(&b"a"[..]));
    assert_eq!(h.header("missing"), None);
}

#[test]
fn consumed_stops_at_the_end_of_the_head() {
    let text = b"HTTP/1.0 404 Not Found\r\nA: 1\r\n\r\nbody bytes";
    let (h, consumed) = parse_head(text).unwrap().unwrap();
    assert_eq!(h.version, 0);
    assert_eq!(h.status, 404);
    assert_eq!(h.reason, "Not Found");
    assert_eq!(&text[consumed..], b"body bytes");
}

#[test]
fn partial_heads_need_more_bytes() {
    let text = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    for cut in 0..text.len() {
        assert_eq!(parse_head(&text[..cut]), Ok(None), "cut at {cut}");
    }
    assert!(parse_head(text).unwrap().is_some());
}

#[test]
fn bare_lf_line_endings_and_missing_reason() {
    let (h, consumed) = parse_head(b"HTTP/1.1 204\nA: b\n\n").unwrap().unwrap();
    assert_eq!(consumed, 19);
    assert_eq!(h.status, 204);
    assert_eq!(h.reason, "");
    assert_eq!(h.header_str("a"), Some("b"));
}

#[test]
fn values_are_trimmed_and_obs_fold_becomes_spaces() {
    let h = head("HTTP/1.1 200 OK\r\nA:   spaced  \r\nFolded: one\r\n two\r\n\r\n");
    assert_eq!(h.header_str("a"), Some("spaced"));
    let folded = h.header_str("folded").unwrap();
    assert!(folded.starts_with("one") && folded.ends_with("two"));
    assert!(!folded.contains('\r') && !folded.contains('\n'));
}

#[test]
fn header_str_is_none_for_non_utf8_values() {
    let mut text = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    text.extend_from_slice(&[0xff, 0xfe]);
    text.extend_from_slice(b"\r\n\r\n");
    let (h, _) = parse_head(&text).unwrap().unwrap();
    assert_eq!(h.header("x"), Some(&[0xff, 0xfe][..]));
    assert_eq!(h.header_str("x"), None);
}

#[test]
fn a_thousand_headers_are_fine() {
    let mut text = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..1000 {
        text.push_str(&format!("X-H{i}: v{i}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    assert!(text.len() < MAX_HEAD);
    let h = head(&text);
    assert_eq!(h.headers.len(), 1001);
    assert_eq!(h.header_str("x-h999"), Some("v999"));
    assert_eq!(framing("GET", &h), Ok(Framing::Length(0)));
}

#[test]
fn the_most_headers_that_fit_in_64_kib() {
    // "a:\n" lines: the densest headers possible, right up to the limit.
    let mut text = b"HTTP/1.1 200 OK\n".to_vec();
    // Leave room for the final empty line.
    while text.len() + 3 < MAX_HEAD {
        text.extend_from_slice(b"a:\n");
    }
    text.push(b'\n');
    let (h, consumed) = parse_head(&text).unwrap().unwrap();
    assert_eq!(consumed, text.len());
    assert_eq!(h.headers.len(), (text.len() - 17) / 3);
}

#[test]
fn a_head_over_64_kib_is_an_error() {
    let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
    while text.len() < MAX_HEAD + 100 {
        text.extend_from_slice(b"X-Filler: 0123456789abcdef\r\n");
    }
    // Not finished yet, but already too long.
    let msg = head_err(&text);
    assert!(msg.contains("exceeds 64 KiB"), "{msg}");
    // Finished, but too long all the same.
    text.extend_from_slice(b"\r\n");
    let msg = head_err(&text);
    assert!(msg.contains("exceeds 64 KiB"), "{msg}");
    // One huge header value.
    let mut text = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    text.resize(MAX_HEAD, b'v');
    assert!(head_err(&text).contains("64 KiB"));
    // Just under the limit is still waiting for more.
    assert_eq!(parse_head(&text[..MAX_HEAD - 1]), Ok(None));
}

#[test]
fn garbage_is_not_http() {
    for garbage in [
        &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
        b"S",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x00\x00\x00",
        b"<html><body>hello</body></html>",
        b"http/1.1 200 OK\r\n\r\n",
        b"220 smtp.example.com ESMTP\r\n",
    ] {
        let msg = head_err(garbage);
        assert!(msg.contains("not HTTP"), "{garbage:?}: {msg}");
    }
}

#[test]
fn other_versions_are_errors() {
    // HTTP/1.2 used to be here: a higher minor version of HTTP/1 is now read as HTTP/1.1
    // (RFC 9110 2.5, RFC 9112 2.3; see the next test). Another major version, and what is
    // not RFC 9112's `HTTP-version` (one digit each side of the dot), are still errors.
    for text in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/0.9 200 OK\r\n\r\n",
        b"HTTP/3 200\r\n\r\n",
        b"HTTP/1.10 200 OK\r\n\r\n",
        b"HTTP/1.23 200 OK\r\n\r\n",
        b"HTTP/1.x 200 OK\r\n\r\n",
        b"HTTP/1. 200 OK\r\n\r\n",
        b"HTTP/1 200 OK\r\n\r\n",
        b"HTTP/11.1 200 OK\r\n\r\n",
    ] {
        let msg = head_err(text);
        assert!(msg.contains("unsupported HTTP version"), "{text:?}: {msg}");
    }
}

#[test]
fn a_higher_minor_version_is_read_as_http_1_1() {
    // RFC 9110 2.5 / RFC 9112 2.3: a recipient treats a message of a higher minor version
    // of the same major version as if it were the highest minor version it supports.
    for minor in 2..=9 {
        let text = format!("HTTP/1.{minor} 200 OK\r\nContent-Length: 5\r\n\r\n");
        let h = head(&text);
        assert_eq!((h.version, h.status, h.reason.as_str()), (1, 200, "OK"), "{text:?}");
        assert_eq!(framing("GET", &h), Ok(Framing::Length(5)));
    }
    // After empty lines, with bare LFs, and cut anywhere: still waiting, then complete.
    let text = b"\r\nHTTP/1.5 204 No Content\nA: b\n\n";
    for cut in 0..text.len() {
        assert_eq!(parse_head(&text[..cut]), Ok(None), "cut at {cut}");
    }
    let (h, consumed) = parse_head(text).unwrap().unwrap();
    assert_eq!((h.version, h.status, consumed), (1, 204, text.len()));
    assert_eq!(h.header_str("a"), Some("b"));
    // HTTP/1.0 stays 1.0, and errors quote the version as it was sent.
    assert_eq!(head("HTTP/1.0 200 OK\r\n\r\n").version, 0);
    assert!(head_err(b"HTTP/1.2 2x0 OK\r\n\r\n").contains("\"HTTP/1.2 2x0 OK\""));
}

#[test]
fn malformed_heads_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "header field name"),
        (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", "header field name"),
        (b"HTTP/1.1 200 OK\r\nA: x\x00y\r\n\r\n", "header field value"),
        (b"HTTP/1.1 200 OK\r\nA: x\ry\r\n\r\n", "head"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code 099"),
        (b"HTTP/1.1 600 High\r\n\r\n", "invalid status code 600"),
    ];
    for (text, expected) in cases {
        let msg = head_err(text);
        assert!(msg.contains(expected), "{text:?}: {msg}");
    }
}

// ---- heads arriving piece by piece ----

/// Feeds `bytes` to a [`HeadScanner`] `piece` bytes at a time, until it returns something
/// other than `Ok(None)`; that, and the buffer it had then.
fn scan_in_pieces(
    scanner: &mut HeadScanner,
    bytes: &[u8],
    piece: usize,
) -> (Result<Option<(ResponseHead, usize)>, ParseError>, usize) {
    let mut received = Vec::new();
    for piece in bytes.chunks(piece) {
        received.extend_from_slice(piece);
        let result = scanner.parse(&received);
        if result != Ok(None) {
            return (result, received.len());
        }
    }
    (Ok(None), received.len())
}

/// A head of about 60 KiB: many short header lines, `eol` after each.
fn big_head(eol: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 200 OK{eol}Content-Length: 0{eol}");
    let mut i = 0;
    while text.len() < 60 * 1024 {
        text.push_str(&format!("X-H{i}: {}{eol}", "v".repeat(i % 40)));
        i += 1;
    }
    text.push_str(eol);
    text.into_bytes()
}

#[test]
fn a_head_trickled_a_byte_at_a_time_is_parsed_in_full_a_bounded_number_of_times() {
    // Parsing after every read would run the full parser 60 000 times over a buffer
    // growing to 60 KiB; the scanner runs it a few times, however the bytes are split.
    for eol in ["\r\n", "\n"] {
        let text = big_head(eol);
        let whole = parse_head(&text).unwrap().unwrap();
        for piece in [1, 2, 3, 7, 100, 4096, text.len()] {
            let mut scanner = HeadScanner::new();
            let (result, at) = scan_in_pieces(&mut scanner, &text, piece);
            assert_eq!(result.as_ref(), Ok(&Some(whole.clone())), "pieces of {piece}");
            assert_eq!(at, text.len(), "found as soon as the last byte came");
            assert!(scanner.full_parses() <= 19, "pieces of {piece}: {}", scanner.full_parses());
        }
    }
}

#[test]
fn the_scanner_refuses_what_is_not_http_at_once() {
    // As parsing after every read did: garbage at the first bytes, a bad status line as
    // soon as it ends, without waiting for an end of the head that may never come.
    let mut scanner = HeadScanner::new();
    let (result, at) = scan_in_pieces(&mut scanner, b"SSH-2.0-OpenSSH_9.6\r\n", 1);
    assert!(result.unwrap_err().message().contains("not HTTP"));
    assert_eq!(at, 1);
    let mut scanner = HeadScanner::new();
    let line = b"HTTP/1.1 200 OK this reason phrase is longer than sixteen bytes\r\n";
    let mut text = b"HTTP/2.0 2000 ".to_vec();
    text.extend_from_slice(&line[14..]);
    text.extend_from_slice(b"A: b\r\n");
    let (result, at) = scan_in_pieces(&mut scanner, &text, 1);
    assert!(result.unwrap_err().message().contains("unsupported HTTP version"));
    assert!(at <= 8, "{at}");
    let mut scanner = HeadScanner::new();
    let mut text = b"HTTP/1.1 2x0 ".to_vec();
    text.extend_from_slice(&line[13..]);
    text.extend_from_slice(b"A: b\r\n");
    let (result, at) = scan_in_pieces(&mut scanner, &text, 1);
    assert!(result.unwrap_err().message().contains("invalid status line"));
    assert!(at <= line.len(), "{at}");
}

#[test]
fn the_scanner_refuses_a_bad_field_as_soon_as_its_line_ends() {
    // Not at the end of the head, which a hostile server may never send.
    let fields: &[(&[u8], &str)] = &[
        (b"Bad Name: x\r\n", "invalid header field name"),
        (b"Content-Length : 5\n", "invalid header field name"),
        (b"no colon\r\n", "invalid header field name"),
        (b"A: x\x00y\r\n", "invalid header field value"),
        (b"A: x\ry\r\n", "invalid header field value"),
    ];
    for (field, expected) in fields {
        let mut text = b"HTTP/1.1 200 OK this is a reason phrase\r\nGood: field\r\n".to_vec();
        text.extend_from_slice(field);
        let line_end = text.len();
        text.extend_from_slice(b"A: b\r\n\r\n");
        let mut scanner = HeadScanner::new();
        let (result, at) = scan_in_pieces(&mut scanner, &text, 1);
        let message = result.unwrap_err().message().to_owned();
        assert!(message.contains(expected), "{field:?}: {message}");
        assert_eq!(at, line_end, "{field:?}");
        assert_eq!(parse_head(&text[..line_end]).unwrap_err().message(), message);
    }
    // An obs-fold line is valid or not with the lines around it: it is left to the full
    // parse, here at the end of the head.
    let text = b"HTTP/1.1 200 OK this is a reason phrase\r\nA: b\r\n c\x00\r\nB: d\r\n\r\n";
    let mut scanner = HeadScanner::new();
    let (result, at) = scan_in_pieces(&mut scanner, text, 1);
    assert!(result.unwrap_err().message().contains("invalid header field value"));
    assert_eq!(at, text.len());
    // And valid folds are no errors.
    let text = b"HTTP/1.1 200 OK this is a reason phrase\r\nA: b\r\n c\r\n\td\r\nB: e\r\n\r\n";
    let (result, _) = scan_in_pieces(&mut HeadScanner::new(), text, 1);
    assert_eq!(result, parse_head(text));
    assert!(result.unwrap().is_some());
}

#[test]
fn the_scanner_stops_at_64_kib_without_an_end() {
    let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
    while text.len() < MAX_HEAD + 1000 {
        text.extend_from_slice(b"X-Filler: 0123456789abcdef\r\n");
    }
    let mut scanner = HeadScanner::new();
    let (result, at) = scan_in_pieces(&mut scanner, &text, 5);
    assert!(result.unwrap_err().message().contains("exceeds 64 KiB"));
    assert!((MAX_HEAD..MAX_HEAD + 5).contains(&at), "{at}");
    assert!(scanner.full_parses() <= 19, "{}", scanner.full_parses());
    // A head that ends exactly at the limit is still one.
    let mut text = b"HTTP/1.1 200 OK\n".to_vec();
    while text.len() + 3 < MAX_HEAD {
        text.extend_from_slice(b"a:\n");
    }
    text.push(b'\n');
    let mut scanner = HeadScanner::new();
    let (result, _) = scan_in_pieces(&mut scanner, &text, 1);
    assert_eq!(result.unwrap().unwrap().1, text.len());
}

#[test]
fn the_scanner_starts_over_after_each_head() {
    // Interim responses, then the final one, in one buffer and byte by byte; empty lines
    // before a status line are skipped, not taken for the end of a head.
    let text = b"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\nLink: </a>\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    for piece in [1, 3, text.len()] {
        let mut scanner = HeadScanner::new();
        let mut buf = Vec::new();
        let mut statuses = Vec::new();
        for piece in text.chunks(piece) {
            buf.extend_from_slice(piece);
            // Until the final response: what follows it is its body.
            while statuses.last().is_none_or(|&status| is_interim(status)) {
                let Some((head, consumed)) = scanner.parse(&buf).unwrap() else { break };
                statuses.push(head.status);
                buf.drain(..consumed);
            }
        }
        assert_eq!(statuses, [100, 103, 200], "pieces of {piece}");
        assert_eq!(buf, b"hi");
        assert!(scanner.full_parses() <= 3 * 19);
    }
}

#[test]
fn interim_responses_are_returned_and_skippable() {
    assert!(is_interim(100));
    assert!(is_interim(103));
    assert!(!is_interim(101));
    assert!(!is_interim(200));
    assert!(!is_interim(99));

    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
           HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..],
    );
    let mut seen = Vec::new();
    let final_head = loop {
        let (h, consumed) = parse_head(&buf).unwrap().unwrap();
        let _ = buf.split_to(consumed);
        seen.push(h.status);
        if !is_interim(h.status) {
            break h;
        }
        assert_eq!(framing("GET", &h), Ok(Framing::None));
    };
    assert_eq!(seen, [100, 103, 200]);
    let mut decoder = BodyDecoder::new(framing("GET", &final_head).unwrap());
    assert_eq!(&decoder.decode(&mut buf).unwrap()[..], b"hi");
    assert!(decoder.is_done());
}

// ---- framing ----

#[test]
fn no_body_for_head_1xx_204_304() {
    let with_cl = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(framing("HEAD", &head(with_cl)), Ok(Framing::None));
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(framing("HEAD", &head(chunked)), Ok(Framing::None));
    for status in [100, 101, 102, 103, 204, 304] {
        let text = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(framing_of(&text), Ok(Framing::None), "{status}");
    }
    // The decoder for no body is done at once and takes nothing.
    let (data, left, done) = decode_all(Framing::None, b"HTTP/1.1 200 OK\r\n");
    assert_eq!(data.unwrap(), b"");
    assert_eq!(left, b"HTTP/1.1 200 OK\r\n");
    assert!(done);
    assert_eq!(BodyDecoder::new(Framing::None).finish_at_eof(), Ok(()));
}

#[test]
fn content_length_framing() {
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"), Ok(Framing::Length(42)));
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), Ok(Framing::Length(0)));
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n"), Ok(Framing::Length(7)));
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n"),
        Ok(Framing::Length(u64::MAX))
    );
    // Identical repeats, as separate fields or as a list, are allowed.
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
        Ok(Framing::Length(5))
    );
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5, 5,5\r\n\r\n"), Ok(Framing::Length(5)));
    // A POST response frames the same way.
    let h = head("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(framing("POST", &h), Ok(Framing::Length(3)));
}

#[test]
fn content_length_errors() {
    for value in ["-1", "+5", "abc", "5a", "0x10", "", "1 2", "5,", "1.5"] {
        let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
        let msg = framing_err(&text);
        assert!(msg.contains("invalid Content-Length"), "{value:?}: {msg}");
    }
    let msg = framing_err("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n");
    assert!(msg.contains("overflows"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert!(msg.contains("overflows"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    assert!(msg.contains("conflicting Content-Length"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n");
    assert!(msg.contains("conflicting Content-Length"), "{msg}");
}

#[test]
fn transfer_encoding_framing() {
    for te in ["chunked", "CHUNKED", "gzip, chunked", "gzip,chunked ", "chunked;q=1"] {
        let text = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(framing_of(&text), Ok(Framing::Chunked), "{te}");
    }
    // Several fields form one list.
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Ok(Framing::Chunked)
    );
    // chunked not last: read until close (RFC 9112 6.3 rule 4, for responses).
    for te in ["gzip", "chunked, gzip", "identity"] {
        let text = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(framing_of(&text), Ok(Framing::UntilClose), "{te}");
    }
}

#[test]
fn transfer_encoding_errors() {
    let msg = framing_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    assert!(msg.contains("both Transfer-Encoding and Content-Length"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert!(msg.contains("both Transfer-Encoding and Content-Length"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    assert!(msg.contains("chunked more than once"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n");
    assert!(msg.contains("invalid Transfer-Encoding"), "{msg}");
    let msg = framing_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n");
    assert!(msg.contains("empty Transfer-Encoding"), "{msg}");
    let msg = framing_err("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(msg.contains("HTTP/1.0"), "{msg}");
}

#[test]
fn neither_header_means_until_close() {
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
    assert_eq!(framing_of("HTTP/1.0 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
}

// ---- Content-Length and close-delimited bodies ----

#[test]
fn length_body_stops_at_the_declared_length() {
    let mut decoder = BodyDecoder::new(Framing::Length(10));
    let mut input = BytesMut::from(&b"0123"[..]);
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"0123");
    assert!(input.is_empty());
    assert!(!decoder.is_done());
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"");
    input.extend_from_slice(b"456789HTTP/1.1 200 OK\r\n");
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"456789");
    assert!(decoder.is_done());
    // What follows is left for the caller (the next response, or an excess to reject).
    assert_eq!(&input[..], b"HTTP/1.1 200 OK\r\n");
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"");
    assert_eq!(&input[..], b"HTTP/1.1 200 OK\r\n");
    assert_eq!(decoder.finish_at_eof(), Ok(()));
}

#[test]
fn length_body_hands_out_the_input_without_copying() {
    let mut decoder = BodyDecoder::new(Framing::Length(4));
    let mut input = BytesMut::from(&b"abcdef"[..]);
    let start = input.as_ptr();
    let data = decoder.decode(&mut input).unwrap();
    assert_eq!(data.as_ptr(), start);
    assert_eq!(&data[..], b"abcd");

    let mut decoder = BodyDecoder::new(Framing::UntilClose);
    let mut input = BytesMut::from(&b"xyz"[..]);
    let start = input.as_ptr();
    let data = decoder.decode(&mut input).unwrap();
    assert_eq!(data.as_ptr(), start);
}

#[test]
fn zero_length_body_is_done_at_once() {
    let (data, left, done) = decode_all(Framing::Length(0), b"next");
    assert_eq!(data.unwrap(), b"");
    assert_eq!(left, b"next");
    assert!(done);
}

#[test]
fn length_body_cut_short_by_close() {
    let mut decoder = BodyDecoder::new(Framing::Length(100));
    let mut input = BytesMut::from(&[7u8; 40][..]);
    assert_eq!(decoder.decode(&mut input).unwrap().len(), 40);
    let msg = decoder.finish_at_eof().unwrap_err();
    assert_eq!(msg.message(), "connection closed before the body was complete (got 40 of 100 bytes)");
    assert_eq!(msg.to_string(), msg.message());
}

#[test]
fn close_delimited_body_ends_at_close() {
    let mut decoder = BodyDecoder::new(Framing::UntilClose);
    let mut input = BytesMut::from(&b"part one "[..]);
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"part one ");
    assert!(input.is_empty());
    input.extend_from_slice(b"part two");
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"part two");
    assert!(!decoder.is_done());
    assert_eq!(decoder.finish_at_eof(), Ok(()));
    assert!(decoder.is_done());
}

// ---- chunked bodies ----

#[test]
fn chunked_simple() {
    let body = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nNEXT";
    let (data, left, done) = decode_all(Framing::Chunked, body);
    assert_eq!(data.unwrap(), b"hello, world");
    assert_eq!(left, b"NEXT");
    assert!(done);
    let (bytewise, done) = chunked_bytewise(&body[..body.len() - 4]);
    assert_eq!(bytewise, b"hello, world");
    assert!(done);
}

#[test]
fn chunked_hex_upper_and_lower_case() {
    let data: Vec<u8> = (0..0xAB).map(|i| i as u8).collect();
    for size in ["AB", "ab", "aB", "0000ab"] {
        let mut body = format!("{size}\r\n").into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n1f\r\n");
        body.extend_from_slice(&[b'z'; 0x1f]);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let (out, left, done) = decode_all(Framing::Chunked, &body);
        let out = out.unwrap();
        assert_eq!(&out[..0xAB], &data[..], "{size}");
        assert_eq!(&out[0xAB..], &[b'z'; 0x1f][..]);
        assert!(left.is_empty() && done);
    }
}

#[test]
fn chunked_extensions_are_ignored() {
    let body = b"4;name=value\r\nWiki\r\n5 ; a=\"q;uoted\" ;flag\r\npedia\r\n0;last=yes\r\n\r\n";
    let (data, left, done) = decode_all(Framing::Chunked, body);
    assert_eq!(data.unwrap(), b"Wikipedia");
    assert!(left.is_empty() && done);
    assert_eq!(chunked_bytewise(body), (b"Wikipedia".to_vec(), true));
}

#[test]
fn chunked_trailers_are_ignored() {
    let body = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Checksum: 42\r\n\r\nrest";
    let (data, left, done) = decode_all(Framing::Chunked, body);
    assert_eq!(data.unwrap(), b"abc");
    assert_eq!(left, b"rest");
    assert!(done);
    assert_eq!(chunked_bytewise(&body[..body.len() - 4]), (b"abc".to_vec(), true));
}

#[test]
fn chunked_tolerates_bare_lf() {
    let body = b"3\nabc\n2;x\nde\n0\nTrailer: t\n\n";
    let (data, left, done) = decode_all(Framing::Chunked, body);
    assert_eq!(data.unwrap(), b"abcde");
    assert!(left.is_empty() && done);
}

#[test]
fn chunked_only_the_last_chunk() {
    let (data, left, done) = decode_all(Framing::Chunked, b"0\r\n\r\n");
    assert_eq!(data.unwrap(), b"");
    assert!(left.is_empty() && done);
}

#[test]
fn chunked_largest_size_is_accepted() {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut input = BytesMut::from(&b"FFFFFFFFFFFFFFFF\r\nabc"[..]);
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"abc");
    assert!(!decoder.is_done());
}

#[test]
fn chunked_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"xyz\r\n", "missing chunk size"),
        (b"\r\nabc\r\n", "missing chunk size"),
        (b";ext\r\n", "missing chunk size"),
        (b" 5\r\nhello\r\n", "missing chunk size"),
        (b"-5\r\n", "missing chunk size"),
        (b"5g\r\nhello\r\n", "invalid chunk size"),
        (b"0x5\r\nhello\r\n", "invalid chunk size"),
        (b"5 5\r\nhello\r\n", "invalid chunk size"),
        (b"10000000000000000\r\n", "overflows"),
        (b"FFFFFFFFFFFFFFFFF\r\n", "overflows"),
        (b"5\rX", "missing LF after CR"),
        (b"5\r\nhelloX", "missing CRLF after chunk data"),
        (b"5\r\nhello\rX", "missing CRLF after chunk data"),
        (b"3\r\nabcdef\r\n", "missing CRLF after chunk data"),
        (b"0\r\n\rX", "missing LF after CR"),
    ];
    for (body, expected) in cases {
        let msg = chunked_err(body);
        assert!(msg.contains(expected), "{:?}: {msg}", String::from_utf8_lossy(body));
    }
}

#[test]
fn chunked_errors_are_sticky() {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut input = BytesMut::from(&b"zz\r\n"[..]);
    let first = decoder.decode(&mut input).unwrap_err();
    let mut more = BytesMut::from(&b"0\r\n\r\n"[..]);
    assert_eq!(decoder.decode(&mut more), Err(first.clone()));
    assert_eq!(decoder.finish_at_eof(), Err(first));
    assert!(!decoder.is_done());
}

#[test]
fn chunked_size_line_and_trailers_are_bounded() {
    let mut body = b"5;".to_vec();
    body.resize(100_000, b'x');
    assert!(chunked_err(&body).contains("chunk-size line longer than"));
    let mut body = b"0\r\n".to_vec();
    while body.len() < 100_000 {
        body.extend_from_slice(b"X-Trailer: yes\r\n");
    }
    assert!(chunked_err(&body).contains("trailer section longer than"));
}

#[test]
fn chunked_cut_short_by_close() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "got 0 bytes"),
        (b"5\r\nhel", "got 3 bytes of a chunked body, 2 more bytes of the current chunk due"),
        (b"5\r\nhello\r\n", "the last chunk was missing"),
        (b"5\r\nhello", "the last chunk was missing"),
        (b"0\r\nTrailer: x\r\n", "the trailer section was unfinished"),
    ];
    for (body, expected) in cases {
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let mut input = BytesMut::from(*body);
        decoder.decode(&mut input).unwrap();
        let msg = decoder.finish_at_eof().unwrap_err();
        let msg = msg.message();
        assert!(msg.starts_with("connection closed before the body was complete"), "{msg}");
        assert!(msg.contains(expected), "{msg}");
    }
}

#[test]
fn chunked_done_decoder_takes_nothing_more() {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut input = BytesMut::from(&b"1\r\na\r\n0\r\n\r\n"[..]);
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"a");
    assert!(decoder.is_done());
    input.extend_from_slice(b"garbage");
    assert_eq!(&decoder.decode(&mut input).unwrap()[..], b"");
    assert_eq!(&input[..], b"garbage");
    assert_eq!(decoder.finish_at_eof(), Ok(()));
}

#[test]
fn parse_error_is_a_std_error() {
    let e: Box<dyn std::error::Error> = Box::new(parse_head(b"SSH-2.0-x\r\n").unwrap_err());
    assert!(e.to_string().contains("not HTTP"));
}
