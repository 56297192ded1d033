//! The `raw_fetch` example again, written with the loop's `sock_*` coroutines: the same
//! connect / send / receive steps, but each is an `await` instead of a callback, and the
//! fetches run as tasks gathered together.
//!
//! ```text
//! cargo run --release --example sock_fetch -- http://127.0.0.1:8000/ ...
//! cargo run --release --example sock_fetch       # demo against a local server
//! ```

#[path = "support/local_http.rs"]
mod local_http;

use std::io;

use evloop::sys::socket::{Kind, SockAddr, Socket};

async fn fetch(url: String) -> Result<(String, usize), String> {
    let event_loop = evloop::get_running_loop().map_err(|e| e.to_string())?;
    let (host, port, path) = local_http::split_url(&url)?;
    let address = event_loop.resolve(&host, port).await.map_err(|e| format!("{host}: {e}"))?[0];
    let address = SockAddr::Inet(address);
    let io_error = |e: io::Error| e.to_string();
    let socket = Socket::new(address.family(), Kind::Stream).map_err(io_error)?;
    event_loop.sock_connect(&socket, &address).await.map_err(io_error)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    event_loop.sock_sendall(&socket, request.as_bytes()).await.map_err(io_error)?;
    let mut response = Vec::new();
    loop {
        let chunk = event_loop.sock_recv(&socket, 16 * 1024).await.map_err(io_error)?;
        if chunk.is_empty() {
            break;
        }
        response.extend_from_slice(&chunk);
    }
    let status = response.split(|b| *b == b'\r').next().unwrap_or_default();
    Ok((String::from_utf8_lossy(status).into_owned(), response.len()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    let _server = if urls.is_empty() {
        let server = local_http::LocalHttp::start()?;
        urls = (1..=5).map(|i| server.url(&format!("page{i}"))).collect();
        Some(server)
    } else {
        None
    };
    let outcomes = evloop::run(evloop::gather_return_exceptions(urls.clone().into_iter().map(fetch)))?;
    for (url, outcome) in urls.iter().zip(outcomes) {
        match outcome {
            Ok(Ok((status, size))) => println!("{status} ({size} bytes) {url}"),
            Ok(Err(e)) => println!("ERR {e} {url}"),
            Err(e) => println!("ERR {e} {url}"),
        }
    }
    Ok(())
}
