//! Blocking work moved off the loop with `run_in_executor` (asyncio's
//! `await loop.run_in_executor(None, blocking_function)`): a `std::thread::sleep` and a
//! blocking HTTP GET with `std::net::TcpStream`, to a tiny server this example starts on
//! 127.0.0.1 (no network needed). A loop timer keeps ticking all along: the loop never
//! blocks.
//!
//! ```text
//! cargo run --release --example executor
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use evloop::{create_task, get_running_loop, sleep};

/// A tiny, slow HTTP server on its own thread: answers each request after 1.5 s.
fn start_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream);
        }
    });
    Ok(address)
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear(); // skip the request head, up to the empty line
    }
    thread::sleep(Duration::from_millis(1500));
    let body = "hello from the blocking server\n";
    write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// The blocking fetch: everything here would freeze the loop if run on it.
fn blocking_get(address: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = start_server()?;
    let start = Instant::now();
    let stamp = move || format!("{:.1} s", start.elapsed().as_secs_f64());
    evloop::run(async move {
        let event_loop = get_running_loop().expect("inside run");
        let ticker = create_task(async move {
            loop {
                sleep(Duration::from_millis(200)).await;
                println!("  tick ({}): the loop is free", stamp());
            }
        });

        // Both jobs start at once, each on a pool thread.
        let nap = event_loop.run_in_executor(|| {
            thread::sleep(Duration::from_secs(1));
            "slept 1 s in a worker thread"
        });
        let fetch = event_loop.run_in_executor(move || blocking_get(address));

        let slept = nap.await?;
        println!("{}: {slept}", stamp());
        let response = fetch.await??;
        let status = response.lines().next().unwrap_or_default();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().trim_end();
        println!("{}: fetched {address}: {status} / {body:?}", stamp());

        ticker.cancel();
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    println!("done in {}", stamp());
    Ok(())
}
