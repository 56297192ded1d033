//! An echo server and client written as Protocols: asyncio's callback style, no
//! coroutines in the connection code.
//!
//! ```text
//! cargo run --release --example echo_protocol            # demo: server and client on one loop
//! cargo run --release --example echo_protocol -- serve 127.0.0.1:8888   # server only
//! ```

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use evloop::transport::{Protocol, ServerOptions, Transport};

/// Writes back whatever arrives.
struct EchoServer {
    transport: Option<Transport>,
}

impl Protocol for EchoServer {
    fn connection_made(&mut self, transport: &Transport) {
        println!("server: connection from {:?}", transport.peer_addr().map(ToString::to_string));
        self.transport = Some(transport.clone());
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(transport) = &self.transport {
            transport.write(data);
        }
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        println!("server: connection closed ({})", error.map_or("cleanly".to_string(), |e| e.to_string()));
    }
}

/// Sends a message, prints the echo, closes.
struct EchoClient {
    message: &'static str,
    received: Vec<u8>,
    done: Rc<evloop::sync::Event>,
    transport: Option<Transport>,
}

impl Protocol for EchoClient {
    fn connection_made(&mut self, transport: &Transport) {
        println!("client: sending {:?}", self.message);
        transport.write(self.message.as_bytes());
        self.transport = Some(transport.clone());
    }

    fn data_received(&mut self, data: &[u8]) {
        self.received.extend_from_slice(data);
        if self.received.len() >= self.message.len() {
            println!("client: received {:?}", String::from_utf8_lossy(&self.received));
            if let Some(transport) = &self.transport {
                transport.close();
            }
        }
    }

    fn connection_lost(&mut self, _error: Option<io::Error>) {
        self.done.set();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let address: std::net::SocketAddr = args.get(1).map_or("127.0.0.1:8888", String::as_str).parse()?;
        return evloop::run(async move {
            let event_loop = evloop::get_running_loop()?;
            let factory = || EchoServer { transport: None };
            let server = event_loop
                .create_server(factory, &address.ip().to_string(), address.port(), ServerOptions::default())
                .await?;
            println!("serving on {:?}", server.addresses());
            server.wait_closed().await;
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
    }
    evloop::run(async {
        let event_loop = evloop::get_running_loop()?;
        let factory = || EchoServer { transport: None };
        let server = event_loop.create_server(factory, "127.0.0.1", 0, ServerOptions::default()).await?;
        let address = server.addresses()[0].as_inet().expect("an IP listener");
        println!("serving on {address}");
        let done = Rc::new(evloop::sync::Event::new());
        let client = EchoClient {
            message: "Hello, World!",
            received: Vec::new(),
            done: done.clone(),
            transport: None,
        };
        let (_transport, _protocol): (Transport, Rc<RefCell<EchoClient>>) =
            event_loop.create_connection(move || client, "127.0.0.1", address.port()).await?;
        done.wait().await;
        server.close();
        server.wait_closed().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}
