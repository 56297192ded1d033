//! Property test: random programs of spawn / sleep / cancel / await, run by a main
//! coroutine, against a model of which tasks complete with which value and which end
//! `Cancelled`.
//!
//! Wall-clock sleeps make some outcomes a race, so the model is exact where the loop's
//! rules make the outcome certain and otherwise checks consistency:
//! - a task cancelled before main yielded since spawning it never runs and ends Cancelled;
//! - a task made only of `sleep(ZERO)`s advances exactly one step per iteration, and is
//!   queued ahead of main, so whether a cancel still reaches it follows from how many
//!   times main has yielded since (counted exactly while main only yields by `sleep`);
//! - otherwise `cancel()` returning true must mean the task ends Cancelled, and false that
//!   it had already completed with its value;
//! - an awaited or cancelled task's coroutine is always dropped, and code after a
//!   cancelled await never runs.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use evloop::{create_task, get_running_loop, sleep, Task, TaskError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Clone, Debug)]
struct Spec {
    /// The task sleeps these many milliseconds in turn (0 = yield one iteration).
    sleeps: Vec<u64>,
    value: u32,
}

#[derive(Clone, Debug)]
enum Op {
    Spawn(usize),
    /// Main sleeps; 0 yields exactly one iteration.
    Sleep(u64),
    Cancel(usize),
    Await(usize),
}

fn ms() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 2 => 1..5u64]
}

fn spec() -> impl Strategy<Value = Spec> {
    (prop::collection::vec(ms(), 0..=3), any::<u32>()).prop_map(|(sleeps, value)| Spec { sleeps, value })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..8usize).prop_map(Op::Spawn),
        3 => ms().prop_map(Op::Sleep),
        3 => (0..8usize).prop_map(Op::Cancel),
        2 => (0..8usize).prop_map(Op::Await),
    ]
}

/// What the test observes of one task from the inside.
#[derive(Default)]
struct Probe {
    started: Cell<bool>,
    finished: Cell<bool>,
    dropped: Cell<bool>,
}

struct DropProbe(Rc<Probe>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.dropped.set(true);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Not known to be finished, no cancel accepted.
    Live,
    /// A cancel was accepted: it ends Cancelled. `fresh`: accepted before it could start.
    Cancelled { fresh: bool },
    /// Known to have completed with its value.
    Completed,
}

/// The model's view of one spawned task.
struct Model {
    fate: Fate,
    /// Times main yielded by `sleep` since the spawn (each is at least one iteration).
    yields: usize,
    /// Main slept for real time since the spawn (an unknown number of iterations).
    slept_for_time: bool,
    /// Main awaited a task since the spawn (an unknown number of iterations, and main's
    /// place in the ready queue may have moved ahead of this task's).
    awaited: bool,
}

impl Model {
    /// True if the task is made only of zero sleeps: `k` of them, one step each, plus one.
    fn zero_steps(spec: &Spec) -> Option<usize> {
        spec.sleeps.iter().all(|&ms| ms == 0).then_some(spec.sleeps.len() + 1)
    }

    /// Certainly not finished yet, by the loop's rules.
    fn surely_running(&self, spec: &Spec) -> bool {
        if self.yields == 0 && !self.awaited {
            return true; // it has not had a step yet
        }
        match Self::zero_steps(spec) {
            Some(steps) => !self.awaited && !self.slept_for_time && self.yields < steps,
            None => false,
        }
    }

    /// Certainly finished, by the loop's rules.
    fn surely_finished(&self, spec: &Spec) -> bool {
        match Self::zero_steps(spec) {
            Some(steps) if !self.awaited => self.yields >= steps,
            // Main may have been queued ahead of it since: it may lag one step.
            Some(steps) => self.yields > steps,
            None => false,
        }
    }
}

fn run_program(specs: &[Spec], ops: &[Op]) -> Result<(), TestCaseError> {
    let specs = specs.to_vec();
    let ops = ops.to_vec();
    evloop::run(async move { run_in_loop(&specs, &ops).await })
        .map_err(|e| TestCaseError::fail(e.to_string()))?
}

async fn run_in_loop(specs: &[Spec], ops: &[Op]) -> Result<(), TestCaseError> {
    let n = specs.len();
    let probes: Vec<Rc<Probe>> = (0..n).map(|_| Rc::new(Probe::default())).collect();
    let mut handles: Vec<Option<Task<u32>>> = (0..n).map(|_| None).collect();
    let mut models: Vec<Option<Model>> = (0..n).map(|_| None).collect();
    let mut spawned = 0u64;
    let stats_before = get_running_loop().unwrap().stats();

    for op in ops {
        match *op {
            Op::Spawn(i) => {
                let i = i % n;
                if models[i].is_some() {
                    continue;
                }
                let (spec, probe) = (specs[i].clone(), probes[i].clone());
                let drop_probe = DropProbe(probe.clone());
                handles[i] = Some(create_task(async move {
                    let _drop_probe = drop_probe;
                    probe.started.set(true);
                    for ms in spec.sleeps {
                        sleep(Duration::from_millis(ms)).await;
                    }
                    probe.finished.set(true);
                    spec.value
                }));
                models[i] =
                    Some(Model { fate: Fate::Live, yields: 0, slept_for_time: false, awaited: false });
                spawned += 1;
            }
            Op::Sleep(ms) => {
                sleep(Duration::from_millis(ms)).await;
                for model in models.iter_mut().flatten() {
                    model.yields += 1;
                    model.slept_for_time |= ms > 0;
                }
            }
            Op::Cancel(i) => {
                let i = i % n;
                let Some(model) = models[i].as_mut() else { continue };
                let task = handles[i].as_ref().map(Task::as_ref);
                // A handle consumed by an await means the task is done.
                let accepted = task.as_ref().is_some_and(|t| t.cancel());
                let probe = &probes[i];
                match model.fate {
                    Fate::Live => {
                        if model.surely_running(&specs[i]) {
                            prop_assert!(accepted, "task {i}: cancel refused though it cannot have finished");
                        }
                        if model.surely_finished(&specs[i]) {
                            prop_assert!(!accepted, "task {i}: cancel accepted though it must have finished");
                        }
                        if accepted {
                            prop_assert!(
                                !probe.finished.get(),
                                "task {i}: cancel accepted after it finished"
                            );
                            let fresh = model.yields == 0 && !model.awaited;
                            model.fate = Fate::Cancelled { fresh };
                        } else {
                            prop_assert!(probe.finished.get(), "task {i}: cancel refused while running");
                            model.fate = Fate::Completed;
                        }
                    }
                    Fate::Cancelled { .. } => {}
                    Fate::Completed => {
                        prop_assert!(!accepted, "task {i}: a completed task accepted a cancel")
                    }
                }
            }
            Op::Await(i) => {
                let i = i % n;
                let Some(task) = handles[i].take() else { continue };
                let outcome = task.await;
                let model = models[i].as_mut().unwrap();
                let expected = match model.fate {
                    Fate::Cancelled { .. } => Err(TaskError::Cancelled),
                    Fate::Live | Fate::Completed => Ok(specs[i].value),
                };
                prop_assert_eq!(&outcome, &expected, "task {}", i);
                if outcome.is_ok() {
                    model.fate = Fate::Completed;
                }
                for model in models.iter_mut().flatten() {
                    model.awaited = true;
                }
            }
        }
    }

    // Await everything still outstanding; every outcome must match the model.
    for (i, handle) in handles.iter_mut().enumerate() {
        let Some(task) = handle.take() else { continue };
        let outcome = task.await;
        let expected = match models[i].as_ref().unwrap().fate {
            Fate::Cancelled { .. } => Err(TaskError::Cancelled),
            Fate::Live | Fate::Completed => Ok(specs[i].value),
        };
        prop_assert_eq!(&outcome, &expected, "task {}", i);
    }
    for (i, model) in models.iter().enumerate() {
        let probe = &probes[i];
        let Some(model) = model else {
            prop_assert!(!probe.started.get(), "task {i} ran without being spawned");
            continue;
        };
        prop_assert!(probe.dropped.get(), "task {i}: its coroutine was never dropped");
        match model.fate {
            Fate::Cancelled { fresh } => {
                prop_assert!(!probe.finished.get(), "task {i}: code after a cancelled await ran");
                if fresh {
                    prop_assert!(
                        !probe.started.get(),
                        "task {i}: cancelled before its first step, yet it ran"
                    );
                }
            }
            Fate::Live | Fate::Completed => prop_assert!(probe.finished.get(), "task {i} did not finish"),
        }
    }
    let stats = get_running_loop().unwrap().stats();
    prop_assert_eq!(stats.tasks_spawned - stats_before.tasks_spawned, spawned);
    prop_assert_eq!(stats.tasks_finished - stats_before.tasks_finished, spawned);
    prop_assert_eq!(evloop::all_tasks().len(), 1, "only main is left");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_task_programs_match_the_model(
        specs in prop::collection::vec(spec(), 1..=8),
        ops in prop::collection::vec(op(), 0..24),
    ) {
        run_program(&specs, &ops)?;
    }
}

/// A fixed program exercising each rule once, so the rules are checked on every run even
/// if the random cases happen to miss one.
#[test]
fn a_fixed_program_covering_every_rule() {
    let specs = vec![
        Spec { sleeps: vec![0, 0], value: 1 }, // cancelled while surely running
        Spec { sleeps: vec![], value: 2 },     // surely finished after one yield
        Spec { sleeps: vec![3], value: 3 },    // timing-dependent
        Spec { sleeps: vec![0], value: 4 },    // cancelled before its first step
        Spec { sleeps: vec![1, 0], value: 5 }, // awaited
    ];
    let ops = vec![
        Op::Spawn(0),
        Op::Spawn(1),
        Op::Spawn(2),
        Op::Spawn(3),
        Op::Cancel(3),
        Op::Sleep(0),
        Op::Cancel(0),
        Op::Cancel(1),
        Op::Spawn(4),
        Op::Await(4),
        Op::Cancel(2),
        Op::Await(2),
    ];
    run_program(&specs, &ops).unwrap();
}
