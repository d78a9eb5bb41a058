//! Each plan's hash chain, verified over the log itself: the reference plan verifies on both
//! logs, and tampering with the stored records is found at the exact record.

use alliance_domain::PlanId;
use alliance_eventlog::EventLog;
use alliance_projection::verify_plan;
use alliance_record::chain::{self, BreakKind};
use rusqlite::params;

use crate::harness::{Env, assert_chain_holds, payload_of, position_of};

/// The break verification reports: kind, version, position.
async fn broken(env: &Env, plan: PlanId) -> (BreakKind, u64, u64) {
    let found = verify_plan(&env.log, plan, &env.trusted)
        .await
        .unwrap()
        .unwrap();
    let (at, _) = found.first_break.expect("the chain should break");
    (at.kind, at.version, at.position)
}

fn set_payload(db: &rusqlite::Connection, plan: PlanId, version: i64, payload: &[u8]) {
    let changed = db
        .execute(
            "UPDATE events SET payload = ?3 WHERE plan_id = ?1 AND version = ?2",
            params![plan.as_bytes().as_slice(), version, payload],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn the_reference_plan_verifies_and_tampering_with_the_file_is_found_where_it_happened() {
    let env = Env::open().await;
    let (reference, _) = env.load_reference().await;
    let stored = env.plan_events(reference).await;
    let verified = verify_plan(&env.log, reference, &env.trusted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.first_break, None);
    assert_eq!(verified.head.events, stored.len() as u64);
    assert_eq!(
        Some(verified.head.head),
        chain::carried_hash(&stored.last().unwrap().payload)
    );
    assert_eq!(
        verify_plan(&env.log, uuid::Uuid::now_v7(), &env.trusted)
            .await
            .unwrap(),
        None
    );

    // A long history verifies: 2,000 more events.
    let long = env.plan_with_elements(2_000).await;
    assert_chain_holds(&env.log, long, &env.trusted, 2_001).await;

    let (altered, removed, swapped) = (
        env.plan_with_elements(6).await,
        env.plan_with_elements(6).await,
        env.plan_with_elements(6).await,
    );
    let db = rusqlite::Connection::open(env.db()).unwrap();

    // One byte of one stored record changed.
    let mut payload = payload_of(&db, altered, 4);
    let middle = payload.len() / 2;
    payload[middle] ^= 0x01;
    set_payload(&db, altered, 4, &payload);
    assert_eq!(
        broken(&env, altered).await,
        (BreakKind::Altered, 4, position_of(&db, altered, 4))
    );

    // One record deleted.
    let after = position_of(&db, removed, 6);
    db.execute(
        "DELETE FROM events WHERE plan_id = ?1 AND version = 5",
        params![removed.as_bytes().as_slice()],
    )
    .unwrap();
    assert_eq!(broken(&env, removed).await, (BreakKind::Missing, 6, after));

    // Two records' contents swapped.
    let (third, fourth) = (payload_of(&db, swapped, 3), payload_of(&db, swapped, 4));
    set_payload(&db, swapped, 3, &fourth);
    set_payload(&db, swapped, 4, &third);
    assert_eq!(
        broken(&env, swapped).await,
        (BreakKind::OutOfPlace, 3, position_of(&db, swapped, 3))
    );

    // The other plans are untouched.
    let reference_again = verify_plan(&env.log, reference, &env.trusted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reference_again, verified);
    assert_eq!(
        env.log.plan_version(reference).await.unwrap(),
        verified.head.events
    );
}

/// What a row of the log holds beside its record (the event's id and type, the command's id)
/// is covered by neither the chain nor a signature: changed in the file, every chain still
/// verifies. The read models take none of it that the record's envelope does not state: such
/// a record is set aside (quarantined), named where it is and why, and its plan stands at the
/// version before it.
#[tokio::test]
async fn a_row_stored_under_what_its_record_does_not_state_is_set_aside() {
    let env = Env::open().await;
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let edits = [
        (
            "command id",
            "UPDATE events SET command_id = 'forged' WHERE plan_id = ?1 AND version = ?2",
        ),
        (
            "event id",
            "UPDATE events SET event_id = randomblob(16) WHERE plan_id = ?1 AND version = ?2",
        ),
        (
            "event type",
            "UPDATE events SET event_type = 'PlanCreated' WHERE plan_id = ?1 AND version = ?2",
        ),
    ];
    let mut changed = Vec::new();
    for (column, edit) in edits {
        let plan = env.plan_with_elements(3).await;
        let last = env.log.plan_version(plan).await.unwrap();
        let position = position_of(&db, plan, last);
        assert_eq!(
            db.execute(edit, params![plan.as_bytes().as_slice(), last as i64])
                .unwrap(),
            1
        );
        assert_chain_holds(&env.log, plan, &env.trusted, last).await;
        changed.push((column, plan, last, position));
    }

    let model = env.caught_up().await;
    let (total, records) = model.quarantined(&env.log);
    assert_eq!(total, changed.len() as u64, "{records:?}");
    for (column, plan, last, position) in changed {
        let set_aside = records
            .iter()
            .find(|r| r.position == position)
            .unwrap_or_else(|| panic!("{column}: position {position} not set aside: {records:?}"));
        assert!(
            set_aside.reason.contains(&format!(
                "the {column} it is stored under is not the one its envelope states"
            )),
            "{column}: {}",
            set_aside.reason
        );
        assert_eq!(model.plan_version(plan), last - 1, "{column}");
    }
}

/// A whole plan's records stored under another plan's id in the file: as a chain each is
/// intact, but each names its own plan. Verification of the id they are stored under names the
/// first as out of place, and the read models set every one aside.
#[tokio::test]
async fn a_plan_stored_under_another_plan_s_id_is_found() {
    let env = Env::open().await;
    let plan = env.plan_with_elements(2).await;
    let events = env.log.plan_version(plan).await.unwrap();
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let first = position_of(&db, plan, 1);
    let renamed = uuid::Uuid::now_v7();
    let moved = db
        .execute(
            "UPDATE events SET plan_id = ?2 WHERE plan_id = ?1",
            params![plan.as_bytes().as_slice(), renamed.as_bytes().as_slice()],
        )
        .unwrap();
    assert_eq!(moved as u64, events);
    assert_eq!(
        broken(&env, renamed).await,
        (BreakKind::OutOfPlace, 1, first)
    );

    let model = env.caught_up().await;
    let (total, records) = model.quarantined(&env.log);
    assert_eq!(total, events, "{records:?}");
    assert!(
        records.iter().all(|r| r
            .reason
            .contains("the plan id it is stored under is not the one its envelope states")),
        "{records:?}"
    );
    assert_eq!(model.plan_version(renamed), 0);
}
