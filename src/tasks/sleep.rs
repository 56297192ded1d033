//! `sleep`: asyncio's `asyncio.sleep`, a timer that wakes the sleeping task.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::event_loop::{get_running_loop, TimerHandle};

/// Suspends the calling coroutine for `delay` (asyncio's `asyncio.sleep`).
///
/// `sleep(Duration::ZERO)` gives way for exactly one loop iteration, as asyncio's
/// `sleep(0)` does: every other ready callback and task runs once before it resumes.
/// The clock starts at the first poll, when the coroutine reaches the `await`.
///
/// # Panics
/// When first polled outside a running loop.
pub fn sleep(delay: Duration) -> Sleep {
    Sleep { delay, timer: None, yielded: false }
}

/// The future returned by [`sleep`]. Dropping it cancels its timer.
#[derive(Debug)]
pub struct Sleep {
    delay: Duration,
    timer: Option<(TimerHandle, Waker)>,
    yielded: bool,
}

impl std::future::Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.delay.is_zero() {
            if self.yielded {
                return Poll::Ready(());
            }
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let event_loop = get_running_loop().expect("sleep polled outside a running event loop");
        let deadline = match &self.timer {
            None => event_loop.time() + self.delay,
            Some((timer, _)) if event_loop.time() >= timer.when() => {
                self.cancel_timer();
                return Poll::Ready(());
            }
            Some((timer, waker)) if waker.will_wake(cx.waker()) => {
                let _ = timer;
                return Poll::Pending;
            }
            Some((timer, _)) => timer.when(),
        };
        self.arm(deadline, cx.waker());
        Poll::Pending
    }
}

impl Sleep {
    /// (Re)arms the timer for `deadline`, waking `waker`.
    fn arm(&mut self, deadline: Instant, waker: &Waker) {
        self.cancel_timer();
        let event_loop = get_running_loop().expect("sleep polled outside a running event loop");
        let wake = waker.clone();
        match event_loop.call_at(deadline, move || wake.wake()) {
            Ok(timer) => self.timer = Some((timer, waker.clone())),
            // The loop is running, so it is not closed; but never hang if it were.
            Err(_) => waker.wake_by_ref(),
        }
    }

    fn cancel_timer(&mut self) {
        if let Some((timer, _)) = self.timer.take() {
            timer.cancel();
        }
    }

    /// When the sleep ends, once it has started.
    pub fn deadline(&self) -> Option<Instant> {
        self.timer.as_ref().map(|(timer, _)| timer.when())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel_timer();
    }
}
