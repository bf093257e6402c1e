//! Work that can run ahead of an in-order pass: following a migration history is sequential (each
//! migration sees the schema the earlier ones left), but splitting and parsing each file is not.
//! Worker threads parse the next files while the calling thread lints the current one.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex};

/// How much work (in the caller's unit of weight) may be taken ahead of the consumer per worker:
/// enough to keep the workers busy, little enough that finished items (parsed files are about
/// 60 times the size of their text) do not pile up in memory.
const AHEAD_PER_WORKER: usize = 128 << 10;

struct Shared<R> {
    /// Finished items not yet consumed, by index (a panic is handed on as it is).
    done: HashMap<usize, std::thread::Result<R>>,
    /// The next index a worker takes.
    next: usize,
    /// Items the consumer has taken.
    consumed: usize,
    /// The weight of the items taken by workers and not yet consumed.
    ahead: usize,
    /// Set when the consumer stops early (it panicked): workers stop too.
    abandoned: bool,
}

/// Lowers the calling thread's scheduling priority (nice 10, on Linux; elsewhere nothing).
/// Work done ahead of an in-order consumer is useful only once the consumer gets to it, and the
/// consumer's pace is the whole pass's: when the threads outnumber the cores, the consumer
/// should not wait for a core behind the threads working ahead of it, which have the cores to
/// themselves whenever it waits. On `bench/lint.sh`'s 100-file corpus (2 cores, 8 runs each,
/// alternated) `lint` took 1.15 s at the fastest (median 1.26 s) with the parse-ahead threads
/// lowered and 1.27 s (median 1.34 s) without. A lower priority is always allowed; a failure
/// changes nothing.
pub(crate) fn yield_to_the_consumer() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes integers only; on Linux, `PRIO_PROCESS` with id 0 is the
    // calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Calls `consume` on every item with `produce(item)`, in the items' order, on the calling
/// thread; `produce` runs on worker threads, ahead of `consume` by a bounded total `weight`
/// (always at least one item per worker). A panic in `produce` reaches the caller when
/// `consume` would have seen that item.
pub(crate) fn in_order<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize + Sync,
    produce: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(&T, R),
) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().saturating_sub(1));
    if workers == 0 {
        for item in items {
            consume(item, produce(item));
        }
        return;
    }
    let budget = workers * AHEAD_PER_WORKER;
    let shared = Mutex::new(Shared {
        done: HashMap::new(),
        next: 0,
        consumed: 0,
        ahead: 0,
        abandoned: false,
    });
    // Every worker may always have an item (so none idles behind one large file); beyond that,
    // the budget decides.
    let fits = |state: &Shared<R>| {
        state.next >= items.len()
            || state.next < state.consumed + workers
            || state.ahead + weight(&items[state.next]) <= budget
    };
    let changed = Condvar::new();
    let lock = || {
        shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                yield_to_the_consumer();
                loop {
                    let index = {
                        let mut state = lock();
                        while !state.abandoned && !fits(&state) {
                            state = changed
                                .wait(state)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                        }
                        if state.abandoned || state.next >= items.len() {
                            return;
                        }
                        state.ahead += weight(&items[state.next]);
                        state.next += 1;
                        state.next - 1
                    };
                    let result = catch_unwind(AssertUnwindSafe(|| produce(&items[index])));
                    lock().done.insert(index, result);
                    changed.notify_all();
                }
            });
        }
        // Wakes the workers for good if `consume` panics, so the scope can join them.
        struct Abandon<'a, R>(&'a Mutex<Shared<R>>, &'a Condvar);
        impl<R> Drop for Abandon<'_, R> {
            fn drop(&mut self) {
                if let Ok(mut state) = self.0.lock() {
                    state.abandoned = true;
                }
                self.1.notify_all();
            }
        }
        let _abandon = Abandon(&shared, &changed);
        for (index, item) in items.iter().enumerate() {
            let result = {
                let mut state = lock();
                loop {
                    if let Some(result) = state.done.remove(&index) {
                        state.consumed = index + 1;
                        state.ahead -= weight(item);
                        break result;
                    }
                    state = changed
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            };
            changed.notify_all();
            match result {
                Ok(value) => consume(item, value),
                Err(panic) => resume_unwind(panic),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_every_item_in_order() {
        let items: Vec<u64> = (0..500).collect();
        let mut seen = Vec::new();
        in_order(
            &items,
            |_| 100_000,
            |n| {
                // Uneven work, so workers finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((n * 7919) % 300));
                n * 2
            },
            |n, doubled| seen.push((*n, doubled)),
        );
        assert_eq!(seen, items.iter().map(|n| (*n, n * 2)).collect::<Vec<_>>());
    }

    #[test]
    #[should_panic(expected = "item 30 is bad")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<u32> = (0..50).collect();
        in_order(
            &items,
            |_| 1,
            |n| {
                assert!(*n != 30, "item 30 is bad");
                *n
            },
            |_, _| {},
        );
    }

    #[test]
    fn a_panic_in_the_consumer_stops_the_workers() {
        let items: Vec<u32> = (0..1000).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            in_order(&items, |_| 1, |n| *n, |n, _| assert!(*n != 3, "stop"))
        }));
        assert!(outcome.is_err());
    }
}
