//! `wait` with a timeout: five tasks sleeping 1..=5 s, waited for 2.5 s. Two are done,
//! three still pending, and they keep running until they are cancelled.
//!
//! ```text
//! cargo run --release --example wait
//! ```

use std::time::Duration;

use evloop::{create_task, sleep, wait, ReturnWhen};

fn main() -> Result<(), evloop::RunError> {
    evloop::run(async {
        let tasks: Vec<_> = (1..=5u64)
            .map(|seconds| {
                create_task(async move {
                    sleep(Duration::from_secs(seconds)).await;
                    seconds
                })
            })
            .collect();
        let (done, pending) = wait(tasks, Some(Duration::from_millis(2500)), ReturnWhen::AllCompleted).await;
        println!("after 2.5 s: {} done, {} pending", done.len(), pending.len());
        for task in done {
            println!("  done: slept {} s", task.await.expect("finished"));
        }
        for task in &pending {
            println!("  pending: {} (cancelling it)", task.get_name());
            task.cancel();
        }
        let (first, _) = wait(pending, None, ReturnWhen::FirstCompleted).await;
        println!("first to finish after the cancel: cancelled = {}", first[0].cancelled());
    })
}
