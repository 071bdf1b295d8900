//! Heap allocations counted per thread, for unit tests that measure what a piece of call
//! control allocates (issue 12: the end-to-end benchmark varies ±10 % from run to run on a
//! shared machine; a count does not). Only this crate's unit-test binary uses this allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations a thread makes while it asked to.
struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// SAFETY: every call is passed to the system allocator unchanged; counting only reads and
// writes this thread's const-initialised cells, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `layout` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` come from this allocator, which is the system's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    // `try_with`: during thread teardown the cells may be gone; nothing is counted then.
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = COUNT.try_with(|count| count.set(count.get() + 1));
    }
}

/// Runs `work`, counting the allocations (and reallocations) this thread makes meanwhile.
pub(crate) fn counted<T>(work: impl FnOnce() -> T) -> T {
    let was = COUNTING.with(|counting| counting.replace(true));
    let result = work();
    COUNTING.with(|counting| counting.set(was));
    result
}

/// Allocations counted on this thread so far.
pub(crate) fn allocations() -> u64 {
    COUNT.with(Cell::get)
}
