//! A team of helper threads that spin between calls, for the short parallel loops of small
//! problems.
//!
//! Rayon's workers sleep as soon as they run out of work, and waking a sleeping thread costs
//! tens of microseconds on a virtual machine (measured here: a forward pass of one step, B=32,
//! H=128, took 83 us on one thread and 173 us on two). A training step of a small model makes a
//! few dozen such calls with Python in between, so the threads would sleep and wake for each.
//! The team's helpers instead keep looking for work for `SPIN` after each job before they
//! sleep, as OpenMP runtimes do (PyTorch's threads spin the same way), and the caller takes part
//! in its own job, so a call on a warm team wakes no thread at all.
//!
//! One job runs at a time: a caller that finds the team busy (another Python thread) runs its
//! tasks on rayon's pool instead. Which
//! thread runs a task never changes its result: tasks are independent, and each computes the
//! same way wherever it runs.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::denormals::FloatMode;

/// How long an idle helper keeps looking for the next job before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// The most tasks one job can have (the ticket holds the count in 16 bits).
const MAX_TASKS: usize = u16::MAX as usize;

/// Runs `run` on every item, in parallel on the team (or on rayon's pool when the team is busy),
/// and returns the first error any of them returned. Every item runs, even after an error, and
/// under the caller's floating-point mode (see [`super::denormals`]) whichever thread runs it.
pub fn for_each<I: Send, E: Send>(
    items: Vec<I>,
    run: impl Fn(I) -> Result<(), E> + Sync + Send,
) -> Result<(), E> {
    let first_error = Mutex::new(None);
    let mode = FloatMode::current();
    let run = |item: I| {
        let _mode = mode.enter();
        if let Err(e) = run(item) {
            first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
    };
    let team = team()
        .filter(|_| (2..=MAX_TASKS).contains(&items.len()))
        .and_then(|team| match team.lock.try_lock() {
            Ok(guard) => Some((team, guard)),
            // A panic re-raised on an earlier caller: the team itself is in order.
            Err(TryLockError::Poisoned(p)) => Some((team, p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        });
    match team {
        Some((team, _guard)) => {
            // Each slot is taken by the one thread that claims its index.
            let slots: Vec<Slot<I>> = items
                .into_iter()
                .map(|i| Slot(UnsafeCell::new(Some(i))))
                .collect();
            team.shared.run(slots.len(), &|i| {
                // SAFETY: index `i` is claimed exactly once (see `Shared::claim`).
                run(unsafe { (*slots[i].0.get()).take() }.expect("each task runs once"));
            });
        }
        // One item, or a one-thread pool: handing the items to rayon would only wake its
        // sleeping worker while the caller waits.
        None if items.len() <= 1 || rayon::current_num_threads() == 1 => {
            items.into_iter().for_each(run)
        }
        None => items.into_par_iter().for_each(run),
    }
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// [`for_each`] for work that cannot fail.
pub fn each<I: Send>(items: Vec<I>, run: impl Fn(I) + Sync + Send) {
    let Ok(()) = for_each(items, |item| {
        run(item);
        Ok::<(), std::convert::Infallible>(())
    });
}

/// One item, moved out by the task that claims it.
struct Slot<I>(UnsafeCell<Option<I>>);

// SAFETY: each slot is accessed by exactly one thread, the one that claimed its index.
unsafe impl<I: Send> Sync for Slot<I> {}

/// The process's team, started on first use with one helper fewer than rayon's pool has threads
/// (the caller is the last member); none on a one-thread pool.
fn team() -> Option<&'static Team> {
    static TEAM: OnceLock<Option<Team>> = OnceLock::new();
    TEAM.get_or_init(|| Team::start(rayon::current_num_threads().saturating_sub(1)))
        .as_ref()
}

struct Team {
    /// Held by the caller whose job the team runs.
    lock: Mutex<()>,
    shared: &'static Shared,
}

impl Team {
    fn start(helpers: usize) -> Option<Self> {
        if helpers == 0 {
            return None;
        }
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            ticket: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            remaining: AtomicUsize::new(0),
            panic: Mutex::new(None),
            sleepers: (0..helpers).map(|_| Sleeper::default()).collect(),
        }));
        for (i, sleeper) in shared.sleepers.iter().enumerate() {
            let started = thread::Builder::new()
                .name(format!("rnnkit-team-{i}"))
                .spawn(move || shared.helper(i));
            match started {
                Ok(handle) => {
                    let _ = sleeper.thread.set(handle.thread().clone());
                }
                // No team without all its threads: the callers use rayon's pool.
                Err(_) => return None,
            }
        }
        Some(Self {
            lock: Mutex::new(()),
            shared,
        })
    }
}

/// A job as the helpers see it.
type Job = &'static (dyn Fn(usize) + Sync);

/// What the caller and the helpers share. The ticket is one word so that a helper reads a
/// consistent job number, task count and next index at once: bits 32.. the job number, 16..32
/// the task count, 0..16 the next unclaimed index.
struct Shared {
    ticket: AtomicU64,
    /// The current job, written before its ticket is published and valid until every task
    /// has finished (the caller waits for that before it returns).
    job: UnsafeCell<Option<Job>>,
    /// Tasks of the current job not yet finished.
    remaining: AtomicUsize,
    /// The first panic of a task, re-raised on the caller once every task has ended.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    sleepers: Vec<Sleeper>,
}

// SAFETY: `job` is written only by the caller holding the team's lock, before the ticket that
// publishes it (release), and read by helpers after acquiring that ticket, while the job lasts.
unsafe impl Sync for Shared {}

#[derive(Default)]
struct Sleeper {
    thread: OnceLock<Thread>,
    asleep: AtomicBool,
}

impl Shared {
    /// Runs `tasks` tasks of `job` on the caller and the helpers; returns when all have
    /// finished, re-raising the first panic of any.
    fn run(&self, tasks: usize, job: &(dyn Fn(usize) + Sync)) {
        // SAFETY (of the lifetime extension): this function returns only after `remaining`
        // reached zero, and no helper touches the job after finishing its last claimed task.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
        let number = (self.ticket.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
        // SAFETY: the caller holds the team's lock and no task of an earlier job is running.
        unsafe { *self.job.get() = Some(job) };
        self.remaining.store(tasks, Ordering::Relaxed);
        self.ticket
            .store(number << 32 | (tasks as u64) << 16, Ordering::SeqCst);
        for sleeper in &self.sleepers {
            if sleeper.asleep.swap(false, Ordering::SeqCst) {
                if let Some(t) = sleeper.thread.get() {
                    t.unpark();
                }
            }
        }
        self.work(number);
        let mut spins = 0u32;
        while self.remaining.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        let theirs = self.panic.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(panic) = theirs {
            resume_unwind(panic);
        }
    }

    /// Claims and runs tasks of job `number` until none is left.
    fn work(&self, number: u64) {
        while let Some(i) = self.claim(number) {
            // SAFETY: the job stays valid while one of its tasks is unfinished (this one).
            let job = unsafe { (*self.job.get()).expect("a published job") };
            let outcome = catch_unwind(AssertUnwindSafe(|| job(i)));
            if let Err(panic) = outcome {
                self.panic
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(panic);
            }
            self.remaining.fetch_sub(1, Ordering::Release);
        }
    }

    /// The next unclaimed task of job `number`, if there is one.
    fn claim(&self, number: u64) -> Option<usize> {
        let mut ticket = self.ticket.load(Ordering::Acquire);
        loop {
            let (job, tasks, next) = (ticket >> 32, (ticket >> 16) & 0xffff, ticket & 0xffff);
            if job != number || next >= tasks {
                return None;
            }
            match self.ticket.compare_exchange_weak(
                ticket,
                ticket + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next as usize),
                Err(now) => ticket = now,
            }
        }
    }

    /// A helper's life: wait for a job (spinning, then asleep), take part, repeat.
    fn helper(&self, index: usize) {
        let sleeper = &self.sleepers[index];
        let mut seen = self.ticket.load(Ordering::Acquire) >> 32;
        loop {
            let number = self.next_job(seen, sleeper);
            self.work(number);
            seen = number;
        }
    }

    /// Waits for a job numbered other than `seen`: spins for [`SPIN`], then sleeps until the
    /// next caller wakes it.
    fn next_job(&self, seen: u64, sleeper: &Sleeper) -> u64 {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                let number = self.ticket.load(Ordering::Acquire) >> 32;
                if number != seen {
                    return number;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN {
                break;
            }
        }
        loop {
            sleeper.asleep.store(true, Ordering::SeqCst);
            let number = self.ticket.load(Ordering::SeqCst) >> 32;
            if number != seen {
                sleeper.asleep.store(false, Ordering::Relaxed);
                return number;
            }
            thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_item_runs_once_and_the_first_error_comes_back() {
        for round in 0..200 {
            let count = AtomicUsize::new(0);
            let items: Vec<usize> = (0..2 + round % 7).collect();
            let n = items.len();
            let sum = AtomicUsize::new(0);
            let result = for_each(items, |i| {
                count.fetch_add(1, Ordering::Relaxed);
                sum.fetch_add(i, Ordering::Relaxed);
                if i == 1 && round % 3 == 0 {
                    Err(format!("item {i}"))
                } else {
                    Ok(())
                }
            });
            assert_eq!(count.load(Ordering::Relaxed), n);
            assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
            assert_eq!(
                result,
                if round % 3 == 0 {
                    Err("item 1".to_string())
                } else {
                    Ok(())
                }
            );
            if round % 50 == 0 {
                thread::sleep(SPIN * 2); // the helpers fall asleep and must be woken
            }
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_after_all_tasks_ended() {
        let finished = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = for_each((0..4).collect(), |i: usize| -> Result<(), ()> {
                if i == 2 {
                    panic!("task {i} failed");
                }
                thread::sleep(Duration::from_millis(5));
                finished.fetch_add(1, Ordering::Relaxed);
                Ok(())
            });
        }));
        assert!(outcome.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 3);
        // The team still works afterwards.
        assert_eq!(for_each(vec![1, 2, 3], |_| Ok::<(), ()>(())), Ok(()));
    }

    #[test]
    fn concurrent_callers_all_finish() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        for_each(vec![1usize; 3], |v| {
                            total.fetch_add(v, Ordering::Relaxed);
                            Ok::<(), ()>(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 100 * 3);
    }
}
