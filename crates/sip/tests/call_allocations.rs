//! Heap allocations one call's SIP messages cost this crate (issue 12: malloc/free were
//! ≈ 17 % of the call-control thread's CPU). A counting allocator counts every allocation
//! (and its bytes) while the messages of `CALLS` calls go through the path in
//! `call_path/mod.rs`, and prints them per call and per step.
//!
//! The bound is a regression guard set well above today's figure, not a speed target: a
//! change that brings back a whole-message copy or a per-header `String` fails it.
//!
//! Its own test binary, and one test in it, so no other test's allocations are counted.

mod call_path;

use call_path::{one_call, Wire, STEPS};
use sip::transaction::{TimerConfig, TransactionLayer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// A realloc counts as one allocation of its new size: that is what glibc does the work for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNT.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        COUNT.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CALLS: usize = 500;

/// Allocations per call above which the test fails. The figure is printed on every run: 511
/// allocations (42 756 bytes) a call before the work on issue 12, 291 (21 127 bytes) after.
const MAX_ALLOCATIONS_PER_CALL: usize = 400;
/// Bytes allocated per call above which the test fails (see above).
const MAX_BYTES_PER_CALL: usize = 32 * 1024;

fn counters() -> (usize, usize) {
    (COUNT.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
}

#[test]
fn one_call_costs_a_bounded_number_of_allocations() {
    let wires: Vec<Wire> = (0..=CALLS).map(Wire::new).collect();
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut per_step = [(0usize, 0usize); STEPS.len()];

    // Call 0 warms up: the layer's maps and queues reach their steady size. Each call's
    // lingering transactions end before the next call starts, so every call sees the same
    // layer, and the figures repeat exactly from run to run.
    let mut total = (0, 0);
    for (n, wire) in wires.iter().enumerate() {
        let now = start + Duration::from_secs(100 * n as u64);
        let measured = n > 0;
        let mut last = counters();
        let first = last;
        one_call(&mut layer, now, wire, |step| {
            let (count, bytes) = counters();
            if measured {
                per_step[step].0 += count - last.0;
                per_step[step].1 += bytes - last.1;
            }
            last = (count, bytes);
        });
        layer.handle_timeout(now + Duration::from_secs(60));
        assert!(layer.is_empty(), "every transaction of call {n} ended");
        assert!(
            layer.poll_event().is_none(),
            "call {n} ended without a timeout"
        );
        if measured {
            let (count, bytes) = counters();
            total.0 += count - first.0;
            total.1 += bytes - first.1;
        }
    }

    eprintln!("allocations per call, by step (count, bytes):");
    for (name, (count, bytes)) in STEPS.iter().zip(per_step) {
        eprintln!(
            "  {name:<32} {:>6.1} {:>8.0}",
            count as f64 / CALLS as f64,
            bytes as f64 / CALLS as f64
        );
    }
    let (count, bytes) = (total.0 / CALLS, total.1 / CALLS);
    eprintln!(
        "  {:<32} {count:>6} {bytes:>8}",
        "whole call (with linger end)"
    );
    assert!(
        count <= MAX_ALLOCATIONS_PER_CALL,
        "{count} allocations a call (bound {MAX_ALLOCATIONS_PER_CALL})"
    );
    assert!(
        bytes <= MAX_BYTES_PER_CALL,
        "{bytes} bytes allocated a call (bound {MAX_BYTES_PER_CALL})"
    );
}
