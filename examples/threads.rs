//! A loop in a background thread, fed from the main thread (asyncio's
//! `run_coroutine_threadsafe` recipe): the main thread hands the loop three coroutines
//! that sleep 3, 2 and 1 s, keeps printing while they run, and collects their results.
//! They finish in reverse order, after about 3 s in all, not 6.
//!
//! ```text
//! cargo run --release --example threads
//! ```

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use evloop::{get_running_loop, run_coroutine_threadsafe, EventLoop};

async fn work(name: &'static str, seconds: u64, start: Instant) -> String {
    evloop::sleep(Duration::from_secs(seconds)).await;
    println!("  [loop thread] {name} done after {seconds} s ({:.1} s)", start.elapsed().as_secs_f64());
    format!("{name} slept {seconds} s")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // The loop lives on its own thread: `new_event_loop()` + `Thread(target=loop.run_forever)`.
    let (sender, receiver) = mpsc::channel();
    let loop_thread = thread::spawn(move || -> std::io::Result<()> {
        let event_loop = EventLoop::new()?;
        sender.send(event_loop.remote()).expect("main thread is waiting");
        event_loop.run_forever()?;
        event_loop.close()?;
        Ok(())
    });
    let remote = receiver.recv()?;

    let handles: Vec<_> = [("first", 3), ("second", 2), ("third", 1)]
        .into_iter()
        .map(|(name, seconds)| {
            println!("[main thread] submitting {name} ({seconds} s)");
            run_coroutine_threadsafe(work(name, seconds, start), &remote)
        })
        .collect();

    // The main thread is free meanwhile.
    while !handles.iter().all(|h| h.done()) {
        println!("[main thread] still here at {:.1} s", start.elapsed().as_secs_f64());
        thread::sleep(Duration::from_millis(500));
    }

    for handle in &handles {
        println!("[main thread] result: {}", handle.result(Some(Duration::from_secs(5)))?);
    }

    // `loop.call_soon_threadsafe(loop.stop)`
    remote.call_soon_threadsafe(|| get_running_loop().expect("on the loop thread").stop())?;
    loop_thread.join().expect("the loop thread panicked")?;
    println!("[main thread] all done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
