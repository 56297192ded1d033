//! `gather`: three coroutines sleeping 3, 2 and 4 s before computing 10+5, 10-5 and
//! 10*5, run concurrently. The results come back in input order after about 4 s, the
//! longest sleep, not 9 s.
//!
//! ```text
//! cargo run --release --example gather
//! ```

use std::time::{Duration, Instant};

async fn compute(name: &'static str, seconds: u64, op: fn(i32, i32) -> i32) -> i32 {
    println!("{name}: sleeping {seconds} s");
    evloop::sleep(Duration::from_secs(seconds)).await;
    let result = op(10, 5);
    println!("{name}: done, {result}");
    result
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let results = evloop::run(async {
        evloop::gather!(
            compute("add", 3, |a, b| a + b),
            compute("sub", 2, |a, b| a - b),
            compute("mul", 4, |a, b| a * b),
        )
        .await
    })??;
    println!("results in input order: {results:?} after {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}
