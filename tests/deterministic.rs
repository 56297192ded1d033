//! The deterministic mode: the virtual clock and its jump policy, seeded task order, the
//! flight recorder (replay and comparison) and `assert_quiescent`.
//!
//! Real time appears only as generous upper bounds ("an hour of virtual sleep takes less
//! than 5 s of real time") and in the two tests where another thread must really act
//! before a virtual timeout; those wait for that thread, never for the clock.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use evloop::sync::{Event, Queue};
use evloop::{
    create_task, deterministic, first_divergence, gather, sleep, wait_for, ClockJump, EventLoop,
    IterationRecord, TimeoutError,
};

fn virtual_loop() -> EventLoop {
    EventLoop::builder().virtual_clock().build().expect("loop")
}

#[test]
fn an_hour_of_sleep_takes_no_real_time_and_shows_on_the_clock() {
    let event_loop = virtual_loop();
    let started_real = Instant::now();
    let start = event_loop.time();
    event_loop.run_until_complete(sleep(Duration::from_secs(3600))).unwrap();
    assert_eq!(event_loop.time() - start, Duration::from_secs(3600));
    assert!(
        started_real.elapsed() < Duration::from_secs(5),
        "virtual sleep took {:?}",
        started_real.elapsed()
    );
    event_loop.assert_quiescent();
}

#[test]
fn timers_fire_at_their_exact_virtual_deadline_in_deadline_then_scheduling_order() {
    let event_loop = virtual_loop();
    let start = event_loop.time();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let delays_ms = [500u64, 1, 7_200_000, 1, 0, 333, 500];
    for (index, delay) in delays_ms.into_iter().enumerate() {
        let (fired, clock) = (fired.clone(), event_loop.clone());
        event_loop
            .call_later(Duration::from_millis(delay), move || fired.borrow_mut().push((index, clock.time())))
            .unwrap();
    }
    let stopper = event_loop.clone();
    event_loop.call_later(Duration::from_secs(7201), move || stopper.stop()).unwrap();
    event_loop.run_forever().unwrap();
    let order: Vec<usize> = fired.borrow().iter().map(|(index, _)| *index).collect();
    assert_eq!(order, [4, 1, 3, 5, 0, 6, 2]);
    for (index, at) in fired.borrow().iter() {
        assert_eq!(*at - start, Duration::from_millis(delays_ms[*index]), "timer {index}");
    }
}

#[test]
fn a_watched_socket_keeps_the_clock_from_jumping_past_a_timeout() {
    // The peer answers after 50 ms of real time; the read is given 10 virtual seconds.
    // Jumping would time it out at once (tokio's paused clock does), waiting does not.
    let event_loop = virtual_loop();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        theirs.write_all(b"late but in time").unwrap();
    });
    let outcome = event_loop.run_until_complete(async move {
        let readable = Rc::new(Event::new());
        let event_loop = evloop::get_running_loop().unwrap();
        let set = readable.clone();
        event_loop.add_reader(ours.as_raw_fd(), move || set.set()).unwrap();
        let outcome = wait_for(readable.wait(), Duration::from_secs(10)).await;
        event_loop.remove_reader(ours.as_raw_fd()).unwrap();
        let mut text = String::new();
        (&ours).read_to_string(&mut text).ok();
        outcome.map(|()| text)
    });
    peer.join().unwrap();
    assert_eq!(outcome.unwrap().unwrap(), "late but in time");
    event_loop.assert_quiescent();
}

#[test]
fn with_clock_jump_always_a_watched_socket_does_not_hold_the_clock() {
    let event_loop = EventLoop::builder().clock_jump(ClockJump::Always).build().unwrap();
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let outcome = event_loop.run_until_complete(async move {
        let readable = Rc::new(Event::new());
        let event_loop = evloop::get_running_loop().unwrap();
        let set = readable.clone();
        event_loop.add_reader(ours.as_raw_fd(), move || set.set()).unwrap();
        let outcome = wait_for(readable.wait(), Duration::from_secs(3600)).await;
        event_loop.remove_reader(ours.as_raw_fd()).unwrap();
        outcome
    });
    assert!(matches!(outcome.unwrap(), Err(TimeoutError)));
}

#[test]
fn executor_work_holds_the_virtual_clock() {
    let event_loop = virtual_loop();
    let outcome = event_loop.run_until_complete(async {
        let event_loop = evloop::get_running_loop().unwrap();
        let job = event_loop.run_in_executor(|| {
            thread::sleep(Duration::from_millis(50));
            "done"
        });
        wait_for(job, Duration::from_secs(1)).await
    });
    assert_eq!(outcome.unwrap().unwrap().unwrap(), "done");
    event_loop.shutdown_default_executor();
}

/// Three tasks wait on one event; the order they wake in depends only on the seed.
fn wake_order(seed: u64) -> Vec<&'static str> {
    let event_loop = EventLoop::builder().virtual_clock().seed(seed).build().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let order = log.clone();
    event_loop
        .run_until_complete(async move {
            let event = Rc::new(Event::new());
            let waiters: Vec<_> = ["a", "b", "c", "d"]
                .into_iter()
                .map(|name| {
                    let (event, log) = (event.clone(), log.clone());
                    create_task(async move {
                        event.wait().await;
                        log.borrow_mut().push(name);
                    })
                })
                .collect();
            sleep(Duration::from_millis(1)).await;
            event.set();
            gather(waiters).await.unwrap();
        })
        .unwrap();
    event_loop.assert_quiescent();
    let order = order.borrow().clone();
    order
}

#[test]
fn the_same_seed_gives_the_same_order_and_seeds_explore_several() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..16 {
        let order = wake_order(seed);
        assert_eq!(order, wake_order(seed), "seed {seed} did not replay");
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c", "d"]);
        seen.insert(order);
    }
    assert!(seen.len() > 1, "16 seeds gave one order");
}

#[test]
fn call_soon_keeps_its_fifo_order_under_any_seed() {
    for seed in 0..8 {
        let event_loop = EventLoop::builder().seed(seed).build().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        for i in 0..10 {
            let log = log.clone();
            event_loop.call_soon(move || log.borrow_mut().push(i)).unwrap();
            // Tasks in between, so there is something to shuffle around the callbacks.
            event_loop.create_task(async {}).unwrap();
        }
        let stopper = event_loop.clone();
        event_loop.call_soon(move || stopper.stop()).unwrap();
        event_loop.run_forever().unwrap();
        assert_eq!(*log.borrow(), (0..10).collect::<Vec<_>>(), "seed {seed}");
    }
}

/// A small program with timers, a queue between two tasks and a callback, recorded.
fn recorded_run(seed: u64) -> Vec<IterationRecord> {
    let event_loop = EventLoop::builder().virtual_clock().seed(seed).flight_recorder(1000).build().unwrap();
    event_loop
        .run_until_complete(async {
            let queue = Rc::new(Queue::<u32>::new(2));
            let producer = {
                let queue = queue.clone();
                create_task(async move {
                    for i in 0..5u32 {
                        queue.put(i).await;
                        sleep(Duration::from_millis(10 * u64::from(i))).await;
                    }
                })
            };
            let mut total = 0;
            for _ in 0..5 {
                total += queue.get().await;
            }
            producer.await.unwrap();
            assert_eq!(total, 10);
        })
        .unwrap();
    event_loop.trace().expect("recording")
}

#[test]
fn a_seed_replays_the_same_trace_and_a_comparison_finds_where_runs_part() {
    let first = recorded_run(11);
    assert!(first.len() > 5, "only {} iterations recorded", first.len());
    assert_eq!(first_divergence(&first, &recorded_run(11)), None);
    let mut altered = first.clone();
    altered[3].ready += 1;
    assert_eq!(first_divergence(&first, &altered), Some(3));
}

#[test]
fn the_recorder_sees_timeouts_jumps_timers_and_runs() {
    let event_loop = EventLoop::builder().virtual_clock().flight_recorder(16).build().unwrap();
    event_loop.run_until_complete(sleep(Duration::from_secs(2))).unwrap();
    let trace = event_loop.trace().unwrap();
    let jump = trace
        .iter()
        .find_map(|record| record.poll.as_ref().filter(|poll| poll.jumped > Duration::ZERO))
        .expect("a jump to the timer");
    assert_eq!(jump.jumped, Duration::from_secs(2));
    assert!(trace.iter().any(|record| record.timers_late == [Duration::ZERO]));
    assert!(trace.iter().any(|record| !record.runs.is_empty()));
    let mut json = Vec::new();
    event_loop.write_trace(&mut json).unwrap();
    let json = String::from_utf8(json).unwrap();
    assert_eq!(json.lines().count(), trace.len());
    assert!(json.lines().all(|line| line.starts_with("{\"iteration\":") && line.ends_with('}')));
    let health = event_loop.health().unwrap();
    assert_eq!(health.iterations, trace.len());
    assert_eq!(health.max_lag, Duration::ZERO);
    assert!(health.longest_run.is_some());
}

#[test]
fn assert_quiescent_names_what_is_left() {
    let event_loop = EventLoop::new().unwrap();
    event_loop.assert_quiescent();
    let (ours, _theirs) = UnixStream::pair().unwrap();
    event_loop.add_reader(ours.as_raw_fd(), || {}).unwrap();
    let timer = event_loop.call_later(Duration::from_secs(60), || {}).unwrap();
    let task = event_loop.create_task(sleep(Duration::from_secs(60))).unwrap();
    let alive = event_loop.check_quiescent().unwrap_err();
    assert_eq!(alive.watched_fds.len(), 1);
    assert_eq!(alive.pending_timers, 1);
    assert_eq!(alive.live_tasks.len(), 1);
    let message = alive.to_string();
    assert!(message.contains("fds still watched") && message.contains("task created at"), "{message}");
    timer.cancel();
    event_loop.remove_reader(ours.as_raw_fd()).unwrap();
    task.cancel();
    event_loop.run_once().unwrap();
    drop(task);
    event_loop.assert_quiescent();
}

// ---------------------------------------------------------------------------------------
// Replaying a failing seed, and the trace example

/// Set for the child process of the test below: the run that fails on purpose.
const FAILING_CHILD: &str = "EVLOOP_TEST_FAILING_CHILD";

/// Does nothing, unless started as that child: then fails inside `report_seed`.
#[test]
fn a_seeded_run_that_fails_on_purpose_in_a_child_process() {
    if std::env::var_os(FAILING_CHILD).is_some() {
        deterministic::report_seed(42, |seed| panic!("failing on purpose with seed {seed}"));
    }
}

/// A failing run prints its seed and how to replay it; `EVLOOP_SEED` makes the same call
/// run the seed it names. Each run is this test binary started again, running only the
/// test above, as that child.
#[test]
fn a_failure_prints_its_seed_and_evloop_seed_replays_it() {
    let run_child = |replay: Option<&str>| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args(["--exact", "a_seeded_run_that_fails_on_purpose_in_a_child_process", "--nocapture"]);
        child.env(FAILING_CHILD, "1").env_remove(deterministic::SEED_VARIABLE);
        if let Some(seed) = replay {
            child.env(deterministic::SEED_VARIABLE, seed);
        }
        let output = child.output().expect("run this test binary again");
        assert!(!output.status.success(), "the child was meant to fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let first = run_child(None);
    assert!(first.contains("failing on purpose with seed 42"), "{first}");
    assert!(first.contains("evloop: failed with seed 0x2a; replay it with EVLOOP_SEED=0x2a"), "{first}");
    let replayed = run_child(Some("0x7"));
    assert!(replayed.contains("failing on purpose with seed 7"), "{replayed}");
    assert!(replayed.contains("failed with seed 0x7"), "{replayed}");
}

/// `examples/trace.rs`, for people studying the loop: a readable block per iteration with
/// the virtual clock's jumps in it and a health summary; with `--json`, one JSON object
/// per iteration, numbered from 1.
#[test]
fn the_trace_example_prints_every_iteration_readably_and_as_json_lines() {
    const LIMIT: Duration = Duration::from_secs(60);
    let readable = process::run("trace", &["--virtual"], LIMIT);
    assert_eq!(readable.code, Some(0), "{readable:?}");
    assert!(readable.stdout.starts_with("#1 "), "{readable:?}");
    assert!(readable.lines().iter().any(|line| line.contains(" jumped ")), "{readable:?}");
    assert!(readable.stdout.contains(" iterations: busy "), "{readable:?}");
    let json = process::run("trace", &["--virtual", "--json"], LIMIT);
    assert_eq!(json.code, Some(0), "{json:?}");
    let lines = json.lines();
    assert!(lines.len() >= 3, "{json:?}");
    for (i, line) in lines.iter().enumerate() {
        let object = line.starts_with(&format!("{{\"iteration\":{},", i + 1)) && line.ends_with('}');
        assert!(object, "line {}: {line}", i + 1);
    }
}

#[allow(dead_code)] // each test file uses part of this module
#[path = "support/example_process.rs"]
mod process;
