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

/// The bytes of a request for `url`: origin-form target (path and query, no fragment),
/// `Host`, `User-Agent`, `Accept-Encoding: identity` (bodies arrive as sent), keep-alive,
/// and `Content-Length` when there is a body.
pub fn encode(method: &str, url: &Url, user_agent: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
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
