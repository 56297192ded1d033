//! `sleep`: asyncio's `asyncio.sleep`, a timer that wakes the sleeping task.
//!
//! The timer entry holds the task's waker itself, so sleeping allocates nothing beyond
//! the timer queue's own slot.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::event_loop::get_running_loop;
use crate::timer::TimerKey;

/// Suspends the calling coroutine for `delay` (asyncio's `asyncio.sleep`).
///
/// `sleep(Duration::ZERO)` gives way for exactly one loop iteration, as asyncio's
/// `sleep(0)` does: every other ready callback and task runs once before it resumes.
/// The clock starts at the first poll, when the coroutine reaches the `await`.
///
/// # Panics
/// When first polled outside a running loop.
pub fn sleep(delay: Duration) -> Sleep {
    Sleep { state: State::Unstarted(delay) }
}

/// The future returned by [`sleep`]. Dropping it cancels its timer.
#[derive(Debug)]
pub struct Sleep {
    state: State,
}

#[derive(Debug)]
enum State {
    Unstarted(Duration),
    Yielded,
    Armed { deadline: Instant, key: TimerKey, waker: Waker },
    Done,
}

impl std::future::Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = match &self.state {
            State::Done => return Poll::Ready(()),
            State::Yielded => {
                self.state = State::Done;
                return Poll::Ready(());
            }
            State::Unstarted(delay) if delay.is_zero() => {
                self.state = State::Yielded;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            State::Unstarted(delay) => running_loop().time() + *delay,
            State::Armed { deadline, waker, .. } => {
                let event_loop = running_loop();
                if event_loop.timers_checked_at().is_some_and(|t| t >= *deadline) {
                    self.state = State::Done;
                    return Poll::Ready(());
                }
                if waker.will_wake(cx.waker()) {
                    return Poll::Pending;
                }
                // Polled by another task than the one it wakes: move the timer over.
                let deadline = *deadline;
                self.cancel_timer();
                deadline
            }
        };
        self.arm(deadline, cx.waker());
        Poll::Pending
    }
}

impl Sleep {
    fn arm(&mut self, deadline: Instant, waker: &Waker) {
        match running_loop().wake_at(deadline, waker.clone()) {
            Ok(key) => self.state = State::Armed { deadline, key, waker: waker.clone() },
            // A running loop is not closed; but never hang if it were.
            Err(_) => {
                self.state = State::Done;
                waker.wake_by_ref();
            }
        }
    }

    /// Cancels the timer if it is certainly still queued (its deadline is in the future);
    /// one past due fires at most a spurious wake-up, which futures tolerate.
    fn cancel_timer(&mut self) {
        if let State::Armed { deadline, key, .. } = self.state {
            self.state = State::Done;
            if let Ok(event_loop) = get_running_loop() {
                if event_loop.time() < deadline {
                    event_loop.cancel_wake(key);
                }
            }
        }
    }

    /// When the sleep ends, once it has started.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Armed { deadline, .. } => Some(deadline),
            _ => None,
        }
    }
}

fn running_loop() -> crate::EventLoop {
    get_running_loop().expect("sleep polled outside a running event loop")
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel_timer();
    }
}
