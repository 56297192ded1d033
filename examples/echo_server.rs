//! asyncio's streams echo server: each client's lines are written back.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDRESS]        # default 127.0.0.1:8888
//! cargo run --release --example echo_client -- [ADDRESS] [MESSAGE]
//! ```
//! With `--once` the server stops after its first client has gone.

use std::net::SocketAddr;
use std::rc::Rc;

use evloop::streams::{start_server, StreamReader, StreamWriter};

async fn handle_echo(reader: StreamReader, writer: StreamWriter, served: Rc<evloop::sync::Event>) {
    let peer = writer.peer_addr().map(ToString::to_string).unwrap_or_default();
    let mut lines = reader.lines();
    while let Some(line) = lines.next().await {
        let Ok(line) = line else { break };
        println!("received {:?} from {peer}", String::from_utf8_lossy(&line).trim_end());
        writer.write(&line);
        if writer.drain().await.is_err() {
            break;
        }
    }
    println!("closing the connection with {peer}");
    writer.close();
    if let Err(error) = writer.wait_closed().await {
        println!("the connection with {peer} failed: {error}");
    }
    served.set();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let address: SocketAddr =
        args.iter().find(|a| !a.starts_with("--")).map_or("127.0.0.1:8888", String::as_str).parse()?;
    evloop::run(async move {
        let served = Rc::new(evloop::sync::Event::new());
        let on_client = served.clone();
        let server = start_server(
            move |reader, writer| handle_echo(reader, writer, on_client.clone()),
            &address.ip().to_string(),
            address.port(),
        )
        .await?;
        println!("serving on {:?}", server.addresses().iter().map(ToString::to_string).collect::<Vec<_>>());
        if once {
            served.wait().await;
            server.close();
        }
        server.wait_closed().await;
        Ok::<(), std::io::Error>(())
    })??;
    Ok(())
}
