//! Writing a request: the request line and headers of RFC 9112, then the body.

use url::Url;

/// The `Host` header value: the host, with the port unless it is the scheme's default,
/// and IPv6 literals in brackets (RFC 9110 section 7.2).
pub fn host_header(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// The bytes of a request for `url`: origin-form target ([`request_target`]: path and query,
/// no fragment, no userinfo), `Host`, `User-Agent`, `Accept-Encoding: identity` (bodies
/// arrive as sent), keep-alive, and `Content-Length` when there is a body.
pub fn encode(method: &str, url: &Url, user_agent: &str, body: Option<&[u8]>) -> Vec<u8> {
    let target = request_target(url);
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n\
         Accept-Encoding: identity\r\nConnection: keep-alive\r\n",
        host_header(url)
    );
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// The origin-form request target for `url` (RFC 9112 section 3.2.1): its path and query,
/// never its fragment or userinfo, with every byte that RFC 3986 does not allow there
/// percent-encoded.
///
/// The `url` crate serializes as the WHATWG URL standard (and browsers) do: spaces,
/// non-ASCII, `"`, `<`, `>` and a few more are encoded, but `|`, `^`, `[`, `]`, `\`, and in
/// the query `{`, `}` and `` ` ``, stay as typed, and so does a `%` that starts no
/// percent-encoding (`%zz`). None of them may appear raw in a path or query (RFC 3986
/// sections 3.3 and 3.4: pchar is unreserved, pct-encoded, sub-delims, `:` and `@`, and
/// 2.1: `%` only with two hex digits), and strict servers answer such a target with 400.
/// Encoding them is the one way to send the octets at all, so it changes nothing a server
/// could read otherwise; a valid `%XX` is kept as it is.
pub fn request_target(url: &Url) -> String {
    let mut target = String::new();
    push_encoded(&mut target, url.path());
    if let Some(query) = url.query() {
        target.push('?');
        push_encoded(&mut target, query);
    }
    target
}

/// Appends `part` (a path or a query) to `target`, percent-encoding every byte RFC 3986
/// does not allow in one (see [`request_target`]).
fn push_encoded(target: &mut String, part: &str) {
    let bytes = part.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        let allowed = byte.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/?".contains(&byte)
            || (byte == b'%' && bytes.len() > i + 2 && bytes[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit));
        if allowed {
            target.push(char::from(byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
}
