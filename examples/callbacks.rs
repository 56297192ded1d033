//! The asyncio callbacks program, in evloop: three `call_at` timers scheduled out of
//! order and one `call_soon`, each printing the loop time; the loop stops after the last.
//!
//! ```text
//! cargo run --release --example callbacks
//! ```
//!
//! The Python original:
//! ```python
//! loop = asyncio.new_event_loop()
//! now = loop.time()
//! loop.call_at(now + 2, callback, 2, loop)
//! loop.call_at(now + 1, callback, 1, loop)
//! loop.call_at(now + 3, callback, 3, loop)
//! loop.call_soon(callback, 4, loop)
//! loop.call_at(now + 3, loop.stop)
//! loop.run_forever()
//! ```
//! It prints 4 at once, then 1, 2, 3 one second apart: call_soon before any timer, timers
//! by deadline whatever the order they were scheduled in.

use std::time::{Duration, Instant};

use evloop::EventLoop;

fn callback(n: u32, event_loop: &EventLoop, start: Instant) {
    let since = event_loop.time().duration_since(start).as_secs_f64();
    println!("callback {n} invoked at loop.time() = start + {since:.3} s");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let event_loop = EventLoop::new()?;
    let start = event_loop.time();
    for (seconds, n) in [(2, 2), (1, 1), (3, 3)] {
        let l = event_loop.clone();
        event_loop.call_at(start + Duration::from_secs(seconds), move || callback(n, &l, start))?;
    }
    let l = event_loop.clone();
    event_loop.call_soon(move || callback(4, &l, start))?;
    let stopper = event_loop.clone();
    event_loop.call_at(start + Duration::from_secs(3), move || stopper.stop())?;
    event_loop.run_forever()?;
    println!("{:?}", event_loop.stats());
    event_loop.close()?;
    Ok(())
}
