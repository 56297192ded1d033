//! asyncio's streams echo client: send a line, print the echo.
//!
//! ```text
//! cargo run --release --example echo_server &
//! cargo run --release --example echo_client -- 127.0.0.1:8888 "Hello World!"
//! ```

use std::net::SocketAddr;

use evloop::streams::open_connection;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let address: SocketAddr = args.first().map_or("127.0.0.1:8888", String::as_str).parse()?;
    let message = args.get(1).cloned().unwrap_or_else(|| "Hello World!".to_string());
    evloop::run(async move {
        let (reader, writer) = open_connection(&address.ip().to_string(), address.port()).await?;
        println!("send: {message:?}");
        writer.write(format!("{message}\n").as_bytes());
        writer.drain().await?;
        let line = reader.readline().await?;
        println!("received: {:?}", String::from_utf8_lossy(&line).trim_end());
        println!("close the connection");
        writer.close();
        writer.wait_closed().await?;
        Ok::<(), std::io::Error>(())
    })??;
    Ok(())
}
