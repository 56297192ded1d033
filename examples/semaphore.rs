//! A `Semaphore` limiting ten workers to five at a time: the printout shows how many
//! hold a permit at each moment, never more than five.
//!
//! ```text
//! cargo run --release --example semaphore
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::sync::Semaphore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let semaphore = Rc::new(Semaphore::new(5));
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let start = Instant::now();
    let workers = (0..10).map(|worker| {
        let (semaphore, running, peak) = (semaphore.clone(), running.clone(), peak.clone());
        async move {
            let _permit = semaphore.acquire().await;
            running.set(running.get() + 1);
            peak.set(peak.get().max(running.get()));
            println!(
                "{:.1} s: worker {worker} starts, {} running",
                start.elapsed().as_secs_f64(),
                running.get()
            );
            evloop::sleep(Duration::from_millis(500)).await;
            running.set(running.get() - 1);
        }
    });
    let workers: Vec<_> = workers.collect();
    evloop::run(evloop::gather(workers))??;
    println!(
        "at most {} ran at once; {:.1} s in all (two rounds of 0.5 s)",
        peak.get(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
