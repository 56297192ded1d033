//! The flight recorder on a small program, for people studying the loop: what each
//! iteration waited for, which fds were ready, which timers fired and how late, and which
//! callbacks and task steps ran and for how long.
//!
//! ```text
//! cargo run --release --example trace             # readable, real clock
//! cargo run --release --example trace -- --virtual # the same program on a virtual clock
//! cargo run --release --example trace -- --json    # JSON lines, one per iteration
//! ```
//!
//! The program: a `call_soon` callback; a 10 ms timer; a task that sends "ping" through a
//! socketpair to a `sock_recv` task that answers "pong"; and a task that sleeps 20 ms.
//! Read the trace beside NOTES.md chapter 1: each iteration polls (or, with callbacks
//! ready, does not), fires due timers, then runs exactly what was ready.

use std::time::Duration;

use evloop::sys::socket::{Kind, Socket};
use evloop::{create_task, sleep, EventLoop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut builder = EventLoop::builder().flight_recorder(100);
    if args.iter().any(|a| a == "--virtual") {
        builder = builder.virtual_clock();
    }
    let event_loop = builder.build()?;

    event_loop.call_soon(|| {})?;
    event_loop.call_later(Duration::from_millis(10), || {})?;
    event_loop.run_until_complete(async {
        let (ping_end, pong_end) = Socket::pair(Kind::Stream).expect("socketpair");
        let answerer = create_task(async move {
            let event_loop = evloop::get_running_loop().expect("running");
            let question = event_loop.sock_recv(&pong_end, 16).await.expect("recv");
            assert_eq!(question, b"ping");
            event_loop.sock_sendall(&pong_end, b"pong").await.expect("send");
        });
        let sleeper = create_task(sleep(Duration::from_millis(20)));
        let event_loop = evloop::get_running_loop().expect("running");
        event_loop.sock_sendall(&ping_end, b"ping").await.expect("send");
        let answer = event_loop.sock_recv(&ping_end, 16).await.expect("recv");
        assert_eq!(answer, b"pong");
        answerer.await.expect("answerer");
        sleeper.await.expect("sleeper");
    })?;

    if json {
        event_loop.write_trace(&mut std::io::stdout())?;
        return Ok(());
    }
    for record in event_loop.trace().unwrap_or_default() {
        println!("{record}");
    }
    if let Some(health) = event_loop.health() {
        println!(
            "\n{} iterations: busy {:?}, idle {:?}, worst timer lag {:?}",
            health.iterations, health.busy, health.idle, health.max_lag
        );
        if let Some(longest) = health.longest_run {
            println!("longest run: {} for {:?}", longest.ran, longest.took);
        }
    }
    event_loop.close()?;
    Ok(())
}
