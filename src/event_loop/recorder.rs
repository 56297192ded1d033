//! The flight recorder: what each iteration of the loop did, kept in a bounded ring buffer
//! (no asyncio equivalent; asyncio's debug mode only logs slow callbacks).
//!
//! Per iteration it notes the timeout asked of `epoll_wait` and the real time waited (or
//! how far a virtual clock jumped instead), the (fd, readiness) events, how late each due
//! timer fired, how many callbacks were ready, and each callback and task step run with
//! its duration. The records can be printed for reading, dumped as JSON lines, compared
//! between two runs, and summed up into the loop's health.
//!
//! Durations and real waits are measured with the real clock, so they differ from run to
//! run; everything else is fixed by the program, the seed and (with a virtual clock)
//! virtual time. [`same_schedule`](IterationRecord::same_schedule) compares only the
//! latter, which is what "this seed replays the same run" means.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::panic::Location;
use std::time::{Duration, Instant};

use super::task_slab::TaskId;
use super::EventLoop;
use crate::selector::Interest;

/// One thing the loop ran: a callback (named by where it was scheduled) or a task step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// A `call_soon` / timer / fd callback, and where it was scheduled.
    Callback(&'static Location<'static>),
    /// One step of a task, and where the task was created.
    Task(TaskId, &'static Location<'static>),
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ran::Callback(origin) => write!(f, "callback from {origin}"),
            Ran::Task(id, origin) => write!(f, "task {id} from {origin}"),
        }
    }
}

/// One callback or task step and how long it took (real time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// What ran.
    pub ran: Ran,
    /// How long it ran.
    pub took: Duration,
}

/// The loop's wait for I/O in one iteration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollRecord {
    /// The timeout asked of `epoll_wait`: `None` for no limit.
    pub timeout: Option<Duration>,
    /// How long `epoll_wait` really took.
    pub waited: Duration,
    /// How far a virtual clock jumped instead of waiting (zero otherwise).
    pub jumped: Duration,
    /// The fds reported ready and for what.
    pub events: Vec<(RawFd, Interest)>,
    /// True if the loop's wake-up eventfd fired (another thread sent something).
    pub woken: bool,
}

/// What one iteration of the loop did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IterationRecord {
    /// The iteration's number, counted from the loop's creation.
    pub iteration: u64,
    /// Loop time when the iteration began, since the loop was created.
    pub time: Duration,
    /// The wait for I/O, if the iteration polled (it does not while callbacks keep
    /// coming, until [`POLL_IO_EVERY`](crate::POLL_IO_EVERY) of them have run).
    pub poll: Option<PollRecord>,
    /// How late each timer that came due fired, in loop time.
    pub timers_late: Vec<Duration>,
    /// How many callbacks and task steps were ready to run.
    pub ready: usize,
    /// Each callback and task step run, in order.
    pub runs: Vec<RunRecord>,
    /// How long the whole iteration took, waiting included (real time).
    pub took: Duration,
}

impl IterationRecord {
    /// True if both iterations did the same things in the same order at the same loop
    /// time, ignoring real-time measurements (durations and real waits). Two runs of one
    /// program with the same seed and a virtual clock agree on this, iteration for
    /// iteration, as long as no real I/O timing is involved.
    pub fn same_schedule(&self, other: &IterationRecord) -> bool {
        let poll_key = |p: &PollRecord| (p.timeout, p.jumped, p.events.clone(), p.woken);
        self.iteration == other.iteration
            && self.time == other.time
            && self.poll.as_ref().map(poll_key) == other.poll.as_ref().map(poll_key)
            && self.timers_late == other.timers_late
            && self.ready == other.ready
            && self.runs.iter().map(|r| r.ran).eq(other.runs.iter().map(|r| r.ran))
    }

    /// The record as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let mut line = format!("{{\"iteration\":{},\"time_us\":{:.3}", self.iteration, micros(self.time));
        if let Some(poll) = &self.poll {
            let timeout = poll.timeout.map_or("null".to_string(), |t| format!("{:.3}", micros(t)));
            let events: Vec<String> = poll
                .events
                .iter()
                .map(|(fd, ready)| format!("[{fd},\"{}\"]", interest_name(*ready)))
                .collect();
            line += &format!(
                ",\"poll\":{{\"timeout_us\":{timeout},\"waited_us\":{:.3},\"jumped_us\":{:.3},\"woken\":{},\"events\":[{}]}}",
                micros(poll.waited),
                micros(poll.jumped),
                poll.woken,
                events.join(",")
            );
        }
        let late: Vec<String> = self.timers_late.iter().map(|d| format!("{:.3}", micros(*d))).collect();
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|run| match run.ran {
                Ran::Callback(origin) => format!(
                    "{{\"callback\":\"{}\",\"us\":{:.3}}}",
                    json_escape(&origin.to_string()),
                    micros(run.took)
                ),
                Ran::Task(id, origin) => format!(
                    "{{\"task\":\"{id}\",\"created_at\":\"{}\",\"us\":{:.3}}}",
                    json_escape(&origin.to_string()),
                    micros(run.took)
                ),
            })
            .collect();
        line += &format!(
            ",\"timers_late_us\":[{}],\"ready\":{},\"runs\":[{}],\"took_us\":{:.3}}}",
            late.join(","),
            self.ready,
            runs.join(","),
            micros(self.took)
        );
        line
    }
}

/// A readable one-iteration summary, as `examples/trace.rs` prints it.
impl fmt::Display for IterationRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:<4} t={:>10.6}s", self.iteration, self.time.as_secs_f64())?;
        if let Some(poll) = &self.poll {
            match poll.timeout {
                Some(t) => write!(f, "  poll(timeout {})", short(t))?,
                None => write!(f, "  poll(no timeout)")?,
            }
            if poll.jumped > Duration::ZERO {
                write!(f, " jumped {}", short(poll.jumped))?;
            } else {
                write!(f, " waited {}", short(poll.waited))?;
            }
            for (fd, ready) in &poll.events {
                write!(f, " fd{fd}:{}", interest_name(*ready))?;
            }
            if poll.woken {
                write!(f, " woken")?;
            }
        }
        if !self.timers_late.is_empty() {
            let latest = self.timers_late.iter().max().copied().unwrap_or_default();
            write!(f, "  timers {} (latest {} late)", self.timers_late.len(), short(latest))?;
        }
        write!(f, "  ready {}", self.ready)?;
        for run in &self.runs {
            write!(f, "\n        {} ({})", run.ran, short(run.took))?;
        }
        Ok(())
    }
}

/// How the loop has been doing over the recorded iterations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopHealth {
    /// Iterations in the record.
    pub iterations: usize,
    /// Real time spent outside `epoll_wait`: running callbacks and the loop's own work.
    pub busy: Duration,
    /// Real time spent waiting in `epoll_wait`.
    pub idle: Duration,
    /// The latest any timer fired after its deadline: the loop's lag.
    pub max_lag: Duration,
    /// The longest single callback or task step, if anything ran.
    pub longest_run: Option<RunRecord>,
}

impl LoopHealth {
    /// Sums up `records`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a IterationRecord>) -> LoopHealth {
        let mut health = LoopHealth::default();
        for record in records {
            let waited = record.poll.as_ref().map_or(Duration::ZERO, |p| p.waited);
            health.iterations += 1;
            health.idle += waited;
            health.busy += record.took.saturating_sub(waited);
            health.max_lag = record.timers_late.iter().copied().fold(health.max_lag, Duration::max);
            for run in &record.runs {
                if health.longest_run.is_none_or(|longest| run.took > longest.took) {
                    health.longest_run = Some(*run);
                }
            }
        }
        health
    }
}

/// The index of the first iteration where two traces did different things (see
/// [`IterationRecord::same_schedule`]), or `None` if they agree throughout; a trace that
/// stops early differs at its end.
pub fn first_divergence(a: &[IterationRecord], b: &[IterationRecord]) -> Option<usize> {
    let common = a.len().min(b.len());
    (0..common).find(|&i| !a[i].same_schedule(&b[i])).or((a.len() != b.len()).then_some(common))
}

/// Reading the recorder of a loop built with
/// [`flight_recorder`](crate::EventLoopBuilder::flight_recorder).
impl EventLoop {
    /// The recorded iterations, oldest first, if the loop was built with a
    /// [`flight_recorder`](crate::EventLoopBuilder::flight_recorder).
    pub fn trace(&self) -> Option<Vec<IterationRecord>> {
        Some(self.inner.recorder.as_ref()?.borrow().records())
    }

    /// Writes the recorded iterations to `out` as JSON lines, one object per iteration
    /// (nothing if the loop has no flight recorder).
    pub fn write_trace(&self, out: &mut dyn io::Write) -> io::Result<()> {
        match &self.inner.recorder {
            Some(recorder) => recorder.borrow().write_json_lines(out),
            None => Ok(()),
        }
    }

    /// Lag, busy and idle time and the longest callback over the recorded iterations, if
    /// the loop has a flight recorder.
    pub fn health(&self) -> Option<LoopHealth> {
        Some(self.inner.recorder.as_ref()?.borrow().health())
    }
}

/// The ring buffer the loop writes into while recording.
pub(crate) struct FlightRecorder {
    capacity: usize,
    done: VecDeque<IterationRecord>,
    current: IterationRecord,
    started: Instant,
}

impl FlightRecorder {
    /// A recorder keeping the last `capacity` iterations (at least one).
    pub(crate) fn new(capacity: usize) -> FlightRecorder {
        FlightRecorder {
            capacity: capacity.max(1),
            done: VecDeque::new(),
            current: IterationRecord::default(),
            started: Instant::now(),
        }
    }

    pub(crate) fn begin(&mut self, iteration: u64, time: Duration) {
        self.current = IterationRecord { iteration, time, ..IterationRecord::default() };
        self.started = Instant::now();
    }

    pub(crate) fn poll(&mut self, poll: PollRecord) {
        self.current.poll = Some(poll);
    }

    /// Notes a clock jump made after the poll of this iteration.
    pub(crate) fn jumped(&mut self, by: Duration) {
        if let Some(poll) = self.current.poll.as_mut() {
            poll.jumped = by;
        }
    }

    pub(crate) fn timer_fired(&mut self, late: Duration) {
        self.current.timers_late.push(late);
    }

    pub(crate) fn ready(&mut self, count: usize) {
        self.current.ready = count;
    }

    pub(crate) fn ran(&mut self, ran: Ran, took: Duration) {
        self.current.runs.push(RunRecord { ran, took });
    }

    pub(crate) fn end(&mut self) {
        let mut record = std::mem::take(&mut self.current);
        record.took = self.started.elapsed();
        if self.done.len() == self.capacity {
            self.done.pop_front();
        }
        self.done.push_back(record);
    }

    pub(crate) fn records(&self) -> Vec<IterationRecord> {
        self.done.iter().cloned().collect()
    }

    pub(crate) fn write_json_lines(&self, out: &mut dyn Write) -> io::Result<()> {
        for record in &self.done {
            writeln!(out, "{}", record.to_json())?;
        }
        Ok(())
    }

    pub(crate) fn health(&self) -> LoopHealth {
        LoopHealth::from_records(&self.done)
    }
}

fn interest_name(interest: Interest) -> &'static str {
    match (interest.is_readable(), interest.is_writable()) {
        (true, true) => "RW",
        (true, false) => "R",
        (false, true) => "W",
        (false, false) => "-",
    }
}

/// A duration in the unit that reads best: µs below a millisecond, ms below a second.
fn short(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s < 1e-3 => format!("{:.1}µs", s * 1e6),
        s if s < 1.0 => format!("{:.3}ms", s * 1e3),
        s => format!("{s:.3}s"),
    }
}

fn json_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_iterations() {
        let mut recorder = FlightRecorder::new(2);
        for i in 0..5 {
            recorder.begin(i, Duration::from_millis(i));
            recorder.end();
        }
        let kept: Vec<u64> = recorder.records().iter().map(|r| r.iteration).collect();
        assert_eq!(kept, [3, 4]);
    }

    #[test]
    fn divergence_ignores_durations_but_not_order() {
        let record = |took_us| IterationRecord {
            iteration: 1,
            ready: 1,
            runs: vec![RunRecord {
                ran: Ran::Callback(Location::caller()),
                took: Duration::from_micros(took_us),
            }],
            ..IterationRecord::default()
        };
        let (a, b) = (vec![record(1)], vec![record(50)]);
        assert_eq!(first_divergence(&a, &b), None);
        let mut c = b.clone();
        c[0].ready = 2;
        assert_eq!(first_divergence(&a, &c), Some(0));
        assert_eq!(first_divergence(&a, &[]), Some(0));
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let mut recorder = FlightRecorder::new(4);
        recorder.begin(7, Duration::from_secs(1));
        recorder.poll(PollRecord {
            timeout: Some(Duration::from_millis(5)),
            events: vec![(5, Interest::READ)],
            ..PollRecord::default()
        });
        recorder.timer_fired(Duration::ZERO);
        recorder.ready(1);
        recorder.end();
        let mut out = Vec::new();
        recorder.write_json_lines(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            text.starts_with("{\"iteration\":7,\"time_us\":1000000.000,\"poll\":{\"timeout_us\":5000.000")
        );
        assert!(text.contains("\"events\":[[5,\"R\"]]"));
        assert!(text.trim_end().ends_with('}'));
    }
}
