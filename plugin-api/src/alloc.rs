//! A counting global allocator for plugins.
//!
//! Each cdylib carries its own allocator, so the host cannot see a plugin's heap use. The
//! `export_plugin!` macro installs this wrapper around the system allocator by default; it
//! costs two relaxed atomic adds per allocation (tens of nanoseconds) and lets the host record
//! allocations, bytes and peak live bytes for every call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::abi::CallStats;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES_ALLOCATED: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting what passes through it.
pub struct CountingAllocator;

impl CountingAllocator {
    pub const fn new() -> Self {
        CountingAllocator
    }
}

impl Default for CountingAllocator {
    fn default() -> Self {
        Self::new()
    }
}

fn on_alloc(size: u64) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    BYTES_ALLOCATED.fetch_add(size, Relaxed);
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every method forwards to `System` unchanged; the counters never affect allocation.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Relaxed);
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            on_alloc(layout.size() as u64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Relaxed);
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(layout.size() as u64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Relaxed);
            on_alloc(new_size as u64);
        }
        p
    }
}

/// Counter values at the start of a call.
#[derive(Clone, Copy)]
pub struct Snapshot {
    allocations: u64,
    bytes: u64,
    live: u64,
}

/// Marks the start of a call: resets the peak to what is live now.
pub fn start() -> Snapshot {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    Snapshot { allocations: ALLOCATIONS.load(Relaxed), bytes: BYTES_ALLOCATED.load(Relaxed), live }
}

/// What the call allocated since `start`.
pub fn finish(start: Snapshot) -> CallStats {
    if !INSTALLED.load(Relaxed) {
        return CallStats::default();
    }
    CallStats {
        counted: true,
        allocations: ALLOCATIONS.load(Relaxed).saturating_sub(start.allocations),
        bytes_allocated: BYTES_ALLOCATED.load(Relaxed).saturating_sub(start.bytes),
        peak_live_bytes: PEAK.load(Relaxed).saturating_sub(start.live),
    }
}
