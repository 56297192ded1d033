//! The links of an HTML page, for the crawler: a small tokenizer over the page's bytes that
//! knows just enough of the HTML standard to find `<a href>` and `<base href>` where a
//! browser would. Tags are read attribute by attribute (quoted with " or ', or bare; names
//! in any case), so an `href=` inside another attribute's value is not a link; comments,
//! and the text of `<script>`, `<style>`, `<textarea>` and `<title>`, hold no tags at all.
//!
//! It works on bytes, not on decoded text, so that a page in another encoding than UTF-8
//! loses nothing: a link's bytes outside ASCII are percent-encoded as they are
//! ([`url_text`]), where decoding the page lossily would have turned them into U+FFFD.

/// What a page links to: the `href` of its first `<base>` that has one, and the `href` of
/// each `<a>`, in order; character references decoded, other bytes as the page has them.
pub struct Links {
    /// The first `<base href>`, against which the links resolve.
    pub base: Option<Vec<u8>>,
    /// Each `<a href>`.
    pub hrefs: Vec<Vec<u8>>,
}

/// Elements whose content is text, not markup: a `<a` inside is no tag.
const TEXT_ONLY: [&[u8]; 4] = [b"script", b"style", b"textarea", b"title"];

/// Reads the links out of `html`. Linear in its length: every byte is looked at a bounded
/// number of times, and a tag, comment or text-only element the page never ends takes the
/// rest of the page with it, as in a browser.
pub fn links(html: &[u8]) -> Links {
    let mut links = Links { base: None, hrefs: Vec::new() };
    let mut at = 0;
    while let Some(open) = find(html, at, b"<") {
        let rest = &html[open..];
        if rest.starts_with(b"<!--") {
            // The comment ends at the first `-->`; searching from its second `-` makes
            // `<!-->` and `<!--->` the empty comments they are.
            let Some(end) = find(html, open + 2, b"-->") else { break };
            at = end + 3;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") || rest.starts_with(b"</") {
            // A doctype, an end tag, or something a browser reads as a comment.
            let Some(end) = find(html, open, b">") else { break };
            at = end + 1;
        } else if rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
            let name_end = skip(html, open + 1, |b| !is_space(b) && b != b'/' && b != b'>');
            let name = &html[open + 1..name_end];
            let Some((href, end)) = tag_href(html, name_end) else { break };
            if let Some(href) = href {
                if name.eq_ignore_ascii_case(b"a") {
                    links.hrefs.push(decode_references(href));
                } else if name.eq_ignore_ascii_case(b"base") && links.base.is_none() {
                    links.base = Some(decode_references(href));
                }
            }
            at = end;
            if TEXT_ONLY.iter().any(|text_only| name.eq_ignore_ascii_case(text_only)) {
                let Some(close) = find_end_tag(html, at, name) else { break };
                at = close;
            }
        } else {
            at = open + 1;
        }
    }
    links
}

/// Reads a tag's attributes from `at`, just after its name, to its `>`: the value of its
/// first `href` (any case; empty when it has no value), and where the tag ends (after the
/// `>`); `None` when the page ends first. A `/` between attributes is skipped, as a browser
/// does. Nothing is kept of the other attributes, however many there are.
fn tag_href(html: &[u8], mut at: usize) -> Option<(Option<&[u8]>, usize)> {
    let mut href = None;
    loop {
        at = skip(html, at, |b| is_space(b) || b == b'/');
        if *html.get(at)? == b'>' {
            return Some((href, at + 1));
        }
        // The first byte is part of the name whatever it is (even `=`), so `at` moves on.
        let name_start = at;
        at = skip(html, at + 1, |b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='));
        let is_href = html[name_start..at].eq_ignore_ascii_case(b"href");
        at = skip(html, at, is_space);
        let mut value: &[u8] = b"";
        if html.get(at) == Some(&b'=') {
            at = skip(html, at + 1, is_space);
            let quote = *html.get(at)?;
            if quote == b'"' || quote == b'\'' {
                let end = find(html, at + 1, &[quote])?;
                value = &html[at + 1..end];
                at = end + 1;
            } else {
                let start = at;
                at = skip(html, at, |b| !is_space(b) && b != b'>');
                value = &html[start..at];
            }
        }
        if is_href && href.is_none() {
            href = Some(value);
        }
    }
}

/// Where the end tag `</name` (any case, then a space, `/` or `>`) starts, from `at` on.
fn find_end_tag(html: &[u8], mut at: usize, name: &[u8]) -> Option<usize> {
    loop {
        let open = find(html, at, b"</")?;
        let after = &html[open + 2..];
        let ends_name = after.get(name.len()).is_some_and(|&b| is_space(b) || b == b'/' || b == b'>');
        if after.len() > name.len() && after[..name.len()].eq_ignore_ascii_case(name) && ends_name {
            return Some(open);
        }
        at = open + 2;
    }
}

/// The named character references decoded here: the ones that turn up in URLs. All but
/// `apos` are among HTML's legacy names, which may go without their `;`.
const NAMED: [(&[u8], &str); 6] =
    [(b"amp", "&"), (b"lt", "<"), (b"gt", ">"), (b"quot", "\""), (b"nbsp", "\u{a0}"), (b"apos", "'")];

/// `value` with its character references decoded as in an HTML attribute value, cut down
/// to what links use: numeric ones (`&#38;`, `&#x26;`) and the names of [`NAMED`]. A named
/// reference without its `;` is decoded only when no letter, digit or `=` follows it, so
/// `?a=1&copy=2` stays as it is. Every other byte is kept as it is.
pub fn decode_references(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        if value[at] == b'&' {
            if let Some((decoded, used)) = reference(&value[at + 1..]) {
                let mut utf8 = [0; 4];
                out.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
                at += 1 + used;
                continue;
            }
        }
        out.push(value[at]);
        at += 1;
    }
    out
}

/// The character a reference stands for, and how many bytes after its `&` it took.
fn reference(rest: &[u8]) -> Option<(char, usize)> {
    if let Some(number) = rest.strip_prefix(b"#") {
        let hex = matches!(number.first(), Some(b'x' | b'X'));
        let digits_at = if hex { 1 } else { 0 };
        let radix = if hex { 16 } else { 10 };
        let digits = number[digits_at..].iter().take_while(|b| (**b as char).is_digit(radix)).count();
        if digits == 0 {
            return None;
        }
        let code = number[digits_at..digits_at + digits].iter().fold(0u32, |n, &b| {
            n.saturating_mul(radix).saturating_add((b as char).to_digit(radix).unwrap_or(0))
        });
        // NUL, surrogates and what is beyond Unicode become U+FFFD, as in a browser.
        let decoded = char::from_u32(code).filter(|&c| c != '\0').unwrap_or('\u{fffd}');
        let end = 1 + digits_at + digits;
        let semicolon = usize::from(rest.get(end) == Some(&b';'));
        return Some((decoded, end + semicolon));
    }
    for (name, decoded) in NAMED {
        let Some(after) = rest.strip_prefix(name) else { continue };
        let decoded = decoded.chars().next()?;
        return match after.first() {
            Some(b';') => Some((decoded, name.len() + 1)),
            Some(&b) if b.is_ascii_alphanumeric() || b == b'=' => None,
            // `&apos;` is no legacy name: without its `;` it is not a reference.
            _ if name == b"apos" => None,
            _ => Some((decoded, name.len())),
        };
    }
    None
}

/// `href` as text for the URL parser: each byte outside ASCII percent-encoded as it is
/// (`é` in a Latin-1 page, the byte E9, becomes `%E9`; in a UTF-8 page, C3 A9 becomes
/// `%C3%A9`, as the URL parser would have made it), whatever the page's encoding.
pub fn url_text(href: &[u8]) -> String {
    let mut text = String::with_capacity(href.len());
    for &b in href {
        if b.is_ascii() {
            text.push(b as char);
        } else {
            text.push_str(&format!("%{b:02X}"));
        }
    }
    text
}

/// ASCII whitespace, as HTML has it (no vertical tab).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// Where `needle` is in `html` from `at` on.
fn find(html: &[u8], at: usize, needle: &[u8]) -> Option<usize> {
    html.get(at..)?.windows(needle.len()).position(|w| w == needle).map(|i| at + i)
}

/// The first position from `at` on whose byte does not pass `test` (or the end).
fn skip(html: &[u8], at: usize, test: impl Fn(u8) -> bool) -> usize {
    at + html.get(at..).unwrap_or_default().iter().take_while(|&&b| test(b)).count()
}
