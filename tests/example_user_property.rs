//! A complete property test of one's own async code in evloop's deterministic mode,
//! written to be copied (NOTES.md, chapter 5).
//!
//! The code under test is a job runner that keeps at most `limit` jobs running at once.
//! proptest picks the jobs, the limit and a seed; the seed fixes the order in which the
//! loop runs tasks woken together, so every case also explores a schedule. The virtual
//! clock makes hours of job time cost nothing, and `assert_quiescent` checks that the
//! runner leaves no task, timer or fd behind. A failing case prints its seed; run it again
//! with `EVLOOP_SEED=0x...` to replay that schedule.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use evloop::sync::Semaphore;
use evloop::{create_task, deterministic, gather, sleep, EventLoop};
use proptest::prelude::*;

/// The code under test: runs jobs of the given lengths, at most `limit` at a time, and
/// returns the largest number that ever ran together.
async fn run_jobs(lengths: Vec<Duration>, limit: usize) -> usize {
    let permits = Rc::new(Semaphore::new(limit));
    let running = Rc::new(Cell::new(0));
    let most = Rc::new(Cell::new(0));
    let jobs: Vec<_> = lengths
        .into_iter()
        .map(|length| {
            let (permits, running, most) = (permits.clone(), running.clone(), most.clone());
            create_task(async move {
                let _permit = permits.acquire().await;
                running.set(running.get() + 1);
                most.set(most.get().max(running.get()));
                sleep(length).await;
                running.set(running.get() - 1);
            })
        })
        .collect();
    gather(jobs).await.expect("no job fails");
    most.get()
}

proptest! {
    // 64 cases: each is a few hundred loop iterations in virtual time.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_runner_never_exceeds_its_limit_and_takes_the_time_it_should(
        seed in any::<u64>(),
        lengths_ms in prop::collection::vec(0u64..3_600_000, 1..30),
        limit in 1usize..5,
    ) {
        deterministic::report_seed(seed, |seed| {
            let event_loop = EventLoop::builder().virtual_clock().seed(seed).build().unwrap();
            let lengths: Vec<Duration> = lengths_ms.iter().map(|&ms| Duration::from_millis(ms)).collect();
            let start = event_loop.time();
            let most = event_loop.run_until_complete(run_jobs(lengths.clone(), limit)).unwrap();
            let took = event_loop.time() - start;

            assert!(most <= limit, "{most} jobs ran at once, limit {limit}");
            // With `limit` lanes the runner can finish no sooner than the longest job and
            // the total work spread over all lanes, and no later than all of it in a row.
            let total: Duration = lengths.iter().sum();
            let longest = lengths.iter().max().copied().unwrap_or_default();
            assert!(took >= longest.max(total / limit as u32), "finished too early: {took:?}");
            assert!(took <= total, "finished too late: {took:?} for {total:?} of work");
            event_loop.assert_quiescent();
        });
    }
}
