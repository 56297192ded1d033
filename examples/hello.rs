//! asyncio's first coroutine example: `say_after` awaited twice in a row (about 3 s),
//! then the same two started as tasks so they overlap (about 2 s).
//!
//! ```text
//! cargo run --release --example hello
//! ```

use std::time::{Duration, Instant};

async fn say_after(delay: Duration, what: &str) {
    evloop::sleep(delay).await;
    println!("{what}");
}

fn clock(start: Instant) -> String {
    format!("{:.3} s", start.elapsed().as_secs_f64())
}

async fn main_coroutine() {
    let start = Instant::now();
    println!("started at {}", clock(start));
    say_after(Duration::from_secs(1), "hello").await;
    say_after(Duration::from_secs(2), "world").await;
    println!("finished at {} (one after the other: about 3 s)", clock(start));

    let start = Instant::now();
    let task1 = evloop::create_task(say_after(Duration::from_secs(1), "hello"));
    let task2 = evloop::create_task(say_after(Duration::from_secs(2), "world"));
    println!("started at {}", clock(start));
    task1.await.expect("task 1");
    task2.await.expect("task 2");
    println!("finished at {} (as tasks, overlapping: about 2 s)", clock(start));
}

fn main() -> Result<(), evloop::RunError> {
    evloop::run(main_coroutine())
}
