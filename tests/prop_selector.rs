//! Property test: the Selector against a model of a few socket pairs.
//!
//! Sockets are numbered 0..2n; socket `s` is connected to `s ^ 1`. The model knows how many
//! bytes wait in each socket and what is registered with which token. After every step a
//! zero-timeout `select` must report exactly, for each registered socket, readable if it
//! is registered for reading and has bytes waiting, writable if it is registered for
//! writing (an idle connected socket always is: the few bytes written here never come near
//! filling a buffer).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evloop::selector::Selector;
use evloop::Interest;
use proptest::prelude::*;

mod common;
use common::drain;

#[derive(Clone, Debug)]
enum Op {
    Register(usize, Interest),
    Modify(usize, Interest),
    Unregister(usize),
    /// Write this many bytes on a socket: its peer gets them.
    Write(usize, usize),
    /// Read everything waiting on a socket.
    ReadAll(usize),
}

fn interest() -> impl Strategy<Value = Interest> {
    prop::sample::select(vec![Interest::READ, Interest::WRITE, Interest::READ_WRITE])
}

fn op(sockets: usize) -> impl Strategy<Value = Op> {
    let s = 0..sockets;
    prop_oneof![
        3 => (s.clone(), interest()).prop_map(|(s, i)| Op::Register(s, i)),
        2 => (s.clone(), interest()).prop_map(|(s, i)| Op::Modify(s, i)),
        1 => s.clone().prop_map(Op::Unregister),
        3 => (s.clone(), 1..64usize).prop_map(|(s, n)| Op::Write(s, n)),
        2 => s.prop_map(Op::ReadAll),
    ]
}

fn program() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (1..=4usize).prop_flat_map(|pairs| (Just(pairs), prop::collection::vec(op(pairs * 2), 1..=30)))
}

/// (token, readable, writable) of one ready socket.
type Ready = (u64, bool, bool);

fn run(pairs: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut sockets = Vec::new();
    for _ in 0..pairs {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        sockets.push(a);
        sockets.push(b);
    }
    let mut selector = Selector::new().unwrap();
    // Model: socket → (interest, token); bytes waiting in each socket.
    let mut registered: HashMap<usize, (Interest, u64)> = HashMap::new();
    let mut waiting = vec![0usize; sockets.len()];

    for (step, op) in ops.iter().enumerate() {
        // A fresh token per step, so a stale token after modify would be caught.
        let token = (step as u64) << 8;
        match *op {
            Op::Register(s, interest) => {
                let result = selector.register(sockets[s].as_raw_fd(), interest, token | s as u64);
                match registered.entry(s) {
                    Entry::Occupied(_) => {
                        prop_assert_eq!(result.unwrap_err().kind(), io::ErrorKind::AlreadyExists)
                    }
                    Entry::Vacant(slot) => {
                        result.unwrap();
                        slot.insert((interest, token | s as u64));
                    }
                }
            }
            Op::Modify(s, interest) => {
                let result = selector.modify(sockets[s].as_raw_fd(), interest, token | s as u64);
                if let Some(registration) = registered.get_mut(&s) {
                    result.unwrap();
                    *registration = (interest, token | s as u64);
                } else {
                    prop_assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound);
                }
            }
            Op::Unregister(s) => {
                let result = selector.unregister(sockets[s].as_raw_fd());
                if registered.remove(&s).is_some() {
                    result.unwrap();
                } else {
                    prop_assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound);
                }
            }
            Op::Write(s, n) => {
                let written = sockets[s].write(&vec![b'x'; n]).unwrap();
                prop_assert_eq!(written, n);
                waiting[s ^ 1] += n;
            }
            Op::ReadAll(s) => {
                let read = drain(&mut sockets[s]);
                prop_assert_eq!(read, waiting[s]);
                waiting[s] = 0;
            }
        }

        prop_assert_eq!(selector.len(), registered.len());
        for (s, socket) in sockets.iter().enumerate() {
            prop_assert_eq!(selector.interest(socket.as_raw_fd()), registered.get(&s).map(|r| r.0));
        }

        let expected: BTreeSet<Ready> = registered
            .iter()
            .map(|(&s, &(interest, token))| {
                (token, interest.is_readable() && waiting[s] > 0, interest.is_writable())
            })
            .filter(|&(_, r, w)| r || w)
            .collect();
        let events: Vec<Ready> = selector
            .select(Some(Duration::ZERO))
            .unwrap()
            .map(|e| (e.token, e.ready.is_readable(), e.ready.is_writable()))
            .collect();
        let got: BTreeSet<Ready> = events.iter().copied().collect();
        prop_assert_eq!(got.len(), events.len(), "a socket was reported twice: {:?}", events);
        prop_assert_eq!(got, expected, "after step {} ({:?})", step, op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn selector_reports_what_the_model_predicts((pairs, ops) in program()) {
        run(pairs, &ops)?;
    }
}
