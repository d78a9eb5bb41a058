//! A plan's history holds memory linear in its events. It keeps the plan's state along the way
//! (so a query folds few events); kept states must share the plan's elements with the states
//! after them, not copy the whole map at the first change after each was kept, which made the
//! read models grow with events × elements.
//!
//! A binary of its own: it counts what the whole process allocates.
#![allow(unsafe_code)] // The counting allocator below: the one way to see what a model holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use alliance_domain::testing::{created, plan_id, registered};
use alliance_domain::{Event, Plan};
use alliance_projection::{PackedEvent, PlanHistory, Recorded, RecordedBy, RecordedCommand, Seal};

/// Bytes allocated and not yet freed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed on to the system allocator unchanged; the counter is a side
// effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn recorded(version: u64, event: Event) -> (Recorded, Event) {
    let recorded = Recorded {
        version,
        event_id: uuid::Uuid::now_v7(),
        record_time_micros: 0,
        command: RecordedCommand::new(
            format!("c{version}"),
            String::new(),
            String::new(),
            String::new(),
            RecordedBy {
                team: "us-force-planning".into(),
                user: "planner".into(),
                side: 1,
            },
        ),
        seal: Seal::new(vec![0; 32], vec![0; 32], None),
        event: PackedEvent::new(&event),
    };
    (recorded, event)
}

/// The bytes a history of a plan and `elements` registrations (one event each) holds.
fn held_by_a_history_of(elements: u64) -> isize {
    let events: Vec<(Recorded, Event)> = std::iter::once(created())
        .chain((0..elements).map(|n| registered(&format!("unit-{n:06}"), 100, &[("vehicle", 4)])))
        .zip(1..)
        .map(|(event, version)| recorded(version, event))
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut history = PlanHistory::new(plan_id(), Plan::default());
    for (recorded, event) in events {
        history.push(recorded, &event, None);
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(history.version(), elements + 1);
    held
}

#[test]
fn a_plan_s_history_holds_memory_linear_in_its_events() {
    let small = held_by_a_history_of(2_000);
    let large = held_by_a_history_of(8_000);
    // Four times the events: linear is about four times the memory. A copy of every element
    // at each kept state (every 128 versions) made it about ten times.
    let ratio = large as f64 / small as f64;
    eprintln!("{small} bytes for 2,000 registrations, {large} for 8,000: {ratio:.1}×");
    assert!(
        ratio < 6.0,
        "{small} bytes for 2,000 registrations, {large} for 8,000: {ratio:.1}×"
    );
}
