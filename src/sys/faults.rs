//! Injected socket faults, for the deterministic mode: the socket calls of this module's
//! parent can be told to return short reads and writes, `EAGAIN`, `EINTR` and connection
//! resets, chosen by a seeded generator at fixed rates, on real sockets.
//!
//! Everything above `sys/` must already survive these, since the kernel may produce each
//! of them at any time; injecting them makes the rare paths common enough for a property
//! test to walk them. The plan is per thread: the loop installs its injector when it
//! starts running and takes it back when it stops, so a test server on another thread,
//! or another loop, is never affected.
//!
//! No `unsafe` here: this only decides; `socket.rs` carries the decision out.

use std::cell::{Cell, RefCell};
use std::io;

use crate::rng::SeededRng;

/// Which faults to inject and how often: each rate is the probability, per eligible
/// socket call, of that fault (0.0 never, 1.0 always). There is no asyncio equivalent.
///
/// ```
/// let plan = evloop::sys::faults::FaultPlan::transient(42, 0.2).with_resets(0.01);
/// assert_eq!(plan.would_block, 0.2);
/// assert_eq!(plan.reset, 0.01);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Seeds the generator that picks the faults: the same seed and the same sequence of
    /// calls give the same faults.
    pub seed: u64,
    /// A stream `recv` asks the kernel for fewer bytes than the caller's buffer holds.
    pub short_read: f64,
    /// A stream `send` hands the kernel only part of the caller's bytes.
    pub short_write: f64,
    /// The call returns `EAGAIN` (`io::ErrorKind::WouldBlock`) without reaching the kernel.
    pub would_block: f64,
    /// The call returns `EINTR` (`io::ErrorKind::Interrupted`) without reaching the kernel.
    pub interrupted: f64,
    /// A stream `recv` or `send` shuts the socket down both ways and returns `ECONNRESET`.
    pub reset: f64,
}

impl FaultPlan {
    /// Short reads, short writes, `EAGAIN` and `EINTR`, each at `rate`, and no resets:
    /// faults a correct program must absorb without losing a byte.
    pub fn transient(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan {
            seed,
            short_read: rate,
            short_write: rate,
            would_block: rate,
            interrupted: rate,
            reset: 0.0,
        }
    }

    /// This plan, with connection resets at `rate`.
    pub fn with_resets(self, rate: f64) -> FaultPlan {
        FaultPlan { reset: rate, ..self }
    }
}

/// How many faults an injector produced, by kind, and how many calls it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Socket calls that were eligible for a fault.
    pub calls: u64,
    /// Reads shortened.
    pub short_reads: u64,
    /// Writes shortened.
    pub short_writes: u64,
    /// `EAGAIN` returned.
    pub would_blocks: u64,
    /// `EINTR` returned.
    pub interrupts: u64,
    /// Connections reset.
    pub resets: u64,
}

/// A [`FaultPlan`] with its generator and counters: the state that moves between a loop
/// and the thread it runs on.
#[derive(Debug)]
pub struct FaultInjector {
    plan: FaultPlan,
    rng: SeededRng,
    counts: FaultCounts,
}

impl FaultInjector {
    /// An injector at the start of `plan`'s stream.
    pub fn new(plan: FaultPlan) -> FaultInjector {
        FaultInjector { rng: SeededRng::new(plan.seed), plan, counts: FaultCounts::default() }
    }

    /// What it has injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    fn decide(&mut self, call: SocketCall, len: usize) -> Fault {
        self.counts.calls += 1;
        let (plan, rng, counts) = (&self.plan, &mut self.rng, &mut self.counts);
        let is_stream = matches!(call, SocketCall::Recv | SocketCall::Send);
        if is_stream && rng.chance(plan.reset) {
            counts.resets += 1;
            return Fault::Reset;
        }
        if rng.chance(plan.would_block) {
            counts.would_blocks += 1;
            return Fault::Fail(io::ErrorKind::WouldBlock.into());
        }
        if rng.chance(plan.interrupted) {
            counts.interrupts += 1;
            return Fault::Fail(io::ErrorKind::Interrupted.into());
        }
        let short_rate = match call {
            SocketCall::Recv => plan.short_read,
            SocketCall::Send => plan.short_write,
            SocketCall::Accept | SocketCall::Datagram => 0.0,
        };
        if len > 1 && rng.chance(short_rate) {
            match call {
                SocketCall::Recv => counts.short_reads += 1,
                _ => counts.short_writes += 1,
            }
            return Fault::Shorten(1 + rng.below(len - 1));
        }
        Fault::None
    }
}

/// The kinds of socket call faults can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketCall {
    /// A stream `recv`: any fault.
    Recv,
    /// A stream `send`: any fault.
    Send,
    /// `accept`: `EAGAIN` and `EINTR` only.
    Accept,
    /// A datagram `recvfrom`, `sendto` or connected `send`: `EAGAIN` and `EINTR` only,
    /// as a shortened datagram would be a different datagram, not a delayed one.
    Datagram,
}

/// What a socket call is to do.
pub(crate) enum Fault {
    /// Make the call as asked.
    None,
    /// Make the call with only this many bytes of the buffer.
    Shorten(usize),
    /// Return this error without making the call.
    Fail(io::Error),
    /// Shut the socket down both ways and return `ECONNRESET`.
    Reset,
}

thread_local! {
    static ACTIVE: RefCell<Option<FaultInjector>> = const { RefCell::new(None) };
    /// Whether `ACTIVE` holds an injector: one flag read is all a socket call pays when
    /// none does (the normal case, on every send and recv).
    static ANY_ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Makes `injector` decide the faults of this thread's socket calls from now on; returns
/// the one it replaces.
pub fn install(injector: FaultInjector) -> Option<FaultInjector> {
    ANY_ACTIVE.with(|any| any.set(true));
    ACTIVE.with(|active| active.borrow_mut().replace(injector))
}

/// Stops injecting faults on this thread; returns the injector, with its counts and its
/// place in the stream, so that the next [`install`] carries on where this one stopped.
pub fn uninstall() -> Option<FaultInjector> {
    ANY_ACTIVE.with(|any| any.set(false));
    ACTIVE.with(|active| active.borrow_mut().take())
}

/// The counts of the injector installed on this thread, if there is one.
pub fn active_counts() -> Option<FaultCounts> {
    ACTIVE.with(|active| active.borrow().as_ref().map(FaultInjector::counts))
}

/// Whether an injector is installed on this thread: the one check a socket call makes
/// when none is, inlined into it.
#[inline]
pub(crate) fn any_active() -> bool {
    ANY_ACTIVE.try_with(Cell::get).unwrap_or(false)
}

/// The fault for one call of `len` bytes.
pub(crate) fn next_fault(call: SocketCall, len: usize) -> Fault {
    ACTIVE
        .try_with(|active| match active.try_borrow_mut() {
            Ok(mut active) => active.as_mut().map_or(Fault::None, |injector| injector.decide(call, len)),
            Err(_) => Fault::None,
        })
        .unwrap_or(Fault::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_plan_no_faults() {
        assert!(uninstall().is_none());
        assert!(matches!(next_fault(SocketCall::Recv, 100), Fault::None));
    }

    #[test]
    fn a_rate_of_one_always_fires_and_is_counted() {
        install(FaultInjector::new(FaultPlan { seed: 3, would_block: 1.0, ..FaultPlan::default() }));
        for _ in 0..10 {
            assert!(
                matches!(next_fault(SocketCall::Send, 10), Fault::Fail(e) if e.kind() == io::ErrorKind::WouldBlock)
            );
        }
        let injector = uninstall().expect("installed above");
        assert_eq!(injector.counts().would_blocks, 10);
    }

    #[test]
    fn shortened_calls_keep_at_least_one_byte_and_lose_at_least_one() {
        let mut injector = FaultInjector::new(FaultPlan { seed: 9, short_read: 1.0, ..FaultPlan::default() });
        for len in 2..200 {
            match injector.decide(SocketCall::Recv, len) {
                Fault::Shorten(n) => assert!((1..len).contains(&n)),
                _ => panic!("expected a short read"),
            }
        }
        assert!(matches!(injector.decide(SocketCall::Recv, 1), Fault::None));
        assert!(matches!(injector.decide(SocketCall::Datagram, 100), Fault::None));
    }
}
