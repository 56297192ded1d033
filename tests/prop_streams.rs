//! Property: `StreamReader` reads do not depend on how the bytes arrive.
//!
//! Arbitrary bytes (0..4 KiB, rich in separator bytes) are cut into arbitrary chunks and
//! fed with `feed_data` by one task, a chunk per loop iteration, then `feed_eof`; another
//! task runs a sequence of `readline` / `readuntil` (1–3 byte separators) / `readexactly`
//! on the same reader, interleaved with the feeding as the scheduler goes. The results —
//! bytes for successes, the error kind (and an `IncompleteRead`'s partial bytes) for
//! failures — and what is left at the end must equal those of the same sequence over the
//! bytes fed in one piece.
//!
//! With a limit above the data size every operation takes part. With a small limit,
//! `readline` is left out: on `LimitOverrun` it drops what it has looked at, which depends
//! on how much had arrived (asyncio behaves the same), while `readuntil` leaves the buffer
//! untouched and so must agree.

use std::rc::Rc;
use std::time::Duration;

use evloop::streams::{StreamError, StreamReader};
use evloop::{create_task, sleep, wait_for};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Readline,
    Readuntil(Vec<u8>),
    Readexactly(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok(Vec<u8>),
    IncompleteRead { partial: Vec<u8>, expected: Option<usize> },
    LimitOverrun,
    Io(std::io::ErrorKind),
}

impl From<Result<bytes::Bytes, StreamError>> for Outcome {
    fn from(result: Result<bytes::Bytes, StreamError>) -> Outcome {
        match result {
            Ok(bytes) => Outcome::Ok(bytes.to_vec()),
            Err(StreamError::IncompleteRead { partial, expected }) => {
                Outcome::IncompleteRead { partial: partial.to_vec(), expected }
            }
            Err(StreamError::LimitOverrun { .. }) => Outcome::LimitOverrun,
            Err(StreamError::Io(e)) => Outcome::Io(e.kind()),
        }
    }
}

/// Runs `ops` on a reader with `limit`, fed `data` cut at `cuts` (cycled) one chunk per
/// loop iteration, or all at once if `cuts` is empty; the outcomes and the rest.
fn read_with(data: &[u8], cuts: &[usize], limit: usize, ops: &[Op]) -> (Vec<Outcome>, Vec<u8>) {
    let data = data.to_vec();
    let cuts = cuts.to_vec();
    let ops = ops.to_vec();
    evloop::run(async move {
        let reader = Rc::new(StreamReader::new(limit));
        let feeder = {
            let reader = reader.clone();
            create_task(async move {
                if cuts.is_empty() {
                    reader.feed_data(&data);
                } else {
                    let mut rest = &data[..];
                    let mut sizes = cuts.iter().cycle();
                    while !rest.is_empty() {
                        let n = (*sizes.next().unwrap()).min(rest.len());
                        reader.feed_data(&rest[..n]);
                        rest = &rest[n..];
                        sleep(Duration::ZERO).await;
                    }
                }
                reader.feed_eof();
            })
        };
        let reading = async {
            let mut outcomes = Vec::new();
            for op in &ops {
                let result = match op {
                    Op::Readline => reader.readline().await,
                    Op::Readuntil(separator) => reader.readuntil(separator).await,
                    Op::Readexactly(n) => reader.readexactly(*n).await,
                };
                outcomes.push(Outcome::from(result));
            }
            let rest = reader.read_to_end().await.expect("read_to_end").to_vec();
            (outcomes, rest)
        };
        let result = wait_for(reading, Duration::from_secs(10)).await.expect("reads stalled");
        feeder.await.expect("feeder");
        assert!(reader.at_eof());
        result
    })
    .expect("loop")
}

/// Bytes with plenty of separators in them.
fn data() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"ab\n\r-".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..4096)
}

fn separator() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"ab\n\r-".to_vec()), 1..=3)
}

fn op(with_readline: bool) -> BoxedStrategy<Op> {
    let until = separator().prop_map(Op::Readuntil);
    let exactly = (0usize..300).prop_map(Op::Readexactly);
    if with_readline {
        prop_oneof![Just(Op::Readline), until, exactly].boxed()
    } else {
        prop_oneof![until, exactly].boxed()
    }
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 1usize..600], 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn chunked_reads_equal_reads_over_one_piece(
        data in data(),
        cuts in cuts(),
        ops in prop::collection::vec(op(true), 0..40),
    ) {
        let limit = 1 << 16;
        let whole = read_with(&data, &[], limit, &ops);
        let chunked = read_with(&data, &cuts, limit, &ops);
        prop_assert_eq!(&chunked, &whole);
        // And the reads account for every byte.
        let consumed: usize = whole.0.iter().map(|o| match o {
            Outcome::Ok(b) | Outcome::IncompleteRead { partial: b, .. } => b.len(),
            _ => 0,
        }).sum();
        prop_assert_eq!(consumed + whole.1.len(), data.len());
    }

    #[test]
    fn chunked_readuntil_and_readexactly_equal_one_piece_under_a_small_limit(
        data in data(),
        cuts in cuts(),
        ops in prop::collection::vec(op(false), 0..40),
        limit in 1usize..200,
    ) {
        let whole = read_with(&data, &[], limit, &ops);
        let chunked = read_with(&data, &cuts, limit, &ops);
        prop_assert_eq!(chunked, whole);
    }
}
