//! Two tasks waking each other 1,000,000 times: evloop through two `sync::Event`s, tokio's
//! current_thread runtime through two `tokio::sync::Notify`s. Per op = one round trip
//! (two wake-ups, two task steps).
//!
//! With `EVLOOP_BENCH_PYTHON` set (see benches/common), asyncio and uvloop run the same
//! exchange through two `asyncio.Event`s: `benches/peers/loop_core.py`.
//!
//! Run: `cargo bench --bench ping_pong`.

mod common;

use std::rc::Rc;
use std::sync::Arc;

use common::{Case, Probe, Sample};

fn main() {
    common::main(
        "ping_pong",
        "evloop: evloop::run; main and one task alternate through two Events (set, then wait and clear).\n\
         tokio: current_thread runtime; main and one tokio::spawn'ed task alternate through two Notify \
         (notify_one, then notified().await).",
        &[Case {
            name: "ping_pong",
            ops: 1_000_000,
            unit: "round trip",
            max_cpu_ns_per_op: Some(86.0),
            max_peak_mib: None,
        }],
        Some("loop_core.py"),
        child,
    );
}

fn child(side: &str, case: &str, n: u64) -> Sample {
    assert_eq!(case, "ping_pong", "unknown case");
    match side {
        "evloop" => evloop_ping_pong(n),
        "tokio" => tokio_ping_pong(n),
        other => panic!("unknown side {other:?}"),
    }
}

fn evloop_ping_pong(n: u64) -> Sample {
    let probe = Probe::start();
    let rounds = evloop::run(async move {
        let (ping, pong) = (Rc::new(evloop::sync::Event::new()), Rc::new(evloop::sync::Event::new()));
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let partner = evloop::create_task(async move {
            for _ in 0..n {
                ping2.wait().await;
                ping2.clear();
                pong2.set();
            }
        });
        let mut rounds = 0;
        for _ in 0..n {
            ping.set();
            pong.wait().await;
            pong.clear();
            rounds += 1;
        }
        partner.await.expect("partner task");
        rounds
    })
    .expect("evloop::run");
    let sample = probe.finish(n);
    assert_eq!(rounds, n, "evloop made the wrong number of round trips");
    sample
}

fn tokio_ping_pong(n: u64) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let probe = Probe::start();
    let rounds = runtime.block_on(async move {
        let (ping, pong) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let partner = tokio::spawn(async move {
            for _ in 0..n {
                ping2.notified().await;
                pong2.notify_one();
            }
        });
        let mut rounds = 0;
        for _ in 0..n {
            ping.notify_one();
            pong.notified().await;
            rounds += 1;
        }
        partner.await.expect("partner task");
        rounds
    });
    let sample = probe.finish(n);
    assert_eq!(rounds, n, "tokio made the wrong number of round trips");
    drop(runtime);
    sample
}
